//! A contract's objectives: `objectives = [...]` as written
//! ([`RawObjective`]) and validated ([`Objective`]), their kinds
//! ([`ObjectiveKind`]) and the quantities a percentile objective names ([`Phase`]).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slaprobe_agent::config::{ConfigError, parse_duration};

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

pub(super) fn objective_from_raw(
    o: &RawObjective,
    file: &Path,
    key: &str,
) -> Result<Objective, ConfigError> {
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
