//! Read credentials at the HTTP edge: the layer on every read route
//! ([`require_viewer`]) and the `/login` form. Who may read is decided by
//! [`crate::read_auth`].

use axum::Form;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use crate::read_auth::{ReadAccess, ReadMode};

/// The challenge of a refused read.
const CHALLENGE: &str = "Bearer realm=\"slaprobe read\"";

/// The layer on every read route: passes a request with read credentials
/// (or any request in public mode), answers 401 otherwise.
pub async fn require_viewer(
    State(access): State<ReadAccess>,
    req: Request,
    next: Next,
) -> Response {
    match access.check(req.headers()) {
        Ok(_) => next.run(req).await,
        Err(why) => ApiError::new(StatusCode::UNAUTHORIZED, why.message())
            .challenge(CHALLENGE)
            .into_response(),
    }
}

const LOGIN_FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>slaprobe: sign in</title></head>
<body><h1>slaprobe</h1>
<form method="post" action="/login">
<label>Viewer token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>
"#;

/// `GET /login`: the sign-in form.
pub async fn login_form() -> Html<&'static str> {
    Html(LOGIN_FORM)
}

/// The posted sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`: a viewer token in, a sign-in cookie out (`HttpOnly;
/// SameSite=Strict`, `Secure` over TLS). The token itself is never stored.
pub async fn login(State(access): State<ReadAccess>, Form(form): Form<LoginForm>) -> Response {
    if access.mode() != ReadMode::Viewers {
        return (
            StatusCode::NOT_FOUND,
            "no [[viewers]] are configured; there is nothing to sign in to\n",
        )
            .into_response();
    }
    let Some(signed_in) = access.sign_in(form.token.trim()) else {
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            Html("<!doctype html><p>Unknown token. <a href=\"/login\">Try again</a>.</p>\n"),
        )
            .into_response();
        resp.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        return resp;
    };
    let body = format!(
        "<!doctype html><p>Signed in as {}. <a href=\"/api/v1/contracts\">Contracts</a> · <a href=\"/api/v1/agents\">Agents</a> · <a href=\"/metrics\">Metrics</a></p>\n",
        html_escape(&signed_in.viewer)
    );
    let mut resp = Html(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&signed_in.set_cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
