//! `[[contracts]]` as written in the collector config, and its validation.

use serde::Deserialize;

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

/// `{ kind = "availability", target = 99.9 }` or
/// `{ kind = "latency", phase = "processing", percentile = 95, max = "800ms" }`.
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
    pub max: Option<String>,
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
