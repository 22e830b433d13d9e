//! The SLA engine wired into the running collector (DESIGN.md §6–§8):
//! [`SlaService`] implements [`SlaHook`], feeds every newly stored result to
//! one [`SlaEngine`], serves `/api/v1/contracts` and
//! `/api/v1/reports/{contract}/{YYYY-MM}`, and exports the `slaprobe_sla_*`
//! families through a custom Prometheus collector.
//!
//! # Start-up and consistency
//!
//! The server calls [`SlaHook::on_store_open`] once the store is open and
//! **before** it accepts results: the engine replays every stored result
//! started at or after [`SlaEngine::replay_from`] (streamed, one row at a
//! time), then ingest hands it only newly stored, non-duplicate results. So
//! each stored result is observed exactly once. Until the replay is done the
//! endpoints answer 503 and the SLA families are absent (a status taken
//! before the replay would settle empty slots into the counters).
//!
//! # Reports
//!
//! A month the engine still holds comes from the engine; an older one is
//! evaluated from the store with [`evaluate_month`] on the blocking pool.
//! With a shared store (PostgreSQL, several collectors) every report is
//! evaluated from the store, so all collectors answer the same.
//!
//! # Shared store: the engine
//! Each collector's engine is fed the results *it* stores; others' arrive
//! only through the store. So with a shared store the engine is rebuilt from
//! the store every [`REBUILD_EVERY`] (longer when a rebuild is slow): the SLA
//! gauges and `/api/v1/contracts` lag other collectors' results by up to one
//! rebuild, and a `_total` counter may step back at a rebuild when other
//! collectors' results change settled slots (Prometheus sees a reset).
//! Both fill `evidence` from the store with [`evidence_from_store`]. The
//! offline CLI (`slaprobe-collector report`) uses [`report_from_store`], the
//! same function the HTTP path uses for months no longer in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Metric, MetricFamily, MetricType};
use serde::Serialize;
use sha2::{Digest, Sha256};
use slaprobe_wire::ProbeResult;

use crate::metrics::{counter, gauge, lp};
use crate::render::{self, Format};
use crate::server::SlaHook;
use crate::sla::report::{Evidence, ObjectiveResult, SlotCounts};
use crate::sla::{
    Contract, ContractStatus, Month, MonthEvaluator, MonthReport, Observation, SlaCounters,
    SlaEngine,
};
use crate::store::{Reader, Store, StoreError};

#[cfg(doc)]
use crate::sla::{evaluate_month, evidence_digest};

/// How often the engine's clock moves on without results or scrapes, so
/// slots settle into the counters and finished months leave memory.
const ADVANCE_EVERY: Duration = Duration::from_secs(30);

/// Shortest pause between two rebuilds of the engine from a shared store.
const REBUILD_EVERY: Duration = Duration::from_secs(60);

/// The SLA engine in the collector. Cheap to share (`Arc`).
pub struct SlaService {
    inner: Arc<Inner>,
}

struct Inner {
    /// The validated contracts, config order (reports need them without the engine lock).
    contracts: Vec<Contract>,
    engine: Mutex<SlaEngine>,
    /// Set once the replay is done: the store for reports, and the "ready" flag.
    store: OnceLock<Store>,
}

impl std::fmt::Debug for SlaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlaService")
            .field("contracts", &self.inner.contracts.len())
            .finish_non_exhaustive()
    }
}

impl SlaService {
    /// A service for validated `contracts`; nothing is read until the store opens.
    pub fn new(contracts: Vec<Contract>) -> SlaService {
        let engine = SlaEngine::new(contracts.clone(), Timestamp::now());
        SlaService {
            inner: Arc::new(Inner {
                contracts,
                engine: Mutex::new(engine),
                store: OnceLock::new(),
            }),
        }
    }

    /// Feeds the engine every stored result it wants (those started at or
    /// after `replay_from()`), streamed. Returns how many results it read.
    /// Call once, before any `observe` or `status`.
    pub fn replay(&self, reader: &Reader) -> Result<u64, StoreError> {
        let mut engine = self.inner.lock_engine();
        replay_into(&mut engine, &self.inner.contracts, reader)
    }

    /// The status of every contract as of `now` (`None` before the replay).
    pub fn status(&self, now: Timestamp) -> Option<Vec<ContractStatus>> {
        self.inner.status(now)
    }
}

/// Feeds `engine` every stored result of `contracts`' checks started at or
/// after its `replay_from()`, streamed; returns how many it read.
fn replay_into(
    engine: &mut SlaEngine,
    contracts: &[Contract],
    reader: &Reader,
) -> Result<u64, StoreError> {
    let checks = covered_checks(contracts);
    let from_ms = engine.replay_from().as_millisecond();
    let mut n = 0u64;
    let mut bad = 0u64;
    reader.for_each_result(&checks, from_ms, i64::MAX, |row| {
        n += 1;
        match serde_json::from_str::<ProbeResult>(&row.raw) {
            Ok(r) => {
                engine.observe(&Observation::from_result(&r));
            }
            Err(_) => bad += 1,
        }
    })?;
    if bad > 0 {
        tracing::warn!(
            bad,
            "stored results that no longer parse were left out of the SLA replay"
        );
    }
    Ok(n)
}

/// With a shared store, rebuilds the engine from the store now and then so
/// the SLA gauges and `/api/v1/contracts` include what other collectors
/// stored. The pause is at least [`REBUILD_EVERY`] and ten times the last
/// rebuild's duration, so a large store costs at most ~10% of a core.
async fn rebuild_loop(weak: Weak<Inner>, store: Store) {
    let mut pause = REBUILD_EVERY;
    loop {
        tokio::time::sleep(pause).await;
        let Some(inner) = weak.upgrade() else { break };
        let contracts = inner.contracts.clone();
        drop(inner);
        let started = std::time::Instant::now();
        let fresh = store
            .read(move |r| {
                let mut engine = SlaEngine::new(contracts.clone(), Timestamp::now());
                replay_into(&mut engine, &contracts, r)?;
                Ok(engine)
            })
            .await;
        let Some(inner) = weak.upgrade() else { break };
        match fresh {
            Ok(mut engine) => {
                engine.advance(Timestamp::now());
                *inner.lock_engine() = engine;
            }
            Err(e) => {
                tracing::warn!(error = %e, "rebuilding the SLA engine from the shared store failed; keeping the current one")
            }
        }
        pause = REBUILD_EVERY.max(started.elapsed() * 10);
    }
}

impl Inner {
    fn lock_engine(&self) -> std::sync::MutexGuard<'_, SlaEngine> {
        // A panic while holding the lock leaves consistent-enough numbers: keep serving.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self, now: Timestamp) -> Option<Vec<ContractStatus>> {
        self.store.get()?;
        Some(self.lock_engine().status(now))
    }

    fn contract(&self, name: &str) -> Option<&Contract> {
        self.contracts.iter().find(|c| c.name == name)
    }
}

impl SlaHook for SlaService {
    fn on_results(&self, results: &[ProbeResult]) {
        if results.is_empty() {
            return;
        }
        let mut engine = self.inner.lock_engine();
        for r in results {
            engine.observe(&Observation::from_result(r));
        }
    }

    fn on_store_open(&self, store: &Store) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let svc = SlaService {
            inner: self.inner.clone(),
        };
        let n = store.read_blocking(move |reader| svc.replay(reader))?;
        tracing::info!(
            results = n,
            took_ms = started.elapsed().as_millis() as u64,
            "SLA engine replayed the stored results"
        );
        let _ = self.inner.store.set(store.clone());
        // Settle slots even when nothing arrives and nobody scrapes. The task
        // ends with the service (it holds only a weak reference).
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            if store.is_shared() {
                handle.spawn(rebuild_loop(Arc::downgrade(&self.inner), store.clone()));
            }
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            handle.spawn(async move {
                let mut tick = tokio::time::interval(ADVANCE_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    inner.lock_engine().advance(Timestamp::now());
                }
            });
        }
        Ok(())
    }

    fn routes(&self) -> Router {
        Router::new()
            .route("/api/v1/contracts", get(contracts_handler))
            .route("/api/v1/reports/{contract}/{month}", get(report_handler))
            .with_state(self.inner.clone())
    }

    fn contract_status(&self, now: Timestamp) -> Option<Vec<ContractStatus>> {
        self.inner.status(now)
    }

    fn collector(&self) -> Option<Box<dyn Collector>> {
        match SlaCollector::new(self.inner.clone()) {
            Ok(c) => Some(Box::new(c)),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the SLA metrics");
                None
            }
        }
    }
}

/// Every check some contract covers (deduplicated, first-seen order).
fn covered_checks(contracts: &[Contract]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in contracts {
        for k in &c.checks {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
    }
    out
}

/// `[period_start, period_end)` of `month` in the contract's zone, in ms (the store's unit).
///
/// Period bounds are whole seconds and the store keeps `started_at` floored
/// to the millisecond, so `start_ms <= t_ms < end_ms` selects exactly the
/// results with `period_start <= started_at < period_end`.
fn period_ms(contract: &Contract, month: Month) -> (i64, i64) {
    let (start, end) = month.period(&contract.tz);
    (start.as_millisecond(), end.as_millisecond())
}

/// Incremental form of [`evidence_digest`] (same bytes: each raw result, then
/// `\n`), so a month of results need not be held in memory at once.
#[derive(Default)]
struct EvidenceHasher {
    hasher: Sha256,
    n: u64,
}

impl EvidenceHasher {
    fn add(&mut self, raw: &[u8]) {
        self.hasher.update(raw);
        self.hasher.update(b"\n");
        self.n += 1;
    }

    fn finish(self) -> Evidence {
        Evidence {
            results: self.n,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

/// The evidence of `contract`'s `month`: count and SHA-256 over the raw
/// stored results of its checks started in the period, ordered by
/// `(agent, seq)` — the canonical order (see [`evidence_digest`]).
pub fn evidence_from_store(
    reader: &Reader,
    contract: &Contract,
    month: Month,
) -> Result<Evidence, StoreError> {
    let (from, to) = period_ms(contract, month);
    let mut h = EvidenceHasher::default();
    reader.for_each_result(&contract.checks, from, to, |row| h.add(row.raw.as_bytes()))?;
    Ok(h.finish())
}

/// `contract`'s `month` evaluated from the store as of `now` ([`evaluate_month`]
/// over the same rows the evidence digest covers, in one streamed pass), with
/// `evidence` filled. Used by the offline CLI and by the HTTP endpoint for
/// months the engine no longer holds.
pub fn report_from_store(
    reader: &Reader,
    contract: &Contract,
    month: Month,
    now: Timestamp,
) -> Result<MonthReport, StoreError> {
    let (from, to) = period_ms(contract, month);
    let mut ev = MonthEvaluator::new(contract, month);
    let mut h = EvidenceHasher::default();
    let mut bad = 0u64;
    reader.for_each_result(&contract.checks, from, to, |row| {
        h.add(row.raw.as_bytes());
        match serde_json::from_str::<ProbeResult>(&row.raw) {
            Ok(r) => {
                ev.observe(&Observation::from_result(&r));
            }
            Err(_) => bad += 1,
        }
    })?;
    if bad > 0 {
        tracing::warn!(contract = contract.name, %month, bad, "stored results that no longer parse were left out of the report");
    }
    let mut report = ev.report(now);
    report.evidence = h.finish();
    Ok(report)
}

/// Why a report cannot be made (before touching the store).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportRequestError {
    /// No contract of that name; lists the known ones.
    #[error("unknown contract {name:?} (known: {known})")]
    UnknownContract { name: String, known: String },
    /// Not `YYYY-MM`.
    #[error("{0}")]
    BadMonth(String),
    /// The month has not started yet in the contract's zone.
    #[error("month {month} has not started yet in {zone} (nothing to report)")]
    FutureMonth { month: Month, zone: String },
}

/// Resolves a report request: the contract by name and the month (`YYYY-MM`,
/// not after the current month in the contract's zone).
pub fn resolve_request<'c>(
    contracts: &'c [Contract],
    name: &str,
    month: &str,
    now: Timestamp,
) -> Result<(&'c Contract, Month), ReportRequestError> {
    let contract = contracts.iter().find(|c| c.name == name).ok_or_else(|| {
        ReportRequestError::UnknownContract {
            name: name.to_string(),
            known: if contracts.is_empty() {
                "none configured".to_string()
            } else {
                contracts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        }
    })?;
    let month: Month = month
        .trim()
        .parse()
        .map_err(|e: crate::sla::month::MonthParseError| {
            ReportRequestError::BadMonth(e.to_string())
        })?;
    if month.period(&contract.tz).0 > now {
        return Err(ReportRequestError::FutureMonth {
            month,
            zone: contract.timezone.clone(),
        });
    }
    Ok((contract, month))
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn not_ready() -> Response {
    let mut r = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the collector is starting (store not open or SLA replay running)",
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("5"),
    );
    r
}

/// One contract in `GET /api/v1/contracts` (documented in the README).
#[derive(Debug, Clone, Serialize)]
pub struct ContractView {
    /// The contract's name (`contract` label).
    pub name: String,
    pub vendor: String,
    /// The current month in the contract's zone, `YYYY-MM`.
    pub month: Month,
    pub timezone: String,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// Slots that started by now, by state.
    pub slots: SlotCounts,
    /// Month to date, percent; `null` without UP or DOWN slots.
    pub availability_percent: Option<f64>,
    /// The availability objective's target, percent (`null` without one).
    pub target_percent: Option<f64>,
    pub downtime_seconds: u64,
    /// Every objective is met so far.
    pub met: bool,
    /// Per objective: `kind`, `objective`, `target`, `attained`, `met` (as in the report).
    pub objectives: Vec<ObjectiveResult>,
    /// The latest settled slot is DOWN.
    pub down_now: bool,
    /// Error budget remaining, ratio (`null` without an availability objective).
    pub error_budget_remaining: Option<f64>,
    pub credit_percent: f64,
    /// DOWN runs so far this month.
    pub incidents: u32,
    /// The monotonic counters behind `slaprobe_sla_*_total`.
    pub counters: SlaCounters,
}

impl ContractView {
    fn new(s: ContractStatus, contract: Option<&Contract>) -> ContractView {
        ContractView {
            met: s.objectives.iter().all(|o| o.met),
            target_percent: contract.and_then(Contract::availability_target),
            timezone: contract.map(|c| c.timezone.clone()).unwrap_or_default(),
            name: s.contract,
            vendor: s.vendor,
            month: s.month,
            period_start: s.period_start,
            period_end: s.period_end,
            slots: s.slots,
            availability_percent: s.availability_percent,
            downtime_seconds: s.downtime_seconds,
            objectives: s.objectives,
            down_now: s.down_now,
            error_budget_remaining: s.error_budget_remaining,
            credit_percent: s.credit_percent,
            incidents: s.incidents,
            counters: s.counters,
        }
    }
}

/// Body of `GET /api/v1/contracts`.
#[derive(Debug, Clone, Serialize)]
pub struct ContractsResponse {
    /// The instant the figures are as of.
    pub as_of: Timestamp,
    pub contracts: Vec<ContractView>,
}

/// `GET /api/v1/contracts`: month-to-date status of every contract.
async fn contracts_handler(State(inner): State<Arc<Inner>>) -> Response {
    let now = Timestamp::now();
    let Some(status) = inner.status(now) else {
        return not_ready();
    };
    let contracts = status.into_iter().map(|s| {
        let c = inner.contract(&s.contract);
        ContractView::new(s, c)
    });
    Json(ContractsResponse {
        as_of: now,
        contracts: contracts.collect(),
    })
    .into_response()
}

/// `GET /api/v1/reports/{contract}/{YYYY-MM}?format=json|csv|html`.
async fn report_handler(
    State(inner): State<Arc<Inner>>,
    Path((name, month)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let format = match query.get("format").map(|f| f.parse::<Format>()) {
        None => Format::Json,
        Some(Ok(f)) => f,
        Some(Err(e)) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let now = Timestamp::now();
    let (contract, month) = match resolve_request(&inner.contracts, &name, &month, now) {
        Ok(x) => x,
        Err(e @ ReportRequestError::UnknownContract { .. }) => {
            return json_error(StatusCode::NOT_FOUND, e.to_string());
        }
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(store) = inner.store.get().cloned() else {
        return not_ready();
    };
    // A shared store (PostgreSQL) takes results from other collectors that
    // this engine never saw: evaluate from the store so every collector
    // gives the same report.
    let held = if store.is_shared() {
        None
    } else {
        inner.lock_engine().report(&contract.name, month, now)
    };
    let contract = contract.clone();
    let result = match held {
        Some(mut report) => store
            .read(move |r| evidence_from_store(r, &contract, month))
            .await
            .map(|evidence| {
                report.evidence = evidence;
                report
            }),
        None => {
            store
                .read(move |r| report_from_store(r, &contract, month, now))
                .await
        }
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(contract = name, %month, error = %e, "building a report failed");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the store failed: {e}"),
            );
        }
    };
    // Rendering a month of days into HTML is CPU work, but small (tens of KB): inline.
    let body = render::render(&report, format);
    let mut resp = body.into_response();
    if let Ok(v) = HeaderValue::from_str(format.content_type()) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

/// The `slaprobe_sla_*` families: name, help, type, labels.
const FAMILIES: &[crate::metrics::FamilySpec] = &[
    (
        "slaprobe_sla_target_ratio",
        "Availability target of the contract (ratio 0-1).",
        MetricType::GAUGE,
        &["contract", "vendor", "objective"],
    ),
    (
        "slaprobe_sla_attained_ratio",
        "Availability attained this month to date (ratio 0-1).",
        MetricType::GAUGE,
        &["contract", "vendor", "objective"],
    ),
    (
        "slaprobe_sla_met",
        "1 if the objective is met this month to date, else 0.",
        MetricType::GAUGE,
        &["contract", "vendor", "objective"],
    ),
    (
        "slaprobe_sla_latency_seconds",
        "Latency objective: the percentile of the phase this month to date.",
        MetricType::GAUGE,
        &["contract", "vendor", "objective"],
    ),
    (
        "slaprobe_sla_latency_max_seconds",
        "Latency objective: the largest acceptable percentile.",
        MetricType::GAUGE,
        &["contract", "vendor", "objective"],
    ),
    (
        "slaprobe_sla_down",
        "1 if the latest settled slot is confirmed DOWN, else 0.",
        MetricType::GAUGE,
        &["contract", "vendor"],
    ),
    (
        "slaprobe_sla_error_budget_remaining_ratio",
        "Error budget left this month (1 = untouched, below 0 = overspent).",
        MetricType::GAUGE,
        &["contract", "vendor"],
    ),
    (
        "slaprobe_sla_credit_ratio",
        "Service credit earned this month to date (ratio of the fee).",
        MetricType::GAUGE,
        &["contract", "vendor"],
    ),
    (
        "slaprobe_sla_downtime_seconds_total",
        "Confirmed DOWN time of settled slots.",
        MetricType::COUNTER,
        &["contract", "vendor"],
    ),
    (
        "slaprobe_sla_eligible_seconds_total",
        "UP plus DOWN time of settled slots.",
        MetricType::COUNTER,
        &["contract", "vendor"],
    ),
    (
        "slaprobe_sla_excluded_seconds_total",
        "Settled time excluded from availability, by reason.",
        MetricType::COUNTER,
        &["contract", "vendor", "reason"],
    ),
    (
        "slaprobe_sla_incidents_total",
        "Incidents (runs of DOWN slots) among settled slots.",
        MetricType::COUNTER,
        &["contract", "vendor"],
    ),
];

/// A Prometheus collector over the engine's `status(now)` at scrape time.
struct SlaCollector {
    inner: Arc<Inner>,
    descs: Vec<Desc>,
}

impl SlaCollector {
    fn new(inner: Arc<Inner>) -> Result<SlaCollector, prometheus::Error> {
        Ok(SlaCollector {
            inner,
            descs: crate::metrics::descs(FAMILIES)?,
        })
    }
}

/// The SLA families for `status` (pure, for tests).
fn families(status: &[ContractStatus]) -> Vec<MetricFamily> {
    let mut fams: Vec<Vec<Metric>> = FAMILIES.iter().map(|_| Vec::new()).collect();
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    for s in status {
        let cv = || vec![lp("contract", &s.contract), lp("vendor", &s.vendor)];
        let cvo = |o: &str| {
            vec![
                lp("contract", &s.contract),
                lp("vendor", &s.vendor),
                lp("objective", o),
            ]
        };
        for o in &s.objectives {
            if o.kind == "availability" {
                fams[0].push(gauge(cvo(&o.objective), o.target / 100.0));
                if let Some(a) = o.attained {
                    fams[1].push(gauge(cvo(&o.objective), a / 100.0));
                }
            } else {
                if let Some(v) = o.attained {
                    fams[3].push(gauge(cvo(&o.objective), v));
                }
                fams[4].push(gauge(cvo(&o.objective), o.target));
            }
            fams[2].push(gauge(cvo(&o.objective), b(o.met)));
        }
        fams[5].push(gauge(cv(), b(s.down_now)));
        if let Some(r) = s.error_budget_remaining.filter(|r| r.is_finite()) {
            fams[6].push(gauge(cv(), r));
        }
        fams[7].push(gauge(cv(), s.credit_percent / 100.0));
        let c = &s.counters;
        fams[8].push(counter(cv(), c.downtime_seconds as f64));
        fams[9].push(counter(cv(), c.eligible_seconds as f64));
        for (reason, v) in [
            ("maintenance", c.maintenance_seconds),
            ("nodata", c.nodata_seconds),
        ] {
            let mut l = cv();
            l.push(lp("reason", reason));
            fams[10].push(counter(l, v as f64));
        }
        fams[11].push(counter(cv(), c.incidents as f64));
    }
    crate::metrics::assemble(FAMILIES, fams)
}

impl Collector for SlaCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        match self.inner.status(Timestamp::now()) {
            Some(status) => families(&status),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::evidence_digest;

    #[test]
    fn incremental_digest_matches_evidence_digest() {
        let rows: Vec<&[u8]> = vec![b"{\"seq\":1}", b"{\"seq\":2}", b""];
        let mut h = EvidenceHasher::default();
        for r in &rows {
            h.add(r);
        }
        let e = h.finish();
        let (n, sha) = evidence_digest(rows.into_iter());
        assert_eq!((e.results, e.sha256), (n, sha));
        let empty = EvidenceHasher::default().finish();
        assert_eq!(empty.sha256, evidence_digest(std::iter::empty()).1);
    }
}
