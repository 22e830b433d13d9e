//! Per-agent token buckets of results (`[collector] max_results_per_second_per_agent`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
