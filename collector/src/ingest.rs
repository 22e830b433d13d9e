//! `POST /api/v1/results` (DESIGN.md §5): authenticate, bound and decode the
//! body, validate every result, store the batch in one transaction, answer
//! `{"acked": N}` once it is committed.
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

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::value::RawValue;
use slaprobe_wire::{Ack, ProbeResult, Timestamp};

use crate::auth::Principal;
use crate::config::CollectorConfig;
use crate::server::AppState;
use crate::store::{NewResult, StoreError};

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
struct Refusal {
    rejection: Rejection,
    conflict: Option<(u64, u64)>,
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
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
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
    fn bad(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason, message)
    }
    fn too_large(message: impl Into<String>) -> Self {
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
    fn rate_limited(agent: &str, wait: Duration, rate: u64) -> Self {
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

/// Per-agent token buckets counting results: `rate` a second, up to 10×
/// `rate` at once. A request is admitted while the bucket is not in debt and
/// then charged its result count, so one batch larger than the burst still
/// goes through (the agent then waits it off) and nothing is ever refused for
/// being large alone. Keys are authenticated agent ids only, so the map is
/// bounded by the config.
#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Burst as a multiple of the rate.
    pub const BURST_FACTOR: u64 = 10;

    /// `rate` results a second per agent; 0 disables the limit.
    pub fn new(rate: u64) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The configured rate (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    fn refill(
        &self,
        agent: &str,
        now: Instant,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        let burst = (self.rate.saturating_mul(Self::BURST_FACTOR)) as f64;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(agent.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.rate as f64).min(burst);
        b.at = now;
        map
    }

    /// `Err(wait)` while `agent`'s bucket is in debt: how long until it is not.
    pub fn admit(&self, agent: &str) -> Result<(), Duration> {
        self.admit_at(agent, Instant::now())
    }

    /// [`RateLimiter::admit`] at a given instant (tests).
    pub fn admit_at(&self, agent: &str, now: Instant) -> Result<(), Duration> {
        if self.rate == 0 {
            return Ok(());
        }
        let map = self.refill(agent, now);
        let tokens = map.get(agent).map_or(0.0, |b| b.tokens);
        if tokens >= 0.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64(-tokens / self.rate as f64))
        }
    }

    /// Takes `n` results from `agent`'s bucket (it may go into debt).
    pub fn charge(&self, agent: &str, n: u64) {
        self.charge_at(agent, n, Instant::now());
    }

    /// [`RateLimiter::charge`] at a given instant (tests).
    pub fn charge_at(&self, agent: &str, n: u64, now: Instant) {
        if self.rate == 0 {
            return;
        }
        let mut map = self.refill(agent, now);
        if let Some(b) = map.get_mut(agent) {
            b.tokens -= n as f64;
        }
    }
}

/// The handler of `POST /api/v1/results`.
pub async fn post_results(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match ingest(&app, &headers, body).await {
        Ok(ack) => Json(ack).into_response(),
        Err(refusal) => {
            let r = &refusal.rejection;
            app.metrics().rejected(r.reason);
            if app.should_log(r.reason) {
                let status = r.status.as_u16();
                if r.status.is_server_error() {
                    tracing::warn!(status, reason = r.reason, message = %r.message, "ingest refused (logged once a minute per reason)");
                } else {
                    tracing::info!(status, reason = r.reason, message = %r.message, "ingest refused (logged once a minute per reason)");
                }
            }
            refusal.into_response()
        }
    }
}

async fn ingest(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Ack, Refusal> {
    let who = app
        .auth()
        .authenticate(headers)
        .map_err(|e| Rejection::new(StatusCode::UNAUTHORIZED, "unauthorized", e.message()))?
        .clone();
    let limits = app.limits();
    let rate = app.rate_limiter();
    if let Err(wait) = rate.admit(&who.id) {
        return Err(Rejection::rate_limited(&who.id, wait, rate.rate()).into());
    }

    // Refuse a declared oversize body before reading a byte of it.
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limits.max_body_bytes as u64
    {
        return Err(Rejection::too_large(format!(
            "body of {len} bytes is over the limit of {} bytes",
            limits.max_body_bytes
        ))
        .into());
    }
    let encoding = Encoding::from_header(headers.get(CONTENT_ENCODING))?;
    let bytes = match Limited::new(body, limits.max_body_bytes).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(Rejection::too_large(format!(
                "body is over the limit of {} bytes",
                limits.max_body_bytes
            ))
            .into());
        }
        Err(e) if crate::conn::is_body_timeout(e.as_ref()) => {
            return Err(Rejection::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("reading the body failed: {e}"),
            )
            .into());
        }
        Err(e) => {
            return Err(
                Rejection::bad("malformed", format!("reading the body failed: {e}")).into(),
            );
        }
    };

    // Decompression and JSON parsing are CPU work: keep them off the async workers.
    let config = app.config().clone();
    let who2 = who.clone();
    let now = Timestamp::now();
    let decoded = tokio::task::spawn_blocking(move || {
        decode_body(encoding, &bytes, &who2, &config, now, limits)
    })
    .await
    .map_err(|e| {
        Rejection::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unavailable",
            format!("ingest task failed: {e}"),
        )
    });
    // Refused requests cost a token too, so a flood of garbage is limited
    // like a flood of results.
    let charge = decoded
        .as_ref()
        .ok()
        .and_then(|d| d.as_ref().ok())
        .map_or(1, |d| d.results.len().max(1) as u64);
    rate.charge(&who.id, charge);
    let DecodedBatch {
        results: parsed,
        rows,
    } = decoded??;
    check_seq_jump(&parsed, app.metrics().max_seq(&who.id))?;

    let store = app
        .store()
        .ok_or_else(|| Rejection::unavailable("the collector is starting (store not open yet)"))?
        .clone();

    let acked = parsed.iter().map(|r| r.seq).max().unwrap_or(0);
    let received_ms = Timestamp::now().as_millisecond();
    let outcome = store
        .insert_batch(&who.id, &who.location, received_ms, rows)
        .await
        .map_err(|e| match e {
            StoreError::Overloaded => {
                Rejection::unavailable("the store is busy; retry shortly").into()
            }
            StoreError::Closed => Rejection::unavailable("the collector is shutting down").into(),
            StoreError::SeqConflict { seq, max_seq } => {
                app.metrics().conflict(&who.id);
                tracing::error!(agent = who.id, seq, max_seq, "agent sent other content under a seq already stored (it reused seqs); batch refused with 409, nothing overwritten");
                let r = Rejection::new(
                    StatusCode::CONFLICT,
                    "seq_conflict",
                    format!("results: seq {seq} is already stored with other content; this agent reused seqs (lost spool state?). Move past max_seq {max_seq}"),
                );
                Refusal {
                    rejection: r,
                    conflict: Some((seq, max_seq)),
                }
            }
            other => {
                tracing::error!(agent = who.id, error = %other, "storing a batch failed");
                Rejection::unavailable("storing the batch failed; retry later").into()
            }
        })?;

    let fresh: Vec<ProbeResult> = parsed
        .into_iter()
        .zip(&outcome.inserted)
        .filter_map(|(r, &new)| new.then_some(r))
        .collect();
    let metrics = app.metrics();
    metrics.observe(&fresh);
    metrics.ingested(
        &who.id,
        &who.location,
        outcome.stored,
        outcome.duplicates,
        received_ms as f64 / 1000.0,
    );
    if let Some(sla) = app.sla() {
        sla.on_committed();
    }
    tracing::debug!(
        agent = who.id,
        stored = outcome.stored,
        duplicates = outcome.duplicates,
        acked,
        "batch stored"
    );
    Ok(Ack { acked })
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// The encoding a `Content-Encoding` header names (415 for others).
    fn from_header(v: Option<&HeaderValue>) -> Result<Self, Rejection> {
        match v {
            None => Ok(Self::Identity),
            Some(v) => Self::parse(v.to_str().unwrap_or("?")).ok_or_else(|| {
                Rejection::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_encoding",
                    format!(
                        "Content-Encoding {:?} is not supported (use gzip, zstd or none)",
                        clip(v.to_str().unwrap_or("(not text)"))
                    ),
                )
            }),
        }
    }

    fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

fn decode(
    encoding: Encoding,
    body: &[u8],
    max: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, Rejection> {
    let read_capped = |r: &mut dyn Read, name: &str| -> Result<Vec<u8>, Rejection> {
        let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
        // One byte past the cap tells "exactly at the cap" from "over it".
        r.take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Rejection::bad("malformed", format!("body is not valid {name}: {e}")))?;
        if out.len() > max {
            return Err(Rejection::too_large(format!(
                "{name} body decompresses to more than {max} bytes"
            )));
        }
        Ok(out)
    };
    match encoding {
        Encoding::Identity => Ok(std::borrow::Cow::Borrowed(body)),
        Encoding::Gzip => {
            Ok(read_capped(&mut flate2::read::MultiGzDecoder::new(body), "gzip")?.into())
        }
        Encoding::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|e| Rejection::bad("malformed", format!("body is not valid zstd: {e}")))?;
            Ok(read_capped(&mut dec, "zstd")?.into())
        }
    }
}

/// The batch envelope; each result stays raw until validated one by one.
#[derive(Deserialize)]
struct RawBatch<'a> {
    agent: String,
    #[serde(borrow)]
    results: Vec<&'a RawValue>,
}

/// A decoded, validated batch: each result parsed and as a store row.
#[derive(Debug)]
pub struct DecodedBatch {
    pub results: Vec<ProbeResult>,
    pub rows: Vec<NewResult>,
}

/// Decodes one request body as ingest does, without HTTP or the store:
/// `content_encoding` as in the header (415 for unknown ones), decompression
/// capped at `limits.max_decoded_bytes` (413), JSON and every result checked
/// against `who` and `config` at `now` (400/403/413 naming the place).
/// Never panics and allocates at most about the capped decoded size plus the
/// parsed results, whatever the bytes.
pub fn decode_batch(
    content_encoding: Option<&str>,
    body: &[u8],
    who: &Principal,
    config: &CollectorConfig,
    now: Timestamp,
    limits: IngestLimits,
) -> Result<DecodedBatch, Rejection> {
    if body.len() > limits.max_body_bytes {
        return Err(Rejection::too_large(format!(
            "body of {} bytes is over the limit of {} bytes",
            body.len(),
            limits.max_body_bytes
        )));
    }
    let header = content_encoding
        .map(HeaderValue::from_str)
        .transpose()
        .map_err(|_| {
            Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                "Content-Encoding is not a valid header value",
            )
        })?;
    let encoding = Encoding::from_header(header.as_ref())?;
    decode_body(encoding, body, who, config, now, limits)
}

fn decode_body(
    encoding: Encoding,
    body: &[u8],
    who: &Principal,
    config: &CollectorConfig,
    now: Timestamp,
    limits: IngestLimits,
) -> Result<DecodedBatch, Rejection> {
    let decoded = decode(encoding, body, limits.max_decoded_bytes)?;
    parse_batch(&decoded, who, config, now, limits)
}

/// A user-supplied string for a message: quoted, at most 64 characters.
fn clip(s: &str) -> String {
    if s.chars().count() <= 64 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(64).collect();
        format!("{head:?}… ({} bytes)", s.len())
    }
}

/// Parses and validates a decoded body; every error names the place.
fn parse_batch(
    body: &[u8],
    who: &Principal,
    config: &CollectorConfig,
    now: Timestamp,
    limits: IngestLimits,
) -> Result<DecodedBatch, Rejection> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Rejection::bad("malformed", format!("body is not UTF-8: {e}")))?;
    let batch: RawBatch<'_> = serde_json::from_str(text).map_err(|e| {
        Rejection::bad(
            "malformed",
            format!("body is not a batch ({{\"agent\": …, \"results\": […]}}): {e}"),
        )
    })?;
    if batch.agent != who.id {
        return Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "agent: the batch is for {} but the token is agent {:?}'s",
                clip(&batch.agent),
                who.id
            ),
        ));
    }
    if batch.results.len() > limits.max_results {
        return Err(Rejection::too_large(format!(
            "results: {} results in one batch; at most {} are accepted",
            batch.results.len(),
            limits.max_results
        )));
    }
    let mut parsed = Vec::with_capacity(batch.results.len());
    let mut rows = Vec::with_capacity(batch.results.len());
    for (i, raw) in batch.results.iter().enumerate() {
        if raw.get().len() > MAX_BROWSER_RESULT_BYTES {
            // 400, not 413: the agent drops this one result and keeps the rest.
            return Err(Rejection::bad(
                "too_large",
                format!(
                    "results[{i}]: {} bytes; a single result may be at most {MAX_BROWSER_RESULT_BYTES} bytes",
                    raw.get().len()
                ),
            ));
        }
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let r: ProbeResult = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let place = if path == "." || path.is_empty() {
                format!("results[{i}]")
            } else {
                format!("results[{i}].{path}")
            };
            Rejection::bad("malformed", format!("{place}: {}", e.inner()))
        })?;
        if r.kind != slaprobe_wire::CheckKind::Browser && raw.get().len() > MAX_RESULT_BYTES {
            return Err(Rejection::bad(
                "too_large",
                format!(
                    "results[{i}]: {} bytes; a single result may be at most {MAX_RESULT_BYTES} bytes",
                    raw.get().len()
                ),
            ));
        }
        check_result(i, &r, who, config, now, limits.max_clock_skew)?;
        rows.push(NewResult {
            seq: r.seq,
            check: r.check.clone(),
            location: r.location.clone(),
            kind: r.kind,
            started_at_ms: r.started_at.as_millisecond(),
            success: r.success,
            class: r.class(),
            raw: raw.get().as_bytes().to_vec(),
        });
        parsed.push(r);
    }
    Ok(DecodedBatch {
        results: parsed,
        rows,
    })
}

/// Largest single result accepted (its raw JSON): the agent bounds its
/// fields far below this, and the collector must not rely on that.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
/// Largest browser result: a failed browser probe carries a screenshot of
/// up to 200 KB (base64: ~267 KB) besides its figures.
pub const MAX_BROWSER_RESULT_BYTES: usize = 320 * 1024;

/// Largest step a result's seq may take above the agent's highest stored
/// seq: a seq far ahead would make every seq in between count as missing.
pub const MAX_SEQ_JUMP: u64 = 1_000_000_000;

/// Refuses a batch whose seq jumps more than [`MAX_SEQ_JUMP`] above
/// `max_seq`, the agent's highest stored seq (400 naming the result).
pub fn check_seq_jump(results: &[ProbeResult], max_seq: u64) -> Result<(), Rejection> {
    let limit = max_seq.saturating_add(MAX_SEQ_JUMP);
    match results.iter().position(|r| r.seq > limit) {
        None => Ok(()),
        Some(i) => Err(Rejection::bad(
            "seq_jump",
            format!(
                "results[{i}].seq: {} is more than {MAX_SEQ_JUMP} above the agent's highest stored seq {max_seq}",
                results[i].seq
            ),
        )),
    }
}

/// Checks one parsed result against the agent and the config.
pub(crate) fn check_result(
    i: usize,
    r: &ProbeResult,
    who: &Principal,
    config: &CollectorConfig,
    now: Timestamp,
    max_skew: Duration,
) -> Result<(), Rejection> {
    let at = |field: &str| format!("results[{i}].{field}");
    if r.agent != who.id {
        return Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{}: {} is not the authenticated agent {:?}",
                at("agent"),
                clip(&r.agent),
                who.id
            ),
        ));
    }
    if r.seq == 0 || r.seq > i64::MAX as u64 {
        return Err(Rejection::bad(
            "invalid",
            format!(
                "{}: {} is out of range (the first result is 1)",
                at("seq"),
                r.seq
            ),
        ));
    }
    if r.location != who.location {
        return Err(Rejection::bad(
            "invalid",
            format!(
                "{}: {} but agent {:?} is at {:?} in the collector config",
                at("location"),
                clip(&r.location),
                who.id,
                who.location
            ),
        ));
    }
    let Some(check) = config.check(&r.check) else {
        return Err(Rejection::bad(
            "unknown_check",
            format!(
                "{}: {} is not a check in the collector config",
                at("check"),
                clip(&r.check)
            ),
        ));
    };
    if !check.runs_at(&who.location) {
        return Err(Rejection::bad(
            "not_assigned",
            format!(
                "{}: check {} does not run at location {:?} (its locations: {})",
                at("check"),
                clip(&r.check),
                who.location,
                check
                    .check
                    .locations
                    .as_deref()
                    .unwrap_or_default()
                    .join(", ")
            ),
        ));
    }
    if check.check.kind != r.kind {
        return Err(Rejection::bad(
            "invalid",
            format!(
                "{}: {} but check {} is a {} check",
                at("kind"),
                r.kind,
                clip(&r.check),
                check.check.kind
            ),
        ));
    }
    if r.target != check.check.target {
        return Err(Rejection::bad(
            "wrong_target",
            format!(
                "{}: {} but check {} probes {}",
                at("target"),
                clip(&r.target),
                clip(&r.check),
                clip(&check.check.target)
            ),
        ));
    }
    let started = r.started_at.as_millisecond();
    let now_ms = now.as_millisecond();
    let skew_ms = i64::try_from(max_skew.as_millis()).unwrap_or(i64::MAX);
    if started > now_ms.saturating_add(skew_ms) {
        return Err(Rejection::bad(
            "clock_skew",
            format!(
                "{}: {} is {} ahead of the collector's clock (at most {} of skew is allowed; check NTP on the agent and the collector)",
                at("started_at"),
                r.started_at,
                humantime::format_duration(Duration::from_secs(
                    ((started - now_ms) / 1000).unsigned_abs()
                )),
                humantime::format_duration(max_skew)
            ),
        ));
    }
    let max_age = config.collector.max_result_age;
    let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    if started < now_ms.saturating_sub(max_age_ms) {
        return Err(Rejection::bad(
            "too_old",
            format!(
                "{}: {} is older than collector.max_result_age ({})",
                at("started_at"),
                r.started_at,
                crate::config::format_duration(max_age)
            ),
        ));
    }
    if !r.duration_seconds.is_finite() || r.duration_seconds < 0.0 {
        return Err(Rejection::bad(
            "invalid",
            format!(
                "{}: {} is not a duration in seconds",
                at("duration_seconds"),
                r.duration_seconds
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_caps_output() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &vec![b' '; 10_000]).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode(Encoding::Gzip, &gz, 10_000).unwrap().len(), 10_000);
        let e = decode(Encoding::Gzip, &gz, 9_999).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let z = zstd::encode_all(&vec![b' '; 10_000][..], 1).unwrap();
        assert_eq!(decode(Encoding::Zstd, &z, 10_000).unwrap().len(), 10_000);
        assert_eq!(
            decode(Encoding::Zstd, &z, 100).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            decode(Encoding::Gzip, b"not gzip", 100).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
