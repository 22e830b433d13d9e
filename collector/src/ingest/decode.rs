//! Decoding one ingest body: the encoding, the size caps, the JSON and every
//! result checked against the agent and the config. Pure (no HTTP, no
//! store, no clock but the `now` given), fuzzed in `tests/hostile_input.rs`.

use std::io::Read;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use slaprobe_wire::{ProbeResult, Timestamp};

use super::{IngestLimits, RejectReason, Rejection};
use crate::auth::Principal;
use crate::config::CollectorConfig;
use crate::store::NewResult;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// The encoding a `Content-Encoding` header names (415 for others).
    pub(crate) fn from_header(v: Option<&HeaderValue>) -> Result<Self, Rejection> {
        match v {
            None => Ok(Self::Identity),
            Some(v) => Self::parse(v.to_str().unwrap_or("?")).ok_or_else(|| {
                Rejection::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    RejectReason::UnsupportedEncoding,
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
        r.take(max as u64 + 1).read_to_end(&mut out).map_err(|e| {
            Rejection::bad(
                RejectReason::Malformed,
                format!("body is not valid {name}: {e}"),
            )
        })?;
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
            let mut dec = zstd::stream::read::Decoder::with_buffer(body).map_err(|e| {
                Rejection::bad(
                    RejectReason::Malformed,
                    format!("body is not valid zstd: {e}"),
                )
            })?;
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
                RejectReason::UnsupportedEncoding,
                "Content-Encoding is not a valid header value",
            )
        })?;
    let encoding = Encoding::from_header(header.as_ref())?;
    decode_body(encoding, body, who, config, now, limits)
}

pub(crate) fn decode_body(
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
pub fn clip(s: &str) -> String {
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
        .map_err(|e| Rejection::bad(RejectReason::Malformed, format!("body is not UTF-8: {e}")))?;
    let batch: RawBatch<'_> = serde_json::from_str(text).map_err(|e| {
        Rejection::bad(
            RejectReason::Malformed,
            format!("body is not a batch ({{\"agent\": …, \"results\": […]}}): {e}"),
        )
    })?;
    if batch.agent != who.id {
        return Err(Rejection::forbidden(format!(
            "agent: the batch is for {} but the token is agent {:?}'s",
            clip(&batch.agent),
            who.id
        )));
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
                RejectReason::TooLarge,
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
            Rejection::bad(RejectReason::Malformed, format!("{place}: {}", e.inner()))
        })?;
        if r.kind != slaprobe_wire::CheckKind::Browser && raw.get().len() > MAX_RESULT_BYTES {
            return Err(Rejection::bad(
                RejectReason::TooLarge,
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
            RejectReason::SeqJump,
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
    check_sender(i, r, who)?;
    check_against_config(i, r, who, config)?;
    check_times(i, r, config, now, max_skew)
}

/// The result is the authenticated agent's, from its place, with a valid seq.
fn check_sender(i: usize, r: &ProbeResult, who: &Principal) -> Result<(), Rejection> {
    let at = |field: &str| format!("results[{i}].{field}");
    if r.agent != who.id {
        return Err(Rejection::forbidden(format!(
            "{}: {} is not the authenticated agent {:?}",
            at("agent"),
            clip(&r.agent),
            who.id
        )));
    }
    if r.seq == 0 || r.seq > i64::MAX as u64 {
        return Err(Rejection::bad(
            RejectReason::Invalid,
            format!(
                "{}: {} is out of range (the first result is 1)",
                at("seq"),
                r.seq
            ),
        ));
    }
    if r.location != who.location {
        return Err(Rejection::bad(
            RejectReason::Invalid,
            format!(
                "{}: {} but agent {:?} is at {:?} in the collector config",
                at("location"),
                clip(&r.location),
                who.id,
                who.location
            ),
        ));
    }
    Ok(())
}

/// The result's check exists, runs at the agent's location, and has its kind and target.
fn check_against_config(
    i: usize,
    r: &ProbeResult,
    who: &Principal,
    config: &CollectorConfig,
) -> Result<(), Rejection> {
    let at = |field: &str| format!("results[{i}].{field}");
    let Some(check) = config.check(&r.check) else {
        return Err(Rejection::bad(
            RejectReason::UnknownCheck,
            format!(
                "{}: {} is not a check in the collector config",
                at("check"),
                clip(&r.check)
            ),
        ));
    };
    if !check.runs_at(&who.location) {
        return Err(Rejection::bad(
            RejectReason::NotAssigned,
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
            RejectReason::Invalid,
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
            RejectReason::WrongTarget,
            format!(
                "{}: {} but check {} probes {}",
                at("target"),
                clip(&r.target),
                clip(&r.check),
                clip(&check.check.target)
            ),
        ));
    }
    Ok(())
}

/// The result started within the allowed skew and age, and its duration is one.
fn check_times(
    i: usize,
    r: &ProbeResult,
    config: &CollectorConfig,
    now: Timestamp,
    max_skew: Duration,
) -> Result<(), Rejection> {
    let at = |field: &str| format!("results[{i}].{field}");
    let started = r.started_at.as_millisecond();
    let now_ms = now.as_millisecond();
    let skew_ms = i64::try_from(max_skew.as_millis()).unwrap_or(i64::MAX);
    if started > now_ms.saturating_add(skew_ms) {
        return Err(Rejection::bad(
            RejectReason::ClockSkew,
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
            RejectReason::TooOld,
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
            RejectReason::Invalid,
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
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let z = zstd::encode_all(&vec![b' '; 10_000][..], 1).unwrap();
        assert_eq!(decode(Encoding::Zstd, &z, 10_000).unwrap().len(), 10_000);
        assert_eq!(
            decode(Encoding::Zstd, &z, 100).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            decode(Encoding::Gzip, b"not gzip", 100)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }
}
