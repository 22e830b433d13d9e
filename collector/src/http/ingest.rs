//! The handler of `POST /api/v1/results`: the decisions are in [`crate::ingest`];
//! this file reads the body, runs [`crate::ingest::decode`] off the async
//! workers, stores the batch and answers once it is committed.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use slaprobe_wire::{Ack, Timestamp};

use crate::app::AppState;
use crate::ingest::decode::{Encoding, decode_body};
use crate::ingest::{
    DecodedBatch, IngestLimits, RejectReason, Rejection, SeqConflict, check_seq_jump,
};
use crate::store::StoreError;

/// How long an ack waits for the probe metrics to show its batch.
const FEED_WAIT: Duration = Duration::from_secs(2);

/// `POST /api/v1/results`.
pub async fn post_results(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match ingest(&app, &headers, body).await {
        Ok(ack) => Json(ack).into_response(),
        Err(r) => {
            let reason = r.reason();
            app.metrics().rejected(reason.label());
            if app.should_log(reason) {
                let status = r.status().as_u16();
                let message = r.message();
                if r.status().is_server_error() {
                    tracing::warn!(status, %reason, message, "ingest refused (logged once a minute per reason)");
                } else {
                    tracing::info!(status, %reason, message, "ingest refused (logged once a minute per reason)");
                }
            }
            r.into_response()
        }
    }
}

async fn ingest(app: &AppState, headers: &HeaderMap, body: Body) -> Result<Ack, Rejection> {
    let agent = app
        .auth()
        .authenticate(headers)
        .map_err(|e| Rejection::unauthorized(e.message()))?
        .clone();
    let limits = app.limits();
    let rate = app.rate_limiter();
    if let Err(wait) = rate.admit(&agent.id) {
        return Err(Rejection::rate_limited(&agent.id, wait, rate.rate()));
    }
    let (encoding, bytes) = read_body(headers, body, limits).await?;

    // Decompression and JSON parsing are CPU work: keep them off the async workers.
    let config = app.config().clone();
    let principal = agent.clone();
    let now = Timestamp::now();
    let decoded = tokio::task::spawn_blocking(move || {
        decode_body(encoding, &bytes, &principal, &config, now, limits)
    })
    .await
    .map_err(|e| Rejection::internal(format!("ingest task failed: {e}")))
    .and_then(|batch| batch);
    // Refused requests cost a token too, so a flood of garbage is limited
    // like a flood of results.
    let charge = decoded
        .as_ref()
        .map_or(1, |d| d.results.len().max(1) as u64);
    rate.charge(&agent.id, charge);
    let DecodedBatch {
        results: parsed,
        rows,
    } = decoded?;
    check_seq_jump(&parsed, app.metrics().max_seq(&agent.id))?;

    let store = app
        .store()
        .ok_or_else(|| Rejection::unavailable("the collector is starting (store not open yet)"))?
        .clone();

    let acked = parsed.iter().map(|r| r.seq).max().unwrap_or(0);
    let received_ms = Timestamp::now().as_millisecond();
    let outcome = store
        .insert_batch(&agent.id, &agent.location, received_ms, rows)
        .await
        .map_err(|e| store_refusal(app, &agent.id, e))?;

    // Everything derived from the batch (probe metrics, SLA ledger) follows
    // the store's feed; this only wakes the followers. Waiting (bounded) for
    // the metrics to pass the batch gives a scrape right after the ack the
    // batch; when this future is cut off here nothing is lost.
    app.metrics().received(
        &agent.id,
        &agent.location,
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
        agent = agent.id,
        stored = outcome.stored,
        duplicates = outcome.duplicates,
        acked,
        "batch stored"
    );
    Ok(Ack { acked })
}

/// The body, bounded by `limits.max_body_bytes` (a declared oversize body
/// is refused before a byte of it is read), and its encoding.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limits: IngestLimits,
) -> Result<(Encoding, Bytes), Rejection> {
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limits.max_body_bytes as u64
    {
        return Err(Rejection::too_large(format!(
            "body of {len} bytes is over the limit of {} bytes",
            limits.max_body_bytes
        )));
    }
    let encoding = Encoding::from_header(headers.get(CONTENT_ENCODING))?;
    match Limited::new(body, limits.max_body_bytes).collect().await {
        Ok(c) => Ok((encoding, c.to_bytes())),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Rejection::too_large(
            format!("body is over the limit of {} bytes", limits.max_body_bytes),
        )),
        Err(e) if crate::conn::is_body_timeout(e.as_ref()) => Err(Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            RejectReason::BodyTimeout,
            format!("reading the body failed: {e}"),
        )),
        Err(e) => Err(Rejection::bad(
            RejectReason::Malformed,
            format!("reading the body failed: {e}"),
        )),
    }
}

/// What the agent is told when storing its batch failed.
fn store_refusal(app: &AppState, agent: &str, e: StoreError) -> Rejection {
    match e {
        StoreError::Overloaded => Rejection::unavailable("the store is busy; retry shortly"),
        StoreError::Closed => Rejection::unavailable("the collector is shutting down"),
        StoreError::SeqConflict { seq, max_seq } => {
            app.metrics().conflict(agent);
            tracing::error!(
                agent,
                seq,
                max_seq,
                "agent sent other content under a seq already stored (it reused seqs); batch refused with 409, nothing overwritten"
            );
            Rejection::seq_conflict(SeqConflict { seq, max_seq })
        }
        other => {
            tracing::error!(agent, error = %other, "storing a batch failed");
            Rejection::unavailable("storing the batch failed; retry later")
        }
    }
}
