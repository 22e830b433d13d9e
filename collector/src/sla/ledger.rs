//! The SLA ledger: every contract's slot verdicts, month-to-date latency and
//! monotonic counters, **derived from what the store committed** and kept in
//! the store, so that memory is bounded by the open slots, a restart does
//! not replay the month, and every collector on a shared store serves the
//! same figures (DESIGN.md §6b).
//!
//! # Who writes it
//! One [`Keeper`] at a time (on PostgreSQL the collector holding the
//! ledger's advisory lock; with SQLite the only collector) follows the
//! store's feed of committed batches from its persisted cursor, updates the
//! verdicts, and writes the rows it changed together with the new cursor in
//! one fenced transaction. Every collector (the keeper included) serves
//! from a [`LedgerData`] built from those rows, so they agree once they have
//! read the same version.
//!
//! # Verdicts
//! A month holds one byte per slot: the [`SlotState`] code in the low two
//! bits and the counters' flags above. While a slot is **open** (it has not
//! settled: `now < slot end + one slot`) the keeper keeps the deciding
//! result of each (check, location) in memory — the same packed key as the
//! offline evaluator, so the verdict is the same by construction — and
//! writes the provisional verdict each round. A slot **settles** one slot
//! after its end; its cells are then dropped. A result that arrives for a
//! settled slot (a back-fill) marks it dirty, and the keeper re-derives that
//! slot from the store, which holds every result of it. On start the keeper
//! rebuilds its open slots' cells from the store too (cells are idempotent:
//! a result seen twice decides nothing twice).
//!
//! Canaries (rule 1a) feed every contract: an open slot also holds each
//! location's rule 1a flags (`Cells::flags`, ORed exactly as the offline
//! evaluator does), and a late canary result marks the slot dirty in every
//! contract, which re-derives it from the store's covered checks **and**
//! canaries ([`Contract::evidence_checks`]).
//!
//! # Location track (`slaprobe_location_impaired*`)
//! Rule 1a per location on a one-minute UTC grid, from the same inputs
//! (canaries, `agent_error` of covered checks and canaries), settled one
//! minute after each minute's end and persisted as the row
//! [`LOCATIONS_ROW`] ([`LocationsLedger`]).
//!
//! # Counters (`slaprobe_sla_*_total`)
//! Per contract, never stepping back, persisted with the ledger:
//! - when a slot settles it adds its seconds to `maintenance`, `nodata` or
//!   `eligible` (plus `downtime` when DOWN, and an incident when the slot
//!   before it is not DOWN), by its state then;
//! - a settled slot that later becomes UP or DOWN for the first time (a
//!   back-filled result) adds its seconds to `eligible` then, and one that
//!   becomes DOWN for the first time adds to `downtime` (and an incident when
//!   the slot before it is not DOWN) then. So back-filled slots are counted
//!   when their data is committed; a slot counted as NODATA and later filled
//!   is in both `nodata` and `eligible`, and a DOWN slot a late PASS turns UP
//!   keeps its counted downtime (the month's figures show the current verdicts).
//!
//! # Latency
//! Month to date the percentile comes from a [`LatencySketch`] per latency
//! objective fed once per result through the feed (0.2 % bound; `met` is
//! exact). Reports compute the exact nearest-rank percentile from the store.
//!
//! # Months
//! A month is created when a result for it (or its start) is seen: its
//! verdicts are derived from the store as it is then (results stored before
//! the feed existed included), its sketch from the same pass, and the feed
//! batches that pass already covered are skipped for it (`base_batch`).
//! Months stay in memory until `keep_after_end` after their end.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slaprobe_wire::ProbeResult;

use super::contract::Contract;
use super::month::{Month, MonthFrame};
use super::observation::Observation;
use super::report::{ObjectiveResult, SlotCounts, budget_in, objective_results};
use super::rules::{SlotState, availability_percent, check_state, contract_state, credit_percent};
use super::sketch::LatencySketch;
use super::state::{FAIL, PRESENT, impair_flags, impaired, pack, tally_of};
use crate::store::{LedgerRow, LedgerWrite, StoreError, StoredResult};

/// Monotonic per-contract counters for `slaprobe_sla_*_total` (seconds are
/// whole seconds; when each counts: see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaCounters {
    /// `slaprobe_sla_downtime_seconds_total`: settled DOWN time.
    pub downtime_seconds: u64,
    /// `slaprobe_sla_eligible_seconds_total`: settled UP + DOWN time.
    pub eligible_seconds: u64,
    /// `slaprobe_sla_excluded_seconds_total{reason="maintenance"}`.
    pub maintenance_seconds: u64,
    /// `slaprobe_sla_excluded_seconds_total{reason="nodata"}`.
    pub nodata_seconds: u64,
    /// `slaprobe_sla_incidents_total`: DOWN runs among settled slots.
    pub incidents: u64,
}

/// A contract's month to date (for `/api/v1/contracts` and the SLA metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractStatus {
    pub contract: String,
    pub vendor: String,
    pub month: Month,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// Counted slots (those that started by now).
    pub slots: SlotCounts,
    /// Attained availability, percent (`null` without UP or DOWN slots);
    /// `slaprobe_sla_attained_ratio` is this / 100.
    pub availability_percent: Option<f64>,
    pub downtime_seconds: u64,
    /// Per objective: target, attained, met (as in the report).
    pub objectives: Vec<ObjectiveResult>,
    /// The latest settled slot is DOWN (`slaprobe_sla_down`).
    pub down_now: bool,
    pub error_budget_remaining: Option<f64>,
    pub credit_percent: f64,
    /// Incidents (DOWN runs) so far this month.
    pub incidents: u32,
    /// The monotonic counters.
    pub counters: SlaCounters,
}

/// Slots per persisted chunk row.
pub const CHUNK_SLOTS: u32 = 256;
/// Batches read from the feed per step of a round: a step's rows are held
/// at once (16 batches of 1,000 results: ~10 MB; 256 made a backlog cost
/// 150 MB of RSS in the month bench).
const FEED_BATCHES: u64 = 16;
/// Feed steps per round at most: a longer backlog is written in parts.
const MAX_FEED_STEPS: usize = 256;
/// Work per round before it writes what it has (a backlog is written in parts).
const ROUND_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

const STATE_BITS: u8 = 0b11;
/// Counted in `eligible` (and the state was UP or DOWN then).
const COUNTED_ELIGIBLE: u8 = 1 << 2;
/// Counted in `downtime`.
const COUNTED_DOWN: u8 = 1 << 3;
/// Counted in `nodata` or `maintenance` when it settled.
const COUNTED_EXCLUDED: u8 = 1 << 4;

fn state_of(byte: u8) -> SlotState {
    SlotState::from_code(byte & STATE_BITS)
}

/// What a contract's verdicts depend on: a change re-derives its months.
pub fn fingerprint(c: &Contract) -> String {
    let mut h = Sha256::new();
    let text = format!(
        "{:?}|{}|{}|{}|{:?}|{:?}",
        c.checks,
        c.timezone,
        c.slot_seconds(),
        c.quorum,
        c.maintenance,
        c.objectives
    );
    h.update(text.as_bytes());
    // Canaries decide impairment (rule 1a); absent, the fingerprint is the
    // one ledgers written before canaries existed hold.
    if !c.canaries.is_empty() {
        h.update(format!("|canaries {:?}", c.canaries).as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// One contract-month of the ledger.
#[derive(Debug, Clone)]
pub struct MonthLedger {
    /// Slots `[0, settled)` have settled.
    pub settled: u32,
    /// Feed batches up to this number were read by the pass that created the month.
    pub base_batch: u64,
    /// One byte per slot: state and counter flags.
    pub verdicts: Vec<u8>,
    /// Per latency objective (contract order).
    pub latency: Vec<LatencySketch>,
}

impl MonthLedger {
    /// A month before any data: every slot NODATA or MAINTENANCE, empty sketches.
    fn blank(c: &Contract, frame: &MonthFrame, base_batch: u64) -> MonthLedger {
        MonthLedger {
            settled: 0,
            base_batch,
            verdicts: blank_verdicts(frame),
            latency: vec![LatencySketch::default(); c.latency_objectives().count()],
        }
    }
}

#[derive(Serialize, Deserialize)]
struct MonthRow {
    settled: u32,
    base_batch: u64,
    latency: Vec<LatencySketch>,
}

#[derive(Serialize, Deserialize)]
struct ContractRow {
    fingerprint: String,
    counters: SlaCounters,
}

/// One contract's part of the ledger.
#[derive(Debug, Clone, Default)]
pub struct ContractLedger {
    /// The [`fingerprint`] the months were derived under.
    pub fingerprint: String,
    pub counters: SlaCounters,
    pub months: BTreeMap<Month, MonthLedger>,
}

/// The ledger as the store holds it: what every collector serves from.
#[derive(Debug, Default)]
pub struct LedgerData {
    /// The store version these rows are as of.
    pub version: u64,
    /// The feed cursor they reflect.
    pub cursor: u64,
    /// By contract name.
    pub contracts: HashMap<String, ContractLedger>,
    /// Rule 1a applied to each location itself, minute by minute (the
    /// `slaprobe_location_impaired*` metrics).
    pub locations: LocationsLedger,
    /// Month frames, computed once per (contract, month).
    frames: HashMap<(String, Month), MonthFrame>,
}

/// The ledger row (its `contract` column) holding [`LocationsLedger`]; not a
/// valid contract name, so it meets none.
pub const LOCATIONS_ROW: &str = "#locations";

/// One location's impairment as the metrics show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationStatus {
    /// `slaprobe_location_impaired`: the latest settled minute was impaired.
    pub impaired: bool,
    /// `slaprobe_location_impaired_seconds_total`: impaired minutes settled so far × 60.
    pub impaired_seconds: u64,
}

/// Rule 1a per location on a one-minute UTC grid (minute `m` is
/// `[m × 60 s, (m + 1) × 60 s)` since the epoch), over the results rule 1a
/// reads for the contracts: canaries, and `agent_error` of covered checks
/// and canaries. A minute settles one minute after its end, like a slot;
/// a result for a settled minute changes no counter (the contracts' slots
/// it touches are re-derived all the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationsLedger {
    /// Minutes `< settled` have settled.
    pub settled: i64,
    /// By location name.
    pub locations: BTreeMap<String, LocationStatus>,
}

impl LedgerData {
    /// The frame of `contract`'s `month` (cached).
    pub fn frame(&mut self, contract: &Contract, month: Month) -> &MonthFrame {
        let key = (contract.name.clone(), month);
        if !self.frames.contains_key(&key) {
            let f = MonthFrame::new(contract, month);
            self.frames.insert(key.clone(), f);
        }
        &self.frames[&key]
    }

    /// Applies rows read from (or written to) the store, then takes `version`
    /// and `cursor`. Rows of unknown contracts are ignored.
    pub fn apply(&mut self, contracts: &[Contract], rows: &[LedgerRow], version: u64, cursor: u64) {
        for row in rows {
            if row.contract == LOCATIONS_ROW {
                if let Ok(l) = serde_json::from_slice::<LocationsLedger>(&row.data) {
                    self.locations = l;
                }
                continue;
            }
            let Some(c) = contracts.iter().find(|c| c.name == row.contract) else {
                continue;
            };
            if row.month.is_empty() {
                if let Ok(r) = serde_json::from_slice::<ContractRow>(&row.data) {
                    let entry = self.contracts.entry(c.name.clone()).or_default();
                    if entry.fingerprint != r.fingerprint {
                        // Re-derived under another contract definition: what was cached is stale.
                        entry.months.clear();
                    }
                    entry.fingerprint = r.fingerprint;
                    entry.counters = r.counters;
                }
                continue;
            }
            let Ok(month) = row.month.parse::<Month>() else {
                continue;
            };
            let n = self.frame(c, month).n_slots() as usize;
            let held = self
                .contracts
                .get(&c.name)
                .is_some_and(|l| l.months.contains_key(&month));
            if !held {
                let m = MonthLedger::blank(c, self.frame(c, month), 0);
                self.contracts
                    .entry(c.name.clone())
                    .or_default()
                    .months
                    .insert(month, m);
            }
            let Some(m) = self
                .contracts
                .get_mut(&c.name)
                .and_then(|l| l.months.get_mut(&month))
            else {
                continue;
            };
            if row.chunk < 0 {
                if let Ok(r) = serde_json::from_slice::<MonthRow>(&row.data) {
                    m.settled = r.settled;
                    m.base_batch = r.base_batch;
                    m.latency = r.latency;
                }
            } else {
                let lo = (row.chunk as usize)
                    .saturating_mul(CHUNK_SLOTS as usize)
                    .min(n);
                let hi = (lo + row.data.len()).min(n);
                m.verdicts[lo..hi].copy_from_slice(&row.data[..hi - lo]);
            }
        }
        self.version = version;
        self.cursor = cursor;
    }

    /// Month-to-date status of every contract as of `now`, in config order.
    pub fn status(&mut self, contracts: &[Contract], now: Timestamp) -> Vec<ContractStatus> {
        contracts
            .iter()
            .filter_map(|c| self.contract_status(c, now))
            .collect()
    }

    fn contract_status(&mut self, c: &Contract, now: Timestamp) -> Option<ContractStatus> {
        let month = Month::containing(now, &c.tz)?;
        self.frame(c, month);
        let frame = self.frames.get(&(c.name.clone(), month))?;
        let ledger = self.contracts.get(&c.name);
        let held = ledger.and_then(|l| l.months.get(&month));
        let blank;
        let verdicts: &[u8] = match held {
            Some(m) => &m.verdicts,
            None => {
                blank = blank_verdicts(frame);
                &blank
            }
        };
        let counted = frame.counted(now);
        let tally = tally_of(frame, verdicts, counted);
        let sketches: Vec<LatencySketch> = held.map(|m| m.latency.clone()).unwrap_or_default();
        let lat: Vec<(usize, Option<f64>)> = c
            .latency_objectives()
            .enumerate()
            .map(|(k, (_, p, _))| {
                let s = sketches.get(k);
                (
                    s.map_or(0, |s| s.len() as usize),
                    s.and_then(|s| s.percentile(p)),
                )
            })
            .collect();
        let mut objectives = objective_results(c, &tally, &lat);
        // `met` from the sketch's exact count, not from the approximate value.
        let mut k = 0;
        for o in &mut objectives {
            if o.is_sampled() {
                if let (Some(s), Some(p)) = (sketches.get(k), o.percentile)
                    && let Some(met) = s.met(p)
                {
                    o.met = met;
                }
                k += 1;
            }
        }
        // The latest settled slot: the one ending at or before now − slot.
        let down_now = {
            let t = now - SignedDuration::from_secs(c.slot_seconds() as i64);
            match frame.slot_of(t) {
                Some((s, _)) if s > 0 => state_of(verdicts[s as usize - 1]) == SlotState::Down,
                Some(_) => {
                    // The previous month's last slot.
                    let prev = month.prev();
                    ledger
                        .and_then(|l| l.months.get(&prev))
                        .and_then(|m| m.verdicts.last())
                        .is_some_and(|&b| state_of(b) == SlotState::Down)
                }
                None => false,
            }
        };
        let availability = availability_percent(tally.up_seconds, tally.down_seconds);
        Some(ContractStatus {
            contract: c.name.clone(),
            vendor: c.vendor.clone(),
            month,
            period_start: frame.start,
            period_end: frame.end,
            slots: SlotCounts::from(&tally),
            availability_percent: availability,
            downtime_seconds: tally.down_seconds,
            objectives,
            down_now,
            error_budget_remaining: budget_in(c, frame, &tally),
            credit_percent: credit_percent(&c.credits, availability),
            incidents: tally.incidents,
            counters: ledger.map(|l| l.counters).unwrap_or_default(),
        })
    }
}

/// A month's verdicts before any data: MAINTENANCE where scheduled, else NODATA.
fn blank_verdicts(frame: &MonthFrame) -> Vec<u8> {
    (0..frame.n_slots())
        .map(|i| {
            if frame.is_maintenance(i) {
                SlotState::Maintenance.code()
            } else {
                SlotState::NoData.code()
            }
        })
        .collect()
}

/// Where the keeper reads committed results (the store, or a test's memory).
pub trait LedgerSource {
    /// See [`crate::store::Reader::feed_head`].
    fn feed_head(&mut self) -> Result<u64, StoreError>;
    /// See [`crate::store::Reader::feed_after`].
    fn feed_after(
        &mut self,
        cursor: u64,
        max_batches: u64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<u64, StoreError>;
    /// Every stored result of `checks` started in `[from_ms, to_ms)`, any order.
    fn results_between(
        &mut self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<(), StoreError>;
}

impl LedgerSource for crate::store::Reader {
    fn feed_head(&mut self) -> Result<u64, StoreError> {
        crate::store::Reader::feed_head(self)
    }
    fn feed_after(
        &mut self,
        cursor: u64,
        max_batches: u64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<u64, StoreError> {
        crate::store::Reader::feed_after(self, cursor, max_batches, f)
    }
    fn results_between(
        &mut self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(StoredResult),
    ) -> Result<(), StoreError> {
        self.for_each_result(checks, from_ms, to_ms, f)
    }
}

/// What one open slot holds: the deciding results and each location's rule 1a flags.
#[derive(Debug, Clone, Default)]
struct Cells {
    /// (check index, location id, packed key).
    decided: Vec<(u16, u16, u64)>,
    /// (location id, rule 1a flags: [`CANARY_SEEN`] …), ORed.
    flags: Vec<(u16, u8)>,
}

/// The check index that marks a canary in [`Keeper::by_check`].
const CANARY: u16 = u16::MAX;

fn decide(cells: &mut Cells, check: u16, loc: u16, key: u64) {
    match cells
        .decided
        .iter_mut()
        .find(|(c, l, _)| *c == check && *l == loc)
    {
        Some(e) => e.2 = e.2.max(key),
        None => cells.decided.push((check, loc, key)),
    }
}

/// ORs rule 1a `flags` into location `loc`'s.
fn flag(cells: &mut Cells, loc: u16, flags: u8) {
    match cells.flags.iter_mut().find(|(l, _)| *l == loc) {
        Some(e) => e.1 |= flags,
        None => cells.flags.push((loc, flags)),
    }
}

/// Applies one observation of check index `k` (or [`CANARY`]) to an open
/// slot's cells, exactly as the offline evaluator does (`MonthState::observe`).
fn apply_obs(cells: &mut Cells, k: u16, loc: u16, offset: u64, obs: &Observation<'_>) {
    flag(cells, loc, impair_flags(obs, k == CANARY));
    if k != CANARY && !obs.is_agent_fault() {
        decide(cells, k, loc, pack(offset, obs));
    }
}

/// The contract's state in a slot from its cells (maintenance aside).
fn verdict_of(cells: &Cells, n_checks: usize, quorum: u32) -> SlotState {
    let is_impaired = |loc: u16| cells.flags.iter().any(|&(l, f)| l == loc && impaired(f));
    let states = (0..n_checks).map(|k| {
        let (mut pass, mut fail) = (0u32, 0u32);
        for &(c, loc, key) in &cells.decided {
            if usize::from(c) == k && key & PRESENT != 0 && !is_impaired(loc) {
                if key & FAIL != 0 {
                    fail += 1;
                } else {
                    pass += 1;
                }
            }
        }
        check_state(pass, fail, quorum)
    });
    contract_state(states, false)
}

/// The location track's minute of `ms` since the epoch.
fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

/// The id of location `name`, interning it.
fn loc_id(locations: &mut HashMap<String, u16>, name: &str) -> u16 {
    if let Some(&id) = locations.get(name) {
        return id;
    }
    let id = u16::try_from(locations.len()).unwrap_or(u16::MAX);
    locations.insert(name.to_string(), id);
    id
}

/// A stored result, parsed once for every contract that covers its check.
struct Parsed {
    result: ProbeResult,
    batch_no: u64,
}

fn parse(row: &StoredResult) -> Option<Parsed> {
    serde_json::from_str::<ProbeResult>(&row.raw)
        .ok()
        .map(|result| Parsed {
            result,
            batch_no: row.batch_no,
        })
}

/// What one contract-month needs beyond its persisted rows (keeper only).
#[derive(Debug, Default)]
struct Working {
    /// Open slots' cells.
    open: BTreeMap<u32, Cells>,
    /// Settled slots a late result touched: re-derive from the store.
    dirty: BTreeSet<u32>,
    /// Chunks whose bytes changed since the last write.
    changed_chunks: BTreeSet<u32>,
    /// The month row changed (settled, sketch, base).
    changed: bool,
    /// Re-derived after a contract change: settling counts nothing.
    quiet: bool,
}

/// The keeper: follows the feed and keeps the ledger (see the module docs).
#[derive(Debug)]
pub struct Keeper {
    contracts: Vec<Contract>,
    /// Check name → (contract index, check index in it, or [`CANARY`]: a
    /// canary is read by every contract, rule 1a).
    by_check: HashMap<String, Vec<(usize, u16)>>,
    /// Location name → id (cells key).
    locations: HashMap<String, u16>,
    /// Per contract, its latency objectives' (phase, max seconds).
    latency: Vec<Vec<(super::contract::Phase, f64)>>,
    /// The ledger as written (and about to be written).
    pub data: LedgerData,
    working: HashMap<(usize, Month), Working>,
    /// Contracts whose counters or fingerprint changed.
    changed_contracts: BTreeSet<usize>,
    /// Contracts to delete from the store before the next write.
    reset: Vec<String>,
    /// How long after its end a month stays in memory (late results beyond are not counted live).
    keep_after_end: Duration,
    /// Results that did not parse (logged by the caller).
    pub unparsable: u64,
    /// Every check rule 1a reads for some contract (covered checks and canaries).
    rule_checks: Vec<String>,
    /// The canaries.
    canaries: BTreeSet<String>,
    /// Open minutes of the location track: (minute, location) → rule 1a flags.
    open_minutes: BTreeMap<(i64, String), u8>,
    /// The location track changed since the last write.
    locations_changed: bool,
}

impl Keeper {
    /// A keeper for validated `contracts` over the ledger as loaded from the
    /// store (`data`): contracts whose definition changed are reset (their
    /// counters carry on), months are loaded as they are.
    pub fn new(contracts: Vec<Contract>, mut data: LedgerData, keep_after_end: Duration) -> Keeper {
        let mut by_check: HashMap<String, Vec<(usize, u16)>> = HashMap::new();
        for (ci, c) in contracts.iter().enumerate() {
            for (k, check) in c.checks.iter().enumerate() {
                by_check
                    .entry(check.clone())
                    .or_default()
                    .push((ci, k as u16));
            }
            for canary in &c.canaries {
                by_check
                    .entry(canary.clone())
                    .or_default()
                    .push((ci, CANARY));
            }
        }
        let mut reset = Vec::new();
        let mut changed_contracts = BTreeSet::new();
        let mut working = HashMap::new();
        for (ci, c) in contracts.iter().enumerate() {
            let fp = fingerprint(c);
            let entry = data.contracts.entry(c.name.clone()).or_default();
            if entry.fingerprint != fp {
                if !entry.fingerprint.is_empty() {
                    reset.push(c.name.clone());
                }
                // Months derived under the old definition are re-derived
                // quietly: their slots were counted already.
                for &m in entry.months.keys() {
                    working.insert(
                        (ci, m),
                        Working {
                            quiet: true,
                            ..Working::default()
                        },
                    );
                }
                entry.months.clear();
                entry.fingerprint = fp;
                changed_contracts.insert(ci);
            }
        }
        let latency = contracts
            .iter()
            .map(|c| {
                c.latency_objectives()
                    .map(|(ph, _, max)| (ph, max.as_secs_f64()))
                    .collect()
            })
            .collect();
        let canaries: BTreeSet<String> = contracts
            .iter()
            .flat_map(|c| c.canaries.iter().cloned())
            .collect();
        let rule_checks: Vec<String> = contracts
            .iter()
            .flat_map(|c| c.evidence_checks())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Keeper {
            rule_checks,
            canaries,
            open_minutes: BTreeMap::new(),
            locations_changed: false,
            contracts,
            by_check,
            locations: HashMap::new(),
            latency,
            data,
            working,
            changed_contracts,
            reset,
            keep_after_end,
            unparsable: 0,
        }
    }

    /// The contracts, config order.
    pub fn contracts(&self) -> &[Contract] {
        &self.contracts
    }

    /// Rebuilds the open slots' cells of every held month from the store
    /// (after start or a change of keeper). Cheap: only unsettled slots.
    pub fn load_open(
        &mut self,
        src: &mut dyn LedgerSource,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // The location track's open minutes (a few at most).
        let from = self
            .data
            .locations
            .settled
            .max(minute_of(now.as_millisecond()) - 2)
            * 60_000;
        let checks = self.rule_checks.clone();
        let mut rows = Vec::new();
        src.results_between(&checks, from, now.as_millisecond() + 3_600_000, &mut |r| {
            rows.push(r)
        })?;
        for r in &rows {
            self.track_location(r);
        }
        let months: Vec<(usize, Month, u32)> = self
            .contracts
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| {
                self.data
                    .contracts
                    .get(&c.name)
                    .map(|l| {
                        l.months
                            .iter()
                            .map(|(m, ml)| (ci, *m, ml.settled))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect();
        for (ci, month, settled) in months {
            let c = self.contracts[ci].clone();
            let n = self.data.frame(&c, month).n_slots();
            if settled >= n {
                continue;
            }
            let from = self.data.frame(&c, month).slot_start(settled);
            let to = self
                .data
                .frame(&c, month)
                .end
                .min(now + SignedDuration::from_hours(24));
            let cells = self.derive_cells(src, ci, month, from, to, None)?;
            let w = self.working.entry((ci, month)).or_default();
            for (slot, cs) in cells {
                if slot >= settled {
                    w.open.insert(slot, cs);
                }
            }
        }
        Ok(())
    }

    /// Reads the results of contract `ci` started in `[from, to)` from the
    /// store into cells per slot of `month`. With `sketch_upto = Some(h)`,
    /// results of batches up to `h` (and older, unnumbered ones) also feed
    /// the month's sketches, and later ones are left to the feed.
    fn derive_cells(
        &mut self,
        src: &mut dyn LedgerSource,
        ci: usize,
        month: Month,
        from: Timestamp,
        to: Timestamp,
        sketch_upto: Option<u64>,
    ) -> Result<BTreeMap<u32, Cells>, StoreError> {
        let c = &self.contracts[ci];
        let frame = self.data.frame(c, month).clone();
        let lat = &self.latency[ci];
        let mut out: BTreeMap<u32, Cells> = BTreeMap::new();
        let mut sketches = vec![LatencySketch::default(); lat.len()];
        let (locations, unparsable) = (&mut self.locations, &mut self.unparsable);
        // Streamed: a month of results is never held at once.
        src.results_between(
            &c.evidence_checks(),
            from.as_millisecond(),
            to.as_millisecond(),
            &mut |row| {
                if sketch_upto.is_some_and(|h| row.batch_no > h) {
                    return;
                }
                let Some(p) = parse(&row) else {
                    *unparsable += 1;
                    return;
                };
                let obs = Observation::from_result(&p.result);
                let k = match c.checks.iter().position(|x| x == obs.check) {
                    Some(k) => k as u16,
                    None if c.canaries.iter().any(|x| x == obs.check) => CANARY,
                    None => return,
                };
                let Some((slot, offset)) = frame.slot_of(obs.started_at) else {
                    return;
                };
                let loc = loc_id(locations, obs.location);
                if k != CANARY
                    && sketch_upto.is_some()
                    && obs.success
                    && !frame.is_maintenance(slot)
                {
                    for (s, (ph, max)) in sketches.iter_mut().zip(lat) {
                        if let Some(v) = obs.phase(*ph) {
                            s.add(v, *max);
                        }
                    }
                }
                apply_obs(out.entry(slot).or_default(), k, loc, offset, &obs);
            },
        )?;
        if sketch_upto.is_some()
            && let Some(m) = self
                .data
                .contracts
                .get_mut(&self.contracts[ci].name)
                .and_then(|l| l.months.get_mut(&month))
        {
            m.latency = sketches;
        }
        Ok(out)
    }

    /// Creates `month` of contract `ci` from the store as it is now.
    fn create_month(
        &mut self,
        src: &mut dyn LedgerSource,
        ci: usize,
        month: Month,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let c = self.contracts[ci].clone();
        let head = src.feed_head()?;
        let (start, end, m) = {
            let f = self.data.frame(&c, month);
            (f.start, f.end, MonthLedger::blank(&c, f, head))
        };
        self.data
            .contracts
            .entry(c.name.clone())
            .or_default()
            .months
            .insert(month, m);
        let to = end.min(now + SignedDuration::from_hours(24)).max(start);
        let cells = self.derive_cells(src, ci, month, start, to, Some(head))?;
        let w = self.working.entry((ci, month)).or_default();
        w.open = cells;
        w.changed = true;
        let n = self.data.frame(&c, month).n_slots();
        w.changed_chunks.extend(0..n.div_ceil(CHUNK_SLOTS));
        Ok(())
    }

    fn month_wanted(&self, ci: usize, month: Month, now: Timestamp) -> bool {
        let (start, end) = month.period(&self.contracts[ci].tz);
        let keep = SignedDuration::try_from(self.keep_after_end).unwrap_or(SignedDuration::MAX);
        end.checked_add(keep).is_ok_and(|t| t > now)
            && start <= now + SignedDuration::from_hours(24)
    }

    /// One round as of `now`: follow the feed to its head, settle what is
    /// due, re-derive late slots; returns what to write (`None`: nothing
    /// changed). Call [`Keeper::written`] after the write succeeded.
    pub fn round(
        &mut self,
        src: &mut dyn LedgerSource,
        now: Timestamp,
    ) -> Result<Option<LedgerWrite>, StoreError> {
        // The current month of every contract exists.
        for ci in 0..self.contracts.len() {
            let c = &self.contracts[ci];
            if let Some(month) = Month::containing(now, &c.tz)
                && !self
                    .data
                    .contracts
                    .get(&c.name)
                    .is_some_and(|l| l.months.contains_key(&month))
            {
                self.create_month(src, ci, month, now)?;
            }
        }
        let start_cursor = self.data.cursor;
        // A backlog is written in parts, about every ROUND_BUDGET of work, so
        // the served figures (and the persisted cursor) move while catching up.
        let began = std::time::Instant::now();
        for _ in 0..MAX_FEED_STEPS {
            if began.elapsed() > ROUND_BUDGET {
                break;
            }
            let mut rows = Vec::new();
            let cursor = src.feed_after(self.data.cursor, FEED_BATCHES, &mut |r| rows.push(r))?;
            for row in &rows {
                self.apply_feed_row(src, row, now)?;
            }
            let moved = cursor != self.data.cursor;
            self.data.cursor = cursor;
            if !moved {
                break;
            }
        }
        self.settle(now);
        self.settle_minutes(now);
        self.rederive(src, now)?;
        self.drop_old_months(now);
        let write = self.collect_write();
        if write.rows.is_empty()
            && write.reset_contracts.is_empty()
            && self.data.cursor == start_cursor
        {
            return Ok(None);
        }
        Ok(Some(write))
    }

    fn apply_feed_row(
        &mut self,
        src: &mut dyn LedgerSource,
        row: &StoredResult,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.track_location(row);
        let Some(targets) = self.by_check.get(&row.check) else {
            return Ok(());
        };
        let targets = targets.clone();
        let Some(p) = parse(row) else {
            self.unparsable += 1;
            return Ok(());
        };
        let obs = Observation::from_result(&p.result);
        let loc = loc_id(&mut self.locations, obs.location);
        for (ci, k) in targets {
            let c = &self.contracts[ci];
            let Some(month) = Month::containing(obs.started_at, &c.tz) else {
                continue;
            };
            if !self.month_wanted(ci, month, now) {
                continue;
            }
            if !self
                .data
                .contracts
                .get(&c.name)
                .is_some_and(|l| l.months.contains_key(&month))
            {
                // The pass that creates the month reads this row too.
                self.create_month(src, ci, month, now)?;
                continue;
            }
            let c = &self.contracts[ci];
            let f = self.data.frame(c, month);
            let Some((slot, offset)) = f.slot_of(obs.started_at) else {
                continue;
            };
            let maint = f.is_maintenance(slot);
            let Some(m) = self
                .data
                .contracts
                .get_mut(&c.name)
                .and_then(|l| l.months.get_mut(&month))
            else {
                continue;
            };
            if p.batch_no != 0 && p.batch_no <= m.base_batch {
                continue;
            }
            if k != CANARY && obs.success && !maint {
                for (s, (ph, max)) in m.latency.iter_mut().zip(&self.latency[ci]) {
                    if let Some(v) = obs.phase(*ph) {
                        s.add(v, *max);
                    }
                }
            }
            let settled = slot < m.settled;
            let w = self.working.entry((ci, month)).or_default();
            w.changed = true;
            if settled {
                // A late result (a canary's too: it may impair the location) re-derives the slot.
                w.dirty.insert(slot);
            } else {
                apply_obs(w.open.entry(slot).or_default(), k, loc, offset, &obs);
            }
        }
        Ok(())
    }

    /// Feeds the location track with one committed result (rule 1a's inputs only).
    fn track_location(&mut self, row: &StoredResult) {
        let canary = self.canaries.contains(&row.check);
        let agent_error = row.class.as_deref() == Some("agent_error");
        let input = canary || (agent_error && self.rule_checks.contains(&row.check));
        if !input {
            return;
        }
        let m = minute_of(row.started_at_ms);
        if m < self.data.locations.settled {
            return;
        }
        let mut f = 0;
        if agent_error {
            f |= super::state::AGENT_ERROR;
        }
        if canary {
            f |= super::state::CANARY_SEEN;
            if row.success {
                f |= super::state::CANARY_PASS;
            }
        }
        *self
            .open_minutes
            .entry((m, row.location.clone()))
            .or_default() |= f;
        if !self.data.locations.locations.contains_key(&row.location) {
            self.data
                .locations
                .locations
                .insert(row.location.clone(), LocationStatus::default());
            self.locations_changed = true;
        }
    }

    /// Settles the location track's minutes due by `now` (one minute after their end).
    fn settle_minutes(&mut self, now: Timestamp) {
        if self.rule_checks.is_empty() {
            return;
        }
        let due = minute_of(now.as_millisecond()) - 1;
        let l = &mut self.data.locations;
        if l.settled == 0 {
            // A fresh ledger: nothing before the open window is counted.
            l.settled = self
                .open_minutes
                .keys()
                .next()
                .map_or(due, |(m, _)| (*m).min(due));
            self.locations_changed = true;
        }
        if due <= l.settled {
            return;
        }
        // The latest settled minute decides the gauge; every impaired one counts.
        let last = due - 1;
        for st in l.locations.values_mut() {
            st.impaired = false;
        }
        let keep = self.open_minutes.split_off(&(due, String::new()));
        for ((m, loc), flags) in std::mem::replace(&mut self.open_minutes, keep) {
            if !super::state::impaired(flags) {
                continue;
            }
            let st = l.locations.entry(loc).or_default();
            st.impaired_seconds += 60;
            if m == last {
                st.impaired = true;
            }
        }
        l.settled = due;
        self.locations_changed = true;
    }

    /// Sets slot `s` of contract `ci`'s `month` to `state`, counting as the
    /// module docs say (`settling`: the slot settles now).
    fn set_state(
        &mut self,
        ci: usize,
        month: Month,
        s: u32,
        state: SlotState,
        settling: bool,
        quiet: bool,
    ) {
        let c = &self.contracts[ci];
        let secs = self.data.frame(c, month).slot_seconds(s);
        let prev_down = if s > 0 {
            self.data
                .contracts
                .get(&c.name)
                .and_then(|l| l.months.get(&month))
                .is_some_and(|m| state_of(m.verdicts[s as usize - 1]) == SlotState::Down)
        } else {
            self.data
                .contracts
                .get(&c.name)
                .and_then(|l| l.months.get(&month.prev()))
                .and_then(|m| m.verdicts.last())
                .is_some_and(|&b| state_of(b) == SlotState::Down)
        };
        let l = self
            .data
            .contracts
            .get_mut(&c.name)
            .expect("contract ledger");
        let m = l.months.get_mut(&month).expect("month ledger");
        let old = m.verdicts[s as usize];
        let mut new = (old & !STATE_BITS) | state.code();
        let counted = s < m.settled;
        if counted || settling {
            let ctr = &mut l.counters;
            let add = !quiet;
            match state {
                SlotState::Up | SlotState::Down => {
                    if new & COUNTED_ELIGIBLE == 0 {
                        new |= COUNTED_ELIGIBLE;
                        if add {
                            ctr.eligible_seconds += secs;
                        }
                    }
                    if state == SlotState::Down && new & COUNTED_DOWN == 0 {
                        new |= COUNTED_DOWN;
                        if add {
                            ctr.downtime_seconds += secs;
                            if !prev_down {
                                ctr.incidents += 1;
                            }
                        }
                    }
                }
                SlotState::Maintenance | SlotState::NoData => {
                    if settling && new & (COUNTED_EXCLUDED | COUNTED_ELIGIBLE) == 0 {
                        new |= COUNTED_EXCLUDED;
                        if add {
                            if state == SlotState::Maintenance {
                                ctr.maintenance_seconds += secs;
                            } else {
                                ctr.nodata_seconds += secs;
                            }
                        }
                    }
                }
            }
        }
        if new != old {
            m.verdicts[s as usize] = new;
            let w = self.working.entry((ci, month)).or_default();
            w.changed_chunks.insert(s / CHUNK_SLOTS);
            if (new ^ old) & !STATE_BITS != 0 || settling {
                self.changed_contracts.insert(ci);
            }
        }
    }

    /// Settles every slot due by `now` and writes open slots' provisional verdicts.
    fn settle(&mut self, now: Timestamp) {
        let keys: Vec<(usize, Month)> = self
            .contracts
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| {
                self.data
                    .contracts
                    .get(&c.name)
                    .map(|l| l.months.keys().map(|m| (ci, *m)).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
        for (ci, month) in keys {
            let c = self.contracts[ci].clone();
            let (due, n) = {
                let f = self.data.frame(&c, month);
                (
                    f.settled(now, i128::from(c.slot_seconds()) * 1_000_000_000),
                    f.n_slots(),
                )
            };
            let settled = self.data.contracts[&c.name].months[&month].settled;
            let quiet = self.working.get(&(ci, month)).is_some_and(|w| w.quiet);
            // Provisional verdicts of open slots with data (and the ones about to settle).
            let open: Vec<(u32, SlotState)> = self
                .working
                .get(&(ci, month))
                .map(|w| {
                    w.open
                        .iter()
                        .map(|(&s, cells)| (s, verdict_of(cells, c.checks.len(), c.quorum)))
                        .collect()
                })
                .unwrap_or_default();
            for &(s, v) in &open {
                if s >= settled && s < n {
                    let st = if self.data.frame(&c, month).is_maintenance(s) {
                        SlotState::Maintenance
                    } else {
                        v
                    };
                    if s >= due {
                        self.set_state(ci, month, s, st, false, quiet);
                    }
                }
            }
            if due > settled {
                for s in settled..due {
                    let st = if self.data.frame(&c, month).is_maintenance(s) {
                        SlotState::Maintenance
                    } else {
                        open.iter()
                            .find(|(x, _)| *x == s)
                            .map_or(SlotState::NoData, |(_, v)| *v)
                    };
                    self.set_state(ci, month, s, st, true, quiet);
                    if let Some(m) = self
                        .data
                        .contracts
                        .get_mut(&c.name)
                        .and_then(|l| l.months.get_mut(&month))
                    {
                        m.settled = s + 1;
                    }
                }
                let w = self.working.entry((ci, month)).or_default();
                w.open.retain(|&s, _| s >= due);
                w.changed = true;
                if due >= n {
                    w.quiet = false;
                }
            }
        }
    }

    /// Re-derives the settled slots late results touched, from the store.
    fn rederive(&mut self, src: &mut dyn LedgerSource, now: Timestamp) -> Result<(), StoreError> {
        let dirty: Vec<((usize, Month), Vec<u32>)> = self
            .working
            .iter_mut()
            .filter(|(_, w)| !w.dirty.is_empty())
            .map(|(k, w)| (*k, std::mem::take(&mut w.dirty).into_iter().collect()))
            .collect();
        for ((ci, month), slots) in dirty {
            let c = self.contracts[ci].clone();
            // Runs of consecutive slots, one store read each.
            let mut i = 0;
            while i < slots.len() {
                let mut j = i;
                while j + 1 < slots.len() && slots[j + 1] <= slots[j] + 1 + 8 {
                    j += 1;
                }
                let (from, to) = {
                    let f = self.data.frame(&c, month);
                    (f.slot_start(slots[i]), f.slot_end(slots[j]))
                };
                let cells = self.derive_cells(src, ci, month, from, to, None)?;
                for &s in &slots[i..=j] {
                    let st = if self.data.frame(&c, month).is_maintenance(s) {
                        SlotState::Maintenance
                    } else {
                        cells.get(&s).map_or(SlotState::NoData, |cs| {
                            verdict_of(cs, c.checks.len(), c.quorum)
                        })
                    };
                    self.set_state(ci, month, s, st, false, false);
                }
                i = j + 1;
            }
            let _ = now;
        }
        Ok(())
    }

    fn drop_old_months(&mut self, now: Timestamp) {
        for (ci, c) in self.contracts.iter().enumerate() {
            let keep = SignedDuration::try_from(self.keep_after_end).unwrap_or(SignedDuration::MAX);
            if let Some(l) = self.data.contracts.get_mut(&c.name) {
                l.months.retain(|m, ml| {
                    let (_, end) = m.period(&c.tz);
                    let keep_it = end.checked_add(keep).is_ok_and(|t| t > now)
                        || ml.settled < ml.verdicts.len() as u32;
                    if !keep_it {
                        self.working.remove(&(ci, *m));
                    }
                    keep_it
                });
            }
        }
        self.data.frames.retain(|(name, m), _| {
            self.data
                .contracts
                .get(name)
                .is_some_and(|l| l.months.contains_key(m))
        });
    }

    /// The rows changed since the last write.
    fn collect_write(&mut self) -> LedgerWrite {
        let mut rows = Vec::new();
        for ci in std::mem::take(&mut self.changed_contracts) {
            let c = &self.contracts[ci];
            if let Some(l) = self.data.contracts.get(&c.name) {
                rows.push(LedgerRow {
                    contract: c.name.clone(),
                    month: String::new(),
                    chunk: -1,
                    data: serde_json::to_vec(&ContractRow {
                        fingerprint: l.fingerprint.clone(),
                        counters: l.counters,
                    })
                    .unwrap_or_default(),
                });
            }
        }
        let mut keys: Vec<(usize, Month)> = self.working.keys().copied().collect();
        keys.sort();
        for key in keys {
            let (ci, month) = key;
            let c = &self.contracts[ci];
            let Some(m) = self
                .data
                .contracts
                .get(&c.name)
                .and_then(|l| l.months.get(&month))
            else {
                continue;
            };
            let w = self.working.get_mut(&key).expect("key listed");
            if w.changed {
                rows.push(LedgerRow {
                    contract: c.name.clone(),
                    month: month.to_string(),
                    chunk: -1,
                    data: serde_json::to_vec(&MonthRow {
                        settled: m.settled,
                        base_batch: m.base_batch,
                        latency: m.latency.clone(),
                    })
                    .unwrap_or_default(),
                });
                w.changed = false;
            }
            for k in std::mem::take(&mut w.changed_chunks) {
                let lo = (k * CHUNK_SLOTS) as usize;
                let hi = (lo + CHUNK_SLOTS as usize).min(m.verdicts.len());
                if lo < hi {
                    rows.push(LedgerRow {
                        contract: c.name.clone(),
                        month: month.to_string(),
                        chunk: i64::from(k),
                        data: m.verdicts[lo..hi].to_vec(),
                    });
                }
            }
        }
        if std::mem::take(&mut self.locations_changed) {
            rows.push(LedgerRow {
                contract: LOCATIONS_ROW.to_string(),
                month: String::new(),
                chunk: -1,
                data: serde_json::to_vec(&self.data.locations).unwrap_or_default(),
            });
        }
        rows.sort_by(|a, b| {
            (&a.contract, &a.month, a.chunk).cmp(&(&b.contract, &b.month, b.chunk))
        });
        LedgerWrite {
            base: self.data.version,
            cursor: self.data.cursor,
            rows,
            reset_contracts: std::mem::take(&mut self.reset),
        }
    }

    /// The write made of the last round's changes landed as `version`.
    pub fn written(&mut self, version: u64) {
        self.data.version = version;
    }
}
