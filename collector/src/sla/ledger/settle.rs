//! Settling: a slot settles one slot after its end and adds to the
//! counters; the location track's minutes settle the same way, and late
//! results re-decide the settled minutes they may impair.

use jiff::Timestamp;

use super::cells::{minute_of, verdict_of};
use std::collections::{BTreeSet, HashMap};

use super::data::LocationStatus;
use super::keeper::Keeper;
use super::source::LedgerSource;
use super::{CHUNK_SLOTS, COUNTED_DOWN, COUNTED_ELIGIBLE, COUNTED_EXCLUDED, STATE_BITS, state_of};
use crate::sla::month::Month;
use crate::sla::rules::SlotState;
use crate::sla::state::{AGENT_ERROR, CANARY_PASS, CANARY_SEEN, impaired};
use crate::store::{StoreError, StoredResult};

/// Rule 1a's flags of one stored result for the location track, `None`
/// when rule 1a does not read it: a canary's result, or an `agent_error`
/// of a check some contract reads (`rule_checks`).
fn location_flags(
    canaries: &BTreeSet<String>,
    rule_checks: &[String],
    row: &StoredResult,
) -> Option<u8> {
    let canary = canaries.contains(&row.check);
    let agent_error = row.class.as_deref() == Some("agent_error");
    if !(canary || (agent_error && rule_checks.contains(&row.check))) {
        return None;
    }
    let mut f = 0;
    if agent_error {
        f |= AGENT_ERROR;
    }
    if canary {
        f |= CANARY_SEEN;
        if row.success {
            f |= CANARY_PASS;
        }
    }
    Some(f)
}

impl Keeper {
    /// Feeds the location track with one committed result (rule 1a's inputs only).
    pub(super) fn track_location(&mut self, row: &StoredResult) {
        let Some(f) = location_flags(&self.canaries, &self.rule_checks, row) else {
            return;
        };
        if !self.data.locations.locations.contains_key(&row.location) {
            self.data
                .locations
                .locations
                .insert(row.location.clone(), LocationStatus::default());
            self.locations_changed = true;
        }
        let m = minute_of(row.started_at_ms);
        if m < self.data.locations.settled {
            // Late: only a result that can impair its minute can add to the
            // counter (which never steps back); the minute is re-decided
            // from the store, so it counts once whatever else arrives.
            let can_impair = f & AGENT_ERROR != 0 || f & (CANARY_SEEN | CANARY_PASS) == CANARY_SEEN;
            if can_impair && m >= self.data.locations.settled - self.retention_minutes() {
                self.late_minutes
                    .entry(row.location.clone())
                    .or_default()
                    .insert(m);
            }
            return;
        }
        *self
            .open_minutes
            .entry((m, row.location.clone()))
            .or_default() |= f;
    }

    /// How far back (minutes) the location track keeps what it counted:
    /// the results' retention (`max_result_age`).
    pub(super) fn retention_minutes(&self) -> i64 {
        i64::try_from(self.keep_after_end.as_secs() / 60)
            .unwrap_or(i64::MAX / 2)
            .max(1)
    }

    /// Settles the location track's minutes due by `now` (one minute after their end).
    pub(super) fn settle_minutes(&mut self, now: Timestamp) {
        if self.rule_checks.is_empty() {
            return;
        }
        let due = minute_of(now.as_millisecond()) - 1;
        let retention = self.retention_minutes();
        let l = &mut self.data.locations;
        if l.settled == 0 {
            // A fresh ledger: the minutes before the open window are
            // settled at once (as late results, they count once re-decided).
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
        for status in l.locations.values_mut() {
            status.impaired = false;
            status.forget_before(due - retention);
        }
        let keep = self.open_minutes.split_off(&(due, String::new()));
        for ((m, loc), flags) in std::mem::replace(&mut self.open_minutes, keep) {
            if !impaired(flags) {
                continue;
            }
            let status = l.locations.entry(loc).or_default();
            status.count(m);
            if m == last {
                status.impaired = true;
            }
        }
        l.settled = due;
        self.locations_changed = true;
    }

    /// Re-decides the settled minutes late results may have impaired, from
    /// the store, and counts those now impaired that were not counted yet.
    pub(super) fn rederive_minutes(
        &mut self,
        src: &mut dyn LedgerSource,
    ) -> Result<(), StoreError> {
        if self.late_minutes.is_empty() {
            return Ok(());
        }
        let late = std::mem::take(&mut self.late_minutes);
        let mut all: Vec<i64> = late.values().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        let (canaries, checks) = (self.canaries.clone(), self.rule_checks.clone());
        let mut flags: HashMap<(i64, String), u8> = HashMap::new();
        // Runs of nearby minutes, one store read each.
        let mut i = 0;
        while i < all.len() {
            let mut j = i;
            while j + 1 < all.len() && all[j + 1] <= all[j] + 1 + 8 {
                j += 1;
            }
            src.results_between(&checks, all[i] * 60_000, (all[j] + 1) * 60_000, &mut |r| {
                let m = minute_of(r.started_at_ms);
                if !late.get(&r.location).is_some_and(|ms| ms.contains(&m)) {
                    return;
                }
                if let Some(f) = location_flags(&canaries, &checks, &r) {
                    *flags.entry((m, r.location)).or_default() |= f;
                }
            })?;
            i = j + 1;
        }
        let l = &mut self.data.locations;
        let last = l.settled - 1;
        for ((m, loc), f) in flags {
            if !impaired(f) {
                continue;
            }
            let status = l.locations.entry(loc).or_default();
            if status.count(m) {
                if m == last {
                    status.impaired = true;
                }
                self.locations_changed = true;
            }
        }
        Ok(())
    }

    /// Sets slot `s` of contract `ci`'s `month` to `state`, counting as the
    /// module docs say (`settling`: the slot settles now).
    pub(super) fn set_state(
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
    pub(super) fn settle(&mut self, now: Timestamp) {
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
                    let slot_state = if self.data.frame(&c, month).is_maintenance(s) {
                        SlotState::Maintenance
                    } else {
                        v
                    };
                    if s >= due {
                        self.set_state(ci, month, s, slot_state, false, quiet);
                    }
                }
            }
            if due > settled {
                for s in settled..due {
                    let slot_state = if self.data.frame(&c, month).is_maintenance(s) {
                        SlotState::Maintenance
                    } else {
                        open.iter()
                            .find(|(x, _)| *x == s)
                            .map_or(SlotState::NoData, |(_, v)| *v)
                    };
                    self.set_state(ci, month, s, slot_state, true, quiet);
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
}
