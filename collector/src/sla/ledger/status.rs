//! A contract's month to date from the ledger ([`LedgerData::status`]):
//! what `/api/v1/contracts` and the SLA metrics show.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::data::{LedgerData, SlaCounters, blank_verdicts};
use super::state_of;
use crate::sla::contract::Contract;
use crate::sla::month::Month;
use crate::sla::report::{ObjectiveResult, SlotCounts, budget_in, objective_results};
use crate::sla::rules::{SlotState, availability_percent, credit_percent};
use crate::sla::sketch::LatencySketch;
use crate::sla::state::tally_of;

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

impl LedgerData {
    /// Month-to-date status of every contract as of `now`, in config order.
    pub fn status(&mut self, contracts: &[Contract], now: Timestamp) -> Vec<ContractStatus> {
        contracts
            .iter()
            .filter_map(|c| self.contract_status(c, now))
            .collect()
    }

    pub(super) fn contract_status(
        &mut self,
        c: &Contract,
        now: Timestamp,
    ) -> Option<ContractStatus> {
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
        let latency: Vec<(usize, Option<f64>)> = c
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
        let mut objectives = objective_results(c, &tally, &latency);
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
