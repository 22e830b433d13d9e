//! [`LatencySketch`]: the month-to-date latency percentile of a contract in
//! bounded memory, for the live gauges and `/api/v1/contracts` (reports
//! compute the exact nearest-rank percentile from the store).
//!
//! Values are counted in buckets 1/256 of an octave wide (the top 20 bits
//! of an order-preserving key: sign, exponent, 8 mantissa bits). The
//! percentile is the midpoint of the bucket holding the nearest rank, so it
//! is within **0.2 %** (2⁻⁹, relative) of the exact value; a month of
//! latencies between 1 ms and 10 s fills at most ~3,400 buckets. Whether the
//! objective is met is exact: the sketch also counts the values at or below
//! the objective's `max`, and the nearest-rank percentile is ≤ `max` exactly
//! when at least `rank` values are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rules::nearest_rank;
use super::select::{key, unkey};

/// Counts of latency values by bucket, plus the count at or below a threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySketch {
    /// Bucket → values in it.
    buckets: BTreeMap<u32, u64>,
    /// Values counted.
    n: u64,
    /// Values at or below the objective's `max`.
    at_most_max: u64,
}

const SHIFT: u32 = 44;

/// The bucket of a value.
fn bucket_of(v: f64) -> u32 {
    (key(v) >> SHIFT) as u32
}

/// The midpoint of a bucket's value range.
fn midpoint(b: u32) -> f64 {
    let lo = unkey(u64::from(b) << SHIFT);
    let hi = unkey(((u64::from(b) + 1) << SHIFT) - 1);
    lo + (hi - lo) / 2.0
}

impl LatencySketch {
    /// Counts one value (non-finite values are not durations: ignored).
    pub fn add(&mut self, v: f64, max: f64) {
        if !v.is_finite() {
            return;
        }
        *self.buckets.entry(bucket_of(v)).or_default() += 1;
        self.n += 1;
        if v <= max {
            self.at_most_max += 1;
        }
    }

    /// Values counted.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The nearest-rank `p` percentile, within 0.2 % (`None` when empty).
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = nearest_rank(p, self.n as usize) as u64;
        let mut before = 0u64;
        for (&b, &c) in &self.buckets {
            if before + c >= rank {
                return Some(midpoint(b));
            }
            before += c;
        }
        None
    }

    /// Exactly whether the nearest-rank `p` percentile is at or below the
    /// `max` the values were counted against (`None` when empty).
    pub fn met(&self, p: f64) -> Option<bool> {
        (self.n > 0).then(|| self.at_most_max >= nearest_rank(p, self.n as usize) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::rules::percentile;

    #[test]
    fn percentile_within_the_stated_bound_and_met_exact() {
        let mut values: Vec<f64> = (0..20_000u64)
            .map(|i| 0.001 * (1.0 + ((i * 7919) % 10_007) as f64 / 37.0))
            .collect();
        for (p, max) in [
            (50.0, 0.05),
            (95.0, 0.2),
            (99.0, 0.27),
            (99.9, 0.3),
            (100.0, 1.0),
        ] {
            let mut s = LatencySketch::default();
            for &v in &values {
                s.add(v, max);
            }
            let exact = percentile(&mut values, p).unwrap();
            let approx = s.percentile(p).unwrap();
            assert!(
                ((approx - exact) / exact).abs() <= 1.0 / 512.0,
                "p{p}: {approx} vs {exact}"
            );
            assert_eq!(s.met(p), Some(exact <= max), "p{p} max {max}");
        }
        assert_eq!(LatencySketch::default().percentile(95.0), None);
        assert_eq!(LatencySketch::default().met(95.0), None);
    }

    #[test]
    fn met_is_exact_at_the_threshold() {
        // The 2nd of 3 values (p50) is exactly the max: met; a hair above: not.
        for (mid, want) in [(0.3, true), (0.300_000_000_1, false)] {
            let mut s = LatencySketch::default();
            for v in [0.1, mid, 0.5] {
                s.add(v, 0.3);
            }
            assert_eq!(s.met(50.0), Some(want));
        }
    }
}
