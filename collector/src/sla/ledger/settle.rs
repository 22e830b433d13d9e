//! Settling: a slot settles one slot after its end and adds to the
//! counters; the location track's minutes settle the same way.

use jiff::Timestamp;

use super::cells::{minute_of, verdict_of};
use super::data::LocationStatus;
use super::keeper::Keeper;
use super::{CHUNK_SLOTS, COUNTED_DOWN, COUNTED_ELIGIBLE, COUNTED_EXCLUDED, STATE_BITS, state_of};
use crate::sla::month::Month;
use crate::sla::rules::SlotState;
use crate::store::StoredResult;

impl Keeper {
    /// Feeds the location track with one committed result (rule 1a's inputs only).
    pub(super) fn track_location(&mut self, row: &StoredResult) {
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
            f |= crate::sla::state::AGENT_ERROR;
        }
        if canary {
            f |= crate::sla::state::CANARY_SEEN;
            if row.success {
                f |= crate::sla::state::CANARY_PASS;
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
    pub(super) fn settle_minutes(&mut self, now: Timestamp) {
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
        for status in l.locations.values_mut() {
            status.impaired = false;
        }
        let keep = self.open_minutes.split_off(&(due, String::new()));
        for ((m, loc), flags) in std::mem::replace(&mut self.open_minutes, keep) {
            if !crate::sla::state::impaired(flags) {
                continue;
            }
            let status = l.locations.entry(loc).or_default();
            status.impaired_seconds += 60;
            if m == last {
                status.impaired = true;
            }
        }
        l.settled = due;
        self.locations_changed = true;
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
