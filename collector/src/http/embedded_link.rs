//! The embedded agent's own way in when the listener speaks TLS.
//!
//! The embedded agent talks HTTP to its collector like any agent. Over the
//! TLS listener it would need a certificate valid for a loopback address
//! (operators' certificates name the public host) and, in mTLS mode, a
//! client certificate the collector cannot mint (it does not hold the client
//! CA's key). So when `tls_cert_file` is set, the collector also binds a
//! plain listener on `127.0.0.1:0` for the embedded agent alone: it serves
//! only the two agent endpoints, and only to the embedded agent's token,
//! which is drawn at every start and never leaves the process. Anyone else
//! on the host who finds the port gets 403, whatever token they hold, so the
//! link opens no way around TLS or mTLS for other agents.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{ingest, read};
use crate::app::AppState;
use crate::ingest::Rejection;

/// The routes of the link: the agent endpoints, for `agent_id` only.
pub fn router(state: AppState, agent_id: String) -> Router {
    Router::new()
        .route("/api/v1/results", post(ingest::post_results))
        .route("/api/v1/checks", get(read::checks))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), agent_id),
            only_the_embedded_agent,
        ))
        .with_state(state)
}

/// Passes requests bearing the embedded agent's token; 403 for anyone else.
async fn only_the_embedded_agent(
    State((app, id)): State<(AppState, String)>,
    req: Request,
    next: Next,
) -> Response {
    match app.auth().authenticate(req.headers()) {
        Ok(p) if p.id == id => next.run(req).await,
        _ => Rejection::forbidden(
            "this loopback port is the embedded agent's alone; other agents use the TLS listener",
        )
        .into_response(),
    }
}
