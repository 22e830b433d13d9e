//! The evaluation state of one contract-month, fed one observation at a
//! time: per slot and (check, location) the deciding result, per slot the
//! check and contract states, and the latency samples.
//! [`super::evaluate`] builds one for a report; the SLA ledger decides its
//! open slots with the same packed key ([`pack`]), so both agree by construction.
//!
//! # The deciding result of a slot (§6.1)
//!
//! A location's state for a check in a slot is its result *started* last in
//! that slot. Two results with the same `started_at` (to the nanosecond) are
//! ordered by: FAIL beats PASS (a failure seen at the same instant is not
//! hidden), then the higher failure-class code (the order of
//! `FailureClass::ALL`, unknown classes last), then the greater message
//! (byte order). The outcome therefore does not depend on the order results
//! arrive in. Each result must be observed once (the store drops duplicates
//! by (agent, seq) before anything reads them): a replayed duplicate would
//! not change a slot but would add its latency sample twice.
//!
//! # Impaired locations (§6 rule 1a)
//!
//! Per (location, slot) a byte of flags, ORed as results arrive (so the
//! outcome does not depend on their order either): a canary result was
//! seen, one passed, an `agent_error` was seen (a covered check's or a
//! canary's), any result was seen. A location is impaired when it saw a
//! canary result and none passed, or an `agent_error`; its deciding results
//! then do not vote in that slot (they stay held, for the report's
//! coverage: what would have been confirmed without the exclusion). When a
//! location's impairment flips, every check of the slot is re-derived.
//!
//! A deciding result is packed in one `u64`: nanoseconds since the slot
//! start (bits 8..), a presence bit, a FAIL bit and the class code, so that
//! "later wins, then the tiebreak" is a plain integer comparison.

use std::collections::HashMap;

use super::contract::{Contract, Phase};
use super::month::{Month, MonthFrame};
use super::observation::{Observation, class_code};
use super::rules::{SlotState, check_state, contract_state};
use super::select::{Inconsistent, Selection};

/// Rule 1a flags of one (location, slot): it had a canary result…
pub(crate) const CANARY_SEEN: u8 = 1;
/// …at least one of which passed…
pub(crate) const CANARY_PASS: u8 = 2;
/// …a result of class `agent_error` (covered check or canary)…
pub(crate) const AGENT_ERROR: u8 = 4;
/// …any result at all (for the coverage's silent time).
pub(crate) const HEARD: u8 = 8;

/// Rule 1a: whether a location with these flags is impaired in the slot:
/// some canary result and none passed, or an `agent_error`.
pub(crate) fn impaired(flags: u8) -> bool {
    flags & AGENT_ERROR != 0 || flags & (CANARY_SEEN | CANARY_PASS) == CANARY_SEEN
}

/// The rule 1a flags one observation contributes (`canary`: of a canary check).
pub(crate) fn impair_flags(obs: &Observation<'_>, canary: bool) -> u8 {
    let mut f = HEARD;
    if obs.is_agent_fault() {
        f |= AGENT_ERROR;
    }
    if canary {
        f |= CANARY_SEEN;
        if obs.success {
            f |= CANARY_PASS;
        }
    }
    f
}

pub(crate) const PRESENT: u64 = 0x80;
pub(crate) const FAIL: u64 = 0x40;
const CLASS_MASK: u64 = 0x3f;

/// The packed deciding-result key of `obs`, started `offset` ns into its
/// slot: a greater key decides the slot (see the module docs).
pub(crate) fn pack(offset: u64, obs: &Observation<'_>) -> u64 {
    (offset << 8)
        | PRESENT
        | if obs.success {
            0
        } else {
            FAIL | u64::from(class_code(obs.class))
        }
}

/// Tally of slots `[0, counted)` of `frame` whose states are the low two
/// bits of `verdict` (the rest may carry flags).
pub(crate) fn tally_of(frame: &MonthFrame, verdict: &[u8], counted: u32) -> Tally {
    let counted = counted.min(frame.n_slots()).min(verdict.len() as u32);
    let mut t = Tally::default();
    if counted == 0 {
        return t;
    }
    let nominal = frame.slot_seconds(0);
    let last = frame.n_slots() - 1;
    let mut prev_down = false;
    for (i, &code) in verdict[..counted as usize].iter().enumerate() {
        let state = SlotState::from_code(code & 3);
        let secs = if i as u32 == last {
            frame.slot_seconds(last)
        } else {
            nominal
        };
        t.add(state, secs);
        let down = state == SlotState::Down;
        if down && !prev_down {
            t.incidents += 1;
        }
        prev_down = down;
    }
    t
}

/// Interned location names (ids are dense `u16`; order of first sight).
#[derive(Debug, Default)]
pub(crate) struct Locations {
    names: Vec<String>,
    ids: HashMap<String, u16>,
}

impl Locations {
    /// The id of `name`, interning it; `None` past 65,535 distinct names.
    pub(crate) fn id(&mut self, name: &str) -> Option<u16> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = u16::try_from(self.names.len()).ok()?;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        Some(id)
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}

/// Counts and seconds of each slot state over a range of slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub up: u32,
    pub down: u32,
    pub maintenance: u32,
    pub nodata: u32,
    pub up_seconds: u64,
    pub down_seconds: u64,
    pub maintenance_seconds: u64,
    pub nodata_seconds: u64,
    /// Maximal runs of DOWN slots.
    pub incidents: u32,
}

impl Tally {
    pub(crate) fn add(&mut self, state: SlotState, seconds: u64) {
        match state {
            SlotState::Up => {
                self.up += 1;
                self.up_seconds += seconds;
            }
            SlotState::Down => {
                self.down += 1;
                self.down_seconds += seconds;
            }
            SlotState::Maintenance => {
                self.maintenance += 1;
                self.maintenance_seconds += seconds;
            }
            SlotState::NoData => {
                self.nodata += 1;
                self.nodata_seconds += seconds;
            }
        }
    }
}

/// The evaluation state of one contract-month.
#[derive(Debug)]
pub(crate) struct MonthState {
    pub(crate) frame: MonthFrame,
    quorum: u32,
    n_checks: usize,
    /// `[check][location id]` → per slot the packed deciding result (0 = none).
    /// Grown on demand, so a month in progress holds only its past slots.
    cells: Vec<Vec<Vec<u64>>>,
    /// Messages of FAIL deciding results, by [`cell_key`].
    messages: HashMap<u64, Box<str>>,
    /// `[location id]` → per slot the rule 1a flags ([`CANARY_SEEN`]…).
    impair: Vec<Vec<u8>>,
    /// `[check]` → per slot the check's [`SlotState`] code.
    check_states: Vec<Vec<u8>>,
    /// Per slot the contract's [`SlotState`] code (MAINTENANCE preset).
    verdict: Vec<u8>,
    /// Phase of each latency objective (contract order).
    latency_phases: Vec<Phase>,
    /// Slots `[0, counted)` count (as of the report's `now`).
    pub(crate) counted: u32,
    /// Per latency objective, the percentile of the successful results'
    /// values outside maintenance in counted slots: the month's and each day's.
    pub(crate) latency: Vec<LatencySelection>,
}

/// One latency objective's selections: the month's, then one per local day.
#[derive(Debug)]
pub(crate) struct LatencySelection {
    pub(crate) month: Selection,
    pub(crate) days: Vec<Selection>,
}

impl LatencySelection {
    fn new(p: f64, n_days: usize) -> LatencySelection {
        LatencySelection {
            month: Selection::new(p),
            days: (0..n_days).map(|_| Selection::new(p)).collect(),
        }
    }

    /// Ends a pass of every selection: whether another is needed.
    fn end_pass(&mut self) -> Result<bool, Inconsistent> {
        let mut more = self.month.end_pass()?;
        for d in &mut self.days {
            more |= d.end_pass()?;
        }
        Ok(more)
    }
}

fn cell_key(check: usize, loc: u16, slot: u32) -> u64 {
    ((check as u64) << 48) | (u64::from(loc) << 32) | u64::from(slot)
}

/// Grows `v` to `len` elements, doubling capacity but never beyond `max`.
fn ensure_len<T: Clone + Default>(v: &mut Vec<T>, len: usize, max: usize) {
    if v.len() >= len {
        return;
    }
    if v.capacity() < len {
        let want = (v.capacity() * 2).clamp(len, max.max(len));
        v.reserve_exact(want - v.len());
    }
    v.resize(len, T::default());
}

impl MonthState {
    /// The state of `month` for a report as of `now`.
    pub(crate) fn new(contract: &Contract, month: Month, now: jiff::Timestamp) -> MonthState {
        let frame = MonthFrame::new(contract, month);
        let counted = frame.counted(now);
        let n_days = frame.days.len();
        let n = frame.n_slots();
        let verdict = (0..n)
            .map(|i| {
                if frame.is_maintenance(i) {
                    SlotState::Maintenance.code()
                } else {
                    SlotState::NoData.code()
                }
            })
            .collect();
        let latency_phases: Vec<Phase> = contract.latency_objectives().map(|(p, _, _)| p).collect();
        MonthState {
            frame,
            quorum: contract.quorum,
            n_checks: contract.checks.len(),
            cells: vec![Vec::new(); contract.checks.len()],
            messages: HashMap::new(),
            impair: Vec::new(),
            check_states: vec![Vec::new(); contract.checks.len()],
            verdict,
            latency: contract
                .latency_objectives()
                .map(|(_, p, _)| LatencySelection::new(p, n_days))
                .collect(),
            counted,
            latency_phases,
        }
    }

    /// Applies one observation of covered check `check` (index in the
    /// contract) from location `loc`. Returns whether it lies in this month.
    pub(crate) fn observe(&mut self, check: usize, loc: u16, obs: &Observation<'_>) -> bool {
        let Some((slot, offset)) = self.frame.slot_of(obs.started_at) else {
            return false;
        };
        if check >= self.n_checks {
            return false;
        }
        self.flag(loc, slot, impair_flags(obs, false));
        if obs.is_agent_fault() {
            // The agent's own fault (rule 1a): the location is impaired in
            // this slot, never the vendor's downtime.
            return true;
        }
        let s = slot as usize;
        let n = self.frame.n_slots() as usize;

        self.sample(slot, obs);

        let fail = !obs.success;
        let packed = pack(offset, obs);
        let cols = &mut self.cells[check];
        ensure_len(cols, loc as usize + 1, usize::from(u16::MAX) + 1);
        let col = &mut cols[loc as usize];
        ensure_len(col, s + 1, n);
        let old = col[s];
        let key = cell_key(check, loc, slot);
        let new_msg = obs.message.unwrap_or("");
        let replace = packed > old
            || (packed == old && fail && new_msg > self.messages.get(&key).map_or("", |m| &**m));
        if !replace {
            return true;
        }
        col[s] = packed;
        if fail && !new_msg.is_empty() {
            self.messages.insert(key, new_msg.into());
        } else if old & FAIL != 0 {
            self.messages.remove(&key);
        }
        if (old & (PRESENT | FAIL)) != (packed & (PRESENT | FAIL)) {
            self.recompute(check, slot);
        }
        true
    }

    /// Offers `obs`'s latency values (from `slot`) to the selections:
    /// successful results outside maintenance in counted slots.
    fn sample(&mut self, slot: u32, obs: &Observation<'_>) {
        if !obs.success || slot >= self.counted || self.frame.is_maintenance(slot) {
            return;
        }
        let day = self.frame.day_of_slot(slot);
        for (k, phase) in self.latency_phases.iter().enumerate() {
            if let Some(v) = obs.phase(*phase) {
                let sel = &mut self.latency[k];
                sel.month.add(v);
                if let Some(d) = sel.days.get_mut(day) {
                    d.add(v);
                }
            }
        }
    }

    /// A later pass over the same observations: only the latency values.
    pub(crate) fn resample(&mut self, check: usize, obs: &Observation<'_>) {
        let Some((slot, _)) = self.frame.slot_of(obs.started_at) else {
            return;
        };
        if check >= self.n_checks || obs.is_agent_fault() {
            return;
        }
        self.sample(slot, obs);
    }

    /// Ends a pass over the observations: whether another is needed for
    /// the percentiles ([`Inconsistent`] when the pass saw other values).
    pub(crate) fn end_pass(&mut self) -> Result<bool, Inconsistent> {
        let mut more = false;
        for l in &mut self.latency {
            more |= l.end_pass()?;
        }
        Ok(more)
    }

    /// Applies one result of a canary check from location `loc` (rule 1a).
    /// Returns whether it lies in this month.
    pub(crate) fn observe_canary(&mut self, loc: u16, obs: &Observation<'_>) -> bool {
        let Some((slot, _)) = self.frame.slot_of(obs.started_at) else {
            return false;
        };
        self.flag(loc, slot, impair_flags(obs, true));
        true
    }

    /// ORs `flags` into (loc, slot)'s rule 1a flags; when that changes
    /// whether the location is impaired, every check of the slot is re-derived.
    fn flag(&mut self, loc: u16, slot: u32, flags: u8) {
        let n = self.frame.n_slots() as usize;
        ensure_len(
            &mut self.impair,
            loc as usize + 1,
            usize::from(u16::MAX) + 1,
        );
        let col = &mut self.impair[loc as usize];
        ensure_len(col, slot as usize + 1, n);
        let old = col[slot as usize];
        let new = old | flags;
        if new == old {
            return;
        }
        col[slot as usize] = new;
        if impaired(old) != impaired(new) {
            for check in 0..self.n_checks {
                self.recompute(check, slot);
            }
        }
    }

    /// The rule 1a flags of (loc, slot).
    pub(crate) fn flags(&self, loc: u16, slot: u32) -> u8 {
        self.impair
            .get(loc as usize)
            .and_then(|c| c.get(slot as usize))
            .copied()
            .unwrap_or(0)
    }

    /// Location ids with any result in this month (covered checks or canaries).
    pub(crate) fn locations_heard(&self, below: u32) -> Vec<u16> {
        (0..self.impair.len())
            .filter(|&l| {
                let col = &self.impair[l];
                col[..col.len().min(below as usize)]
                    .iter()
                    .any(|&f| f & HEARD != 0)
            })
            .map(|l| l as u16)
            .collect()
    }

    /// PASS and FAIL counts of `check` in `slot` over the locations that
    /// count (not impaired), plus location `extra` when given (the
    /// counterfactual of the coverage's excluded failures).
    pub(crate) fn votes(&self, check: usize, slot: u32, extra: Option<u16>) -> (u32, u32) {
        let s = slot as usize;
        let (mut pass, mut fail) = (0u32, 0u32);
        for (loc, col) in self.cells[check].iter().enumerate() {
            let loc = loc as u16;
            if impaired(self.flags(loc, slot)) && extra != Some(loc) {
                continue;
            }
            match col.get(s) {
                Some(&c) if c & FAIL != 0 => fail += 1,
                Some(&c) if c & PRESENT != 0 => pass += 1,
                _ => {}
            }
        }
        (pass, fail)
    }

    /// The contract's quorum.
    pub(crate) fn quorum(&self) -> u32 {
        self.quorum
    }

    /// Re-derives check `check`'s state in `slot` and, if it changed, the contract's.
    fn recompute(&mut self, check: usize, slot: u32) {
        let s = slot as usize;
        let (pass, fail) = self.votes(check, slot, None);
        let state = check_state(pass, fail, self.quorum).code();
        let n = self.frame.n_slots() as usize;
        let cs = &mut self.check_states[check];
        ensure_len(cs, s + 1, n);
        if cs[s] == state {
            return;
        }
        cs[s] = state;
        if self.frame.is_maintenance(slot) {
            return;
        }
        let v = contract_state(
            (0..self.n_checks).map(|c| self.check_state_at(c, slot)),
            false,
        );
        self.verdict[s] = v.code();
    }

    /// The contract's state in `slot`.
    pub(crate) fn verdict(&self, slot: u32) -> SlotState {
        SlotState::from_code(self.verdict.get(slot as usize).copied().unwrap_or(0))
    }

    /// Check `check`'s state in `slot` (regardless of maintenance).
    pub(crate) fn check_state_at(&self, check: usize, slot: u32) -> SlotState {
        SlotState::from_code(
            self.check_states[check]
                .get(slot as usize)
                .copied()
                .unwrap_or(0),
        )
    }

    /// The deciding result of (check, location, slot): `None` without data,
    /// else `Some((failed, class code))`.
    pub(crate) fn cell(&self, check: usize, loc: u16, slot: u32) -> Option<(bool, u8)> {
        let c = *self.cells[check].get(loc as usize)?.get(slot as usize)?;
        (c & PRESENT != 0).then_some((c & FAIL != 0, (c & CLASS_MASK) as u8))
    }

    /// The message of a FAIL deciding result.
    pub(crate) fn message(&self, check: usize, loc: u16, slot: u32) -> Option<&str> {
        self.messages.get(&cell_key(check, loc, slot)).map(|m| &**m)
    }

    /// Location ids with at least one deciding result in slots `< below`.
    pub(crate) fn locations_with_data(&self, below: u32) -> Vec<u16> {
        let mut out: Vec<u16> = Vec::new();
        for cols in &self.cells {
            for (loc, col) in cols.iter().enumerate() {
                let end = col.len().min(below as usize);
                if !out.contains(&(loc as u16)) && col[..end].iter().any(|&c| c != 0) {
                    out.push(loc as u16);
                }
            }
        }
        out
    }

    /// Number of covered checks.
    pub(crate) fn n_checks(&self) -> usize {
        self.n_checks
    }

    /// Tally of slots `[0, counted)`.
    pub(crate) fn tally(&self, counted: u32) -> Tally {
        tally_of(&self.frame, &self.verdict, counted)
    }
}
