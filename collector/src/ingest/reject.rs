//! Why ingest refuses a request ([`RejectReason`]) and the refusal itself
//! ([`Rejection`]): a status, a reason, a message for the agent and, where
//! the agent should wait, how long. The HTTP answer is built from it by
//! [`crate::http::error::ApiError`].

use std::fmt;
use std::time::Duration;

use axum::http::StatusCode;

use super::decode::clip;

/// Why ingest refused a request. [`RejectReason::label`] is the value of
/// `slaprobe_ingest_rejected_total{reason}` and of the answer's `reason`
/// field: those strings are a contract (DESIGN.md §8), the variants are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// No token, or not an agent's (401).
    Unauthorized,
    /// The batch or a result names another agent (403).
    Forbidden,
    /// The body, its decompressed form or one result is over a limit
    /// (413 for the request, 400 for one result so the agent drops only it).
    TooLarge,
    /// A `Content-Encoding` other than gzip, zstd or none (415).
    UnsupportedEncoding,
    /// Not readable: not UTF-8, not JSON, not a batch, not a result (400).
    Malformed,
    /// A result whose fields are out of range or disagree with the config (400).
    Invalid,
    /// A result for a check the collector does not know (400).
    UnknownCheck,
    /// A result older than `collector.max_result_age` (400).
    TooOld,
    /// A result started further ahead of the collector's clock than allowed (400).
    ClockSkew,
    /// The store is not open, busy, closing or failed: nothing stored, retry (503).
    Unavailable,
    /// A fault of the collector itself (its decoding task panicked): 500.
    /// Counted under the `unavailable` label: the label values are a
    /// contract, and for the agent it means what 503 means (nothing was
    /// stored, retry later); the status tells the two apart in the log.
    Internal,
    /// A seq already stored with other bytes (409).
    SeqConflict,
    /// Over `max_results_per_second_per_agent` (429).
    RateLimited,
    /// The body did not arrive in time (408).
    BodyTimeout,
    /// A result for a check that does not run at the agent's location (400).
    NotAssigned,
    /// A result whose `target` is not its check's (400).
    WrongTarget,
    /// A seq too far above the agent's highest stored seq (400).
    SeqJump,
}

impl RejectReason {
    /// Every reason.
    pub const ALL: [RejectReason; 17] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::TooLarge,
        Self::UnsupportedEncoding,
        Self::Malformed,
        Self::Invalid,
        Self::UnknownCheck,
        Self::TooOld,
        Self::ClockSkew,
        Self::Unavailable,
        Self::Internal,
        Self::SeqConflict,
        Self::RateLimited,
        Self::BodyTimeout,
        Self::NotAssigned,
        Self::WrongTarget,
        Self::SeqJump,
    ];

    /// The metric label and the answer's `reason` (one of
    /// [`crate::metrics::REJECT_REASONS`]).
    pub fn label(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::TooLarge => "too_large",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::UnknownCheck => "unknown_check",
            Self::TooOld => "too_old",
            Self::ClockSkew => "clock_skew",
            Self::Unavailable | Self::Internal => "unavailable",
            Self::SeqConflict => "seq_conflict",
            Self::RateLimited => "rate_limited",
            Self::BodyTimeout => "body_timeout",
            Self::NotAssigned => "not_assigned",
            Self::WrongTarget => "wrong_target",
            Self::SeqJump => "seq_jump",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Longest message a rejection carries (characters).
pub const MAX_MESSAGE: usize = 1000;

/// A refused request: status, reason, a message for the agent, and what the
/// answer carries besides (Retry-After, a 409's seqs). Built only through its
/// constructors, which cut the message at [`MAX_MESSAGE`].
#[derive(Debug, Clone)]
pub struct Rejection {
    status: StatusCode,
    reason: RejectReason,
    message: String,
    /// Seconds the agent should wait (the answer's Retry-After).
    retry_after: Option<u64>,
    /// For a 409: the conflicting seq and the agent's highest stored seq.
    conflict: Option<SeqConflict>,
}

/// The seqs of a 409 (`seq`, `max_seq` in the answer), so that the agent can
/// move past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqConflict {
    /// The seq stored with other content.
    pub seq: u64,
    /// The agent's highest stored seq.
    pub max_seq: u64,
}

impl Rejection {
    /// A refusal with `status` (no Retry-After).
    pub(crate) fn new(
        status: StatusCode,
        reason: RejectReason,
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
            retry_after: None,
            conflict: None,
        }
    }
    /// 400.
    pub(crate) fn bad(reason: RejectReason, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, message)
    }
    /// 401 (the answer carries `WWW-Authenticate: Bearer`).
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            RejectReason::Unauthorized,
            message,
        )
    }
    /// 403.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, RejectReason::Forbidden, message)
    }
    /// 413.
    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            RejectReason::TooLarge,
            message,
        )
    }
    /// 503, retry after a second.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        let mut r = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            RejectReason::Unavailable,
            message,
        );
        r.retry_after = Some(1);
        r
    }
    /// 500: the collector's own fault ([`RejectReason::Internal`]).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            RejectReason::Internal,
            message,
        )
    }
    /// 429: `agent` is over `rate` results a second and may send again after
    /// `wait` (at least a second, rounded up).
    pub(crate) fn rate_limited(agent: &str, wait: Duration, rate: u64) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut r = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            RejectReason::RateLimited,
            format!(
                "agent {} is over collector.max_results_per_second_per_agent ({rate}/s); retry after {secs} s",
                clip(agent)
            ),
        );
        r.retry_after = Some(secs);
        r
    }
    /// 409: seq `conflict.seq` is stored with other content.
    pub(crate) fn seq_conflict(conflict: SeqConflict) -> Self {
        let SeqConflict { seq, max_seq } = conflict;
        let mut r = Self::new(
            StatusCode::CONFLICT,
            RejectReason::SeqConflict,
            format!(
                "results: seq {seq} is already stored with other content; this agent reused seqs (lost spool state?). Move past max_seq {max_seq}"
            ),
        );
        r.conflict = Some(conflict);
        r
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// Why.
    pub fn reason(&self) -> RejectReason {
        self.reason
    }
    /// What the agent is told (at most [`MAX_MESSAGE`] characters and a note).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Seconds the agent should wait before it retries, if it should.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
    /// A 409's seqs.
    pub fn conflict(&self) -> Option<SeqConflict> {
        self.conflict
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.reason,
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_metric_values() {
        let labels: std::collections::BTreeSet<&str> =
            RejectReason::ALL.iter().map(|r| r.label()).collect();
        let metric: std::collections::BTreeSet<&str> =
            crate::metrics::REJECT_REASONS.iter().copied().collect();
        assert_eq!(labels, metric);
    }

    #[test]
    fn retry_after_is_a_field() {
        let r = Rejection::rate_limited("a", Duration::from_millis(2100), 5);
        assert_eq!(r.retry_after(), Some(3));
        assert!(r.message().ends_with("retry after 3 s"), "{}", r.message());
        assert_eq!(Rejection::unavailable("x").retry_after(), Some(1));
        assert_eq!(Rejection::internal("x").retry_after(), None);
        assert_eq!(Rejection::internal("x").reason().label(), "unavailable");
    }

    #[test]
    fn long_messages_are_cut() {
        let r = Rejection::bad(RejectReason::Invalid, "x".repeat(5000));
        assert!(r.message().chars().count() < MAX_MESSAGE + 60);
    }
}
