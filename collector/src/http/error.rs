//! The one JSON error envelope of the collector's HTTP API: every JSON
//! endpoint that refuses answers `{"error": "…"}`, plus `"reason"` where the
//! caller acts on it (ingest's and the agent endpoints' [`RejectReason`]
//! labels) and `"seq"`, `"max_seq"` on a 409. Retry-After and
//! WWW-Authenticate are fields, set where the status calls for them. The
//! HTML pages (status page, `/login`) have their own error pages.

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ingest::{RejectReason, Rejection, SeqConflict};

/// A JSON error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    /// The `error` field: what went wrong, for a person.
    message: String,
    /// The `reason` field: a stable label a program can branch on.
    reason: Option<RejectReason>,
    /// Seconds for Retry-After (429, 503).
    retry_after: Option<u64>,
    /// The WWW-Authenticate challenge (401).
    challenge: Option<&'static str>,
    /// `seq` and `max_seq` (409).
    conflict: Option<SeqConflict>,
}

impl ApiError {
    /// `{"error": message}` with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            reason: None,
            retry_after: None,
            challenge: None,
            conflict: None,
        }
    }

    /// Adds `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds the `WWW-Authenticate` challenge of a 401.
    pub fn challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        // An agent tells the collector's verdict on one result (`results[i]…`
        // with a per-result reason) from anything else by `reason`.
        Self {
            status: r.status(),
            message: r.message().to_string(),
            reason: Some(r.reason()),
            retry_after: r.retry_after(),
            challenge: (r.status() == StatusCode::UNAUTHORIZED).then_some("Bearer"),
            conflict: r.conflict(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(reason) = self.reason {
            body["reason"] = reason.label().into();
        }
        if let Some(SeqConflict { seq, max_seq }) = self.conflict {
            body["seq"] = seq.into();
            body["max_seq"] = max_seq.into();
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::SeqConflict;
    use http_body_util::BodyExt;

    async fn body(resp: Response) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn one_envelope_carries_reason_headers_and_seqs() {
        let resp =
            Rejection::rate_limited("a", std::time::Duration::from_millis(2500), 5).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[RETRY_AFTER], "3");
        assert_eq!(body(resp).await["reason"], "rate_limited");

        let resp = Rejection::unauthorized("no token").into_response();
        assert_eq!(resp.headers()[WWW_AUTHENTICATE], "Bearer");
        assert!(resp.headers().get(RETRY_AFTER).is_none());

        let resp = Rejection::seq_conflict(SeqConflict { seq: 7, max_seq: 9 }).into_response();
        let b = body(resp).await;
        assert_eq!(
            (b["seq"].as_u64(), b["max_seq"].as_u64()),
            (Some(7), Some(9))
        );
        assert_eq!(b["reason"], "seq_conflict");

        let resp = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "starting")
            .retry_after(5)
            .into_response();
        assert_eq!(resp.headers()[RETRY_AFTER], "5");
        assert_eq!(body(resp).await, serde_json::json!({ "error": "starting" }));
    }
}
