//! The collector's `/metrics` (DESIGN.md §8): the probe and fleet families
//! it keeps itself, plus the families other parts add (SLA, connections).
//!
//! # Layout
//! - [`state`]: what the families are written from, updated by ingest and
//!   the store's feed (latest result per check and location, counts per
//!   agent).
//! - [`families`]: every probe and fleet family declared by name, and the
//!   functions that write them.
//! - [`Metrics`]: the shared handle; [`Metrics::render`] writes the page
//!   with [`slaprobe_exposition`], the one writer the agent uses too.
//!
//! The page: the per-(check, location) families in DESIGN.md order, then
//! every other family ordered by name (the order the `prometheus` crate's
//! registry gave them, kept so the text stays the same). Series are sorted
//! by label values.
//!
//! Counters survive restarts: [`Metrics::seed_from_store`] reloads probe
//! counts and per-agent totals that the store keeps. Only
//! `slaprobe_ingest_rejected_total` restarts at 0 (a counter reset, which
//! Prometheus handles).

mod families;
mod state;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use slaprobe_exposition::Exposition;
use slaprobe_wire::ProbeResult;

use crate::config::CollectorConfig;
use crate::store::MetricsSeed;

use state::State;

/// Why ingest refused a request: the values of `slaprobe_ingest_rejected_total{reason}`.
pub const REJECT_REASONS: [&str; 16] = [
    "unauthorized",
    "forbidden",
    "too_large",
    "unsupported_encoding",
    "malformed",
    "invalid",
    "unknown_check",
    "too_old",
    "clock_skew",
    "unavailable",
    "seq_conflict",
    "rate_limited",
    "body_timeout",
    "not_assigned",
    "wrong_target",
    "seq_jump",
];

/// A part of the collector that adds families to `/metrics`, written at every scrape.
pub trait MetricFamilies: Send + Sync {
    /// Writes this part's families into `out` (each family once; series
    /// sorted by label values).
    fn write_families(&self, out: &mut Exposition);
}

/// The collector's metrics: its own state plus the parts that add families.
#[derive(Clone)]
pub struct Metrics {
    state: Arc<RwLock<State>>,
    /// Added by [`Metrics::add`]; shared by every clone.
    parts: Arc<RwLock<Vec<Arc<dyn MetricFamilies>>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for `config`: check info and configured agents exist from the start.
    pub fn new(config: &CollectorConfig, extra_agents: &[(String, String)]) -> Self {
        Self {
            state: Arc::new(RwLock::new(State::new(config, extra_agents))),
            parts: Arc::default(),
        }
    }

    /// Adds `part`'s families to every later scrape (of every clone).
    pub fn add(&self, part: Arc<dyn MetricFamilies>) {
        self.parts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(part);
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain numbers behind: keep serving.
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Newly stored results, as the store's feed delivers them (see
    /// `probe_feed.rs`): the latest per (check, location) replaces an
    /// older one (replays of old results never move a gauge back), counts grow.
    pub fn observe<'a>(&self, results: impl IntoIterator<Item = &'a ProbeResult>) {
        let mut st = self.write();
        for r in results {
            st.observe(r);
        }
    }

    /// A batch from `agent` was committed by this collector with
    /// `duplicates` results it had stored before (the new ones are counted
    /// by [`Metrics::observe`] from the feed).
    pub fn received(&self, agent: &str, location: &str, duplicates: u64, now_s: f64) {
        self.write().seen(agent, location, now_s).duplicates += duplicates;
    }

    /// An authenticated agent talked to the collector (e.g. fetched its checks).
    pub fn agent_seen(&self, agent: &str, location: &str, now_s: f64) {
        self.write().seen(agent, location, now_s);
    }

    /// An agent's highest stored seq, as far as this process knows (0: none).
    pub fn max_seq(&self, agent: &str) -> u64 {
        self.read().agents.get(agent).map_or(0, |a| a.max_seq)
    }

    /// When an agent was last seen (seconds since the epoch), as far as this process knows.
    pub fn last_seen(&self, agent: &str) -> Option<f64> {
        self.read().agents.get(agent).and_then(|a| a.last_seen)
    }

    /// A batch from `agent` was refused with 409: one of its seqs is stored
    /// with other bytes (`slaprobe_ingest_conflicts_total`).
    pub fn conflict(&self, agent: &str) {
        self.write()
            .agents
            .entry(agent.to_string())
            .or_default()
            .conflicts += 1;
    }

    /// A request was refused; `reason` is one of [`REJECT_REASONS`].
    pub fn rejected(&self, reason: &'static str) {
        *self.write().rejected.entry(reason).or_default() += 1;
    }

    /// Restores state after a restart from what the store keeps. Only checks
    /// still in the config come back.
    pub fn seed_from_store(&self, seed: &MetricsSeed) {
        self.write().seed(seed);
    }

    /// The Prometheus text exposition: this collector's families, then the
    /// added parts' (see the module docs for the order).
    pub fn render(&self) -> Vec<u8> {
        let mut out;
        let mut rest = Exposition::default();
        {
            let st = self.read();
            // ~110 bytes a series, ~10 series per (check, location).
            out = Exposition::with_capacity(st.probes.len() * 1100 + st.checks.len() * 120);
            families::write_check_families(&st, &mut out);
            families::write_fleet_families(&st, &mut rest);
        }
        let parts = self.parts.read().unwrap_or_else(|e| e.into_inner()).clone();
        for part in parts {
            part.write_families(&mut rest);
        }
        out.append_by_name(rest);
        out.into_string().into_bytes()
    }
}
