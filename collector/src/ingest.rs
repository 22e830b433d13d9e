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
//!   is only for validation, metrics and the SLA engine.
//! - A result's `location` must be its agent's configured location: quorum
//!   counts locations, so an agent must not speak for another place.

use std::io::Read;
use std::time::Duration;

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

impl Rejection {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self { status, reason, message: message.into() }
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
        let mut resp = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                resp.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

/// The handler of `POST /api/v1/results`.
pub async fn post_results(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match ingest(&app, &headers, body).await {
        Ok(ack) => Json(ack).into_response(),
        Err(r) => {
            app.metrics().rejected(r.reason);
            if app.should_log(r.reason) {
                let status = r.status.as_u16();
                if r.status.is_server_error() {
                    tracing::warn!(status, reason = r.reason, message = %r.message, "ingest refused (logged once a minute per reason)");
                } else {
                    tracing::info!(status, reason = r.reason, message = %r.message, "ingest refused (logged once a minute per reason)");
                }
            }
            r.into_response()
        }
    }
}

async fn ingest(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Ack, Rejection> {
    let store = app.store().ok_or_else(|| Rejection::unavailable("the collector is starting (store not open yet)"))?.clone();
    let who = app
        .auth()
        .authenticate(headers)
        .map_err(|e| Rejection::new(StatusCode::UNAUTHORIZED, "unauthorized", e.message()))?
        .clone();
    let limits = app.limits();

    // Refuse a declared oversize body before reading a byte of it.
    if let Some(len) = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
        && len > limits.max_body_bytes as u64
    {
        return Err(Rejection::too_large(format!("body of {len} bytes is over the limit of {} bytes", limits.max_body_bytes)));
    }
    let encoding = match headers.get(CONTENT_ENCODING) {
        None => Encoding::Identity,
        Some(v) => Encoding::parse(v.to_str().unwrap_or("")).ok_or_else(|| {
            Rejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding {v:?} is not supported (use gzip, zstd or none)"),
            )
        })?,
    };
    let bytes = match Limited::new(body, limits.max_body_bytes).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(Rejection::too_large(format!("body is over the limit of {} bytes", limits.max_body_bytes)));
        }
        Err(e) => return Err(Rejection::bad("malformed", format!("reading the body failed: {e}"))),
    };

    // Decompression and JSON parsing are CPU work: keep them off the async workers.
    let config = app.config().clone();
    let who2 = who.clone();
    let now = Timestamp::now();
    let (parsed, rows) = tokio::task::spawn_blocking(move || {
        let decoded = decode(encoding, &bytes, limits.max_decoded_bytes)?;
        parse_batch(&decoded, &who2, &config, now, limits)
    })
    .await
    .map_err(|e| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "unavailable", format!("ingest task failed: {e}")))??;

    let acked = parsed.iter().map(|r| r.seq).max().unwrap_or(0);
    let received_ms = Timestamp::now().as_millisecond();
    let outcome = store.insert_batch(&who.id, &who.location, received_ms, rows).await.map_err(|e| match e {
        StoreError::Overloaded => Rejection::unavailable("the store is busy; retry shortly"),
        StoreError::Closed => Rejection::unavailable("the collector is shutting down"),
        other => {
            tracing::error!(agent = who.id, error = %other, "storing a batch failed");
            Rejection::unavailable("storing the batch failed; retry later")
        }
    })?;

    let fresh: Vec<ProbeResult> =
        parsed.into_iter().zip(&outcome.inserted).filter_map(|(r, &new)| new.then_some(r)).collect();
    let metrics = app.metrics();
    metrics.observe(&fresh);
    metrics.ingested(&who.id, &who.location, outcome.stored, outcome.duplicates, received_ms as f64 / 1000.0);
    if let Some(sla) = app.sla() {
        sla.on_results(&fresh);
    }
    tracing::debug!(agent = who.id, stored = outcome.stored, duplicates = outcome.duplicates, acked, "batch stored");
    Ok(Ack { acked })
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

fn decode(encoding: Encoding, body: &[u8], max: usize) -> Result<std::borrow::Cow<'_, [u8]>, Rejection> {
    let read_capped = |r: &mut dyn Read, name: &str| -> Result<Vec<u8>, Rejection> {
        let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
        // One byte past the cap tells "exactly at the cap" from "over it".
        r.take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Rejection::bad("malformed", format!("body is not valid {name}: {e}")))?;
        if out.len() > max {
            return Err(Rejection::too_large(format!("{name} body decompresses to more than {max} bytes")));
        }
        Ok(out)
    };
    match encoding {
        Encoding::Identity => Ok(std::borrow::Cow::Borrowed(body)),
        Encoding::Gzip => Ok(read_capped(&mut flate2::read::MultiGzDecoder::new(body), "gzip")?.into()),
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

type Parsed = (Vec<ProbeResult>, Vec<NewResult>);

/// Parses and validates a decoded body; every error names the place.
fn parse_batch(body: &[u8], who: &Principal, config: &CollectorConfig, now: Timestamp, limits: IngestLimits) -> Result<Parsed, Rejection> {
    let text = std::str::from_utf8(body).map_err(|e| Rejection::bad("malformed", format!("body is not UTF-8: {e}")))?;
    let batch: RawBatch<'_> = serde_json::from_str(text).map_err(|e| Rejection::bad("malformed", format!("body is not a batch ({{\"agent\": …, \"results\": […]}}): {e}")))?;
    if batch.agent != who.id {
        return Err(Rejection::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("agent: the batch is for {:?} but the token is agent {:?}'s", batch.agent, who.id),
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
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let r: ProbeResult = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let place = if path == "." || path.is_empty() { format!("results[{i}]") } else { format!("results[{i}].{path}") };
            Rejection::bad("malformed", format!("{place}: {}", e.inner()))
        })?;
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
    Ok((parsed, rows))
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
            format!("{}: {:?} is not the authenticated agent {:?}", at("agent"), r.agent, who.id),
        ));
    }
    if r.seq == 0 || r.seq > i64::MAX as u64 {
        return Err(Rejection::bad("invalid", format!("{}: {} is out of range (the first result is 1)", at("seq"), r.seq)));
    }
    if r.location != who.location {
        return Err(Rejection::bad(
            "invalid",
            format!("{}: {:?} but agent {:?} is at {:?} in the collector config", at("location"), r.location, who.id, who.location),
        ));
    }
    let Some(check) = config.check(&r.check) else {
        return Err(Rejection::bad("unknown_check", format!("{}: {:?} is not a check in the collector config", at("check"), r.check)));
    };
    if check.check.kind != r.kind {
        return Err(Rejection::bad(
            "invalid",
            format!("{}: {} but check {:?} is a {} check", at("kind"), r.kind, r.check, check.check.kind),
        ));
    }
    let started = r.started_at.as_millisecond();
    let now_ms = now.as_millisecond();
    let skew_ms = i64::try_from(max_skew.as_millis()).unwrap_or(i64::MAX);
    if started > now_ms.saturating_add(skew_ms) {
        return Err(Rejection::bad(
            "in_future",
            format!(
                "{}: {} is {} ahead of the collector's clock (at most {} of skew is allowed)",
                at("started_at"),
                r.started_at,
                humantime::format_duration(Duration::from_secs(((started - now_ms) / 1000).unsigned_abs())),
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
        return Err(Rejection::bad("invalid", format!("{}: {} is not a duration in seconds", at("duration_seconds"), r.duration_seconds)));
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
        assert_eq!(decode(Encoding::Zstd, &z, 100).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(decode(Encoding::Gzip, b"not gzip", 100).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
