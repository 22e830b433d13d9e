//! `[[contracts]]` as written in the collector config, and its validation
//! into a [`Contract`] (DESIGN.md §3): defaults, ranges, and the checks it covers.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use slaprobe_agent::config::{ConfigError, parse_duration};

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

/// `{ kind = "availability", target = 99.9 }`,
/// `{ kind = "latency", phase = "processing", percentile = 95, max = "800ms" }` or
/// `{ kind = "web_vital", metric = "lcp", percentile = 75, max = "2.5s" }` (CLS: `max = 0.1`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjective {
    pub kind: String,
    #[serde(default)]
    pub target: Option<f64>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub percentile: Option<f64>,
    #[serde(default)]
    pub max: Option<RawMax>,
    /// web_vital: `lcp`, `cls`, `fcp`, `ttfb` or `tbt`.
    #[serde(default)]
    pub metric: Option<String>,
}

/// An objective's `max`: a duration string, or a plain number (CLS is unitless).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawMax {
    Text(String),
    Number(f64),
}

impl RawMax {
    fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Number(n) => n.to_string(),
        }
    }
}

/// `{ start = "2026-11-01T02:00:00", duration = "2h" }` (contract-local) or
/// `{ weekly = "Sun 03:00", duration = "1h" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub weekly: Option<String>,
    pub duration: String,
}

/// `{ below = 99.9, percent = 10 }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreditTier {
    pub below: f64,
    pub percent: f64,
}

/// Bounds on `slot`: at least a second, at most a day.
const MIN_SLOT: Duration = Duration::from_secs(1);
const MAX_SLOT: Duration = Duration::from_secs(86_400);
/// A maintenance window may last at most a week (weekly windows then never
/// overlap their own next occurrence by more than themselves).
const MAX_MAINTENANCE: Duration = Duration::from_secs(7 * 86_400);

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

/// One objective of a contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// Attained availability (percent, §6.4) must be >= `target` (0 < target <= 100).
    Availability { target: f64 },
    /// The nearest-rank `percentile` of `phase` over successful results must be <= `max` (§6.6).
    Latency {
        phase: Phase,
        percentile: f64,
        max: Duration,
    },
    /// The nearest-rank `percentile` of a Web Vital (`metric`, one of
    /// [`Phase::VITALS`]) over successful browser results must be <= `max`
    /// (seconds; CLS unitless), evaluated exactly like a latency objective.
    WebVital {
        metric: Phase,
        percentile: f64,
        max: f64,
    },
}

/// What an objective measures: the `kind` of a `[[contracts]]` objective and
/// of a report's objective (`availability`, `latency`, `web_vital` in TOML and
/// JSON alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ObjectiveKind {
    /// Attained availability, percent.
    Availability,
    /// A percentile of a request phase, seconds.
    Latency,
    /// A percentile of a browser Web Vital, seconds (CLS unitless).
    WebVital,
}

impl ObjectiveKind {
    /// The name in configs and reports: `availability`, `latency`, `web_vital`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Availability => "availability",
            Self::Latency => "latency",
            Self::WebVital => "web_vital",
        }
    }

    /// A percentile objective over samples (latency or web_vital).
    pub fn is_sampled(self) -> bool {
        matches!(self, Self::Latency | Self::WebVital)
    }
}

impl fmt::Display for ObjectiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Objective {
    /// What it measures.
    pub fn kind(&self) -> ObjectiveKind {
        match self {
            Self::Availability { .. } => ObjectiveKind::Availability,
            Self::Latency { .. } => ObjectiveKind::Latency,
            Self::WebVital { .. } => ObjectiveKind::WebVital,
        }
    }

    /// The `objective` label: `availability`, or e.g. `latency_processing_p95`
    /// (`p99.9` for fractional percentiles). Unique within a contract.
    pub fn label(&self) -> String {
        match self {
            Self::Availability { .. } => "availability".to_string(),
            Self::Latency {
                phase, percentile, ..
            } => format!("latency_{}_p{}", phase.as_str(), percentile),
            Self::WebVital {
                metric, percentile, ..
            } => format!("web_vital_{}_p{}", metric.as_str(), percentile),
        }
    }
}

/// A measured phase a latency objective can name. `Total` is the result's
/// `duration_seconds`; the others come from `http.phases` (results without
/// that phase, e.g. DNS checks for `processing`, are not samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Processing,
    Transfer,
    Total,
    // Web Vitals of browser results (`browser.lcp` ...): the quantities a
    // web_vital objective names.
    Lcp,
    Cls,
    Fcp,
    Ttfb,
    Tbt,
}

impl Phase {
    /// Every quantity, in the order of [`Phase::index`].
    pub const ALL: [Phase; 11] = [
        Self::Resolve,
        Self::Connect,
        Self::Tls,
        Self::Processing,
        Self::Transfer,
        Self::Total,
        Self::Lcp,
        Self::Cls,
        Self::Fcp,
        Self::Ttfb,
        Self::Tbt,
    ];
    /// The phases a latency objective can name.
    pub const LATENCY: [Phase; 6] = [
        Self::Resolve,
        Self::Connect,
        Self::Tls,
        Self::Processing,
        Self::Transfer,
        Self::Total,
    ];
    /// The Web Vitals a web_vital objective can name.
    pub const VITALS: [Phase; 5] = [Self::Lcp, Self::Cls, Self::Fcp, Self::Ttfb, Self::Tbt];

    /// The DESIGN.md name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolve => "resolve",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Processing => "processing",
            Self::Transfer => "transfer",
            Self::Total => "total",
            Self::Lcp => "lcp",
            Self::Cls => "cls",
            Self::Fcp => "fcp",
            Self::Ttfb => "ttfb",
            Self::Tbt => "tbt",
        }
    }

    /// Position in [`Phase::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses a DESIGN.md phase name (a latency objective's `phase`).
    pub fn parse(s: &str) -> Option<Phase> {
        Self::LATENCY.into_iter().find(|p| p.as_str() == s)
    }

    /// Parses a Web Vital's name (a web_vital objective's `metric`).
    pub fn parse_vital(s: &str) -> Option<Phase> {
        Self::VITALS.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A maintenance rule, in contract-local time. Windows are expanded per month
/// by [`crate::sla::month::MonthFrame`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaintenanceRule {
    /// `{ start = "2026-11-01T02:00:00", duration = "2h" }`.
    Once { start: DateTime, duration: Duration },
    /// `{ weekly = "Sun 03:00", duration = "1h" }`: every such local weekday and time.
    Weekly {
        weekday: Weekday,
        time: Time,
        duration: Duration,
    },
}

impl MaintenanceRule {
    /// The window length (absolute time, added to the local start's instant).
    pub fn duration(&self) -> Duration {
        match self {
            Self::Once { duration, .. } | Self::Weekly { duration, .. } => *duration,
        }
    }

    /// How the rule was written, normalised: `2026-11-01T02:00:00` or `weekly Sun 03:00`.
    pub fn describe(&self) -> String {
        match self {
            Self::Once { start, .. } => start.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            Self::Weekly { weekday, time, .. } => {
                format!(
                    "weekly {} {}",
                    weekday_name(*weekday),
                    time.strftime("%H:%M:%S")
                )
            }
        }
    }
}

/// One credit tier: availability strictly below `below` earns `percent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CreditTier {
    pub below: f64,
    pub percent: f64,
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
        let key = |field: &str| format!("contracts[{name}].{field}");
        let err = |field: &str, msg: String| ConfigError::new(file, key(field), msg);
        if !valid_contract_name(name) {
            return Err(err(
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
                return Err(err(
                    "vendor",
                    "is empty; omit it to use the contract name".into(),
                ));
            }
            Some(v) => v.trim().to_string(),
        };

        let timezone = raw
            .timezone
            .as_deref()
            .map(str::trim)
            .unwrap_or("UTC")
            .to_string();
        let tz = TimeZone::get(&timezone).map_err(|e| {
            err(
                "timezone",
                format!("unknown time zone {timezone:?} ({e}); use an IANA name like \"Europe/Amsterdam\" or \"UTC\""),
            )
        })?;

        let slot = match &raw.slot {
            None => Duration::from_secs(60),
            Some(s) => parse_duration(file, &key("slot"), s)?,
        };
        if slot < MIN_SLOT || slot > MAX_SLOT {
            return Err(err(
                "slot",
                format!(
                    "{} is out of range: a slot lasts from 1s to 1 day",
                    humantime::format_duration(slot)
                ),
            ));
        }
        if slot.subsec_nanos() != 0 {
            return Err(err(
                "slot",
                format!(
                    "{} is not a whole number of seconds",
                    humantime::format_duration(slot)
                ),
            ));
        }

        if raw.checks.is_empty() {
            return Err(err(
                "checks",
                "is empty: a contract covers at least one check".into(),
            ));
        }
        let mut covered: Vec<String> = Vec::with_capacity(raw.checks.len());
        for c in &raw.checks {
            let Some(interval) = checks.get(c) else {
                return Err(err(
                    "checks",
                    format!("unknown check {c:?} (not defined in [[checks]])"),
                ));
            };
            if covered.contains(c) {
                return Err(err("checks", format!("check {c:?} is listed twice")));
            }
            if *interval > slot {
                return Err(err(
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

        let quorum = raw.quorum.unwrap_or(2);
        if quorum == 0 {
            return Err(err(
                "quorum",
                "must be at least 1 (failing locations needed to confirm DOWN)".into(),
            ));
        }

        let mut objectives = Vec::with_capacity(raw.objectives.len());
        for (i, o) in raw.objectives.iter().enumerate() {
            let obj = objective_from_raw(o, file, &key(&format!("objectives[{i}]")))?;
            let label = obj.label();
            if objectives.iter().any(|x: &Objective| x.label() == label) {
                let what = if obj.kind() == ObjectiveKind::Availability {
                    "a second availability objective (a contract has one availability target)"
                        .to_string()
                } else {
                    format!("duplicate objective {label}")
                };
                return Err(err(&format!("objectives[{i}]"), what));
            }
            objectives.push(obj);
        }

        let mut maintenance = Vec::with_capacity(raw.maintenance.len());
        for (i, m) in raw.maintenance.iter().enumerate() {
            maintenance.push(maintenance_from_raw(
                m,
                file,
                &key(&format!("maintenance[{i}]")),
            )?);
        }

        let credits = credits_from_raw(&raw.credits, file, &key("credits"))?;

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

fn objective_from_raw(o: &RawObjective, file: &Path, key: &str) -> Result<Objective, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::new(file, format!("{key}.{field}"), msg);
    match o.kind.trim() {
        "availability" => {
            for (field, set) in [
                ("phase", o.phase.is_some()),
                ("percentile", o.percentile.is_some()),
                ("max", o.max.is_some()),
            ] {
                if set {
                    return Err(err(
                        field,
                        "is not used by an availability objective (it takes `target`)".into(),
                    ));
                }
            }
            let Some(target) = o.target else {
                return Err(err(
                    "target",
                    "missing: the availability target in percent, e.g. 99.9".into(),
                ));
            };
            if !(target > 0.0 && target <= 100.0) {
                return Err(err(
                    "target",
                    format!("{target} is not a percentage in (0, 100]"),
                ));
            }
            Ok(Objective::Availability { target })
        }
        "latency" => {
            if o.target.is_some() {
                return Err(err(
                    "target",
                    "is not used by a latency objective (it takes `phase`, `percentile`, `max`)"
                        .into(),
                ));
            }
            let Some(phase_s) = o.phase.as_deref() else {
                return Err(err(
                    "phase",
                    "missing: one of resolve, connect, tls, processing, transfer, total".into(),
                ));
            };
            let Some(phase) = Phase::parse(phase_s.trim()) else {
                return Err(err(
                    "phase",
                    format!(
                        "unknown phase {phase_s:?}; use one of resolve, connect, tls, processing, transfer, total"
                    ),
                ));
            };
            let Some(percentile) = o.percentile else {
                return Err(err("percentile", "missing: e.g. 95".into()));
            };
            if !(percentile > 0.0 && percentile <= 100.0) {
                return Err(err(
                    "percentile",
                    format!("{percentile} is not in (0, 100]"),
                ));
            }
            if o.metric.is_some() {
                return Err(err(
                    "metric",
                    "is not used by a latency objective (web_vital objectives take `metric`)"
                        .into(),
                ));
            }
            let Some(max_s) = o.max.as_ref().map(RawMax::text) else {
                return Err(err(
                    "max",
                    "missing: the largest acceptable value, e.g. \"800ms\"".into(),
                ));
            };
            let max = parse_duration(file, &format!("{key}.max"), &max_s)?;
            if max.is_zero() {
                return Err(err("max", "must be greater than 0".into()));
            }
            Ok(Objective::Latency {
                phase,
                percentile,
                max,
            })
        }
        "web_vital" => web_vital_from_raw(o, file, key),
        other => Err(err(
            "kind",
            format!(
                "unknown objective kind {other:?}; use \"availability\", \"latency\" or \"web_vital\""
            ),
        )),
    }
}

/// `{ kind = "web_vital", metric = "lcp", percentile = 75, max = "2.5s" }`;
/// CLS takes a plain number (`max = 0.1`).
fn web_vital_from_raw(o: &RawObjective, file: &Path, key: &str) -> Result<Objective, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::new(file, format!("{key}.{field}"), msg);
    for (field, set) in [("target", o.target.is_some()), ("phase", o.phase.is_some())] {
        if set {
            return Err(err(
                field,
                "is not used by a web_vital objective (it takes `metric`, `percentile`, `max`)"
                    .into(),
            ));
        }
    }
    let Some(metric_s) = o.metric.as_deref() else {
        return Err(err(
            "metric",
            "missing: one of lcp, cls, fcp, ttfb, tbt".into(),
        ));
    };
    let Some(metric) = Phase::parse_vital(metric_s.trim()) else {
        return Err(err(
            "metric",
            format!("unknown Web Vital {metric_s:?}; use one of lcp, cls, fcp, ttfb, tbt"),
        ));
    };
    let Some(percentile) = o.percentile else {
        return Err(err(
            "percentile",
            "missing: e.g. 75 (what Google's Core Web Vitals thresholds use)".into(),
        ));
    };
    if !(percentile > 0.0 && percentile <= 100.0) {
        return Err(err(
            "percentile",
            format!("{percentile} is not in (0, 100]"),
        ));
    }
    let max = match (&o.max, metric) {
        (None, _) => {
            return Err(err("max", "missing: e.g. \"2.5s\" (LCP), 0.1 (CLS)".into()));
        }
        (Some(m), Phase::Cls) => {
            let v = match m {
                RawMax::Number(n) => *n,
                RawMax::Text(t) => t.trim().parse().map_err(|_| {
                    err(
                        "max",
                        format!("{t:?}: CLS is unitless; write a number, e.g. 0.1"),
                    )
                })?,
            };
            if !(v.is_finite() && v >= 0.0) {
                return Err(err(
                    "max",
                    format!("{v} is not a CLS value (a number >= 0)"),
                ));
            }
            v
        }
        (Some(RawMax::Number(n)), _) => {
            return Err(err(
                "max",
                format!("{n}: {metric} is a time; write a duration, e.g. \"2.5s\""),
            ));
        }
        (Some(RawMax::Text(t)), _) => {
            let d = parse_duration(file, &format!("{key}.max"), t)?;
            if d.is_zero() {
                return Err(err("max", "must be greater than 0".into()));
            }
            d.as_secs_f64()
        }
    };
    Ok(Objective::WebVital {
        metric,
        percentile,
        max,
    })
}

fn maintenance_from_raw(
    m: &RawMaintenance,
    file: &Path,
    key: &str,
) -> Result<MaintenanceRule, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::new(file, format!("{key}.{field}"), msg);
    let duration = parse_duration(file, &format!("{key}.duration"), &m.duration)?;
    if duration.is_zero() || duration > MAX_MAINTENANCE {
        return Err(err(
            "duration",
            format!(
                "{} is out of range: a window lasts more than 0 and at most 7 days",
                m.duration.trim()
            ),
        ));
    }
    match (&m.start, &m.weekly) {
        (Some(_), Some(_)) => {
            Err(err("weekly", "set either `start` (one window) or `weekly` (a recurring one), not both".into()))
        }
        (None, None) => Err(err(
            "start",
            "missing: set `start = \"2026-11-01T02:00:00\"` (contract-local) or `weekly = \"Sun 03:00\"`".into(),
        )),
        (Some(s), None) => {
            let start = parse_local_datetime(s)
                .ok_or_else(|| err("start", format!("{s:?} is not a local date and time like \"2026-11-01T02:00:00\" (no offset: the contract's zone applies)")))?;
            Ok(MaintenanceRule::Once { start, duration })
        }
        (None, Some(w)) => {
            let (weekday, time) = parse_weekly(w).ok_or_else(|| {
                err("weekly", format!("{w:?} is not a weekday and local time like \"Sun 03:00\" (Mon..Sun)"))
            })?;
            Ok(MaintenanceRule::Weekly { weekday, time, duration })
        }
    }
}

fn credits_from_raw(
    raw: &[RawCreditTier],
    file: &Path,
    key: &str,
) -> Result<Vec<CreditTier>, ConfigError> {
    let mut tiers: Vec<(usize, CreditTier)> = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        let err =
            |field: &str, msg: String| ConfigError::new(file, format!("{key}[{i}].{field}"), msg);
        if !(t.below > 0.0 && t.below <= 100.0) {
            return Err(err(
                "below",
                format!("{} is not a percentage in (0, 100]", t.below),
            ));
        }
        if !(t.percent >= 0.0 && t.percent <= 100.0) {
            return Err(err(
                "percent",
                format!("{} is not a percentage in [0, 100]", t.percent),
            ));
        }
        if tiers.iter().any(|(_, x)| x.below == t.below) {
            return Err(err(
                "below",
                format!("another tier already starts below {}", t.below),
            ));
        }
        tiers.push((
            i,
            CreditTier {
                below: t.below,
                percent: t.percent,
            },
        ));
    }
    tiers.sort_by(|a, b| b.1.below.total_cmp(&a.1.below));
    for w in tiers.windows(2) {
        let (higher, lower) = (&w[0].1, &w[1].1);
        if lower.percent < higher.percent {
            return Err(ConfigError::new(
                file,
                format!("{key}[{}].percent", w[1].0),
                format!(
                    "the tier below {} gives {}% but the tier below {} gives {}%: lower availability must not earn a smaller credit",
                    lower.below, lower.percent, higher.below, higher.percent
                ),
            ));
        }
    }
    Ok(tiers.into_iter().map(|(_, t)| t).collect())
}

/// `2026-11-01T02:00:00`, `2026-11-01T02:00` or with a space for the `T`;
/// no offset or zone (the contract's zone applies).
fn parse_local_datetime(s: &str) -> Option<DateTime> {
    let s = s.trim();
    let (d, t) = s.split_once(['T', ' '])?;
    let date = parse_date(d)?;
    let time = parse_time(t)?;
    Some(date.to_datetime(time))
}

fn parse_date(s: &str) -> Option<Date> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    Date::new(digits(y)? as i16, digits(m)? as i8, digits(d)? as i8).ok()
}

/// `HH:MM` or `HH:MM:SS` (one-digit hours accepted).
fn parse_time(s: &str) -> Option<Time> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || !(1..=2).contains(&parts[0].len())
        || parts[1..].iter().any(|p| p.len() != 2)
    {
        return None;
    }
    let h = digits(parts[0])?;
    let m = digits(parts[1])?;
    let sec = if parts.len() == 3 {
        digits(parts[2])?
    } else {
        0
    };
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Time::new(h as i8, m as i8, sec as i8, 0).ok()
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `Sun 03:00`: a weekday (Mon..Sun or the full name, any case) and a local time.
fn parse_weekly(s: &str) -> Option<(Weekday, Time)> {
    let mut it = s.split_whitespace();
    let (day, time) = (it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let day = day.to_ascii_lowercase();
    let weekday = [
        ("mon", "monday", Weekday::Monday),
        ("tue", "tuesday", Weekday::Tuesday),
        ("wed", "wednesday", Weekday::Wednesday),
        ("thu", "thursday", Weekday::Thursday),
        ("fri", "friday", Weekday::Friday),
        ("sat", "saturday", Weekday::Saturday),
        ("sun", "sunday", Weekday::Sunday),
    ]
    .into_iter()
    .find(|(short, long, _)| day == *short || day == *long)?
    .2;
    Some((weekday, parse_time(time)?))
}

fn weekday_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}
