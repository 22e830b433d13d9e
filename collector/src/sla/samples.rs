//! Latency samples of one contract-month and one latency objective, kept so
//! that the exact nearest-rank percentile of "every sample up to slot k" is
//! cheap to ask for again and again (every Prometheus scrape).
//!
//! Samples are bucketed by the top 20 bits of an order-preserving key of the
//! value (sign, exponent and 8 mantissa bits: buckets 1/256 of an octave
//! wide). A query walks the bucket counts to the one holding the wanted rank
//! and sorts only that bucket's newly added samples into it. Samples whose
//! slot lies beyond what has been asked for so far wait in `future` (agents
//! with a clock ahead of the collector's) and are admitted as `now` moves
//! on; asking for an earlier cut-off than before falls back to a scan.

use std::collections::BTreeMap;

use super::rules::nearest_rank;

/// One sample: the value (seconds) and the slot its result started in.
/// Packed to 12 bytes: a month of 1-minute results holds millions.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Sample {
    value: f64,
    slot: u32,
}

impl Sample {
    // Fields of a packed struct are read by copy, never by reference.
    fn value(&self) -> f64 {
        self.value
    }
    fn slot(&self) -> u32 {
        self.slot
    }
}

fn by_value(a: &Sample, b: &Sample) -> std::cmp::Ordering {
    a.value().total_cmp(&b.value())
}

#[derive(Debug, Default)]
struct Bucket {
    /// Sorted ascending by value.
    sorted: Vec<Sample>,
    /// Added since the last time this bucket was needed sorted.
    pending: Vec<Sample>,
}

impl Bucket {
    fn len(&self) -> usize {
        self.sorted.len() + self.pending.len()
    }

    fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.sort_unstable_by(by_value);
        self.sorted.append(&mut self.pending);
        // Two sorted runs: the stable sort merges them in linear time.
        self.sorted.sort_by(by_value);
        self.pending = Vec::new();
    }
}

/// An order-statistics multiset of samples tagged with their slot.
#[derive(Debug, Default)]
pub(crate) struct SampleIndex {
    buckets: BTreeMap<u32, Bucket>,
    /// Samples in `buckets`: exactly those with `slot < admitted_below`.
    admitted: usize,
    admitted_below: u32,
    /// Samples with `slot >= admitted_below`.
    future: Vec<Sample>,
}

/// Order-preserving map of a finite f64 onto u64 (the IEEE total order).
fn key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn bucket_of(v: f64) -> u32 {
    (key(v) >> 44) as u32
}

impl SampleIndex {
    /// Adds one sample (non-finite values are ignored: they are not durations).
    pub(crate) fn insert(&mut self, value: f64, slot: u32) {
        if !value.is_finite() {
            return;
        }
        let s = Sample { value, slot };
        if slot < self.admitted_below {
            self.buckets
                .entry(bucket_of(value))
                .or_default()
                .pending
                .push(s);
            self.admitted += 1;
        } else {
            self.future.push(s);
        }
    }

    /// `(n, value)`: the number of samples with `slot < below` and their
    /// nearest-rank `p` percentile (`None` when there are none).
    pub(crate) fn percentile_below(&mut self, below: u32, p: f64) -> (usize, Option<f64>) {
        if below >= self.admitted_below {
            self.admit(below);
            let n = self.admitted;
            if n == 0 {
                return (0, None);
            }
            return (n, Some(self.kth(nearest_rank(p, n))));
        }
        // An earlier cut-off than already admitted: rare, scan.
        let mut values = self.values_below(below);
        let n = values.len();
        (n, super::rules::percentile(&mut values, p))
    }

    /// Every sample with `slot < below`, as `(slot, value)` (any order).
    pub(crate) fn for_each_below(&self, below: u32, mut f: impl FnMut(u32, f64)) {
        for b in self.buckets.values() {
            for s in b.sorted.iter().chain(&b.pending) {
                if s.slot() < below {
                    f(s.slot(), s.value());
                }
            }
        }
        for s in &self.future {
            if s.slot() < below {
                f(s.slot(), s.value());
            }
        }
    }

    fn values_below(&self, below: u32) -> Vec<f64> {
        let mut v = Vec::new();
        self.for_each_below(below, |_, x| v.push(x));
        v
    }

    fn admit(&mut self, below: u32) {
        if below <= self.admitted_below {
            return;
        }
        self.admitted_below = below;
        let mut i = 0;
        while i < self.future.len() {
            let s = self.future[i];
            if s.slot() < below {
                self.future.swap_remove(i);
                self.buckets
                    .entry(bucket_of(s.value()))
                    .or_default()
                    .pending
                    .push(s);
                self.admitted += 1;
            } else {
                i += 1;
            }
        }
        // After a bulk load most of `future` has moved into the buckets.
        if self.future.capacity() > 4 * self.future.len() + 1024 {
            self.future.shrink_to_fit();
        }
    }

    /// The `k`-th smallest admitted value, 1-based (`1 <= k <= admitted`).
    fn kth(&mut self, k: usize) -> f64 {
        let mut before = 0;
        for b in self.buckets.values_mut() {
            let len = b.len();
            if before + len >= k {
                b.settle();
                return b.sorted[k - before - 1].value();
            }
            before += len;
        }
        // Unreachable while k <= admitted; keep a defined answer anyway.
        f64::NAN
    }
}
