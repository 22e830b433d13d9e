//! The scheduler: fires every check on its interval, forever, without drift.
//!
//! One task drives a min-heap of due times (a timer wheel in spirit: no task
//! or timer per check), so 10,000 checks cost one sleeping task. Each check's
//! runs sit on a fixed wall-clock grid, `phase + k × interval`, where `phase`
//! is a hash of the agent id and check name: 1,000 checks with the same
//! interval spread evenly over it instead of firing together, a restart keeps
//! the same grid, and the next due time is computed from the previous due time
//! (never from "now"), so slow probes do not make the schedule drift.
//!
//! At most `concurrency` probes run at once (a semaphore). A check whose
//! previous run has not finished when it is due again is skipped, and counted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use slaprobe_wire::ProbeResult;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Check;
use crate::probe::Prober;

/// Counters the scheduler keeps (exported as agent self-metrics).
#[derive(Debug, Default)]
pub struct ScheduleStats {
    /// Probes started.
    pub started: AtomicU64,
    /// Probes finished (results handed on).
    pub finished: AtomicU64,
    /// Runs skipped because the check's previous run was still going.
    pub skipped: AtomicU64,
    /// Probes running or waiting for a concurrency permit now.
    pub in_flight: AtomicU64,
    /// Checks currently scheduled.
    pub checks: AtomicU64,
}

/// Who the results are from (stamped on each one).
#[derive(Debug, Clone)]
pub struct Identity {
    pub agent: String,
    pub location: String,
}

/// The offset of a check on its interval grid, stable across restarts.
pub fn phase(agent: &str, check: &str, interval: Duration) -> Duration {
    // FNV-1a: tiny, stable across builds and platforms (unlike std's hasher).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in agent.bytes().chain([0u8]).chain(check.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

/// The first grid point `phase + k × interval` at or after `now` (wall clock).
pub fn next_on_grid(now: Duration, phase: Duration, interval: Duration) -> Duration {
    let interval_ms = interval.as_millis().max(1);
    let now_ms = now.as_millis();
    let phase_ms = phase.as_millis();
    let k = if now_ms <= phase_ms {
        0
    } else {
        (now_ms - phase_ms).div_ceil(interval_ms)
    };
    Duration::from_millis((k * interval_ms + phase_ms) as u64)
}

/// Runs until `shutdown`: fires the current checks (from `checks`, which may
/// change at any time) and sends each result to `out`.
pub async fn run(
    mut checks: watch::Receiver<Arc<Vec<Check>>>,
    prober: Prober,
    identity: Identity,
    concurrency: usize,
    out: mpsc::Sender<ProbeResult>,
    stats: Arc<ScheduleStats>,
    shutdown: CancellationToken,
) {
    let firing = Firing {
        permits: Arc::new(Semaphore::new(concurrency.max(1))),
        prober,
        identity,
        out,
        stats,
        tasks: TaskTracker::new(),
        abandon: CancellationToken::new(),
    };
    let mut schedule = Schedule::default();
    let mut rebuild = true;
    let mut sender_gone = false;

    loop {
        if rebuild {
            rebuild = false;
            let next = checks.borrow_and_update().clone();
            schedule.rebuild(next, &firing.identity.agent);
            let n = schedule.current.len();
            firing.stats.checks.store(n as u64, Ordering::Relaxed);
            tracing::info!(checks = n, "schedule updated");
        }

        let next_due = schedule.next_due();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = checks.changed(), if !sender_gone => {
                match changed {
                    Ok(()) => rebuild = true,
                    // The sender is gone: keep the checks we have.
                    Err(_) => sender_gone = true,
                }
                continue;
            }
            _ = sleep_until_opt(next_due) => {}
        }

        schedule.fire_due(
            Instant::now(),
            FIRE_AHEAD,
            &firing.stats,
            |checks, idx, flag| firing.spawn_probe(checks.clone(), idx, flag),
        );
    }
    let prober = firing.prober.clone();
    firing.drain().await;
    // Chromium (if a browser check ran) goes with the agent, reaped.
    prober.browser().shutdown().await;
}

/// How early a check may start: a wake-up fires every check due within this
/// much of it too. Spread evenly, 300 checks at 1 s would wake the agent
/// every 3.3 ms and each probe's socket events would arrive alone; fired in
/// groups, one wake-up (timer, then each epoll return) serves several
/// probes. A run starts at most this much before its grid point, and never
/// after it for this reason; a check whose previous run is still going waits
/// for its grid point (and is skipped only if still busy then), so starting
/// early never skips a run. 50 ms rather than 20: at 10,000 checks at 60 s
/// (167/s) 20 ms groups only ~3 probes (interleaved A/B, 300 checks at 1 s:
/// http 0.83x, https 0.97x of 20 ms).
const FIRE_AHEAD: Duration = Duration::from_millis(50);

/// The checks being scheduled and when each is due next.
#[derive(Default)]
struct Schedule {
    /// The checks as the watch channel holds them, shared with the probe
    /// tasks (no copy per check: at 10,000 checks a copy costs megabytes).
    current: Arc<Vec<Check>>,
    /// One busy flag per check, parallel to `current`.
    busy: Vec<Arc<AtomicBool>>,
    /// (due, generation, index into `current`): entries of an older
    /// generation are stale.
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    generation: u64,
}

impl Schedule {
    /// Replaces the checks with `next`, each due at its next grid point
    /// (phase spread per agent and check).
    fn rebuild(&mut self, next: Arc<Vec<Check>>, agent: &str) {
        self.generation += 1;
        // A check still running keeps its busy flag across the update.
        let mut old: HashMap<&str, Arc<AtomicBool>> = self
            .current
            .iter()
            .map(|c| c.name.as_str())
            .zip(self.busy.drain(..))
            .collect();
        let next_busy: Vec<Arc<AtomicBool>> = next
            .iter()
            .map(|c| old.remove(c.name.as_str()).unwrap_or_default())
            .collect();
        drop(old);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mono = Instant::now();
        self.heap.clear();
        self.heap.reserve(next.len());
        for (i, check) in next.iter().enumerate() {
            let ph = phase(agent, &check.name, check.interval);
            let due_wall = next_on_grid(wall, ph, check.interval);
            let due = mono + due_wall.saturating_sub(wall);
            self.heap.push(Reverse((due, self.generation, i)));
        }
        self.current = next;
        self.busy = next_busy;
    }

    /// When the earliest check is due.
    fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Fires (`fire(checks, index, busy flag)`) every check due by
    /// `now + ahead` and schedules its next run; a check whose previous run
    /// is still going is skipped.
    fn fire_due(
        &mut self,
        now: Instant,
        ahead: Duration,
        stats: &ScheduleStats,
        mut fire: impl FnMut(&Arc<Vec<Check>>, usize, Arc<AtomicBool>),
    ) {
        let horizon = now + ahead;
        // Checks due early whose previous run is still going: they wait for
        // their due time rather than being skipped for starting early.
        let mut not_yet = Vec::new();
        while self
            .heap
            .peek()
            .is_some_and(|Reverse((due, _, _))| *due <= horizon)
        {
            let Some(Reverse((due, generation_of_popped, idx))) = self.heap.pop() else {
                break;
            };
            if generation_of_popped != self.generation {
                continue;
            }
            let (Some(check), Some(flag)) = (self.current.get(idx), self.busy.get(idx)) else {
                continue;
            };
            if due > now && flag.load(Ordering::Acquire) {
                not_yet.push(Reverse((due, generation_of_popped, idx)));
                continue;
            }
            let interval = check.interval;
            // Next run from this due time, not from now: no drift. After a
            // stall longer than an interval, missed runs are skipped.
            let mut next = due + interval;
            while next <= now {
                next += interval;
                stats.skipped.fetch_add(1, Ordering::Relaxed);
            }
            self.heap.push(Reverse((next, self.generation, idx)));

            if flag.swap(true, Ordering::AcqRel) {
                stats.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(check = %check.name, "previous run still going; skipped");
                continue;
            }
            fire(&self.current, idx, flag.clone());
        }
        self.heap.extend(not_yet);
    }
}

/// What a fired check needs to run and report, and the probe tasks running.
struct Firing {
    permits: Arc<Semaphore>,
    prober: Prober,
    identity: Identity,
    out: mpsc::Sender<ProbeResult>,
    stats: Arc<ScheduleStats>,
    /// A tracker, not a JoinSet: reaping a JoinSet woke the schedule loop
    /// once per finished probe for nothing; the tracker is only waited on at
    /// shutdown.
    tasks: TaskTracker,
    /// Cancelled when the shutdown drain gives up: probes still running then
    /// are dropped (their sockets closed), not left running detached.
    abandon: CancellationToken,
}

impl Firing {
    /// Runs `checks[idx]` in a task of its own (once a permit is free),
    /// holding its busy flag until the task ends.
    fn spawn_probe(&self, checks: Arc<Vec<Check>>, idx: usize, flag: Arc<AtomicBool>) {
        let prober = self.prober.clone();
        let permits = self.permits.clone();
        let out = self.out.clone();
        let identity = self.identity.clone();
        let stats = self.stats.clone();
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        // Frees the check however the task ends (done, panicked, aborted):
        // a busy flag left set would stop the check for good (no data,
        // which favours the vendor).
        let running = Running {
            busy: flag,
            stats: stats.clone(),
        };
        let abandon = self.abandon.clone();
        self.tasks
            .spawn(abandon.run_until_cancelled_owned(async move {
                let result = match permits.acquire_owned().await {
                    Ok(_permit) => {
                        stats.started.fetch_add(1, Ordering::Relaxed);
                        // A panic inside the probe comes back as agent_error.
                        let mut r = prober.probe(&checks[idx]).await;
                        r.agent = identity.agent;
                        r.location = identity.location;
                        Some(r)
                    }
                    Err(_) => None,
                };
                drop(running);
                if let Some(r) = result {
                    stats.finished.fetch_add(1, Ordering::Relaxed);
                    // The spool writer drains this quickly (local disk); a full
                    // channel only delays this task, never the schedule.
                    let _ = out.send(r).await;
                }
            }));
    }

    /// Lets probes in flight finish (each is bounded by its timeout) so
    /// their results are spooled, but not forever.
    async fn drain(self) {
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(15), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("probes still running at shutdown were abandoned");
            self.abandon.cancel();
        }
    }
}

/// A probe task's hold on its check: released on drop.
struct Running {
    busy: Arc<AtomicBool>,
    stats: Arc<ScheduleStats>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.busy.store(false, Ordering::Release);
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn sleep_until_opt(due: Option<Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(names: &[&str], interval: Duration) -> Arc<Vec<Check>> {
        let specs = names.iter().map(|n| slaprobe_wire::CheckSpec {
            name: (*n).into(),
            kind: slaprobe_wire::CheckKind::Http,
            url: Some("http://127.0.0.1/".into()),
            ..Default::default()
        });
        let built = specs.map(|s| {
            let mut c = Check::from_spec(
                &s,
                0,
                std::path::Path::new("a.toml"),
                std::path::Path::new("."),
            )
            .unwrap();
            c.interval = interval;
            c
        });
        Arc::new(built.collect())
    }

    #[test]
    fn a_wake_up_fires_the_checks_due_within_the_fire_ahead_window_and_keeps_their_grid() {
        let base = Instant::now();
        let mut s = Schedule::default();
        s.rebuild(checks(&["a", "b", "c"], Duration::from_secs(1)), "agent");
        // Due at +0 ms, +15 ms and +80 ms, whatever the phases were.
        s.heap.clear();
        for (idx, ms) in [(0usize, 0u64), (1, 15), (2, 80)] {
            s.heap.push(Reverse((
                base + Duration::from_millis(ms),
                s.generation,
                idx,
            )));
        }
        let stats = ScheduleStats::default();
        let mut fired = Vec::new();
        s.fire_due(base, FIRE_AHEAD, &stats, |_, idx, _| fired.push(idx));
        assert_eq!(
            fired,
            vec![0, 1],
            "b is due 15 ms later: in the window; c is not"
        );
        assert!(FIRE_AHEAD >= Duration::from_millis(15) && FIRE_AHEAD < Duration::from_millis(80));
        // Their next runs stay on their own grid: one interval after the due
        // time, not after the early start.
        let mut next: Vec<_> = s.heap.iter().map(|Reverse((d, _, i))| (*i, *d)).collect();
        next.sort();
        assert_eq!(next[0], (0, base + Duration::from_secs(1)));
        assert_eq!(next[1], (1, base + Duration::from_millis(1015)));
        assert_eq!(next[2], (2, base + Duration::from_millis(80)));
        assert_eq!(stats.skipped.load(Ordering::Relaxed), 0);
        // c fires late (a stalled wake-up); a (due now) is still busy and
        // skipped; b, due 15 ms later and still busy, is not skipped for
        // being early: it waits for its own due time.
        fired.clear();
        let t = base + Duration::from_millis(1000);
        s.fire_due(t, FIRE_AHEAD, &stats, |_, i, _| fired.push(i));
        assert_eq!(fired, vec![2]);
        assert_eq!(stats.skipped.load(Ordering::Relaxed), 1, "a only");
        assert_eq!(
            s.next_due(),
            Some(base + Duration::from_millis(1015)),
            "b waits"
        );
        // b's previous run ends; at its due time it runs.
        s.busy[1].store(false, Ordering::Release);
        fired.clear();
        let t = base + Duration::from_millis(1015);
        s.fire_due(t, FIRE_AHEAD, &stats, |_, i, _| fired.push(i));
        assert_eq!(fired, vec![1]);
        assert_eq!(stats.skipped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn grid_points() {
        let i = Duration::from_secs(60);
        let p = Duration::from_secs(7);
        assert_eq!(
            next_on_grid(Duration::from_secs(0), p, i),
            Duration::from_secs(7)
        );
        assert_eq!(
            next_on_grid(Duration::from_secs(7), p, i),
            Duration::from_secs(7)
        );
        assert_eq!(
            next_on_grid(Duration::from_secs(8), p, i),
            Duration::from_secs(67)
        );
        assert_eq!(
            next_on_grid(Duration::from_millis(67_001), p, i),
            Duration::from_secs(127)
        );
    }

    #[test]
    fn phases_spread_over_the_interval() {
        let interval = Duration::from_secs(60);
        let mut per_second = [0u32; 60];
        for i in 0..1000 {
            let p = phase("ams-1", &format!("site-{i}"), interval);
            assert!(p < interval);
            per_second[p.as_secs() as usize] += 1;
        }
        // 1,000 checks over 60 s: about 17 per second; none should pile up.
        let max = per_second.iter().max().copied().unwrap_or(0);
        assert!(max <= 40, "checks bunch up: {max} in one second");
        assert_eq!(phase("a", "b", interval), phase("a", "b", interval));
        assert_ne!(phase("a", "b", interval), phase("a2", "b", interval));
    }
}
