//! Credit tiers: `credits = [...]` as written ([`RawCreditTier`]) and
//! validated ([`CreditTier`]).

use std::path::Path;

use serde::Deserialize;
use slaprobe_agent::config::ConfigError;

/// `{ below = 99.9, percent = 10 }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCreditTier {
    pub below: f64,
    pub percent: f64,
}

/// One credit tier: availability strictly below `below` earns `percent`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CreditTier {
    pub below: f64,
    pub percent: f64,
}

pub(super) fn credits_from_raw(
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
