//! The spool writer: appends every result the scheduler produces to the
//! [`crate::spool::Spool`] (which assigns its `seq`), fsyncs on a timer and
//! wakes the shipper ([`crate::ship`]) when a full batch waits. Probing
//! never waits on the network, only on a local append.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use slaprobe_wire::ProbeResult;
use tokio::sync::{Notify, mpsc};

use crate::ship::{SharedSpool, ShipStats};

/// Most results the spool writer takes from its channel at once.
const WRITE_BATCH: usize = 256;

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
    // Whatever has queued up is taken in one go (one wake-up and one lock
    // for all of it, not one per result).
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, WRITE_BATCH) => {
                if n == 0 {
                    break;
                }
                let mut spool = spool.lock().unwrap_or_else(|p| p.into_inner());
                for mut result in batch.drain(..) {
                    match spool.append(&mut result) {
                        Ok(_) => dirty = true,
                        Err(e) => {
                            // Disk full or gone: the result cannot be kept. Count
                            // and log; probing goes on.
                            stats.spool_append_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(check = %result.check, "cannot spool result: {e}");
                        }
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
