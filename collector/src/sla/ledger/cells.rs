//! An open slot's cells: the deciding result of each (check, location)
//! and each location's rule 1a flags, and the verdict they give; plus the
//! parse of a stored result into what the cells read.

use std::collections::HashMap;

use slaprobe_wire::ProbeResult;

use crate::sla::observation::Observation;
use crate::sla::rules::{SlotState, check_state, contract_state};
use crate::sla::state::{FAIL, PRESENT, impair_flags, impaired, pack};
use crate::store::StoredResult;

/// What one open slot holds: the deciding results and each location's rule 1a flags.
#[derive(Debug, Clone, Default)]
pub(super) struct Cells {
    /// (check index, location id, packed key).
    pub(super) decided: Vec<(u16, u16, u64)>,
    /// (location id, rule 1a flags: [`CANARY_SEEN`] …), ORed.
    pub(super) flags: Vec<(u16, u8)>,
}

/// The check index that marks a canary in [`Keeper::by_check`].
pub(super) const CANARY: u16 = u16::MAX;

pub(super) fn decide(cells: &mut Cells, check: u16, loc: u16, key: u64) {
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
pub(super) fn flag(cells: &mut Cells, loc: u16, flags: u8) {
    match cells.flags.iter_mut().find(|(l, _)| *l == loc) {
        Some(e) => e.1 |= flags,
        None => cells.flags.push((loc, flags)),
    }
}

/// Applies one observation of check index `k` (or [`CANARY`]) to an open
/// slot's cells, exactly as the offline evaluator does (`MonthState::observe`).
pub(super) fn apply_obs(cells: &mut Cells, k: u16, loc: u16, offset: u64, obs: &Observation<'_>) {
    flag(cells, loc, impair_flags(obs, k == CANARY));
    if k != CANARY && !obs.is_agent_fault() {
        decide(cells, k, loc, pack(offset, obs));
    }
}

/// The contract's state in a slot from its cells (maintenance aside).
pub(super) fn verdict_of(cells: &Cells, n_checks: usize, quorum: u32) -> SlotState {
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
pub(super) fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

/// The id of location `name`, interning it.
pub(super) fn loc_id(locations: &mut HashMap<String, u16>, name: &str) -> u16 {
    if let Some(&id) = locations.get(name) {
        return id;
    }
    let id = u16::try_from(locations.len()).unwrap_or(u16::MAX);
    locations.insert(name.to_string(), id);
    id
}

/// A stored result, parsed once for every contract that covers its check.
pub(super) struct Parsed {
    pub(super) result: ProbeResult,
    pub(super) batch_no: u64,
}

pub(super) fn parse(row: &StoredResult) -> Option<Parsed> {
    serde_json::from_str::<ProbeResult>(&row.raw)
        .ok()
        .map(|result| Parsed {
            result,
            batch_no: row.batch_no,
        })
}
