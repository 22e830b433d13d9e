//! The rules of DESIGN.md §6 as small pure functions: slot states, quorum,
//! availability, nearest-rank percentile, credits, error budget. Everything
//! else in `sla` is bookkeeping around these.

use serde::{Deserialize, Serialize};

use super::contract::CreditTier;

/// The state of a check or of a whole contract in one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum SlotState {
    /// No location had a result (for a contract: no check UP or DOWN).
    #[default]
    NoData = 0,
    Up = 1,
    Down = 2,
    /// The slot's start lies in a maintenance window (contracts only).
    Maintenance = 3,
}

impl SlotState {
    /// The compact code stored per slot.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Inverse of [`SlotState::code`] (unknown codes read as NODATA).
    pub fn from_code(c: u8) -> SlotState {
        match c {
            1 => Self::Up,
            2 => Self::Down,
            3 => Self::Maintenance,
            _ => Self::NoData,
        }
    }
}

/// §6.2: a check's state in a slot from its locations' verdicts: DOWN when
/// at least `min(quorum, locations with data)` locations FAIL (and at least
/// one does), UP when it has data and is not DOWN, NODATA with no data.
pub fn check_state(pass: u32, fail: u32, quorum: u32) -> SlotState {
    let with_data = pass + fail;
    if with_data == 0 {
        return SlotState::NoData;
    }
    let needed = quorum.min(with_data).max(1);
    if fail >= needed {
        SlotState::Down
    } else {
        SlotState::Up
    }
}

/// §6.3: the contract's state from its checks' states; MAINTENANCE overrides.
pub fn contract_state(checks: impl IntoIterator<Item = SlotState>, maintenance: bool) -> SlotState {
    if maintenance {
        return SlotState::Maintenance;
    }
    let mut up = false;
    for s in checks {
        match s {
            SlotState::Down => return SlotState::Down,
            SlotState::Up => up = true,
            _ => {}
        }
    }
    if up { SlotState::Up } else { SlotState::NoData }
}

/// §6.4: `UP / (UP + DOWN) × 100`, weighted by slot seconds (identical to the
/// slot-count ratio whenever every slot has the same length); `None` without
/// eligible time.
pub fn availability_percent(up_seconds: u64, down_seconds: u64) -> Option<f64> {
    let eligible = up_seconds + down_seconds;
    (eligible > 0).then(|| up_seconds as f64 / eligible as f64 * 100.0)
}

/// §6.6: the 1-based nearest rank `ceil(p/100 × n)`, clamped to `1..=n`.
///
/// `p` comes from a decimal config value (95, 99.9), so `p/100 × n` is
/// computed as `p × n / 100` and a product within 1e-9 (relative) of an
/// integer counts as that integer: binary rounding must not push
/// `99.9% × 1000` to rank 1000.
pub fn nearest_rank(p: f64, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let x = p * n as f64 / 100.0;
    let r = x.round();
    let rank = if (x - r).abs() <= 1e-9 * x.abs().max(1.0) {
        r
    } else {
        x.ceil()
    };
    (rank.max(1.0) as usize).min(n)
}

/// §6.6 over unsorted values: the nearest-rank `p` percentile (`None` when empty).
/// Reorders `values`.
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let k = nearest_rank(p, values.len()) - 1;
    let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    Some(*v)
}

/// §6.7: the largest `percent` among tiers whose `below` is greater than the
/// attained availability; 0 when none or when nothing was attained (no eligible slot).
pub fn credit_percent(tiers: &[CreditTier], attained: Option<f64>) -> f64 {
    let Some(a) = attained else { return 0.0 };
    tiers
        .iter()
        .filter(|t| t.below > a)
        .map(|t| t.percent)
        .fold(0.0, f64::max)
}

/// §6.8: `1 − downtime / ((1 − target/100) × (month length − maintenance))`.
/// Unbounded below (an overspent budget is negative). When the allowed
/// downtime is zero (target 100%, or the month all maintenance) it is 1 without
/// downtime and `None` (undefined) with some.
pub fn error_budget_remaining(
    target: f64,
    downtime_seconds: u64,
    month_seconds: u64,
    maintenance_seconds: u64,
) -> Option<f64> {
    let allowed = (1.0 - target / 100.0) * month_seconds.saturating_sub(maintenance_seconds) as f64;
    if allowed > 0.0 {
        Some(1.0 - downtime_seconds as f64 / allowed)
    } else if downtime_seconds == 0 {
        Some(1.0)
    } else {
        None
    }
}

/// Whether an objective is met when nothing could be measured (no eligible
/// slot, no latency sample): yes — no breach was observed. The report shows
/// `attained: null` and the NODATA coverage so a reader sees why.
pub const MET_WITHOUT_DATA: bool = true;
