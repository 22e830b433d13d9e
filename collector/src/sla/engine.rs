//! [`SlaEngine`]: the live SLA state of every contract, updated one result
//! at a time and queried on every scrape.
//!
//! # What it holds
//!
//! Per contract, the months in memory: the current month (in the contract's
//! zone) and the previous one until [`KEEP_AFTER_END`] after its end, each a
//! month state (per slot and (check, location) the deciding result, per slot
//! the check and contract states, the latency samples). Memory is about
//! 8 bytes per (slot, check, location) with data plus 12 bytes per latency
//! sample per latency objective.
//!
//! # Time
//!
//! The engine has no clock: `now` comes with every query. It keeps the
//! latest `now` it was given (the *clock*, never moving back). A result is
//! taken when its month is held, or is the month of the clock (plus up to
//! [`ACCEPT_AHEAD`] for agents whose clocks run ahead), or ended less than
//! [`KEEP_AFTER_END`] before the clock; older results are ignored here (their
//! reports come from the store through `evaluate_month`).
//!
//! At start-up, build the engine, then feed it every stored result started
//! at or after [`SlaEngine::replay_from`] **before** the first `status`: the
//! counters count each slot once, when it settles.
//!
//! # Counters (burn-rate rules)
//!
//! `downtime`, `eligible` (UP + DOWN), `maintenance` and `nodata` seconds and
//! `incidents` are monotonic while the process runs. A slot is **settled**
//! once `now >= slot end + one slot` (a grace period for late results);
//! settling adds its real length to the counter of its state at that moment,
//! and counts an incident when it is DOWN and the previous settled slot of
//! the month was not. The counters are the sums over every settled slot of
//! every month held since the process started. A late result that changes an
//! already settled slot changes the month's figures (reports, status) but
//! not the counters. After a restart the counters start again from the
//! settled part of the months replayed.
//!
//! # Month to date
//!
//! [`SlaEngine::status`] gives, per contract, exactly the figures of
//! `report(contract, month of now, now)`: slots that start after `now` are
//! not counted at all. It scans one byte per slot and asks a bucketed sample
//! index for the latency percentile, so it is cheap enough for every scrape.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::contract::Contract;
use super::month::Month;
use super::observation::Observation;
use super::report::{
    MonthReport, ObjectiveResult, SlotCounts, budget, build_report, objective_results,
};
use super::rules::{SlotState, availability_percent, credit_percent};
use super::state::{Locations, MonthState};

/// How long after its end a month stays in memory (late results, reports).
pub const KEEP_AFTER_END: Duration = Duration::from_secs(3 * 86_400);
/// How far ahead of the clock a result may start and still open a month.
pub const ACCEPT_AHEAD: Duration = Duration::from_secs(86_400);

/// Monotonic per-contract counters for `slaprobe_sla_*_total` (seconds are whole seconds).
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

#[derive(Debug)]
struct Held {
    contract: Contract,
    /// Months in memory, ascending.
    months: Vec<MonthState>,
    counters: SlaCounters,
}

/// The live SLA state of every contract. Not internally synchronised:
/// share it behind a `Mutex` (every call is short).
#[derive(Debug)]
pub struct SlaEngine {
    held: Vec<Held>,
    /// Check name → (contract index, check index in that contract).
    by_check: HashMap<String, Vec<(usize, usize)>>,
    locations: Locations,
    clock: Timestamp,
}

fn add(ts: Timestamp, d: Duration) -> Timestamp {
    ts.checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

fn sub(ts: Timestamp, d: Duration) -> Timestamp {
    ts.checked_sub(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MIN)
}

impl SlaEngine {
    /// An engine for validated `contracts`, its clock at `now`.
    pub fn new(contracts: Vec<Contract>, now: Timestamp) -> SlaEngine {
        let mut by_check: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (ci, c) in contracts.iter().enumerate() {
            for (k, check) in c.checks.iter().enumerate() {
                by_check.entry(check.clone()).or_default().push((ci, k));
            }
        }
        let held = contracts
            .into_iter()
            .map(|contract| Held {
                contract,
                months: Vec::new(),
                counters: SlaCounters::default(),
            })
            .collect();
        let mut engine = SlaEngine {
            held,
            by_check,
            locations: Locations::default(),
            clock: now,
        };
        engine.ensure_current();
        engine
    }

    /// The contracts, in config order.
    pub fn contracts(&self) -> impl Iterator<Item = &Contract> {
        self.held.iter().map(|h| &h.contract)
    }

    /// The latest `now` seen.
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// The earliest `started_at` the engine wants replayed at start-up: the
    /// start of the oldest month it would still keep (per contract zone).
    pub fn replay_from(&self) -> Timestamp {
        self.held
            .iter()
            .filter_map(|h| {
                let cur = Month::containing(self.clock, &h.contract.tz)?;
                let prev = cur.prev();
                let (ps, pe) = prev.period(&h.contract.tz);
                Some(if add(pe, KEEP_AFTER_END) > self.clock {
                    ps
                } else {
                    cur.period(&h.contract.tz).0
                })
            })
            .min()
            .unwrap_or(self.clock)
    }

    /// The months held for `contract` (ascending).
    pub fn months(&self, contract: &str) -> Vec<Month> {
        self.held
            .iter()
            .find(|h| h.contract.name == contract)
            .map(|h| h.months.iter().map(|m| m.frame.month).collect())
            .unwrap_or_default()
    }

    /// Applies one stored result to every contract that covers its check.
    /// Returns whether any contract-month took it. Late results for held
    /// months update past slots (a later `started_at` in the same slot
    /// replaces the deciding result, an earlier one does not).
    pub fn observe(&mut self, obs: &Observation<'_>) -> bool {
        let SlaEngine {
            held,
            by_check,
            locations,
            clock,
        } = self;
        let Some(targets) = by_check.get(obs.check) else {
            return false;
        };
        let Some(loc) = locations.id(obs.location) else {
            return false;
        };
        let mut applied = false;
        for &(ci, k) in targets {
            let h = &mut held[ci];
            if let Some(m) = h
                .months
                .iter_mut()
                .find(|m| m.frame.contains(obs.started_at))
            {
                applied |= m.observe(k, loc, obs);
                continue;
            }
            let Some(month) = Month::containing(obs.started_at, &h.contract.tz) else {
                continue;
            };
            if !acceptable(&h.contract, month, *clock) {
                continue;
            }
            let mut state = MonthState::new(&h.contract, month);
            applied |= state.observe(k, loc, obs);
            let pos = h.months.partition_point(|m| m.frame.month < month);
            h.months.insert(pos, state);
        }
        applied
    }

    /// Moves the clock to `now` (never back): opens the current month,
    /// settles slots into the counters, drops months past [`KEEP_AFTER_END`].
    pub fn advance(&mut self, now: Timestamp) {
        self.clock = self.clock.max(now);
        self.ensure_current();
        let clock = self.clock;
        for h in &mut self.held {
            let grace = i128::from(h.contract.slot_seconds()) * 1_000_000_000;
            for m in &mut h.months {
                settle(m, &mut h.counters, clock, grace);
            }
            h.months
                .retain(|m| add(m.frame.end, KEEP_AFTER_END) > clock);
        }
    }

    fn ensure_current(&mut self) {
        let clock = self.clock;
        for h in &mut self.held {
            let Some(month) = Month::containing(clock, &h.contract.tz) else {
                continue;
            };
            if !h.months.iter().any(|m| m.frame.month == month) {
                let pos = h.months.partition_point(|m| m.frame.month < month);
                h.months.insert(pos, MonthState::new(&h.contract, month));
            }
        }
    }

    /// Month to date of every contract as of `now` (after [`SlaEngine::advance`]`(now)`;
    /// a `now` earlier than the clock is taken as the clock).
    pub fn status(&mut self, now: Timestamp) -> Vec<ContractStatus> {
        self.advance(now);
        let now = self.clock;
        let mut out = Vec::with_capacity(self.held.len());
        for h in &mut self.held {
            let c = &h.contract;
            let Some(month) = Month::containing(now, &c.tz) else {
                continue;
            };
            let down_now = down_now(h, now);
            let Some(state) = h.months.iter_mut().find(|m| m.frame.month == month) else {
                continue;
            };
            let counted = state.frame.counted(now);
            let tally = state.tally(counted);
            let latency: Vec<(usize, Option<f64>)> = c
                .latency_objectives()
                .enumerate()
                .map(|(k, (_, p, _))| state.samples[k].percentile_below(counted, p))
                .collect();
            let availability = availability_percent(tally.up_seconds, tally.down_seconds);
            out.push(ContractStatus {
                contract: c.name.clone(),
                vendor: c.vendor.clone(),
                month,
                period_start: state.frame.start,
                period_end: state.frame.end,
                slots: SlotCounts::from(&tally),
                availability_percent: availability,
                downtime_seconds: tally.down_seconds,
                objectives: objective_results(c, &tally, &latency),
                down_now,
                error_budget_remaining: budget(c, state, &tally),
                credit_percent: credit_percent(&c.credits, availability),
                incidents: tally.incidents,
                counters: h.counters,
            });
        }
        out
    }

    /// The report of `contract` for `month` as of `now`, when that month is
    /// held in memory; `None` otherwise (unknown contract, or a month older
    /// than [`KEEP_AFTER_END`] after its end: evaluate it from the store
    /// with `evaluate_month`). Also advances the clock to `now`.
    pub fn report(&mut self, contract: &str, month: Month, now: Timestamp) -> Option<MonthReport> {
        self.advance(now);
        let SlaEngine {
            held, locations, ..
        } = self;
        let h = held.iter_mut().find(|h| h.contract.name == contract)?;
        let state = h.months.iter_mut().find(|m| m.frame.month == month)?;
        Some(build_report(&h.contract, state, locations.names(), now))
    }
}

/// Whether a result in `month` may open it, given the clock.
fn acceptable(contract: &Contract, month: Month, clock: Timestamp) -> bool {
    let (start, end) = month.period(&contract.tz);
    add(end, KEEP_AFTER_END) > clock && start <= add(clock, ACCEPT_AHEAD)
}

/// Adds slots that have settled by `clock` to the counters.
fn settle(m: &mut MonthState, counters: &mut SlaCounters, clock: Timestamp, grace_ns: i128) {
    let target = m.frame.settled(clock, grace_ns);
    for i in m.settled..target {
        let secs = m.frame.slot_seconds(i);
        let state = m.verdict(i);
        match state {
            SlotState::Up => counters.eligible_seconds += secs,
            SlotState::Down => {
                counters.eligible_seconds += secs;
                counters.downtime_seconds += secs;
                if !m.last_settled_down {
                    counters.incidents += 1;
                }
            }
            SlotState::Maintenance => counters.maintenance_seconds += secs,
            SlotState::NoData => counters.nodata_seconds += secs,
        }
        m.last_settled_down = state == SlotState::Down;
    }
    m.settled = m.settled.max(target);
}

/// Whether the latest settled slot (ending at or before `now − slot`) is DOWN.
fn down_now(h: &Held, now: Timestamp) -> bool {
    let t = sub(now, h.contract.slot);
    let Some(pos) = h.months.iter().position(|m| m.frame.contains(t)) else {
        return false;
    };
    let m = &h.months[pos];
    let Some((slot, _)) = m.frame.slot_of(t) else {
        return false;
    };
    if slot > 0 {
        return m.verdict(slot - 1) == SlotState::Down;
    }
    // The latest settled slot is the previous month's last, if held and adjacent.
    match pos.checked_sub(1).map(|p| &h.months[p]) {
        Some(prev) if prev.frame.end == m.frame.start && prev.frame.n_slots() > 0 => {
            prev.verdict(prev.frame.n_slots() - 1) == SlotState::Down
        }
        _ => false,
    }
}
