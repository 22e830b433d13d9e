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
//! - [`reject`]: [`Rejection`] and its [`RejectReason`], what a refused request is told.

pub mod decode;
pub mod rate;
pub mod reject;

use std::time::Duration;

pub use decode::{
    DecodedBatch, MAX_BROWSER_RESULT_BYTES, MAX_RESULT_BYTES, MAX_SEQ_JUMP, check_seq_jump, clip,
    decode_batch,
};
pub use rate::RateLimiter;
pub use reject::{MAX_MESSAGE, RejectReason, Rejection, SeqConflict};

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
