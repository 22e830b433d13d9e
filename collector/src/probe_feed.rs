//! The probe metrics follow the store's feed ([`ProbeFeed`]): the latest
//! result per (check, location) and the result counts come from what the
//! store committed, never from an ingest request's future. A request cut off
//! after its commit, a crash between commit and ack, or another collector's
//! ingest on the same PostgreSQL reach `/metrics` like any other batch.
//!
//! At start the metrics are seeded from one snapshot of the store (the
//! latest table, the counts, the agents and the feed's head); the thread
//! `slaprobe-probe-feed` then reads every batch after that head, in commit
//! order, so each stored result is counted exactly once. Ingest wakes it
//! after a commit and waits (bounded) until it has passed the batch, so a
//! scrape right after an ack shows the batch; it also polls every second.
//!
//! Limit: the feed serves uncompacted rows only, and compaction takes rows
//! the SLA ledger has passed once they are older than `compact_after`. A
//! follower that lags the ledger by that much (it is the cheapest consumer,
//! so in practice only a collector stopped mid-backlog) would not count the
//! compacted results; the latest gauges and the SLA figures are unaffected.

use std::sync::Arc;
use std::time::Duration;

use slaprobe_wire::ProbeResult;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{Reader, Store, StoreAddress, StoreError};
use crate::wake::Wake;

/// Batches read from the feed at a time.
const FEED_BATCHES: u64 = 64;

/// How often the follower polls without being woken.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Pause after a failed read before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// The follower of the store's feed into [`Metrics`]. Cheap to clone.
#[derive(Clone)]
pub struct ProbeFeed {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Metrics,
    address: StoreAddress,
    wake: Arc<Wake>,
    /// The feed position every batch up to which the metrics show.
    cursor: watch::Sender<u64>,
}

impl std::fmt::Debug for ProbeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeFeed")
            .field("cursor", &*self.inner.cursor.borrow())
            .finish_non_exhaustive()
    }
}

impl ProbeFeed {
    /// A follower feeding `metrics` from the store at `address`; nothing is
    /// read until [`ProbeFeed::start`].
    pub fn new(metrics: Metrics, address: StoreAddress) -> ProbeFeed {
        ProbeFeed {
            inner: Arc::new(Inner {
                metrics,
                address,
                wake: Arc::new(Wake::default()),
                cursor: watch::Sender::new(0),
            }),
        }
    }

    /// Seeds the metrics from one snapshot of `store` and starts following
    /// the feed from its head (blocking: call on the blocking pool, before
    /// ingest accepts results). The thread ends when `stop` is cancelled.
    pub fn start(&self, store: &Store, stop: CancellationToken) -> anyhow::Result<()> {
        let seed = store.read_blocking(|r| r.metrics_seed())?;
        self.inner.metrics.seed_from_store(&seed);
        self.inner.cursor.send_replace(seed.head);
        let inner = self.inner.clone();
        let thread = std::thread::Builder::new()
            .name("slaprobe-probe-feed".into())
            .spawn(move || follow(&inner, seed.head))?;
        self.inner.wake.attach(thread);
        self.inner.wake.stop_on(stop);
        Ok(())
    }

    /// A batch was committed: read the feed now.
    pub fn wake(&self) {
        self.inner.wake.notify();
    }

    /// Waits until the metrics show every batch up to `batch_no`, at most
    /// `timeout`; false when it did not get there in time.
    pub async fn caught_up(&self, batch_no: u64, timeout: Duration) -> bool {
        let mut rx = self.inner.cursor.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|c| *c >= batch_no)).await,
            Ok(Ok(_))
        )
    }

    /// Stops the thread and waits for it. Idempotent.
    pub fn stop(&self) {
        self.inner.wake.stop_and_join();
    }
}

/// The thread: read the feed after `cursor` until stopped.
fn follow(inner: &Inner, mut cursor: u64) {
    let mut reader = None;
    while !inner.wake.is_stopped() {
        match step(inner, &mut reader, cursor) {
            Ok(next) if next > cursor => {
                cursor = next;
                inner.cursor.send_replace(cursor);
                // More may be waiting: read on without sleeping.
            }
            Ok(_) => {
                if !inner.wake.wait(POLL_EVERY) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "probe metrics: reading the store's feed failed; retrying");
                reader = None;
                if !inner.wake.wait(RETRY_AFTER_ERROR) {
                    return;
                }
            }
        }
    }
}

/// One read of up to [`FEED_BATCHES`] batches into the metrics; the new cursor.
fn step(inner: &Inner, reader: &mut Option<Reader>, cursor: u64) -> Result<u64, StoreError> {
    let r = match reader {
        Some(r) => r,
        None => reader.insert(Reader::open(&inner.address)?),
    };
    let mut results = Vec::new();
    let mut unparsable = 0u64;
    let next = r.feed_after(cursor, FEED_BATCHES, |row| {
        match serde_json::from_str::<ProbeResult>(&row.raw) {
            Ok(p) => results.push(p),
            Err(_) => unparsable += 1,
        }
    })?;
    if unparsable > 0 {
        tracing::warn!(
            results = unparsable,
            "stored results that no longer parse were left out of the probe metrics"
        );
    }
    inner.metrics.observe(&results);
    Ok(next)
}
