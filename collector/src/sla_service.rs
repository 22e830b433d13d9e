//! The SLA ledger wired into the running collector (DESIGN.md §6–§8, §6b):
//! [`SlaService`] keeps the ledger ([`Keeper`]) or follows it, answers the
//! status that `/api/v1/contracts` and the status page serve (the handlers
//! are [`crate::http::sla`]) and builds reports from the store. Its
//! `slaprobe_sla_*` families are written by `sla_metrics.rs`.
//!
//! # Where the figures come from
//!
//! Nothing is fed from an ingest request: a request that is cut off after
//! its commit, a crash between commit and ack, or another collector's
//! ingest all reach the figures the same way, through the store's feed of
//! committed batches. One thread per collector (`slaprobe-sla-ledger`)
//! either **keeps** the ledger — follows the feed, settles slots, writes the
//! changed rows with the new cursor in one fenced transaction — or, when
//! another collector on the same PostgreSQL holds the keeper's advisory
//! lock, **follows** it by reading the rows written since the version it
//! has, every second. Every collector serves month-to-date figures from
//! those rows ([`LedgerData`]), so all agree once they have read the same
//! version (within about a second of each other), and a collector that
//! stops keeping leaves the lock to the next. Ingest only wakes the keeper
//! after a commit, so new results show within one round; the keeper also
//! runs every second without being woken.
//!
//! # Start-up
//!
//! The ledger's rows are read once when the store opens (a few thousand
//! rows; no replay of results), so `/readyz` does not wait for the month.
//! The keeper then rebuilds only its open slots from the store and catches
//! up from its persisted cursor in the background.
//!
//! # Reports
//!
//! Every report is evaluated from the store with [`evaluate_month`] in one
//! streamed pass that also computes the evidence digest, on the blocking
//! pool, at most [`REPORTS_AT_ONCE`] at a time per collector (429 beyond),
//! and abandoned when the client goes away. The offline CLI
//! (`slaprobe-collector report`) uses the same function, [`report_from_store`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use slaprobe_wire::ProbeResult;
use tokio_util::sync::CancellationToken;

use crate::sla::report::Evidence;
use crate::sla::{
    Contract, ContractStatus, Keeper, LedgerData, Month, MonthEvaluator, MonthReport, Observation,
};
use crate::store::{LedgerConn, Reader, Store, StoreAddress, StoreError};
use crate::wake::Wake;

#[cfg(doc)]
use crate::sla::{evaluate_month, evidence_digest};

/// How often the keeper runs a round without being woken, and a follower re-reads the ledger.
const ROUND_EVERY: Duration = Duration::from_secs(1);

/// Pause after a failed round or a lost keeper role before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// Reports built at once per collector; more get 429 with Retry-After.
pub const REPORTS_AT_ONCE: usize = 2;

/// The SLA ledger in the collector. Cheap to share (`Arc`).
#[derive(Clone)]
pub struct SlaService {
    inner: Arc<Inner>,
}

struct Inner {
    /// The validated contracts, config order.
    contracts: Vec<Contract>,
    /// Where the store is (the keeper opens connections of its own).
    location: StoreAddress,
    /// Months stay in the keeper's memory this long after their end (`max_result_age`).
    keep_after_end: Duration,
    /// What status and metrics are served from; `None` until the store opened.
    view: Mutex<Option<LedgerData>>,
    /// Set once the store is open: reports read it.
    store: std::sync::OnceLock<Store>,
    /// Wakes the ledger thread (a batch was committed) and stops it (shutdown).
    wake: Arc<Wake>,
    /// Reports being built (at most [`REPORTS_AT_ONCE`]).
    reports: Arc<tokio::sync::Semaphore>,
    /// The configured agents' locations: the location metrics show each
    /// (0 until rule 1a impairs it), so dashboards and alerts see them.
    known_locations: Vec<String>,
}

impl std::fmt::Debug for SlaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlaService")
            .field("contracts", &self.inner.contracts.len())
            .finish_non_exhaustive()
    }
}

impl SlaService {
    /// A service for validated `contracts` on the store at `location`;
    /// nothing is read until the store opens.
    pub fn new(
        contracts: Vec<Contract>,
        location: StoreAddress,
        keep_after_end: Duration,
    ) -> SlaService {
        SlaService {
            inner: Arc::new(Inner {
                contracts,
                location,
                keep_after_end,
                view: Mutex::new(None),
                store: std::sync::OnceLock::new(),
                wake: Arc::new(Wake::default()),
                reports: Arc::new(tokio::sync::Semaphore::new(REPORTS_AT_ONCE)),
                known_locations: Vec::new(),
            }),
        }
    }

    /// The service for a collector's config: its contracts, its store,
    /// months kept as long as results are accepted (`max_result_age`).
    pub fn for_config(config: &crate::CollectorConfig) -> SlaService {
        let mut s = SlaService::new(
            config.contracts.clone(),
            config.collector.store_address().clone(),
            config.collector.max_result_age,
        );
        if let Some(inner) = Arc::get_mut(&mut s.inner) {
            inner.known_locations = config
                .agents
                .iter()
                .map(|a| a.location.clone())
                .chain(config.embedded_agent.iter().map(|e| e.location.clone()))
                .collect();
        }
        s
    }

    /// The status of every contract as of `now` (`None` before the store opened).
    pub fn status(&self, now: Timestamp) -> Option<Vec<ContractStatus>> {
        self.inner.status(now)
    }
}

impl Inner {
    fn status(&self, now: Timestamp) -> Option<Vec<ContractStatus>> {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        Some(view.as_mut()?.status(&self.contracts, now))
    }

    /// The location track as served (rule 1a per location).
    fn locations(&self) -> crate::sla::ledger::LocationsLedger {
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        let mut l = view
            .as_ref()
            .map(|v| v.locations.clone())
            .unwrap_or_default();
        for name in &self.known_locations {
            l.locations.entry(name.clone()).or_default();
        }
        l
    }

    fn contract(&self, name: &str) -> Option<&Contract> {
        self.contracts.iter().find(|c| c.name == name)
    }

    fn wake(&self) {
        self.wake.notify();
    }

    /// Sleeps until woken or `timeout`; false once stopping.
    fn wait(&self, timeout: Duration) -> bool {
        self.wake.wait(timeout)
    }

    /// Applies rows read from or written to the store to the served view.
    fn apply(&self, changes: &crate::store::LedgerChanges) {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        let v = view.get_or_insert_with(LedgerData::default);
        v.apply(
            &self.contracts,
            &changes.rows,
            changes.state.version,
            changes.state.cursor,
        );
    }

    fn served_version(&self) -> u64 {
        self.view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |v| v.version)
    }
}

/// Reads the whole ledger from the store into a fresh [`LedgerData`].
fn load(reader: &Reader, contracts: &[Contract]) -> Result<LedgerData, StoreError> {
    let changes = reader.ledger_since(0)?;
    let mut data = LedgerData::default();
    data.apply(
        contracts,
        &changes.rows,
        changes.state.version,
        changes.state.cursor,
    );
    Ok(data)
}

/// The ledger thread: keep the ledger while this collector holds the role,
/// follow it otherwise; until the service stops.
fn ledger_thread(inner: Arc<Inner>) {
    while !inner.wake.is_stopped() {
        if let Err(e) = keep_or_follow(&inner) {
            tracing::warn!(error = %e, "SLA ledger: round failed; retrying");
            inner.wait(RETRY_AFTER_ERROR);
        }
    }
}

fn keep_or_follow(inner: &Inner) -> Result<(), StoreError> {
    let mut conn = LedgerConn::open(&inner.location)?;
    let mut reader = Reader::open(&inner.location)?;
    // Follow until this collector becomes the keeper.
    while !conn.try_lead()? {
        let changes = reader.ledger_since(inner.served_version())?;
        if changes.state.version != inner.served_version() {
            inner.apply(&changes);
        }
        if !inner.wait(ROUND_EVERY) {
            return Ok(());
        }
    }
    tracing::info!("SLA ledger: this collector keeps the ledger");
    // Start from the store's rows, and serve the same (another keeper may
    // have written since this collector last read them).
    let all = reader.ledger_since(0)?;
    let mut data = LedgerData::default();
    data.apply(
        &inner.contracts,
        &all.rows,
        all.state.version,
        all.state.cursor,
    );
    {
        let mut fresh = LedgerData::default();
        fresh.apply(
            &inner.contracts,
            &all.rows,
            all.state.version,
            all.state.cursor,
        );
        *inner.view.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh);
    }
    let mut keeper = Keeper::new(inner.contracts.clone(), data, inner.keep_after_end);
    let started = std::time::Instant::now();
    keeper.load_open(&mut reader, Timestamp::now())?;
    let mut first = true;
    loop {
        let now = Timestamp::now();
        if let Some(write) = keeper.round(&mut reader, now)? {
            let version = conn.write(&write)?;
            keeper.written(version);
            inner.apply(&crate::store::LedgerChanges {
                state: crate::store::LedgerState {
                    cursor: write.cursor,
                    version,
                },
                rows: write.rows,
            });
        }
        if first {
            first = false;
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                cursor = keeper.data.cursor,
                "SLA ledger caught up"
            );
        }
        if keeper.unparsable > 0 {
            tracing::warn!(
                results = keeper.unparsable,
                "stored results that no longer parse were left out of the SLA ledger"
            );
            keeper.unparsable = 0;
        }
        if !inner.wait(ROUND_EVERY) {
            return Ok(());
        }
    }
}

impl SlaService {
    /// Wakes the ledger thread: a batch was committed. Only a hint: the
    /// ledger follows the store's feed, so nothing is lost when a request
    /// is cut off before this is called.
    pub fn wake(&self) {
        self.inner.wake();
    }

    /// Loads the ledger's rows and starts the ledger thread. Call once on
    /// the blocking pool when the store is open, **before** ingest accepts
    /// results (readiness waits for it). The thread ends when `stop` is
    /// cancelled (or [`SlaService::stop`]).
    pub fn start(&self, store: &Store, stop: CancellationToken) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let contracts = self.inner.contracts.clone();
        let data = store.read_blocking(move |r| load(r, &contracts))?;
        tracing::info!(
            version = data.version,
            cursor = data.cursor,
            took_ms = started.elapsed().as_millis() as u64,
            "SLA ledger loaded"
        );
        *self.inner.view.lock().unwrap_or_else(|e| e.into_inner()) = Some(data);
        let _ = self.inner.store.set(store.clone());
        let inner = self.inner.clone();
        let thread = std::thread::Builder::new()
            .name("slaprobe-sla-ledger".into())
            .spawn(move || ledger_thread(inner))?;
        self.inner.wake.attach(thread);
        self.inner.wake.stop_on(stop);
        Ok(())
    }

    /// Stops the ledger thread and waits for it (at most a round's worth of
    /// work, ~0.5 s). Idempotent.
    pub fn stop(&self) {
        self.inner.wake.stop_and_join();
    }

    /// The validated contracts, config order.
    pub fn contracts(&self) -> &[Contract] {
        &self.inner.contracts
    }

    /// The contract called `name`.
    pub fn contract(&self, name: &str) -> Option<&Contract> {
        self.inner.contract(name)
    }

    /// The store, once [`SlaService::start`] ran.
    pub fn store(&self) -> Option<&Store> {
        self.inner.store.get()
    }

    /// Rule 1a per location as served (every configured location, 0 until impaired).
    pub fn locations(&self) -> crate::sla::ledger::LocationsLedger {
        self.inner.locations()
    }

    /// The ledger version served and the feed position it reflects.
    pub fn position(&self) -> LedgerPosition {
        let view = self.inner.view.lock().unwrap_or_else(|e| e.into_inner());
        let v = view.as_ref();
        LedgerPosition {
            version: v.map_or(0, |v| v.version),
            cursor: v.map_or(0, |v| v.cursor),
        }
    }

    /// A slot in the report pool (at most [`REPORTS_AT_ONCE`]), or `None` when it is full.
    pub fn report_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inner.reports.clone().try_acquire_owned().ok()
    }
}

/// The ledger version served and the feed position (batch number) it reflects:
/// two collectors showing the same version show the same figures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LedgerPosition {
    pub version: u64,
    pub cursor: u64,
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
/// stored results of its checks and canaries started in the period, ordered by
/// `(agent, seq)` — the canonical order (see [`evidence_digest`]).
pub fn evidence_from_store(
    reader: &Reader,
    contract: &Contract,
    month: Month,
) -> Result<Evidence, StoreError> {
    let (from, to) = period_ms(contract, month);
    let mut h = EvidenceHasher::default();
    reader.for_each_result(&contract.evidence_checks(), from, to, |row| {
        h.add(row.raw.as_bytes())
    })?;
    Ok(h.finish())
}

/// `contract`'s `month` evaluated from the store as of `now` ([`evaluate_month`]
/// over the same rows the evidence digest covers, in one streamed pass), with
/// `evidence` filled. Used by the offline CLI and by the HTTP endpoint.
pub fn report_from_store(
    reader: &Reader,
    contract: &Contract,
    month: Month,
    now: Timestamp,
) -> Result<MonthReport, StoreError> {
    report_from_store_until(reader, contract, month, now, &AtomicBool::new(false))
}

/// Times a report starts over when the store changed between its passes.
const REPORT_ATTEMPTS: usize = 3;

/// [`report_from_store`] that stops evaluating once `cancel` is set (the
/// rest of the rows are skipped unread; the result is then meaningless).
///
/// The first pass decides every slot, hashes the evidence and counts the
/// latency values; a second pass (rarely more) over the same rows finds the
/// exact percentiles (see [`crate::sla::select`]), so memory does not grow
/// with the month. Every pass reads the results of the batches committed
/// before it began (the feed's head then; compacted results always), so a
/// batch committed meanwhile is in none of them. Should the rows still
/// differ between passes (a result compacted in between keeps its place: this
/// is a guard), the report starts over.
pub fn report_from_store_until(
    reader: &Reader,
    contract: &Contract,
    month: Month,
    now: Timestamp,
    cancel: &AtomicBool,
) -> Result<MonthReport, StoreError> {
    let (from, to) = period_ms(contract, month);
    for _ in 0..REPORT_ATTEMPTS {
        let head = reader.feed_head()?;
        let mut ev = MonthEvaluator::new(contract, month, now);
        let mut h = EvidenceHasher::default();
        let mut bad = 0u64;
        reader.for_each_result(&contract.evidence_checks(), from, to, |row| {
            if cancel.load(Ordering::Relaxed) || row.batch_no > head {
                return;
            }
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
        let consistent = loop {
            match ev.end_pass() {
                Ok(false) => break true,
                Err(_) => break false,
                Ok(true) => {
                    reader.for_each_result(&contract.evidence_checks(), from, to, |row| {
                        if cancel.load(Ordering::Relaxed) || row.batch_no > head {
                            return;
                        }
                        if let Ok(r) = serde_json::from_str::<ProbeResult>(&row.raw) {
                            ev.resample(&Observation::from_result(&r));
                        }
                    })?
                }
            }
        };
        if consistent || cancel.load(Ordering::Relaxed) {
            let mut report = ev.report();
            report.evidence = h.finish();
            return Ok(report);
        }
        tracing::info!(contract = contract.name, %month, "the month's results changed between the report's passes; starting over");
    }
    Err(StoreError::Task(format!(
        "the results of {} for {month} kept changing while the report read them ({REPORT_ATTEMPTS} attempts)",
        contract.name
    )))
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
