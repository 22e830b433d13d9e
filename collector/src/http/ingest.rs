//! The handler of `POST /api/v1/results`: the decisions are in [`crate::ingest`];
//! this file reads the body, runs [`crate::ingest::decode`] off the async
//! workers, stores the batch and answers once it is committed.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use slaprobe_wire::{Ack, Timestamp};

use crate::app::AppState;
use crate::ingest::decode::{Encoding, decode_body};
use crate::ingest::{DecodedBatch, Refusal, Rejection, check_seq_jump};
use crate::store::StoreError;

/// How long an ack waits for the probe metrics to show its batch.
const FEED_WAIT: Duration = Duration::from_secs(2);

/// `POST /api/v1/results`.
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

    // Everything derived from the batch (probe metrics, SLA ledger) follows
    // the store's feed; this only wakes the followers. Waiting (bounded) for
    // the metrics to pass the batch gives a scrape right after the ack the
    // batch; when this future is cut off here nothing is lost.
    app.metrics().received(
        &who.id,
        &who.location,
        outcome.duplicates,
        received_ms as f64 / 1000.0,
    );
    app.committed();
    if !app
        .probe_feed()
        .caught_up(outcome.batch_no, FEED_WAIT)
        .await
    {
        tracing::debug!(
            batch = outcome.batch_no,
            "probe metrics behind the feed; acking anyway"
        );
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
