//! The `slaprobe_sla_*` and `slaprobe_location_*` families (DESIGN.md §8,
//! SLA section), each declared once by name and written at scrape time from
//! the ledger's month-to-date status ([`SlaService::status`]) and rule 1a
//! per location ([`SlaService::locations`]).

use jiff::Timestamp;
use slaprobe_exposition::{Exposition, Family, Kind};

use crate::metrics::MetricFamilies;
use crate::sla::ContractStatus;
use crate::sla::ledger::LocationsLedger;
use crate::sla::report::ObjectiveResult;
use crate::sla_service::SlaService;

/// Label names of the per-contract families.
const CONTRACT: &[&str] = &["contract", "vendor"];
/// Label names of the per-objective families.
const OBJECTIVE: &[&str] = &["contract", "vendor", "objective"];

/// `slaprobe_sla_target_ratio`.
pub const TARGET: Family = Family {
    name: "slaprobe_sla_target_ratio",
    kind: Kind::Gauge,
    help: "Availability target of the contract (ratio 0-1).",
    labels: OBJECTIVE,
};
/// `slaprobe_sla_attained_ratio`.
pub const ATTAINED: Family = Family {
    name: "slaprobe_sla_attained_ratio",
    kind: Kind::Gauge,
    help: "Availability attained this month to date (ratio 0-1).",
    labels: OBJECTIVE,
};
/// `slaprobe_sla_met`.
pub const MET: Family = Family {
    name: "slaprobe_sla_met",
    kind: Kind::Gauge,
    help: "1 if the objective is met this month to date, else 0.",
    labels: OBJECTIVE,
};
/// `slaprobe_sla_latency_seconds`.
pub const LATENCY: Family = Family {
    name: "slaprobe_sla_latency_seconds",
    kind: Kind::Gauge,
    help: "Latency objective: the percentile of the phase this month to date.",
    labels: OBJECTIVE,
};
/// `slaprobe_sla_latency_max_seconds`.
pub const LATENCY_MAX: Family = Family {
    name: "slaprobe_sla_latency_max_seconds",
    kind: Kind::Gauge,
    help: "Latency objective: the largest acceptable percentile.",
    labels: OBJECTIVE,
};
/// `slaprobe_sla_down`.
pub const DOWN: Family = Family {
    name: "slaprobe_sla_down",
    kind: Kind::Gauge,
    help: "1 if the latest settled slot is confirmed DOWN, else 0.",
    labels: CONTRACT,
};
/// `slaprobe_sla_error_budget_remaining_ratio`.
pub const ERROR_BUDGET_REMAINING: Family = Family {
    name: "slaprobe_sla_error_budget_remaining_ratio",
    kind: Kind::Gauge,
    help: "Error budget left this month (1 = untouched, below 0 = overspent).",
    labels: CONTRACT,
};
/// `slaprobe_sla_credit_ratio`.
pub const CREDIT: Family = Family {
    name: "slaprobe_sla_credit_ratio",
    kind: Kind::Gauge,
    help: "Service credit earned this month to date (ratio of the fee).",
    labels: CONTRACT,
};
/// `slaprobe_sla_downtime_seconds_total`.
pub const DOWNTIME: Family = Family {
    name: "slaprobe_sla_downtime_seconds_total",
    kind: Kind::Counter,
    help: "Confirmed DOWN time of settled slots.",
    labels: CONTRACT,
};
/// `slaprobe_sla_eligible_seconds_total`.
pub const ELIGIBLE: Family = Family {
    name: "slaprobe_sla_eligible_seconds_total",
    kind: Kind::Counter,
    help: "UP plus DOWN time of settled slots.",
    labels: CONTRACT,
};
/// `slaprobe_sla_excluded_seconds_total`.
pub const EXCLUDED: Family = Family {
    name: "slaprobe_sla_excluded_seconds_total",
    kind: Kind::Counter,
    help: "Settled time excluded from availability, by reason.",
    labels: &["contract", "vendor", "reason"],
};
/// `slaprobe_sla_incidents_total`.
pub const INCIDENTS: Family = Family {
    name: "slaprobe_sla_incidents_total",
    kind: Kind::Counter,
    help: "Incidents (runs of DOWN slots) among settled slots.",
    labels: CONTRACT,
};
/// `slaprobe_location_impaired`.
pub const LOCATION_IMPAIRED: Family = Family {
    name: "slaprobe_location_impaired",
    kind: Kind::Gauge,
    help: "1 if the location was impaired (rule 1a: its canaries all failed, or agent_error) in the latest settled minute.",
    labels: &["location"],
};
/// `slaprobe_location_impaired_seconds_total`.
pub const LOCATION_IMPAIRED_SECONDS: Family = Family {
    name: "slaprobe_location_impaired_seconds_total",
    kind: Kind::Counter,
    help: "Settled time the location was impaired (rule 1a), one-minute grid.",
    labels: &["location"],
};

/// Availability objectives go to the ratio families, the sampled ones
/// (latency, web_vital) to the latency families.
fn availability(o: &ObjectiveResult) -> bool {
    o.kind == crate::sla::ObjectiveKind::Availability
}

impl MetricFamilies for SlaService {
    /// Nothing before the store opened (no status yet).
    fn write_families(&self, out: &mut Exposition) {
        if let Some(status) = self.status(Timestamp::now()) {
            write_families(&status, &self.locations(), out);
        }
    }
}

/// Writes the SLA families for `status` and the location families for
/// `locations` (pure: the golden test feeds it fixed figures).
///
/// Series are sorted by label values: contracts by name and vendor,
/// objectives by name (config order is not label order).
pub fn write_families(
    status: &[ContractStatus],
    locations: &LocationsLedger,
    out: &mut Exposition,
) {
    let mut status: Vec<&ContractStatus> = status.iter().collect();
    status.sort_by(|a, b| (&a.contract, &a.vendor).cmp(&(&b.contract, &b.vendor)));
    let objectives: Vec<(&ContractStatus, Vec<&ObjectiveResult>)> = status
        .iter()
        .map(|s| {
            let mut o: Vec<&ObjectiveResult> = s.objectives.iter().collect();
            o.sort_by(|a, b| a.objective.cmp(&b.objective));
            (*s, o)
        })
        .collect();
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    type Pick = fn(&ObjectiveResult) -> Option<f64>;
    let per_objective: [(&'static Family, Pick); 5] = [
        (&TARGET, |o| availability(o).then_some(o.target / 100.0)),
        (&ATTAINED, |o| {
            o.attained.filter(|_| availability(o)).map(|a| a / 100.0)
        }),
        (&MET, |o| Some(if o.met { 1.0 } else { 0.0 })),
        (&LATENCY, |o| o.attained.filter(|_| !availability(o))),
        (&LATENCY_MAX, |o| (!availability(o)).then_some(o.target)),
    ];
    for (family, pick) in per_objective {
        out.family(family, |s| {
            for (c, objectives) in &objectives {
                for o in objectives {
                    if let Some(v) = pick(o) {
                        s.add(&[&c.contract, &c.vendor, &o.objective], v);
                    }
                }
            }
        });
    }
    type PickContract = fn(&ContractStatus) -> Option<f64>;
    let per_contract: [(&'static Family, PickContract); 6] = [
        (&DOWN, |c| Some(if c.down_now { 1.0 } else { 0.0 })),
        (&ERROR_BUDGET_REMAINING, |c| {
            c.error_budget_remaining.filter(|r| r.is_finite())
        }),
        (&CREDIT, |c| Some(c.credit_percent / 100.0)),
        (&DOWNTIME, |c| Some(c.counters.downtime_seconds as f64)),
        (&ELIGIBLE, |c| Some(c.counters.eligible_seconds as f64)),
        (&INCIDENTS, |c| Some(c.counters.incidents as f64)),
    ];
    for (family, pick) in per_contract {
        out.family(family, |s| {
            for c in &status {
                if let Some(v) = pick(c) {
                    s.add(&[&c.contract, &c.vendor], v);
                }
            }
        });
    }
    out.family(&EXCLUDED, |s| {
        for c in &status {
            let n = &c.counters;
            s.add(
                &[&c.contract, &c.vendor, "maintenance"],
                n.maintenance_seconds as f64,
            );
            s.add(&[&c.contract, &c.vendor, "nodata"], n.nodata_seconds as f64);
        }
    });
    out.family(&LOCATION_IMPAIRED, |s| {
        for (name, l) in &locations.locations {
            s.add(&[name], b(l.impaired));
        }
    });
    out.family(&LOCATION_IMPAIRED_SECONDS, |s| {
        for (name, l) in &locations.locations {
            s.add(&[name], l.impaired_seconds as f64);
        }
    });
}
