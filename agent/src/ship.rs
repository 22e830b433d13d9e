//! Streaming results to the collector: spool first, then ship, ack, trim.
//!
//! Two tasks share the [`Spool`]:
//! - the **writer** appends every result the scheduler produces (the spool
//!   assigns its `seq`) and fsyncs on a timer; probing never waits on the
//!   network, only on a local append;
//! - the **shipper** reads unacked results in seq order, POSTs them as one
//!   zstd-compressed batch, and trims the spool up to the collector's ack. One
//!   batch is in flight at a time, so an ack of N covers everything sent.
//!
//! Failures back off exponentially with full jitter (0.5 s doubling to 30 s);
//! a `Retry-After` from a 429/503 is honoured; every resend of data that was
//! not acked goes through the backoff (only an ack resets it).
//! 401/403 (a configuration problem) keep retrying with backoff.
//!
//! Only the collector's own verdict on a result drops it: a 400 whose JSON
//! error names `results[i]` with a reason about that result (`malformed`,
//! `invalid`, `unknown_check`, `too_old`). The results before it are sent on
//! their own; the bad one, once it goes first, is dropped: acked locally,
//! counted ([`ShipStats::results_rejected`]) and logged with the collector's
//! message (once a minute per distinct message), also when a gap (a dropped
//! or corrupt segment) lies before it. A 413 on a single result drops it the
//! same way (a larger batch is halved). Anything else is retried with
//! backoff and logged once a minute: a bare 400 from a proxy or a load
//! balancer, batch-level reasons, and `clock_skew` (the collector's clock
//! and ours disagree: both sides say so).
//!
//! A 409 means the collector holds *other* bytes under a seq we sent (our
//! spool state was lost or restored): the agent logs it loudly, moves its
//! seq past the collector's `max_seq` from the 409 body and re-sends the
//! affected results under new seqs ([`Spool::move_past`]); nothing is
//! overwritten and nothing is lost. Everything else stays in the spool,
//! across restarts, until the collector has it (or the spool's size bound
//! drops the oldest, which it counts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use slaprobe_wire::Ack;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Secret;
use crate::spool::Spool;

/// The spool shared by the writer and the shipper.
pub type SharedSpool = Arc<Mutex<Spool>>;

/// Counters the shipper keeps (exported as agent self-metrics).
#[derive(Debug, Default)]
pub struct ShipStats {
    pub batches_sent: AtomicU64,
    pub results_acked: AtomicU64,
    pub errors: AtomicU64,
    pub spool_append_errors: AtomicU64,
    /// Single results the collector refused on their own (its 400 verdict
    /// naming the result, or a 413 on the result alone), dropped from the spool.
    pub results_rejected: AtomicU64,
    /// 409 answers: the collector held other bytes under a seq we sent.
    pub seq_conflicts: AtomicU64,
}

/// Where and how to ship.
#[derive(Clone)]
pub struct ShipConfig {
    pub results_url: Url,
    pub token: Secret,
    pub agent: String,
    pub batch_max: usize,
    pub batch_interval: Duration,
    pub client: reqwest::Client,
}

/// What one POST came to.
enum Sent {
    /// Everything up to this seq is durable at the collector.
    Acked(u64),
    /// Try again after this long (429/503 Retry-After), else after our backoff.
    RetryAfter(Option<Duration>),
    /// 413: the body was too large. `count` results from `first_seq` were in it.
    TooLarge { first_seq: u64, count: usize },
    /// 400 carrying the collector's own verdict on `results[index]` of the
    /// batch (`count` results from `first_seq`): that result will never be
    /// taken as it is.
    Rejected {
        first_seq: u64,
        count: usize,
        index: usize,
        message: String,
    },
    /// 409: the collector holds other bytes under one of our seqs; it holds
    /// seqs up to `max_seq` for this agent.
    Conflict { max_seq: u64, message: String },
}

/// The JSON error body of the collector (`{"error": …, "reason": …}`; a
/// 409 also carries `seq` and `max_seq`).
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    max_seq: Option<u64>,
}

/// Reasons a collector gives that are about one result itself (so that
/// result may be dropped). Everything else (batch-level reasons, the
/// collector's clock, a proxy's bare 400) is retried.
const RESULT_REASONS: [&str; 4] = ["malformed", "invalid", "unknown_check", "too_old"];

/// What a 400 answer means for the batch.
#[derive(Debug, PartialEq, Eq)]
enum Verdict400 {
    /// The collector's verdict on `results[index]`: drop-worthy.
    Result { index: usize },
    /// The collector's clock disagrees with ours by more than it allows.
    ClockSkew,
    /// Not a verdict on one result (a proxy, a batch-level reason): retry.
    Other,
}

/// Reads a 400 body. Only the collector's JSON error naming `results[i]`
/// with a reason about the result itself counts as a verdict on it; a body
/// without `reason` (an older collector) counts when it names `results[i]`
/// and is not about `started_at` being ahead of its clock.
fn classify_400(body: &ErrorBody) -> Verdict400 {
    let skew = body.reason.as_deref() == Some("clock_skew")
        || body.reason.as_deref() == Some("in_future")
        || (body.reason.is_none() && body.error.contains("ahead of the collector's clock"));
    if skew {
        return Verdict400::ClockSkew;
    }
    let index = body
        .error
        .strip_prefix("results[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(i, _)| i.parse::<usize>().ok());
    let Some(index) = index else {
        return Verdict400::Other;
    };
    match body.reason.as_deref() {
        None => Verdict400::Result { index },
        Some(r) if RESULT_REASONS.contains(&r) => Verdict400::Result { index },
        Some(_) => Verdict400::Other,
    }
}

/// Logs a line at most once a minute per key (the rest are counted only).
struct RateLog {
    logged: HashMap<String, Instant>,
}

impl RateLog {
    const EVERY: Duration = Duration::from_secs(60);

    fn new() -> Self {
        Self {
            logged: HashMap::new(),
        }
    }

    /// True when a line for `key` is due now (and records that it was).
    fn due(&mut self, key: &str) -> bool {
        let now = Instant::now();
        if self.logged.len() > 1000 {
            self.logged
                .retain(|_, at| now.duration_since(*at) < Self::EVERY);
        }
        let due = self
            .logged
            .get(key)
            .is_none_or(|at| now.duration_since(*at) >= Self::EVERY);
        if due {
            self.logged.insert(key.to_string(), now);
        }
        due
    }
}

/// What the shipper does next after one attempt.
enum Next {
    /// Send again right away with this batch size (progress was made).
    Go(usize),
    /// Wait (this long, else the backoff), then send with this batch size.
    Wait(usize, Option<Duration>),
}

/// Handles everything but an ack: drops a result only on the collector's
/// own verdict on it (a lone 413 counts as one too), moves past a 409, and
/// sends every resend of unchanged data through the backoff.
struct Handler {
    log: RateLog,
}

impl Handler {
    fn new() -> Self {
        Self {
            log: RateLog::new(),
        }
    }

    fn on(&mut self, sent: Sent, spool: &SharedSpool, stats: &ShipStats, batch_max: usize) -> Next {
        match sent {
            Sent::Acked(_) => Next::Go(batch_max),
            Sent::RetryAfter(after) => Next::Wait(batch_max, after),
            Sent::TooLarge { first_seq, count } => {
                if count > 1 {
                    let half = (count / 2).max(1);
                    tracing::warn!(
                        batch_max = half,
                        "collector said 413; sending smaller batches"
                    );
                    return Next::Wait(half, None);
                }
                let message = "the collector refuses this result alone as too large (413)";
                self.drop_one(spool, stats, first_seq, message)
            }
            Sent::Rejected {
                first_seq,
                count,
                index,
                message,
            } => {
                if index >= count {
                    if self.log.due("bad-index") {
                        tracing::warn!(
                            index,
                            count,
                            "collector's 400 names a result not in the batch; retrying (logged once a minute): {message}"
                        );
                    }
                    return Next::Wait(batch_max, None);
                }
                if index > 0 {
                    // Everything before the bad one passed the collector's
                    // checks (it stops at the first): send that prefix.
                    tracing::debug!(
                        first_seq,
                        count,
                        index,
                        "collector refused a batch for one result; sending the results before it"
                    );
                    return Next::Wait(index, None);
                }
                self.drop_one(spool, stats, first_seq, &message)
            }
            Sent::Conflict { max_seq, message } => {
                let moved = spool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .move_past(max_seq);
                match moved {
                    Ok(n) => {
                        stats.seq_conflicts.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            collector_max_seq = max_seq,
                            moved = n,
                            "collector holds different results under seqs this agent sent again (409: spool state lost or restored from a backup?); seq moved past the collector's, {n} result(s) re-sent under new seqs, nothing overwritten: {message}"
                        );
                        Next::Go(batch_max)
                    }
                    Err(e) => {
                        tracing::error!("cannot move the spool past a seq conflict: {e}");
                        Next::Wait(batch_max, None)
                    }
                }
            }
        }
    }

    /// Drops the oldest unacked result (seq `first_seq`), counted and logged
    /// once a minute per message. A gap before it (segments dropped by the
    /// size bound or cut as corrupt) is no reason to keep it.
    fn drop_one(
        &mut self,
        spool: &SharedSpool,
        stats: &ShipStats,
        first_seq: u64,
        message: &str,
    ) -> Next {
        let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
        if first_seq <= s.acked() {
            return Next::Go(1);
        }
        if let Err(e) = s.ack(first_seq) {
            tracing::error!("cannot record the drop of seq {first_seq} in the spool: {e}");
            return Next::Wait(1, None);
        }
        drop(s);
        stats.results_rejected.fetch_add(1, Ordering::Relaxed);
        if self.log.due(message) {
            tracing::error!(
                seq = first_seq,
                "collector refused a result on its own; it is dropped (logged once a minute per message): {message}"
            );
        }
        Next::Go(1)
    }
}

/// Ships spooled results until `shutdown`, then makes a last attempt (bounded
/// by `final_flush`) to deliver what is left.
pub async fn ship(
    cfg: ShipConfig,
    spool: SharedSpool,
    ready: Arc<Notify>,
    stats: Arc<ShipStats>,
    shutdown: CancellationToken,
    writer_done: CancellationToken,
    final_flush: Duration,
) {
    let mut backoff = Backoff::new();
    let mut handler = Handler::new();
    let mut batch_max = cfg.batch_max;
    let mut tick = tokio::time::interval(cfg.batch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Drain everything pending, batch by batch.
        loop {
            let next = match send_next(&cfg, &spool, batch_max, &stats, &mut handler.log).await {
                Ok(None) => break,
                Ok(Some(Sent::Acked(_))) => {
                    backoff.reset();
                    batch_max = (batch_max * 2).min(cfg.batch_max);
                    continue;
                }
                Ok(Some(sent)) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    handler.on(sent, &spool, &stats, batch_max)
                }
                Err(after) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    Next::Wait(batch_max, after)
                }
            };
            match next {
                Next::Go(n) => batch_max = n,
                Next::Wait(n, after) => {
                    batch_max = n;
                    let wait = after.unwrap_or_else(|| backoff.next_delay());
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = ready.notified() => {}
        }
    }

    // Shutdown: wait for the writer to spool the last results, then try to
    // deliver them; whatever is left stays spooled for the next start.
    let flush = async {
        writer_done.cancelled().await;
        loop {
            match send_next(&cfg, &spool, batch_max, &stats, &mut handler.log).await {
                Ok(None) => break,
                Ok(Some(Sent::Acked(_))) => {}
                Ok(Some(sent)) => match handler.on(sent, &spool, &stats, batch_max) {
                    Next::Go(n) => batch_max = n,
                    // No waiting at shutdown: what is left stays spooled.
                    Next::Wait(..) => break,
                },
                Err(_) => break,
            }
        }
    };
    if tokio::time::timeout(final_flush, flush).await.is_err() {
        tracing::warn!("final flush did not finish; unsent results stay in the spool");
    }
    let unacked = spool.lock().unwrap_or_else(|p| p.into_inner()).unacked();
    tracing::info!(unacked, "shipper stopped");
}

/// Sends the next batch, if any. `Err` carries an optional retry delay.
async fn send_next(
    cfg: &ShipConfig,
    spool: &SharedSpool,
    batch_max: usize,
    stats: &ShipStats,
    log: &mut RateLog,
) -> Result<Option<Sent>, Option<Duration>> {
    let (records, acked_before) = {
        let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
        let acked = s.acked();
        match s.read_from(acked, batch_max) {
            Ok(r) => (r, acked),
            Err(e) => {
                tracing::error!("cannot read the spool: {e}");
                return Err(Some(Duration::from_secs(5)));
            }
        }
    };
    let Some(&(last_seq, _)) = records.last() else {
        return Ok(None);
    };
    let first_seq = records[0].0;
    let count = records.len();
    let body = encode_batch(&cfg.agent, records.iter().map(|(_, raw)| raw.as_slice()));
    drop(records);
    let compressed = match zstd::bulk::compress(&body, 3) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot compress batch: {e}");
            return Err(None);
        }
    };
    let sent = post(cfg, compressed, log).await;
    match sent {
        Ok(Sent::Rejected { index, message, .. }) => Ok(Some(Sent::Rejected {
            first_seq,
            count,
            index,
            message,
        })),
        Ok(Sent::TooLarge { .. }) => Ok(Some(Sent::TooLarge { first_seq, count })),
        Ok(Sent::Acked(n)) => {
            let n = n.min(last_seq);
            if n > acked_before {
                let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = s.ack(n) {
                    tracing::error!("cannot record ack {n} in the spool: {e}");
                }
                stats
                    .results_acked
                    .fetch_add(n - acked_before, Ordering::Relaxed);
            }
            stats.batches_sent.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(first_seq, last_seq, acked = n, "batch acked");
            if n < first_seq {
                // The collector acked nothing of this batch: treat as a failure
                // so we back off instead of spinning.
                return Err(None);
            }
            Ok(Some(Sent::Acked(n)))
        }
        other => other.map(Some),
    }
}

/// `{"agent": …, "results": [raw, raw, …]}` from already-encoded results.
pub fn encode_batch<'a>(agent: &str, raws: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = Vec::with_capacity(4096);
    body.extend_from_slice(b"{\"agent\":");
    body.extend_from_slice(serde_json::to_string(agent).unwrap_or_default().as_bytes());
    body.extend_from_slice(b",\"results\":[");
    for (i, raw) in raws.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(raw);
    }
    body.extend_from_slice(b"]}");
    body
}
/// At most this much of an error body is read (a proxy may send megabytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The first [`MAX_ERROR_BODY`] bytes of a response body, as text.
async fn error_text(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn clip(s: &str) -> String {
    s.chars().take(500).collect()
}

async fn post(
    cfg: &ShipConfig,
    body: Vec<u8>,
    log: &mut RateLog,
) -> Result<Sent, Option<Duration>> {
    let resp = cfg
        .client
        .post(cfg.results_url.clone())
        .bearer_auth(cfg.token.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::CONTENT_ENCODING, "zstd")
        .body(body)
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("collector unreachable: {}", error_chain(&e));
            return Err(None);
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(300)));
    match status {
        s if s.is_success() => match resp.json::<Ack>().await {
            Ok(ack) => Ok(Sent::Acked(ack.acked)),
            Err(e) => {
                tracing::warn!("collector answered {s} without a valid ack: {e}");
                Err(None)
            }
        },
        StatusCode::PAYLOAD_TOO_LARGE => Ok(Sent::TooLarge {
            first_seq: 0,
            count: 0,
        }),
        StatusCode::BAD_REQUEST => {
            let text = error_text(resp).await;
            let parsed = serde_json::from_str::<ErrorBody>(&text).ok();
            let verdict = parsed.as_ref().map_or(Verdict400::Other, classify_400);
            match verdict {
                Verdict400::Result { index } => Ok(Sent::Rejected {
                    first_seq: 0,
                    count: 0,
                    index,
                    message: clip(&parsed.unwrap_or_default().error),
                }),
                Verdict400::ClockSkew => {
                    if log.due("clock_skew") {
                        tracing::error!(
                            "the collector's clock and this agent's disagree: it refuses our results as being from its future; check NTP on both machines (results stay spooled and are retried; logged once a minute): {}",
                            clip(&parsed.unwrap_or_default().error)
                        );
                    }
                    Err(retry_after)
                }
                Verdict400::Other => {
                    if log.due("bare_400") {
                        tracing::error!(
                            "400 that is not the collector's verdict on a result (a proxy or load balancer in the way?); the batch stays spooled and is retried (logged once a minute): {}",
                            clip(&text)
                        );
                    }
                    Err(retry_after)
                }
            }
        }
        StatusCode::CONFLICT => {
            let text = error_text(resp).await;
            match serde_json::from_str::<ErrorBody>(&text) {
                // The collector refuses seqs past i64::MAX; a larger mark
                // cannot be real and must not push our seq to overflow.
                Ok(ErrorBody {
                    max_seq: Some(max_seq),
                    error,
                    ..
                }) if max_seq <= i64::MAX as u64 => Ok(Sent::Conflict {
                    max_seq,
                    message: clip(&error),
                }),
                _ => {
                    if log.due("bare_409") {
                        tracing::error!(
                            "409 without the collector's max_seq; retrying (logged once a minute): {}",
                            clip(&text)
                        );
                    }
                    Err(retry_after)
                }
            }
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            tracing::info!(%status, ?retry_after, "collector asks to slow down");
            Ok(Sent::RetryAfter(retry_after))
        }
        s => {
            let text = clip(&error_text(resp).await);
            if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN {
                tracing::error!(%status, "collector refused this agent's results (check agent.id and token): {text}");
            } else {
                tracing::error!(%status, "collector rejected a batch; it stays spooled and will be retried: {text}");
            }
            Err(retry_after)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Exponential backoff with full jitter.
#[derive(Debug)]
pub struct Backoff {
    current: Duration,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Self {
        Self {
            current: Self::BASE,
        }
    }

    pub fn reset(&mut self) {
        self.current = Self::BASE;
    }

    /// A random wait in [base/2, current], then doubles `current`.
    pub fn next_delay(&mut self) -> Duration {
        let hi = self.current.as_millis() as u64;
        let lo = Self::BASE.as_millis() as u64 / 2;
        let wait = Duration::from_millis(fastrand::u64(lo..=hi.max(lo)));
        self.current = (self.current * 2).min(Self::MAX);
        wait
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut b = Backoff::new();
        let mut max_seen = Duration::ZERO;
        for _ in 0..20 {
            let w = b.next_delay();
            assert!(
                w >= Duration::from_millis(250) && w <= Duration::from_secs(30),
                "{w:?}"
            );
            max_seen = max_seen.max(w);
        }
        assert!(max_seen > Duration::from_secs(2));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn batch_encoding_is_json() {
        let raws: Vec<&[u8]> = vec![br#"{"a":1}"#, br#"{"b":2}"#];
        let body = encode_batch("ams-\"1", raws.into_iter());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["agent"], "ams-\"1");
        assert_eq!(v["results"][1]["b"], 2);
    }
}
