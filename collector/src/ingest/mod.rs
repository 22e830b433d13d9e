//! What ingest decides about a batch, without HTTP or the store (the
//! handler is [`crate::http::ingest`]): `POST /api/v1/results` (DESIGN.md
//! §5) authenticates, bounds and decodes the body, validates every result,
//! stores the batch in one transaction and answers `{"acked": N}` once it is
//! committed.
//!
//! Decisions:
//! - A batch is all or nothing: one invalid result refuses the whole batch
//!   (400 naming `results[i].field`), so an agent never has to guess which of
//!   its results were kept.
//! - `acked` is the highest seq of this batch (0 for an empty one). Every
//!   result of the batch is durable when we answer, and an agent has one batch
//!   in flight at a time in seq order, so everything it sent up to N is durable.
//! - Each result's raw JSON is stored byte for byte as sent; the parsed form
//!   is only for validation and metrics (the SLA ledger reads the store).
//! - A result's `location` must be its agent's configured location: quorum
//!   counts locations, so an agent must not speak for another place. Its
//!   check must run at that location, its `target` must be the check's (a
//!   result about another site must not count for this one), its seq may be
//!   at most [`MAX_SEQ_JUMP`] above the agent's highest stored seq, and it
//!   may be at most [`MAX_RESULT_BYTES`] long ([`MAX_BROWSER_RESULT_BYTES`]
//!   for a browser result, which may carry a screenshot).
//! - Everything about the request itself (token, size, encoding, JSON,
//!   validation) is answered before the store is needed, so hostile input gets
//!   its 4xx even while the store is still opening; only a valid batch can get
//!   503. Decoding is [`decode_batch`], a pure function (fuzzed in tests).
//! - Each agent has a token bucket of results ([`RateLimiter`], `[collector]
//!   max_results_per_second_per_agent`, burst 10×): over it, 429 with
//!   Retry-After, checked before the body is read.
//! - Messages echo at most [`MAX_MESSAGE`] characters: a hostile 8 MB check
//!   name must not come back in the answer or the log.
//!
//! # Layout
//! - [`decode`]: [`decode_batch`], the pure decoding and validation of a body.
//! - [`rate`]: [`RateLimiter`], the per-agent token buckets.

pub mod decode;
pub mod rate;

use std::time::Duration;

use axum::Json;
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub use decode::{
    DecodedBatch, MAX_BROWSER_RESULT_BYTES, MAX_RESULT_BYTES, MAX_SEQ_JUMP, check_seq_jump, clip,
    decode_batch,
};
pub use rate::RateLimiter;

/// Size limits of one ingest request.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// Body bytes as received (compressed or not).
    pub max_body_bytes: usize,
    /// Body bytes after decompression (zip bombs stop here).
    pub max_decoded_bytes: usize,
    /// Results in one batch.
    pub max_results: usize,
    /// How far a result's `started_at` may lie ahead of the collector's clock.
    pub max_clock_skew: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_decoded_bytes: 64 << 20,
            max_results: 10_000,
            max_clock_skew: Duration::from_secs(300),
        }
    }
}

/// A refused request: status, the metric's reason and a message for the agent.

#[derive(Debug, Clone)]
pub struct Rejection {
    pub status: StatusCode,
    /// One of [`crate::metrics::REJECT_REASONS`].
    pub reason: &'static str,
    pub message: String,
}

/// A [`Rejection`] plus, for a 409, the conflicting seq and the highest seq
/// stored for the agent (`seq`, `max_seq` in the body), so that it can move
/// past it.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) rejection: Rejection,
    pub(crate) conflict: Option<(u64, u64)>,
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Self {
            rejection,
            conflict: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.rejection.respond(self.conflict)
    }
}

/// Longest message a rejection carries (characters).
pub const MAX_MESSAGE: usize = 1000;

impl Rejection {
    pub(crate) fn new(
        status: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        let mut message: String = message.into();
        if message.len() > MAX_MESSAGE {
            let cut: String = message.chars().take(MAX_MESSAGE).collect();
            message = format!("{cut}… (message cut at {MAX_MESSAGE} characters)");
        }
        Self {
            status,
            reason,
            message,
        }
    }
    pub(crate) fn bad(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, message)
    }
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.respond(None)
    }
}

impl Rejection {
    /// The JSON answer; a 409 also carries `seq` and `max_seq`.
    fn respond(self, conflict: Option<(u64, u64)>) -> Response {
        // `reason` lets an agent tell the collector's verdict on one result
        // (`results[i]…` with a per-result reason) from anything else.
        let mut body = serde_json::json!({ "error": self.message, "reason": self.reason });
        if let Some((seq, max_seq)) = conflict {
            body["seq"] = seq.into();
            body["max_seq"] = max_seq.into();
        }
        let mut resp = (self.status, Json(body)).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                resp.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let secs = self.retry_after_secs().unwrap_or(1);
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            _ => {}
        }
        resp
    }
}

impl Rejection {
    pub(crate) fn rate_limited(agent: &str, wait: Duration, rate: u64) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "agent {} is over collector.max_results_per_second_per_agent ({rate}/s); retry after {secs} s",
                clip(agent)
            ),
        )
    }

    /// The Retry-After of a 429, parsed back from its message.
    fn retry_after_secs(&self) -> Option<u64> {
        let tail = self.message.rsplit_once("retry after ")?.1;
        tail.split_whitespace().next()?.parse().ok()
    }
}
