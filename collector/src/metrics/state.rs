//! What `/metrics` is written from: the latest result per check and
//! location, counts per check and location and per agent, refusals by
//! reason. Ingest and the store's feed update it; a scrape reads it.

use std::collections::{BTreeMap, HashMap, HashSet};

use slaprobe_wire::{BrowserDetail, Phases, ProbeResult};

use crate::config::CollectorConfig;
use crate::store::MetricsSeed;

use super::REJECT_REASONS;

/// The latest result of one check from one location, reduced to what is exported.
#[derive(Debug, Clone, Default)]
pub(super) struct ProbeState {
    started_at_ms: i64,
    seq: u64,
    pub success: bool,
    pub duration: f64,
    /// The HTTP phases, in [`Phases::NAMES`] order.
    pub phases: [Option<f64>; 5],
    pub http_status: Option<u16>,
    pub cert_expiry: Option<f64>,
    pub page: Option<PageState>,
    /// `dns.dnssec.rrsig_expires_at` (Unix seconds).
    pub rrsig_expiry: Option<f64>,
    /// `domain.expires_at` (Unix seconds).
    pub domain_expiry: Option<f64>,
    pub browser: Option<BrowserState>,
}

/// A page load's figures.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageState {
    pub total_bytes: u64,
    pub resources: u32,
    pub load_seconds: f64,
}

/// A browser probe's figures.
#[derive(Debug, Clone, Copy)]
pub(super) struct BrowserState {
    /// The Web Vitals, in [`BrowserDetail::VITALS`] order.
    pub vitals: [Option<f64>; 5],
    pub requests: u32,
    pub failed_requests: u32,
}

impl ProbeState {
    pub(super) fn from_result(r: &ProbeResult) -> Self {
        let phases = r
            .http
            .as_ref()
            .map_or([None; 5], |h| Phases::NAMES.map(|p| h.phases.get(p)));
        let cert_expiry = r
            .tls
            .as_ref()
            .and_then(|t| t.earliest_not_after.or(t.not_after))
            .map(|ts| ts.as_millisecond() as f64 / 1000.0);
        Self {
            started_at_ms: r.started_at.as_millisecond(),
            seq: r.seq,
            success: r.success,
            duration: r.duration_seconds,
            phases,
            http_status: r.http.as_ref().and_then(|h| h.status),
            cert_expiry,
            page: r.page.as_ref().map(|p| PageState {
                total_bytes: p.total_bytes,
                resources: p.resources,
                load_seconds: p.load_seconds,
            }),
            rrsig_expiry: r
                .dns
                .as_ref()
                .and_then(|d| d.dnssec.as_ref()?.rrsig_expires_at)
                .map(|ts| ts.as_second() as f64),
            domain_expiry: r
                .domain
                .as_ref()
                .and_then(|d| d.expires_at)
                .map(|ts| ts.as_second() as f64),
            browser: r.browser.as_ref().map(|b| BrowserState {
                vitals: BrowserDetail::VITALS.map(|m| b.metric(m)),
                requests: b.requests,
                failed_requests: b.failed_requests,
            }),
        }
    }
}

/// Results stored per check and location.
#[derive(Debug, Clone, Default)]
pub(super) struct ProbeCounts {
    pub total: u64,
    /// Failed results by failure class.
    pub failures: BTreeMap<String, u64>,
    /// browser: uncaught JavaScript errors seen (restarts at 0 with the collector).
    pub js_errors: u64,
}

/// One agent as the fleet families show it.
#[derive(Debug, Clone, Default)]
pub(super) struct AgentState {
    pub location: String,
    pub last_seen: Option<f64>,
    pub results: u64,
    pub duplicates: u64,
    /// Batches refused with 409: a seq already stored with other bytes.
    pub conflicts: u64,
    /// Highest seq stored: `slaprobe_agent_missing_results` = max_seq − results.
    pub max_seq: u64,
}

/// Every figure the collector's own families are written from.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Keyed by (check, location).
    pub probes: HashMap<(String, String), ProbeState>,
    pub counts: HashMap<(String, String), ProbeCounts>,
    /// (check, kind, target) of every configured check.
    pub checks: Vec<(String, String, String)>,
    /// The names of the configured canaries (`canary = true`).
    pub canaries: Vec<String>,
    /// By agent id.
    pub agents: BTreeMap<String, AgentState>,
    /// Refused requests by reason (every reason from the start).
    pub rejected: BTreeMap<&'static str, u64>,
}

impl State {
    /// The state of a fresh collector: configured checks and agents, no results.
    pub(super) fn new(config: &CollectorConfig, extra_agents: &[(String, String)]) -> Self {
        let mut st = State::default();
        for c in &config.checks {
            st.checks.push((
                c.check.name.clone(),
                c.check.kind.to_string(),
                c.check.target.clone(),
            ));
            if c.check.canary {
                st.canaries.push(c.check.name.clone());
            }
        }
        let configured = config
            .agents
            .iter()
            .map(|a| (a.id.clone(), a.location.clone()))
            .chain(extra_agents.iter().cloned());
        for (id, location) in configured {
            st.agents.insert(
                id,
                AgentState {
                    location,
                    ..Default::default()
                },
            );
        }
        for r in REJECT_REASONS {
            st.rejected.insert(r, 0);
        }
        st
    }

    /// See [`super::Metrics::observe`].
    pub(super) fn observe(&mut self, r: &ProbeResult) {
        match self.agents.get_mut(&r.agent) {
            Some(a) => {
                a.max_seq = a.max_seq.max(r.seq);
                a.results += 1;
            }
            None => {
                self.agents.insert(
                    r.agent.clone(),
                    AgentState {
                        location: r.location.clone(),
                        max_seq: r.seq,
                        results: 1,
                        ..Default::default()
                    },
                );
            }
        }
        let key = (r.check.clone(), r.location.clone());
        let counts = self.counts.entry(key.clone()).or_default();
        counts.total += 1;
        counts.js_errors += r.browser.as_ref().map_or(0, |b| u64::from(b.js_errors));
        if let Some(class) = r.class() {
            *counts
                .failures
                .entry(class.as_str().to_string())
                .or_default() += 1;
        }
        let new = ProbeState::from_result(r);
        match self.probes.get_mut(&key) {
            Some(cur) if (cur.started_at_ms, cur.seq) >= (new.started_at_ms, new.seq) => {}
            Some(cur) => *cur = new,
            None => {
                self.probes.insert(key, new);
            }
        }
    }

    /// The agent talked to the collector at `now_s` from `location`.
    pub(super) fn seen(&mut self, agent: &str, location: &str, now_s: f64) -> &mut AgentState {
        let a = self.agents.entry(agent.to_string()).or_default();
        a.location = location.to_string();
        a.last_seen = Some(a.last_seen.map_or(now_s, |t| t.max(now_s)));
        a
    }

    /// See [`super::Metrics::seed_from_store`].
    pub(super) fn seed(&mut self, seed: &MetricsSeed) {
        let known: HashSet<&str> = self.checks.iter().map(|(c, _, _)| c.as_str()).collect();
        let mut probes = HashMap::new();
        for row in seed
            .latest
            .iter()
            .filter(|r| known.contains(r.check.as_str()))
        {
            match serde_json::from_str::<ProbeResult>(&row.raw) {
                Ok(r) => {
                    probes.insert(
                        (row.check.clone(), row.location.clone()),
                        ProbeState::from_result(&r),
                    );
                }
                Err(e) => {
                    tracing::warn!(check = row.check, error = %e, "stored latest result does not parse; skipped")
                }
            }
        }
        let mut counts: HashMap<(String, String), ProbeCounts> = HashMap::new();
        for c in seed
            .counts
            .iter()
            .filter(|c| known.contains(c.check.as_str()))
        {
            let e = counts
                .entry((c.check.clone(), c.location.clone()))
                .or_default();
            e.total += c.count;
            if let Some(class) = &c.class {
                *e.failures.entry(class.clone()).or_default() += c.count;
            }
        }
        self.probes = probes;
        self.counts = counts;
        for a in &seed.agents {
            let e = self.agents.entry(a.id.clone()).or_default();
            if e.location.is_empty() {
                e.location = a.location.clone();
            }
            e.results = a.results;
            e.duplicates = a.duplicates;
            e.max_seq = a.max_seq;
            e.last_seen = Some(a.last_seen_ms as f64 / 1000.0);
        }
    }
}
