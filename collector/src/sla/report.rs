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

use super::contract::{Contract, Objective, ObjectiveKind};
use super::month::{MaintenanceWindow, Month, MonthFrame};
use super::observation::class_from_code;
use super::rules::{
    MET_WITHOUT_DATA, SlotState, availability_percent, check_state, credit_percent,
    error_budget_remaining,
};
use super::state::{AGENT_ERROR, CANARY_PASS, CANARY_SEEN, HEARD, MonthState, Tally, impaired};

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
    /// `availability`, `latency` or `web_vital`.
    pub kind: ObjectiveKind,
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
        self.kind.is_sampled()
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

/// A stretch in which rule 1a kept a location's failures out of the verdict:
/// a maximal run of slots where the location was impaired and the contract
/// would have been DOWN had its results counted, yet was not DOWN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedFailure {
    /// Start of the first such slot.
    pub start: Timestamp,
    /// End of the last such slot (exclusive).
    pub end: Timestamp,
    pub duration_seconds: u64,
    pub slots: u32,
    /// The checks that would have been DOWN (contract order).
    pub checks: Vec<String>,
    /// Failure classes of the location's excluded results for those checks (sorted).
    pub classes: Vec<String>,
    /// Why the location was impaired: `canaries_failed` and/or `agent_error` (sorted).
    pub reasons: Vec<String>,
}

/// A maximal run of counted slots (maintenance included) in which a
/// location was impaired (rule 1a); a location's stretches add up to its
/// `impaired_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpairedStretch {
    /// Start of the first impaired slot.
    pub start: Timestamp,
    /// End of the last impaired slot (exclusive).
    pub end: Timestamp,
    pub duration_seconds: u64,
    pub slots: u32,
    /// Which clause applied: `canaries_failed` and/or `agent_error` (sorted).
    pub reasons: Vec<String>,
}

/// Monitoring coverage of one location over the counted slots (rule 1a).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationCoverage {
    pub location: String,
    /// Seconds of slots in which the location was impaired (its results counted as no data).
    pub impaired_seconds: u64,
    /// Seconds of slots with no result at all from the location (covered checks and canaries).
    pub silent_seconds: u64,
    /// The incidents its impairment prevented from being confirmed.
    pub excluded_failures: Vec<ExcludedFailure>,
    /// When it was impaired: every stretch of `impaired_seconds`, in order.
    #[serde(default)]
    pub impaired_stretches: Vec<ImpairedStretch>,
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
    /// Monitoring coverage of every location with results (covered checks or
    /// canaries) in the counted slots, sorted by name.
    pub locations: Vec<LocationCoverage>,
    /// The covered checks.
    pub checks: Vec<String>,
    /// The canary checks rule 1a read (their results are in the evidence).
    #[serde(default)]
    pub canaries: Vec<String>,
    pub evidence: Evidence,
}

/// The objective results from a tally and, per latency objective, `(samples, percentile)`.
pub(crate) fn objective_results(
    contract: &Contract,
    tally: &Tally,
    latency: &[(usize, Option<f64>)],
) -> Vec<ObjectiveResult> {
    let availability = availability_percent(tally.up_seconds, tally.down_seconds);
    let mut latency_values = latency.iter();
    contract
        .objectives
        .iter()
        .map(|o| match *o {
            Objective::Availability { target } => ObjectiveResult {
                kind: o.kind(),
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
                let (n, value) = latency_values.next().copied().unwrap_or((0, None));
                let max_s = max.as_secs_f64();
                ObjectiveResult {
                    kind: o.kind(),
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
                let (n, value) = latency_values.next().copied().unwrap_or((0, None));
                ObjectiveResult {
                    kind: o.kind(),
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
    let counted = state.counted;
    debug_assert_eq!(counted, state.frame.counted(now));
    let tally = state.tally(counted);

    let percentiles: Vec<f64> = contract.latency_objectives().map(|(_, p, _)| p).collect();
    let latency: Vec<(usize, Option<f64>)> = state
        .latency
        .iter()
        .map(|l| {
            let (n, v) = l.month.result();
            (n as usize, v)
        })
        .collect();
    let objectives = objective_results(contract, &tally, &latency);
    let availability = availability_percent(tally.up_seconds, tally.down_seconds);

    // Locations in name order: the deterministic order for incidents.
    let mut locs = state.locations_with_data(counted);
    locs.sort_by(|a, b| loc_names[*a as usize].cmp(&loc_names[*b as usize]));
    let mut heard = state.locations_heard(counted);
    heard.sort_by(|a, b| loc_names[*a as usize].cmp(&loc_names[*b as usize]));
    let locations = heard
        .iter()
        .map(|&l| coverage(contract, state, l, &loc_names[l as usize], counted))
        .collect();

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
        locations,
        checks: contract.checks.clone(),
        canaries: contract.canaries.clone(),
        evidence: Evidence::default(),
    }
}

/// Location `loc`'s coverage over slots `[0, counted)`.
fn coverage(
    contract: &Contract,
    state: &MonthState,
    loc: u16,
    name: &str,
    counted: u32,
) -> LocationCoverage {
    let frame = &state.frame;
    let (mut impaired_seconds, mut silent_seconds) = (0u64, 0u64);
    let mut excluded: Vec<ExcludedFailure> = Vec::new();
    // The run being built.
    struct Run<'r> {
        first: u32,
        last: u32,
        checks: Vec<bool>,
        classes: BTreeSet<String>,
        reasons: BTreeSet<&'r str>,
    }
    let mut run: Option<Run<'_>> = None;
    let close = |r: Run<'_>, out: &mut Vec<ExcludedFailure>| {
        out.push(ExcludedFailure {
            start: frame.slot_start(r.first),
            end: frame.slot_end(r.last),
            duration_seconds: (r.first..=r.last).map(|s| frame.slot_seconds(s)).sum(),
            slots: r.last - r.first + 1,
            checks: contract
                .checks
                .iter()
                .zip(&r.checks)
                .filter(|(_, d)| **d)
                .map(|(n, _)| n.clone())
                .collect(),
            classes: r.classes.into_iter().collect(),
            reasons: r.reasons.into_iter().map(str::to_string).collect(),
        });
    };
    let mut stretches: Vec<ImpairedStretch> = Vec::new();
    for s in 0..counted {
        let flags = state.flags(loc, s);
        let secs = frame.slot_seconds(s);
        if flags & HEARD == 0 {
            silent_seconds += secs;
        }
        let mut hit: Option<(Vec<bool>, BTreeSet<String>)> = None;
        if impaired(flags) {
            impaired_seconds += secs;
            let mut reasons = Vec::new();
            if flags & (CANARY_SEEN | CANARY_PASS) == CANARY_SEEN {
                reasons.push("canaries_failed");
            }
            if flags & AGENT_ERROR != 0 {
                reasons.push("agent_error");
            }
            match stretches.last_mut() {
                Some(st) if st.end == frame.slot_start(s) => {
                    st.end = frame.slot_end(s);
                    st.duration_seconds += secs;
                    st.slots += 1;
                    for r in reasons {
                        if !st.reasons.iter().any(|x| x == r) {
                            st.reasons.push(r.to_string());
                            st.reasons.sort();
                        }
                    }
                }
                _ => stretches.push(ImpairedStretch {
                    start: frame.slot_start(s),
                    end: frame.slot_end(s),
                    duration_seconds: secs,
                    slots: 1,
                    reasons: {
                        let mut v: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                        v.sort();
                        v
                    },
                }),
            }
            if !frame.is_maintenance(s) && state.verdict(s) != SlotState::Down {
                // Would the contract have been DOWN with this location's results?
                let mut checks = vec![false; state.n_checks()];
                let mut classes = BTreeSet::new();
                for (c, down) in checks.iter_mut().enumerate() {
                    let (pass, fail) = state.votes(c, s, Some(loc));
                    if check_state(pass, fail, state.quorum()) == SlotState::Down
                        && let Some((true, code)) = state.cell(c, loc, s)
                    {
                        *down = true;
                        if let Some(class) = class_from_code(code) {
                            classes.insert(class.as_str().to_string());
                        }
                    }
                }
                if checks.iter().any(|d| *d) {
                    hit = Some((checks, classes));
                }
            }
        }
        match hit {
            Some((checks, classes)) => {
                let mut reasons = BTreeSet::new();
                if flags & AGENT_ERROR != 0 {
                    reasons.insert("agent_error");
                }
                if flags & (CANARY_SEEN | CANARY_PASS) == CANARY_SEEN {
                    reasons.insert("canaries_failed");
                }
                match run.as_mut() {
                    Some(r) if r.last + 1 == s => {
                        r.last = s;
                        for (a, b) in r.checks.iter_mut().zip(&checks) {
                            *a |= *b;
                        }
                        r.classes.extend(classes);
                        r.reasons.extend(reasons);
                    }
                    _ => {
                        if let Some(r) = run.take() {
                            close(r, &mut excluded);
                        }
                        run = Some(Run {
                            first: s,
                            last: s,
                            checks,
                            classes,
                            reasons,
                        });
                    }
                }
            }
            None => {
                if let Some(r) = run.take() {
                    close(r, &mut excluded);
                }
            }
        }
    }
    if let Some(r) = run.take() {
        close(r, &mut excluded);
    }
    LocationCoverage {
        location: name.to_string(),
        impaired_seconds,
        silent_seconds,
        excluded_failures: excluded,
        impaired_stretches: stretches,
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
                    if impaired(state.flags(l, s)) {
                        // Rule 1a: its results did not count.
                        continue;
                    }
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
                let (samples, value) = state.latency[k].days[d].result();
                DayLatency {
                    objective: labels[k].0.clone(),
                    phase: labels[k].1.to_string(),
                    percentile: p,
                    samples,
                    value,
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
