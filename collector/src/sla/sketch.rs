//! [`LatencySketch`]: the month-to-date latency percentile of a contract in
//! bounded memory, for the live gauges and `/api/v1/contracts` (reports
//! compute the exact nearest-rank percentile from the store).
//!
//! Values are counted in buckets 1/256 of an octave wide (the top 20 bits
//! of an order-preserving key: sign, exponent, 8 mantissa bits). The
//! percentile is the midpoint of the bucket holding the nearest rank, so it
//! is within **0.2 %** (2⁻⁹, relative) of the exact value. Whether the
//! objective is met is exact: the sketch also counts the values at or below
//! the objective's `max`, and the nearest-rank percentile is ≤ `max` exactly
//! when at least `rank` values are.
//!
//! Memory: the buckets of one octave (one exponent) are a dense page of 256
//! counts (2 KiB), made when the first value of that octave arrives. A month
//! of latencies between 1 ms and 10 s touches at most 14 pages (28 KiB);
//! real sites, whose latencies sit within a few octaves, touch 3–6. The
//! sketch stops growing once its octaves exist, so a contract's memory is
//! bounded for the month (a map of buckets, as before, cost ~20 bytes per
//! bucket and kept growing as rare values arrived). The stored form is the
//! map of non-empty buckets, unchanged.

use std::collections::BTreeMap;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use super::rules::nearest_rank;
use super::select::{key, unkey};

/// Counts of latency values by bucket, plus the count at or below a threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "StoredSketch")]
pub struct LatencySketch {
    /// Pages of 256 buckets, by page number (the bucket's top 12 bits), ascending.
    pages: Vec<Page>,
    /// Values counted.
    n: u64,
    /// Values at or below the objective's `max`.
    at_most_max: u64,
}

/// The 256 buckets of one octave.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Page {
    /// The bucket number's top 12 bits.
    no: u16,
    /// Values per bucket, by the bucket number's low 8 bits.
    counts: Box<[u64]>,
}

const SHIFT: u32 = 44;
const PAGE_BITS: u32 = 8;
const PAGE_LEN: usize = 1 << PAGE_BITS;

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
        self.add_to_bucket(bucket_of(v), 1);
        self.n += 1;
        if v <= max {
            self.at_most_max += 1;
        }
    }

    fn add_to_bucket(&mut self, bucket: u32, count: u64) {
        let no = (bucket >> PAGE_BITS) as u16;
        let i = match self.pages.binary_search_by_key(&no, |p| p.no) {
            Ok(i) => i,
            Err(i) => {
                self.pages.insert(
                    i,
                    Page {
                        no,
                        counts: vec![0; PAGE_LEN].into_boxed_slice(),
                    },
                );
                i
            }
        };
        let c = &mut self.pages[i].counts[bucket as usize & (PAGE_LEN - 1)];
        *c = c.saturating_add(count);
    }

    /// The non-empty buckets, ascending: (bucket, values in it).
    fn buckets(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.pages.iter().flat_map(|p| {
            p.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(move |(i, &c)| ((u32::from(p.no) << PAGE_BITS) | i as u32, c))
        })
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
        for (b, c) in self.buckets() {
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

    /// Heap bytes the sketch holds (the bound the tests check).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.pages.capacity() * std::mem::size_of::<Page>()
            + self.pages.len() * PAGE_LEN * std::mem::size_of::<u64>()
    }
}

/// The stored form: the non-empty buckets as a map (as the ledger rows
/// have always held it).
#[derive(Deserialize)]
struct StoredSketch {
    buckets: BTreeMap<u32, u64>,
    n: u64,
    at_most_max: u64,
}

impl From<StoredSketch> for LatencySketch {
    fn from(s: StoredSketch) -> LatencySketch {
        let mut sketch = LatencySketch {
            pages: Vec::new(),
            n: s.n,
            at_most_max: s.at_most_max,
        };
        for (b, c) in s.buckets {
            sketch.add_to_bucket(b, c);
        }
        sketch
    }
}

/// Serializes the non-empty buckets as a map, without building one.
struct BucketMap<'a>(&'a LatencySketch);

impl Serialize for BucketMap<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_map(self.0.buckets())
    }
}

impl Serialize for LatencySketch {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut st = ser.serialize_struct("LatencySketch", 3)?;
        st.serialize_field("buckets", &BucketMap(self))?;
        st.serialize_field("n", &self.n)?;
        st.serialize_field("at_most_max", &self.at_most_max)?;
        st.end()
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

    #[test]
    fn stored_form_is_the_bucket_map_and_round_trips() {
        let mut s = LatencySketch::default();
        for v in [0.0004, 0.0004, 0.130, 0.135, 7.5, 7.5, 7.5] {
            s.add(v, 0.2);
        }
        let json = serde_json::to_value(&s).unwrap();
        // The form ledger rows written by earlier versions hold.
        let buckets = json["buckets"].as_object().unwrap();
        assert_eq!(buckets.len(), 4, "{json}");
        assert_eq!(
            buckets.values().map(|c| c.as_u64().unwrap()).sum::<u64>(),
            7
        );
        let key = bucket_of(7.5).to_string();
        assert_eq!(buckets[&key], 3);
        assert_eq!(json["n"], 7);
        assert_eq!(json["at_most_max"], 4);
        let back: LatencySketch = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.percentile(50.0), s.percentile(50.0));
        // Three octaves' pages, two buckets in one of them.
        assert_eq!(s.pages.len(), 3);
    }

    #[test]
    fn memory_stops_growing_once_the_octaves_exist() {
        let mut s = LatencySketch::default();
        let mut x = 1u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        // Latencies between 50 ms and 800 ms (four octaves).
        for _ in 0..100_000 {
            s.add(0.05 * 16f64.powf(next()), 1.0);
        }
        let after_first = s.heap_bytes();
        for _ in 0..1_000_000 {
            s.add(0.05 * 16f64.powf(next()), 1.0);
        }
        assert_eq!(s.heap_bytes(), after_first);
        assert!(after_first <= 5 * 2048 + 256, "{after_first} bytes");
        assert_eq!(s.len(), 1_100_000);
    }
}
