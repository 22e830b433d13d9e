//! `[[contracts]]` as written in the collector config, and its validation
//! into a [`Contract`] (DESIGN.md §3): defaults, ranges, and the checks it covers.
//!
//! # Layout
//! - here: [`RawContract`], [`Contract`] and its validation
//!   ([`Contract::from_raw`], [`validate_contracts`]).
//! - `objective`: objectives, their kinds, the phases and Web Vitals they name.
//! - `maintenance`: maintenance windows and the local-time parsers.
//! - `credits`: credit tiers.

mod credits;
mod maintenance;
mod objective;

pub use credits::{CreditTier, RawCreditTier};
pub use maintenance::{MaintenanceRule, RawMaintenance};
pub use objective::{Objective, ObjectiveKind, Phase, RawMax, RawObjective};

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Deserialize;
use slaprobe_agent::config::{ConfigError, parse_duration};

use self::credits::credits_from_raw;
use self::maintenance::maintenance_from_raw;
use self::objective::objective_from_raw;

/// One `[[contracts]]` entry as written (DESIGN.md §3).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContract {
    pub name: String,
    #[serde(default)]
    pub vendor: Option<String>,
    pub checks: Vec<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub slot: Option<String>,
    #[serde(default)]
    pub quorum: Option<u32>,
    #[serde(default)]
    pub objectives: Vec<RawObjective>,
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
    #[serde(default)]
    pub credits: Vec<RawCreditTier>,
}

/// Bounds on `slot`: at least a second, at most a day.
const MIN_SLOT: Duration = Duration::from_secs(1);
const MAX_SLOT: Duration = Duration::from_secs(86_400);

/// A validated contract (DESIGN.md §3, §6). Built by [`Contract::from_raw`].
#[derive(Debug, Clone)]
pub struct Contract {
    /// Unique name, the `contract` label and the report URL segment.
    pub name: String,
    /// Who is held to it (`vendor` label); defaults to the name.
    pub vendor: String,
    /// The covered checks, in config order (deduplicated, all known).
    pub checks: Vec<String>,
    /// The zone's name as written (default `UTC`); the calendar month is this zone's.
    pub timezone: String,
    /// The resolved zone.
    pub tz: TimeZone,
    /// Slot length: whole seconds, 1 s ..= 1 day, >= every covered check's interval.
    pub slot: Duration,
    /// Failing locations needed to confirm DOWN (>= 1; capped per slot by the
    /// locations that have data, §6.2).
    pub quorum: u32,
    /// Objectives in config order; at most one availability objective.
    pub objectives: Vec<Objective>,
    /// Maintenance rules in config order.
    pub maintenance: Vec<MaintenanceRule>,
    /// Credit tiers sorted by `below` descending (so `percent` ascends).
    pub credits: Vec<CreditTier>,
    /// The configured canary checks (`canary = true`), sorted: part of no
    /// contract, but rule 1a reads them to tell when a location is impaired.
    /// Filled by the collector config (empty from [`Contract::from_raw`]).
    pub canaries: Vec<String>,
}

impl Contract {
    /// Every check whose results the contract's figures are computed from:
    /// its covered checks, then the canaries (rule 1a). What the store reads
    /// for a report and what the evidence digest covers.
    pub fn evidence_checks(&self) -> Vec<String> {
        let mut v = self.checks.clone();
        v.extend(self.canaries.iter().cloned());
        v
    }

    /// The availability target in percent, if the contract has that objective.
    pub fn availability_target(&self) -> Option<f64> {
        self.objectives.iter().find_map(|o| match o {
            Objective::Availability { target } => Some(*target),
            Objective::Latency { .. } | Objective::WebVital { .. } => None,
        })
    }

    /// The latency and web_vital objectives (the percentile objectives over
    /// samples), in config order (the order of every per-latency list in
    /// reports). A web vital's `max` is carried as seconds (CLS: its value).
    pub fn latency_objectives(&self) -> impl Iterator<Item = (Phase, f64, Duration)> + '_ {
        self.objectives.iter().filter_map(|o| match o {
            Objective::Latency {
                phase,
                percentile,
                max,
            } => Some((*phase, *percentile, *max)),
            Objective::WebVital {
                metric,
                percentile,
                max,
            } => Some((*metric, *percentile, Duration::from_secs_f64(*max))),
            Objective::Availability { .. } => None,
        })
    }

    /// Slot length in whole seconds.
    pub fn slot_seconds(&self) -> u64 {
        self.slot.as_secs()
    }
}

impl Contract {
    /// Validates one `[[contracts]]` entry against the configured checks
    /// (`checks`: name → interval). Errors name the key, e.g.
    /// `contracts[hostco-acme].slot`.
    ///
    /// Defaults: `vendor` = name, `timezone` = `UTC`, `slot` = 60s, `quorum` = 2.
    /// A slot need not divide a day or the month: the month's last slot is
    /// then shorter and counts with its real length.
    pub fn from_raw(
        raw: &RawContract,
        checks: &HashMap<String, Duration>,
        file: &Path,
    ) -> Result<Contract, ConfigError> {
        let name = raw.name.trim();
        let at = Keys { file, name };
        if !valid_contract_name(name) {
            return Err(at.err(
                "name",
                format!(
                    "{:?} is not a valid contract name (1-128 letters, digits, - _ . : only; it is a URL segment and a label)",
                    raw.name
                ),
            ));
        }
        let vendor = match &raw.vendor {
            None => name.to_string(),
            Some(v) if v.trim().is_empty() => {
                return Err(at.err(
                    "vendor",
                    "is empty; omit it to use the contract name".into(),
                ));
            }
            Some(v) => v.trim().to_string(),
        };
        let (timezone, tz) = zone_from_raw(raw.timezone.as_deref(), &at)?;
        let slot = slot_from_raw(raw.slot.as_deref(), &at)?;
        let covered = covered_checks(&raw.checks, checks, slot, &at)?;
        let quorum = raw.quorum.unwrap_or(2);
        if quorum == 0 {
            return Err(at.err(
                "quorum",
                "must be at least 1 (failing locations needed to confirm DOWN)".into(),
            ));
        }
        let objectives = objectives_from_raw(&raw.objectives, &at)?;
        let maintenance = raw
            .maintenance
            .iter()
            .enumerate()
            .map(|(i, m)| maintenance_from_raw(m, file, &at.key(&format!("maintenance[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        let credits = credits_from_raw(&raw.credits, file, &at.key("credits"))?;

        Ok(Contract {
            name: name.to_string(),
            vendor,
            checks: covered,
            timezone,
            tz,
            slot,
            quorum,
            objectives,
            maintenance,
            credits,
            canaries: Vec::new(),
        })
    }
}

/// Where a contract's fields are, for errors: `contracts[NAME].FIELD` in `file`.
struct Keys<'a> {
    file: &'a Path,
    name: &'a str,
}

impl Keys<'_> {
    /// `contracts[NAME].field`.
    fn key(&self, field: &str) -> String {
        format!("contracts[{}].{field}", self.name)
    }

    /// An error about `field`.
    fn err(&self, field: &str, msg: String) -> ConfigError {
        ConfigError::new(self.file, self.key(field), msg)
    }
}

/// `timezone` (default `UTC`): its name as written (trimmed) and the zone.
fn zone_from_raw(raw: Option<&str>, at: &Keys<'_>) -> Result<(String, TimeZone), ConfigError> {
    let timezone = raw.map(str::trim).unwrap_or("UTC").to_string();
    let tz = TimeZone::get(&timezone).map_err(|e| {
        at.err(
            "timezone",
            format!("unknown time zone {timezone:?} ({e}); use an IANA name like \"Europe/Amsterdam\" or \"UTC\""),
        )
    })?;
    Ok((timezone, tz))
}

/// `slot` (default 60s): whole seconds, from [`MIN_SLOT`] to [`MAX_SLOT`].
fn slot_from_raw(raw: Option<&str>, at: &Keys<'_>) -> Result<Duration, ConfigError> {
    let slot = match raw {
        None => Duration::from_secs(60),
        Some(s) => parse_duration(at.file, &at.key("slot"), s)?,
    };
    if slot < MIN_SLOT || slot > MAX_SLOT {
        return Err(at.err(
            "slot",
            format!(
                "{} is out of range: a slot lasts from 1s to 1 day",
                humantime::format_duration(slot)
            ),
        ));
    }
    if slot.subsec_nanos() != 0 {
        return Err(at.err(
            "slot",
            format!(
                "{} is not a whole number of seconds",
                humantime::format_duration(slot)
            ),
        ));
    }
    Ok(slot)
}

/// `checks`: at least one, each configured once, none probed less often
/// than once a slot (`checks` maps each configured check to its interval).
fn covered_checks(
    raw: &[String],
    checks: &HashMap<String, Duration>,
    slot: Duration,
    at: &Keys<'_>,
) -> Result<Vec<String>, ConfigError> {
    if raw.is_empty() {
        return Err(at.err(
            "checks",
            "is empty: a contract covers at least one check".into(),
        ));
    }
    let mut covered: Vec<String> = Vec::with_capacity(raw.len());
    for c in raw {
        let Some(interval) = checks.get(c) else {
            return Err(at.err(
                "checks",
                format!("unknown check {c:?} (not defined in [[checks]])"),
            ));
        };
        if covered.contains(c) {
            return Err(at.err("checks", format!("check {c:?} is listed twice")));
        }
        if *interval > slot {
            return Err(at.err(
                "slot",
                format!(
                    "{} is shorter than the interval of check {c:?} ({}): slots would have no result; use slot >= every covered check's interval",
                    humantime::format_duration(slot),
                    humantime::format_duration(*interval)
                ),
            ));
        }
        covered.push(c.clone());
    }
    Ok(covered)
}

/// `objectives`: each valid, no label twice (one availability objective).
fn objectives_from_raw(raw: &[RawObjective], at: &Keys<'_>) -> Result<Vec<Objective>, ConfigError> {
    let mut objectives = Vec::with_capacity(raw.len());
    for (i, o) in raw.iter().enumerate() {
        let field = format!("objectives[{i}]");
        let obj = objective_from_raw(o, at.file, &at.key(&field))?;
        let label = obj.label();
        if objectives.iter().any(|x: &Objective| x.label() == label) {
            let what = if obj.kind() == ObjectiveKind::Availability {
                "a second availability objective (a contract has one availability target)"
                    .to_string()
            } else {
                format!("duplicate objective {label}")
            };
            return Err(at.err(&field, what));
        }
        objectives.push(obj);
    }
    Ok(objectives)
}

/// Validates every contract and rejects duplicate names
/// (`contracts[NAME].name`). `checks` maps each configured check to its interval.
pub fn validate_contracts(
    raw: &[RawContract],
    checks: &HashMap<String, Duration>,
    file: &Path,
) -> Result<Vec<Contract>, ConfigError> {
    let mut out: Vec<Contract> = Vec::with_capacity(raw.len());
    for r in raw {
        let c = Contract::from_raw(r, checks, file)?;
        if out.iter().any(|o| o.name == c.name) {
            return Err(ConfigError::new(
                file,
                format!("contracts[{}].name", c.name),
                format!("duplicate contract name {:?}", c.name),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

fn valid_contract_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}
