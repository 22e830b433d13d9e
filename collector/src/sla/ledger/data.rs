//! The ledger as the store holds it and every collector reads it: the
//! contract and month rows ([`LedgerData`], [`ContractLedger`],
//! [`MonthLedger`]), the location track's row, the counters, and how rows
//! read from the store are applied.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CHUNK_SLOTS;
use crate::sla::contract::Contract;
use crate::sla::month::{Month, MonthFrame};
use crate::sla::rules::SlotState;
use crate::sla::sketch::LatencySketch;
use crate::store::LedgerRow;

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
    pub(super) fn blank(c: &Contract, frame: &MonthFrame, base_batch: u64) -> MonthLedger {
        MonthLedger {
            settled: 0,
            base_batch,
            verdicts: blank_verdicts(frame),
            latency: vec![LatencySketch::default(); c.latency_objectives().count()],
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct MonthRow {
    pub(super) settled: u32,
    pub(super) base_batch: u64,
    pub(super) latency: Vec<LatencySketch>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ContractRow {
    pub(super) fingerprint: String,
    pub(super) counters: SlaCounters,
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
    pub(super) frames: HashMap<(String, Month), MonthFrame>,
}

/// The ledger row (its `contract` column) holding [`LocationsLedger`]; not a
/// valid contract name, so it meets none.
pub const LOCATIONS_ROW: &str = "#locations";

/// One location's impairment as the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationStatus {
    /// `slaprobe_location_impaired`: the latest settled minute was impaired.
    pub impaired: bool,
    /// `slaprobe_location_impaired_seconds_total`: impaired minutes counted so far × 60.
    pub impaired_seconds: u64,
    /// The minutes counted in `impaired_seconds` within the retention
    /// (`max_result_age`), as sorted, disjoint half-open ranges `[from, to)`:
    /// a late result re-decides its minute and counts it only if it is not
    /// among them, so no minute is counted twice. Impairment comes in
    /// stretches, so there are few ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted: Vec<[i64; 2]>,
}

impl LocationStatus {
    /// Whether minute `m` was counted.
    pub fn is_counted(&self, m: i64) -> bool {
        let i = self.counted.partition_point(|r| r[1] <= m);
        self.counted.get(i).is_some_and(|r| r[0] <= m)
    }

    /// Counts minute `m` as impaired (60 s), unless it was counted already;
    /// returns whether it was new.
    pub fn count(&mut self, m: i64) -> bool {
        if self.is_counted(m) {
            return false;
        }
        self.impaired_seconds += 60;
        let i = self.counted.partition_point(|r| r[1] < m);
        // `i` is the first range ending at or after `m`: it may end at `m`
        // (extend it) and the next may start at `m + 1` (join them).
        match self.counted.get(i).copied() {
            Some(r) if r[1] == m => {
                self.counted[i][1] = m + 1;
                if self.counted.get(i + 1).is_some_and(|n| n[0] == m + 1) {
                    self.counted[i][1] = self.counted[i + 1][1];
                    self.counted.remove(i + 1);
                }
            }
            Some(r) if r[0] == m + 1 => self.counted[i][0] = m,
            _ => self.counted.insert(i, [m, m + 1]),
        }
        true
    }

    /// Forgets counted minutes before `m` (older results are refused).
    pub fn forget_before(&mut self, m: i64) {
        self.counted.retain(|r| r[1] > m);
        if let Some(first) = self.counted.first_mut() {
            first[0] = first[0].max(m);
        }
    }
}

/// Rule 1a per location on a one-minute UTC grid (minute `m` is
/// `[m × 60 s, (m + 1) × 60 s)` since the epoch), over the results rule 1a
/// reads for the contracts: canaries, and `agent_error` of covered checks
/// and canaries. A minute settles one minute after its end, like a slot,
/// and counts 60 s if impaired. A failing canary or an `agent_error` that
/// arrives after its minute settled (an agent replaying its spool once its
/// network or the collector is back) re-decides that minute from the store
/// and counts it if it is impaired and was not counted yet; the counter
/// never steps back (a late pass uncounts nothing).
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
}

/// A month's verdicts before any data: MAINTENANCE where scheduled, else NODATA.
pub(super) fn blank_verdicts(frame: &MonthFrame) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::LocationStatus;

    #[test]
    fn counted_minutes_merge_into_ranges_and_count_once() {
        let mut l = LocationStatus::default();
        for m in [10, 12, 11, 20, 9, 13, 12, 19] {
            l.count(m);
        }
        assert_eq!(l.counted, [[9, 14], [19, 21]]);
        assert_eq!(l.impaired_seconds, 7 * 60);
        assert!(l.is_counted(13) && !l.is_counted(14) && !l.is_counted(8));
        assert!(!l.count(20));
        l.forget_before(11);
        assert_eq!(l.counted, [[11, 14], [19, 21]]);
        l.forget_before(15);
        assert_eq!(l.counted, [[19, 21]]);
        assert_eq!(l.impaired_seconds, 7 * 60, "forgetting takes nothing back");
    }
}
