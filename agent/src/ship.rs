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
//! a `Retry-After` from a 429/503 is honoured; a 413 halves the batch size.
//! 401/403 (a configuration problem) keep retrying with backoff.
//!
//! A 400 means the collector will never take that batch as it is. So that one
//! bad result neither wedges the stream nor costs its good neighbours, the
//! batch is bisected (halves sent, first half first, since acks are a seq
//! prefix) until the offending result goes alone; a single result refused
//! with 400 is the only thing ever dropped here: acked locally, counted
//! ([`ShipStats::results_rejected`]) and logged with the collector's message
//! (once a minute per distinct message). Everything else stays in the spool,
//! across restarts, until the collector has it (or the spool's size bound
//! drops the oldest, which it counts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use slaprobe_wire::{Ack, ProbeResult};
use tokio::sync::{Notify, mpsc};
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
    /// Single results the collector refused with 400, dropped from the spool.
    pub results_rejected: AtomicU64,
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

/// Appends every result from `rx` to the spool until every sender is gone
/// (the scheduler drops its sender once its last probe finished), fsyncing at
/// least every `fsync_every`. Wakes the shipper when a full batch waits.
pub async fn write_results(
    mut rx: mpsc::Receiver<ProbeResult>,
    spool: SharedSpool,
    batch_max: usize,
    ready: Arc<Notify>,
    stats: Arc<ShipStats>,
    fsync_every: Duration,
) {
    let mut tick = tokio::time::interval(fsync_every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    loop {
        tokio::select! {
            r = rx.recv() => {
                let Some(mut result) = r else { break };
                let mut spool = spool.lock().unwrap_or_else(|p| p.into_inner());
                match spool.append(&mut result) {
                    Ok(_) => dirty = true,
                    Err(e) => {
                        // Disk full or gone: the result cannot be kept. Count
                        // and log; probing goes on.
                        stats.spool_append_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(check = %result.check, "cannot spool result: {e}");
                    }
                }
                if spool.unacked() as usize >= batch_max {
                    ready.notify_one();
                }
            }
            _ = tick.tick() => {
                if dirty {
                    dirty = false;
                    if let Err(e) = spool.lock().unwrap_or_else(|p| p.into_inner()).sync() {
                        tracing::error!("spool fsync failed: {e}");
                    }
                }
            }
        }
    }
    if let Err(e) = spool.lock().unwrap_or_else(|p| p.into_inner()).sync() {
        tracing::error!("spool fsync failed: {e}");
    }
    ready.notify_one();
}

/// What one POST came to.
enum Sent {
    /// Everything up to this seq is durable at the collector.
    Acked(u64),
    /// Try again after this long (429/503 Retry-After, or our backoff).
    RetryAfter(Option<Duration>),
    /// The body was too large: send fewer results.
    TooLarge,
    /// 400: the collector will never take this batch as it is. `count` results
    /// from `first_seq` were in it; `message` is the collector's reason.
    Rejected {
        first_seq: u64,
        count: usize,
        message: String,
    },
}

/// What the shipper does after a 400: bisect, or drop the lone bad result.
struct Rejects {
    /// When each distinct collector message was last logged.
    logged: HashMap<String, Instant>,
}

impl Rejects {
    const LOG_EVERY: Duration = Duration::from_secs(60);

    fn new() -> Self {
        Self {
            logged: HashMap::new(),
        }
    }

    /// Handles a 400 for `count` results from `first_seq` (the oldest unacked
    /// ones): returns the batch size to try next, having dropped the result
    /// if it went alone; `None` when the drop could not be recorded (a disk
    /// error: the caller backs off rather than spin).
    fn on_rejected(
        &mut self,
        spool: &SharedSpool,
        stats: &ShipStats,
        first_seq: u64,
        count: usize,
        message: &str,
    ) -> Option<usize> {
        if count > 1 {
            // Bisect: the first half goes next; once it is acked the shipper
            // goes on from there (the size grows back as batches get acked).
            let half = count / 2;
            tracing::debug!(
                first_seq,
                count,
                half,
                "collector refused a batch with 400; bisecting"
            );
            return Some(half);
        }
        let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
        // Only the oldest unacked result can be dropped: acks are a prefix.
        if s.acked() + 1 == first_seq {
            if let Err(e) = s.ack(first_seq) {
                tracing::error!("cannot record the drop of seq {first_seq} in the spool: {e}");
                return None;
            }
            drop(s);
            stats.results_rejected.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            if self.logged.len() > 1000 {
                self.logged
                    .retain(|_, at| now.duration_since(*at) < Self::LOG_EVERY);
            }
            let due = self
                .logged
                .get(message)
                .is_none_or(|at| now.duration_since(*at) >= Self::LOG_EVERY);
            if due {
                self.logged.insert(message.to_string(), now);
                tracing::error!(
                    seq = first_seq,
                    "collector refused a result with 400; it is dropped (logged once a minute per message): {message}"
                );
            }
        }
        Some(1)
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
    let mut rejects = Rejects::new();
    let mut batch_max = cfg.batch_max;
    let mut tick = tokio::time::interval(cfg.batch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Drain everything pending, batch by batch.
        loop {
            match send_next(&cfg, &spool, batch_max, &stats).await {
                Ok(None) => break,
                Ok(Some(Sent::Acked(_))) => {
                    backoff.reset();
                    batch_max = (batch_max * 2).min(cfg.batch_max);
                }
                Ok(Some(Sent::TooLarge)) => {
                    batch_max = (batch_max / 2).max(1);
                    tracing::warn!(batch_max, "collector said 413; sending smaller batches");
                }
                Ok(Some(Sent::Rejected {
                    first_seq,
                    count,
                    message,
                })) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    match rejects.on_rejected(&spool, &stats, first_seq, count, &message) {
                        Some(next) => batch_max = next,
                        None => {
                            tokio::select! {
                                _ = shutdown.cancelled() => break,
                                _ = tokio::time::sleep(backoff.next_delay()) => {}
                            }
                        }
                    }
                }
                Ok(Some(Sent::RetryAfter(after))) | Err(after) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
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
            match send_next(&cfg, &spool, batch_max, &stats).await {
                Ok(None) => break,
                Ok(Some(Sent::Acked(_))) => {}
                Ok(Some(Sent::TooLarge)) => batch_max = (batch_max / 2).max(1),
                Ok(Some(Sent::Rejected {
                    first_seq,
                    count,
                    message,
                })) => match rejects.on_rejected(&spool, &stats, first_seq, count, &message) {
                    Some(next) => batch_max = next,
                    None => break,
                },
                Ok(Some(Sent::RetryAfter(_))) | Err(_) => break,
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
    let body = encode_batch(&cfg.agent, records.iter().map(|(_, raw)| raw.as_slice()));
    let compressed = match zstd::bulk::compress(&body, 3) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot compress batch: {e}");
            return Err(None);
        }
    };
    let sent = post(cfg, compressed).await;
    match sent {
        Ok(Sent::Rejected { message, .. }) => Ok(Some(Sent::Rejected {
            first_seq,
            count: records.len(),
            message,
        })),
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

async fn post(cfg: &ShipConfig, body: Vec<u8>) -> Result<Sent, Option<Duration>> {
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
        StatusCode::PAYLOAD_TOO_LARGE => Ok(Sent::TooLarge),
        StatusCode::BAD_REQUEST => {
            let text = resp.text().await.unwrap_or_default();
            // The collector answers {"error": "…"}; keep the message only.
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or(text);
            let message: String = message.chars().take(500).collect();
            Ok(Sent::Rejected {
                first_seq: 0,
                count: 0,
                message,
            })
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            tracing::info!(%status, ?retry_after, "collector asks to slow down");
            Ok(Sent::RetryAfter(retry_after))
        }
        s => {
            let text = resp.text().await.unwrap_or_default();
            let text: String = text.chars().take(500).collect();
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
