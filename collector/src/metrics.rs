//! Prometheus metrics of probes and the fleet (DESIGN.md §8, probe and fleet
//! sections), served on `/metrics`.
//!
//! One custom [`Collector`] builds every family at scrape time from a state
//! map that ingest updates (latest result per check and location, counts per
//! agent). Not `*Vec`: prometheus 0.14 hashes label values without a
//! separator (`["ab","c"]` and `["a","bc"]` collide), and a map we own drops
//! a series simply by not holding it.
//!
//! Counters survive restarts: [`Metrics::seed_from_store`] reloads probe
//! counts and per-agent totals that the store keeps. Only
//! `slaprobe_ingest_rejected_total` restarts at 0 (a counter reset, which
//! Prometheus handles).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, Registry, TextEncoder};
use slaprobe_wire::{BrowserDetail, Phases, ProbeResult};

use crate::config::CollectorConfig;
use crate::store::MetricsSeed;

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

/// The latest result of one check from one location, reduced to what is exported.
#[derive(Debug, Clone, Default)]
struct ProbeState {
    started_at_ms: i64,
    seq: u64,
    success: bool,
    duration: f64,
    phases: [Option<f64>; 5],
    http_status: Option<u16>,
    cert_expiry: Option<f64>,
    page: Option<(u64, u32, f64)>,
    /// `dns.dnssec.rrsig_expires_at` (Unix seconds).
    rrsig_expiry: Option<f64>,
    /// `domain.expires_at` (Unix seconds).
    domain_expiry: Option<f64>,
    /// browser: the Web Vitals (in `BrowserDetail::VITALS` order), requests, failed requests.
    browser: Option<([Option<f64>; 5], u32, u32)>,
}

impl ProbeState {
    fn from_result(r: &ProbeResult) -> Self {
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
            page: r
                .page
                .as_ref()
                .map(|p| (p.total_bytes, p.resources, p.load_seconds)),
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
            browser: r.browser.as_ref().map(|b| {
                (
                    BrowserDetail::VITALS.map(|m| b.metric(m)),
                    b.requests,
                    b.failed_requests,
                )
            }),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ProbeCounts {
    total: u64,
    failures: BTreeMap<String, u64>,
    /// browser: uncaught JavaScript errors seen (restarts at 0 with the collector).
    js_errors: u64,
}

#[derive(Debug, Clone, Default)]
struct AgentState {
    location: String,
    last_seen: Option<f64>,
    results: u64,
    duplicates: u64,
    /// Batches refused with 409: a seq already stored with other bytes.
    conflicts: u64,
    /// Highest seq stored: `slaprobe_agent_missing_results` = max_seq − results.
    max_seq: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Keyed by (check, location).
    probes: HashMap<(String, String), ProbeState>,
    counts: HashMap<(String, String), ProbeCounts>,
    /// (check, kind, target) of every configured check.
    checks: Vec<(String, String, String)>,
    agents: BTreeMap<String, AgentState>,
    rejected: BTreeMap<&'static str, u64>,
}

/// The collector's metrics: state plus the registry `/metrics` renders.
#[derive(Clone)]
pub struct Metrics {
    state: Arc<RwLock<State>>,
    registry: Registry,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for `config`: check info and configured agents exist from the start.
    pub fn new(
        config: &CollectorConfig,
        extra_agents: &[(String, String)],
    ) -> Result<Self, prometheus::Error> {
        let mut st = State::default();
        for c in &config.checks {
            st.checks.push((
                c.check.name.clone(),
                c.check.kind.to_string(),
                c.check.target.clone(),
            ));
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
        let state = Arc::new(RwLock::new(st));
        let registry = Registry::new();
        registry.register(Box::new(SlaprobeCollector::new(state.clone())?))?;
        Ok(Self { state, registry })
    }

    /// The registry `/metrics` renders; other parts (SLA) register their collectors here.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain numbers behind: keep serving.
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Newly stored results, as the store's feed delivers them (see
    /// [`crate::probe_feed`]): the latest per (check, location) replaces an
    /// older one (replays of old results never move a gauge back), counts grow.
    pub fn observe<'a>(&self, results: impl IntoIterator<Item = &'a ProbeResult>) {
        let mut st = self.write();
        for r in results {
            match st.agents.get_mut(&r.agent) {
                Some(a) => {
                    a.max_seq = a.max_seq.max(r.seq);
                    a.results += 1;
                }
                None => {
                    st.agents.insert(
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
            let counts = st.counts.entry(key.clone()).or_default();
            counts.total += 1;
            counts.js_errors += r.browser.as_ref().map_or(0, |b| u64::from(b.js_errors));
            if let Some(class) = r.class() {
                *counts
                    .failures
                    .entry(class.as_str().to_string())
                    .or_default() += 1;
            }
            let new = ProbeState::from_result(r);
            match st.probes.get_mut(&key) {
                Some(cur) if (cur.started_at_ms, cur.seq) >= (new.started_at_ms, new.seq) => {}
                Some(cur) => *cur = new,
                None => {
                    st.probes.insert(key, new);
                }
            }
        }
    }

    /// A batch from `agent` was committed by this collector with
    /// `duplicates` results it had stored before (the new ones are counted
    /// by [`Metrics::observe`] from the feed).
    pub fn received(&self, agent: &str, location: &str, duplicates: u64, now_s: f64) {
        let mut st = self.write();
        let a = st.agents.entry(agent.to_string()).or_default();
        a.location = location.to_string();
        a.duplicates += duplicates;
        a.last_seen = Some(a.last_seen.map_or(now_s, |t| t.max(now_s)));
    }

    /// An authenticated agent talked to the collector (e.g. fetched its checks).
    pub fn agent_seen(&self, agent: &str, location: &str, now_s: f64) {
        let mut st = self.write();
        let a = st.agents.entry(agent.to_string()).or_default();
        a.location = location.to_string();
        a.last_seen = Some(a.last_seen.map_or(now_s, |t| t.max(now_s)));
    }

    /// An agent's highest stored seq, as far as this process knows (0: none).
    pub fn max_seq(&self, agent: &str) -> u64 {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .agents
            .get(agent)
            .map_or(0, |a| a.max_seq)
    }

    /// When an agent was last seen (seconds since the epoch), as far as this process knows.
    pub fn last_seen(&self, agent: &str) -> Option<f64> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .agents
            .get(agent)
            .and_then(|a| a.last_seen)
    }

    /// A batch from `agent` was refused with 409: one of its seqs is stored
    /// with other bytes (`slaprobe_ingest_conflicts_total`).
    pub fn conflict(&self, agent: &str) {
        let mut st = self.write();
        st.agents.entry(agent.to_string()).or_default().conflicts += 1;
    }

    /// A request was refused; `reason` is one of [`REJECT_REASONS`].
    pub fn rejected(&self, reason: &'static str) {
        *self.write().rejected.entry(reason).or_default() += 1;
    }

    /// Restores state after a restart from what the store keeps. Only checks
    /// still in the config come back.
    pub fn seed_from_store(&self, seed: &MetricsSeed) {
        let (latest, counts, agents) = (&seed.latest, &seed.counts, &seed.agents);
        let mut st = self.write();
        let known: std::collections::HashSet<&str> =
            st.checks.iter().map(|(c, _, _)| c.as_str()).collect();
        let mut probes = HashMap::new();
        for row in latest.iter().filter(|r| known.contains(r.check.as_str())) {
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
        let mut pc: HashMap<(String, String), ProbeCounts> = HashMap::new();
        for c in counts.iter().filter(|c| known.contains(c.check.as_str())) {
            let e = pc.entry((c.check.clone(), c.location.clone())).or_default();
            e.total += c.count;
            if let Some(class) = &c.class {
                *e.failures.entry(class.clone()).or_default() += c.count;
            }
        }
        st.probes = probes;
        st.counts = pc;
        for a in agents {
            let e = st.agents.entry(a.id.clone()).or_default();
            if e.location.is_empty() {
                e.location = a.location.clone();
            }
            e.results = a.results;
            e.duplicates = a.duplicates;
            e.max_seq = a.max_seq;
            e.last_seen = Some(a.last_seen_ms as f64 / 1000.0);
        }
    }

    /// The Prometheus text exposition of every registered collector.
    ///
    /// The per-(check, location) families are written straight from the
    /// state as text: at 10,000 checks × 3 locations they are ~300,000
    /// series, and building a protobuf `Metric` per series (two `String`s
    /// per label) before encoding cost ~0.6 s a scrape. The small fleet
    /// families and other registered collectors (SLA) go through the registry.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = String::new();
        {
            let st = self.state.read().unwrap_or_else(|e| e.into_inner());
            render_check_families(&st, &mut out);
        }
        let mut buf = out.into_bytes();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(buf)
    }
}

/// How many leading [`FAMILIES`] are per check (and location) and rendered
/// by [`render_check_families`]; the collector produces the rest.
const CHECK_FAMILIES: usize = 12;

/// Writes families `0..CHECK_FAMILIES` in the text format, series sorted by
/// label values as the registry would sort them; empty families are left out.
fn render_check_families(st: &State, out: &mut String) {
    let mut probes: Vec<(&(String, String), &ProbeState)> = st.probes.iter().collect();
    probes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut counts: Vec<(&(String, String), &ProbeCounts)> = st.counts.iter().collect();
    counts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    // ~110 bytes a series, ~10 series per (check, location).
    out.reserve(probes.len() * 1100 + st.checks.len() * 120);

    let fam = |i: usize, out: &mut String, body: &mut dyn FnMut(&mut String)| {
        let (name, help, kind, _) = FAMILIES[i];
        let start = out.len();
        let kind = if kind == MetricType::COUNTER {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} {kind}",
            escape_help(help)
        );
        let head = out.len();
        body(out);
        if out.len() == head {
            out.truncate(start);
        }
    };
    fam(0, out, &mut |out| {
        for ((c, l), p) in &probes {
            sample(
                out,
                FAMILIES[0].0,
                &cl(c, l),
                None,
                if p.success { 1.0 } else { 0.0 },
            );
        }
    });
    fam(1, out, &mut |out| {
        for ((c, l), p) in &probes {
            sample(
                out,
                FAMILIES[1].0,
                &cl(c, l),
                Some(("phase", "total")),
                p.duration,
            );
            for (name, v) in Phases::NAMES.iter().zip(p.phases) {
                if let Some(v) = v {
                    sample(out, FAMILIES[1].0, &cl(c, l), Some(("phase", name)), v);
                }
            }
        }
    });
    fam(2, out, &mut |out| {
        for ((c, l), n) in &counts {
            sample(out, FAMILIES[2].0, &cl(c, l), None, n.total as f64);
        }
    });
    fam(3, out, &mut |out| {
        for ((c, l), n) in &counts {
            for (class, k) in &n.failures {
                sample(
                    out,
                    FAMILIES[3].0,
                    &cl(c, l),
                    Some(("class", class)),
                    *k as f64,
                );
            }
        }
    });
    type Pick = fn(&ProbeState) -> Option<f64>;
    let per_probe: [(usize, Pick); 7] = [
        (4, |p| p.http_status.map(f64::from)),
        (5, |p| p.cert_expiry),
        (6, |p| p.page.map(|(b, _, _)| b as f64)),
        (7, |p| p.page.map(|(_, r, _)| f64::from(r))),
        (8, |p| p.page.map(|(_, _, t)| t)),
        (9, |p| p.rrsig_expiry),
        (10, |p| p.domain_expiry),
    ];
    for (i, pick) in per_probe {
        fam(i, out, &mut |out| {
            for ((c, l), p) in &probes {
                if let Some(v) = pick(p) {
                    sample(out, FAMILIES[i].0, &cl(c, l), None, v);
                }
            }
        });
    }
    render_browser_families(&probes, &counts, out);
    fam(11, out, &mut |out| {
        let mut checks: Vec<&(String, String, String)> = st.checks.iter().collect();
        checks.sort_unstable();
        for (c, kind, target) in checks {
            sample(
                out,
                FAMILIES[11].0,
                &[("check", c), ("kind", kind), ("target", target)],
                None,
                1.0,
            );
        }
    });
}

/// Name, help and type of the browser probe's families (per check and
/// location, written as text like the families above).
const BROWSER_FAMILIES: [(&str, &str, &str); 4] = [
    (
        "slaprobe_browser_web_vital",
        "Core Web Vitals of the latest browser probe, by metric (lcp, cls, fcp, ttfb, tbt); seconds, CLS unitless.",
        "gauge",
    ),
    (
        "slaprobe_browser_requests",
        "Requests the page made in the latest browser probe (the document included).",
        "gauge",
    ),
    (
        "slaprobe_browser_failed_requests",
        "Requests that failed (network error or status >= 400) in the latest browser probe.",
        "gauge",
    ),
    (
        "slaprobe_browser_js_errors_total",
        "Uncaught JavaScript errors seen by browser probes (restarts at 0 with the collector).",
        "counter",
    ),
];

type ProbeRows<'a> = [(&'a (String, String), &'a ProbeState)];
type CountRows<'a> = [(&'a (String, String), &'a ProbeCounts)];

/// The browser families; a family without samples is left out.
fn render_browser_families(probes: &ProbeRows<'_>, counts: &CountRows<'_>, out: &mut String) {
    let browser = || {
        probes
            .iter()
            .filter_map(|((c, l), p)| p.browser.as_ref().map(|b| (c, l, b)))
    };
    if browser().next().is_none() {
        return;
    }
    for (i, (name, help, kind)) in BROWSER_FAMILIES.iter().enumerate() {
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} {kind}",
            escape_help(help)
        );
        match i {
            0 => {
                for (c, l, (vitals, _, _)) in browser() {
                    for (m, v) in BrowserDetail::VITALS.iter().zip(vitals) {
                        if let Some(v) = v {
                            sample(out, name, &cl(c, l), Some(("metric", m)), *v);
                        }
                    }
                }
            }
            1 | 2 => {
                for (c, l, (_, requests, failed)) in browser() {
                    let v = if i == 1 { *requests } else { *failed };
                    sample(out, name, &cl(c, l), None, f64::from(v));
                }
            }
            _ => {
                // Both lists are sorted by key: a binary search per count.
                for (key, n) in counts {
                    let is_browser = probes
                        .binary_search_by(|(k, _)| (*k).cmp(key))
                        .is_ok_and(|i| probes[i].1.browser.is_some());
                    if is_browser {
                        sample(out, name, &cl(&key.0, &key.1), None, n.js_errors as f64);
                    }
                }
            }
        }
    }
}

/// The (check, location) label pairs.
fn cl<'a>(c: &'a str, l: &'a str) -> [(&'static str, &'a str); 2] {
    [("check", c), ("location", l)]
}

/// One sample line: `name{labels,extra} value` (values as the text encoder writes them).
fn sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    extra: Option<(&str, &str)>,
    v: f64,
) {
    out.push_str(name);
    let mut sep = '{';
    for (k, val) in labels.iter().chain(extra.as_ref()) {
        out.push(sep);
        out.push_str(k);
        out.push_str("=\"");
        escape_label(out, val);
        out.push('"');
        sep = ',';
    }
    if sep == ',' {
        out.push('}');
    }
    let _ = writeln!(out, " {v}");
}

/// Label value escaping of the text format: backslash, double quote, newline.
fn escape_label(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP escaping: backslash and newline.
fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Name, help, type and labels of every family this collector exports.
const FAMILIES: &[crate::metrics::FamilySpec] = &[
    (
        "slaprobe_probe_success",
        "1 if the latest probe of the check from the location succeeded, else 0.",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_probe_duration_seconds",
        "Duration of the latest probe (phase total) and of each HTTP phase it reached.",
        MetricType::GAUGE,
        &["check", "location", "phase"],
    ),
    (
        "slaprobe_probes_total",
        "Probe results stored, per check and location.",
        MetricType::COUNTER,
        &["check", "location"],
    ),
    (
        "slaprobe_probe_failures_total",
        "Failed probe results stored, by failure class.",
        MetricType::COUNTER,
        &["check", "location", "class"],
    ),
    (
        "slaprobe_http_status_code",
        "HTTP status of the latest probe's final response.",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_tls_cert_expiry_timestamp_seconds",
        "Earliest expiry in the certificate chain the latest probe saw (Unix seconds).",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_page_bytes",
        "Bytes of the document and every resource in the latest page load.",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_page_resources",
        "Resources the latest page load requested (the document not counted).",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_page_load_seconds",
        "Time until the document and every resource had arrived in the latest page load.",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_dns_rrsig_expiry_timestamp_seconds",
        "Earliest expiry of the RRSIGs the latest DNSSEC validation relied on, over every nameserver (Unix seconds).",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_domain_expiry_timestamp_seconds",
        "Registration expiry of the domain as its registry's RDAP server reported it in the latest probe (Unix seconds).",
        MetricType::GAUGE,
        &["check", "location"],
    ),
    (
        "slaprobe_check_info",
        "Configured checks; the value is always 1.",
        MetricType::GAUGE,
        &["check", "kind", "target"],
    ),
    (
        "slaprobe_agent_last_seen_timestamp_seconds",
        "When the agent last talked to the collector (Unix seconds).",
        MetricType::GAUGE,
        &["agent", "location"],
    ),
    (
        "slaprobe_ingest_results_total",
        "Results stored from the agent (each seq once).",
        MetricType::COUNTER,
        &["agent"],
    ),
    (
        "slaprobe_ingest_duplicates_total",
        "Results received again after they were already stored.",
        MetricType::COUNTER,
        &["agent"],
    ),
    (
        "slaprobe_ingest_rejected_total",
        "Ingest requests refused, by reason.",
        MetricType::COUNTER,
        &["reason"],
    ),
    (
        "slaprobe_build_info",
        "Build of this collector; the value is always 1.",
        MetricType::GAUGE,
        &["version"],
    ),
    (
        "slaprobe_agent_missing_results",
        "Seqs up to the agent's highest stored one that were never received (lost results).",
        MetricType::GAUGE,
        &["agent"],
    ),
    (
        "slaprobe_ingest_conflicts_total",
        "Batches refused with 409 because a seq was already stored with other bytes (the agent reused seqs).",
        MetricType::COUNTER,
        &["agent"],
    ),
];

struct SlaprobeCollector {
    state: Arc<RwLock<State>>,
    descs: Vec<Desc>,
}

impl SlaprobeCollector {
    fn new(state: Arc<RwLock<State>>) -> Result<Self, prometheus::Error> {
        Ok(Self {
            state,
            descs: descs(FAMILIES)?,
        })
    }
}

/// The families with samples, in declaration order: `samples[i]` belongs to
/// `families[i]`; empty families are left out (the text encoder refuses them).
pub(crate) fn assemble(families: &[FamilySpec], samples: Vec<Vec<Metric>>) -> Vec<MetricFamily> {
    families
        .iter()
        .zip(samples)
        .filter(|(_, metrics)| !metrics.is_empty())
        .map(|((name, help, kind, _), metrics)| {
            let mut mf = MetricFamily::default();
            mf.set_name(name.to_string());
            mf.set_help(help.to_string());
            mf.set_field_type(*kind);
            mf.set_metric(metrics);
            mf
        })
        .collect()
}

/// A family as declared: name, help, type, label names.
pub(crate) type FamilySpec = (
    &'static str,
    &'static str,
    MetricType,
    &'static [&'static str],
);

/// The `Desc` of every declared family (what a custom collector's `desc()` returns).
pub(crate) fn descs(families: &[FamilySpec]) -> Result<Vec<Desc>, prometheus::Error> {
    families
        .iter()
        .map(|(name, help, _, labels)| {
            Desc::new(
                name.to_string(),
                help.to_string(),
                labels.iter().map(|l| l.to_string()).collect(),
                HashMap::new(),
            )
        })
        .collect()
}

/// One label pair (shared with the SLA collector).
pub(crate) fn lp(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

/// A gauge sample.
pub(crate) fn gauge(labels: Vec<LabelPair>, v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

/// A counter sample.
pub(crate) fn counter(labels: Vec<LabelPair>, v: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v);
    let mut m = Metric::from_label(labels);
    m.set_counter(c);
    m
}

impl Collector for SlaprobeCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut fams: Vec<Vec<Metric>> = FAMILIES.iter().map(|_| Vec::new()).collect();
        // Families 0..CHECK_FAMILIES are per check and location: `Metrics::render`
        // writes them as text directly, so they stay empty here.
        for (id, a) in &st.agents {
            if let Some(t) = a.last_seen {
                fams[12].push(gauge(vec![lp("agent", id), lp("location", &a.location)], t));
            }
            fams[13].push(counter(vec![lp("agent", id)], a.results as f64));
            fams[14].push(counter(vec![lp("agent", id)], a.duplicates as f64));
        }
        for (reason, n) in &st.rejected {
            fams[15].push(counter(vec![lp("reason", reason)], *n as f64));
        }
        fams[16].push(gauge(vec![lp("version", env!("CARGO_PKG_VERSION"))], 1.0));
        for (id, a) in &st.agents {
            fams[17].push(gauge(
                vec![lp("agent", id)],
                a.max_seq.saturating_sub(a.results) as f64,
            ));
            fams[18].push(counter(vec![lp("agent", id)], a.conflicts as f64));
        }

        debug_assert!(fams[..CHECK_FAMILIES].iter().all(Vec::is_empty));
        assemble(FAMILIES, fams)
    }
}
