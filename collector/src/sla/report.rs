//! [`MonthReport`]: a contract-month's figures (DESIGN.md §7), and how they
//! are computed from a month's state. Serializes to the JSON report; the
//! CSV and HTML renderings are built from the same struct.
//!
//! Conventions: instants are RFC 3339 in UTC; durations are whole seconds
//! (slots are whole seconds); percentages are 0–100; `null` means "nothing
//! to measure" (no eligible slot, no latency sample).

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::contract::{Contract, Objective};
use super::month::{MaintenanceWindow, Month, MonthFrame};
use super::observation::class_from_code;
use super::rules::{
    MET_WITHOUT_DATA, SlotState, availability_percent, credit_percent, error_budget_remaining,
    percentile,
};
use super::state::{MonthState, Tally};

/// Slots by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotCounts {
    pub up: u32,
    pub down: u32,
    pub maintenance: u32,
    pub nodata: u32,
}

impl From<&Tally> for SlotCounts {
    fn from(t: &Tally) -> Self {
        SlotCounts {
            up: t.up,
            down: t.down,
            maintenance: t.maintenance,
            nodata: t.nodata,
        }
    }
}

/// One objective's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveResult {
    /// `availability` or `latency`.
    pub kind: String,
    /// The `objective` label (`availability`, `latency_processing_p95`).
    pub objective: String,
    /// Availability: percent. Latency: `max` in seconds.
    pub target: f64,
    /// Availability: attained percent. Latency: the percentile in seconds.
    /// `null` when nothing could be measured.
    pub attained: Option<f64>,
    /// Availability: attained >= target. Latency: percentile <= max. Without
    /// data: `true` (no breach observed; see `rules::MET_WITHOUT_DATA`).
    pub met: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// Latency: the largest acceptable value, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Latency: the number of samples the percentile was taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// web_vital: the Web Vital (`lcp`, `cls`, `fcp`, `ttfb`, `tbt`); its
    /// `target`, `attained` and `max` are seconds, or unitless for CLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
}

impl ObjectiveResult {
    /// A percentile objective over samples (latency or web_vital): these
    /// have a `percentile`, `max`, `samples` and a daily series in `days`.
    pub fn is_sampled(&self) -> bool {
        matches!(self.kind.as_str(), "latency" | "web_vital")
    }

    /// What the percentile is taken of: the latency phase or the Web Vital.
    pub fn quantity(&self) -> Option<&str> {
        self.phase.as_deref().or(self.metric.as_deref())
    }
}

/// A maximal run of consecutive DOWN slots (§6.5). MAINTENANCE, NODATA and
/// UP slots end a run, and so does the month's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Start of the first DOWN slot.
    pub start: Timestamp,
    /// End of the last DOWN slot (exclusive).
    pub end: Timestamp,
    pub duration_seconds: u64,
    /// Number of DOWN slots.
    pub slots: u32,
    /// The checks that were DOWN in some slot of it (contract order).
    pub checks: Vec<String>,
    /// Locations whose deciding result FAILed for a DOWN check in one of its slots (sorted).
    pub locations: Vec<String>,
    /// Failure classes of those results (sorted, deduplicated).
    pub classes: Vec<String>,
    /// The message of the first of those results (by slot, check, location name).
    pub sample_message: Option<String>,
}

/// One latency (or web_vital) objective on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayLatency {
    pub objective: String,
    /// The phase, or the Web Vital of a web_vital objective.
    pub phase: String,
    pub percentile: f64,
    /// Seconds; `null` without samples that day.
    pub value: Option<f64>,
    pub samples: u64,
}

/// Figures of one contract-local day (slots belong to the day their start lies in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayFigures {
    pub date: Date,
    pub slots: SlotCounts,
    pub availability_percent: Option<f64>,
    pub downtime_seconds: u64,
    pub maintenance_seconds: u64,
    pub nodata_seconds: u64,
    /// One entry per latency objective, in contract order.
    pub latency: Vec<DayLatency>,
}

/// What the report was computed from: filled by the caller with
/// [`crate::sla::evidence::evidence_digest`] over the stored results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Number of results.
    pub results: u64,
    /// Hex SHA-256 in the canonical order (see `evidence_digest`); empty until filled.
    pub sha256: String,
}

/// A contract's month (DESIGN.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthReport {
    pub contract: String,
    pub vendor: String,
    /// `2026-10`.
    pub month: Month,
    /// The contract's zone; the month and its days are this zone's.
    pub timezone: String,
    /// Local midnight of day 1.
    pub period_start: Timestamp,
    /// Local midnight of the next month's day 1 (exclusive).
    pub period_end: Timestamp,
    /// `null` once the month has ended; before that, the instant the
    /// month-to-date figures are as of (slots starting later are not
    /// counted). The last slot of a month is counted from its start, yet the
    /// month is not over until its end: the report says so.
    pub as_of: Option<Timestamp>,
    pub slot_seconds: u64,
    pub quorum: u32,
    pub slots: SlotCounts,
    /// `null` when no slot was UP or DOWN.
    pub availability_percent: Option<f64>,
    pub downtime_seconds: u64,
    pub maintenance_seconds: u64,
    pub nodata_seconds: u64,
    pub objectives: Vec<ObjectiveResult>,
    pub incidents: Vec<Incident>,
    pub credit_percent: f64,
    /// `null` without an availability objective, or when the allowed
    /// downtime is zero and some was spent. Uses the whole month's length
    /// and scheduled maintenance even month to date.
    pub error_budget_remaining: Option<f64>,
    pub days: Vec<DayFigures>,
    /// Maintenance windows that overlap the month.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Locations with results in the counted slots (sorted).
    pub locations: Vec<String>,
    /// The covered checks.
    pub checks: Vec<String>,
    pub evidence: Evidence,
}

/// The objective results from a tally and, per latency objective, `(samples, percentile)`.
pub(crate) fn objective_results(
    contract: &Contract,
    tally: &Tally,
    latency: &[(usize, Option<f64>)],
) -> Vec<ObjectiveResult> {
    let availability = availability_percent(tally.up_seconds, tally.down_seconds);
    let mut lat = latency.iter();
    contract
        .objectives
        .iter()
        .map(|o| match *o {
            Objective::Availability { target } => ObjectiveResult {
                kind: o.kind().to_string(),
                objective: o.label(),
                target,
                attained: availability,
                met: availability.map_or(MET_WITHOUT_DATA, |a| a >= target),
                phase: None,
                percentile: None,
                max: None,
                samples: None,
                metric: None,
            },
            Objective::Latency {
                phase,
                percentile,
                max,
            } => {
                let (n, value) = lat.next().copied().unwrap_or((0, None));
                let max_s = max.as_secs_f64();
                ObjectiveResult {
                    kind: o.kind().to_string(),
                    objective: o.label(),
                    target: max_s,
                    attained: value,
                    met: value.map_or(MET_WITHOUT_DATA, |v| v <= max_s),
                    phase: Some(phase.as_str().to_string()),
                    percentile: Some(percentile),
                    max: Some(max_s),
                    samples: Some(n as u64),
                    metric: None,
                }
            }
            Objective::WebVital {
                metric,
                percentile,
                max,
            } => {
                let (n, value) = lat.next().copied().unwrap_or((0, None));
                ObjectiveResult {
                    kind: o.kind().to_string(),
                    objective: o.label(),
                    target: max,
                    attained: value,
                    met: value.map_or(MET_WITHOUT_DATA, |v| v <= max),
                    phase: None,
                    percentile: Some(percentile),
                    max: Some(max),
                    samples: Some(n as u64),
                    metric: Some(metric.as_str().to_string()),
                }
            }
        })
        .collect()
}

/// Error budget remaining as defined for reports and status.
pub(crate) fn budget(contract: &Contract, state: &MonthState, tally: &Tally) -> Option<f64> {
    budget_in(contract, &state.frame, tally)
}

/// [`budget`] over a month frame.
pub(crate) fn budget_in(contract: &Contract, frame: &MonthFrame, tally: &Tally) -> Option<f64> {
    let target = contract.availability_target()?;
    error_budget_remaining(
        target,
        tally.down_seconds,
        frame.length_seconds(),
        frame.maintenance_seconds_total(),
    )
}

/// The month's report as of `now`.
pub(crate) fn build_report(
    contract: &Contract,
    state: &mut MonthState,
    loc_names: &[String],
    now: Timestamp,
) -> MonthReport {
    let counted = state.frame.counted(now);
    let tally = state.tally(counted);

    let percentiles: Vec<f64> = contract.latency_objectives().map(|(_, p, _)| p).collect();
    let latency: Vec<(usize, Option<f64>)> = percentiles
        .iter()
        .enumerate()
        .map(|(k, &p)| state.samples[k].percentile_below(counted, p))
        .collect();
    let objectives = objective_results(contract, &tally, &latency);
    let availability = availability_percent(tally.up_seconds, tally.down_seconds);

    // Locations in name order: the deterministic order for incidents.
    let mut locs = state.locations_with_data(counted);
    locs.sort_by(|a, b| loc_names[*a as usize].cmp(&loc_names[*b as usize]));

    let incidents = incidents(contract, state, &locs, loc_names, counted);
    let days = days(contract, state, &percentiles, counted);

    MonthReport {
        contract: contract.name.clone(),
        vendor: contract.vendor.clone(),
        month: state.frame.month,
        timezone: contract.timezone.clone(),
        period_start: state.frame.start,
        period_end: state.frame.end,
        as_of: (now < state.frame.end).then_some(now),
        slot_seconds: contract.slot_seconds(),
        quorum: contract.quorum,
        slots: SlotCounts::from(&tally),
        availability_percent: availability,
        downtime_seconds: tally.down_seconds,
        maintenance_seconds: tally.maintenance_seconds,
        nodata_seconds: tally.nodata_seconds,
        objectives,
        incidents,
        credit_percent: credit_percent(&contract.credits, availability),
        error_budget_remaining: budget(contract, state, &tally),
        days,
        maintenance: state.frame.windows.clone(),
        locations: locs
            .iter()
            .map(|&l| loc_names[l as usize].clone())
            .collect(),
        checks: contract.checks.clone(),
        evidence: Evidence::default(),
    }
}

fn incidents(
    contract: &Contract,
    state: &MonthState,
    locs: &[u16],
    loc_names: &[String],
    counted: u32,
) -> Vec<Incident> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < counted {
        if state.verdict(i) != SlotState::Down {
            i += 1;
            continue;
        }
        let first = i;
        while i < counted && state.verdict(i) == SlotState::Down {
            i += 1;
        }
        let last = i - 1;
        let mut checks = vec![false; state.n_checks()];
        let mut locations = BTreeSet::new();
        let mut classes = BTreeSet::new();
        let mut sample: Option<String> = None;
        for s in first..=last {
            for (c, seen) in checks.iter_mut().enumerate() {
                if state.check_state_at(c, s) != SlotState::Down {
                    continue;
                }
                *seen = true;
                for &l in locs {
                    if let Some((true, code)) = state.cell(c, l, s) {
                        locations.insert(loc_names[l as usize].clone());
                        if let Some(class) = class_from_code(code) {
                            classes.insert(class.as_str().to_string());
                        }
                        if sample.is_none() {
                            sample = state.message(c, l, s).map(str::to_string);
                        }
                    }
                }
            }
        }
        let start = state.frame.slot_start(first);
        let end = state.frame.slot_end(last);
        out.push(Incident {
            start,
            end,
            duration_seconds: (first..=last).map(|s| state.frame.slot_seconds(s)).sum(),
            slots: last - first + 1,
            checks: contract
                .checks
                .iter()
                .zip(&checks)
                .filter(|(_, d)| **d)
                .map(|(n, _)| n.clone())
                .collect(),
            locations: locations.into_iter().collect(),
            classes: classes.into_iter().collect(),
            sample_message: sample,
        });
    }
    out
}

fn days(
    contract: &Contract,
    state: &MonthState,
    percentiles: &[f64],
    counted: u32,
) -> Vec<DayFigures> {
    let frame = &state.frame;
    let n_days = frame.days.len();
    // Per latency objective, per day: the values.
    let mut values: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n_days]; percentiles.len()];
    for (k, per_day) in values.iter_mut().enumerate() {
        state.samples[k]
            .for_each_below(counted, |slot, v| per_day[frame.day_of_slot(slot)].push(v));
    }
    let labels: Vec<(String, &'static str)> = contract
        .objectives
        .iter()
        .filter_map(|o| match o {
            Objective::Latency { phase, .. } => Some((o.label(), phase.as_str())),
            Objective::WebVital { metric, .. } => Some((o.label(), metric.as_str())),
            Objective::Availability { .. } => None,
        })
        .collect();

    let mut out = Vec::new();
    for (d, date) in frame.days.iter().enumerate() {
        let (lo, hi) = frame.day_slots(d);
        if lo >= counted {
            break;
        }
        let mut t = Tally::default();
        for s in lo..hi.min(counted) {
            t.add(state.verdict(s), frame.slot_seconds(s));
        }
        let latency = percentiles
            .iter()
            .enumerate()
            .map(|(k, &p)| {
                let v = &mut values[k][d];
                DayLatency {
                    objective: labels[k].0.clone(),
                    phase: labels[k].1.to_string(),
                    percentile: p,
                    samples: v.len() as u64,
                    value: percentile(v, p),
                }
            })
            .collect();
        out.push(DayFigures {
            date: *date,
            slots: SlotCounts::from(&t),
            availability_percent: availability_percent(t.up_seconds, t.down_seconds),
            downtime_seconds: t.down_seconds,
            maintenance_seconds: t.maintenance_seconds,
            nodata_seconds: t.nodata_seconds,
            latency,
        });
    }
    out
}
