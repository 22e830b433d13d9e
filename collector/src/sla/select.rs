//! Exact nearest-rank percentiles (DESIGN.md §6.6) of values that are read
//! more than once from the store, in memory bounded by a constant instead of
//! by the number of values: a radix selection over passes.
//!
//! Each value is mapped onto a `u64` key in its total order ([`key`]). The
//! first pass counts the values per top [`DIGIT_BITS`] bits of the key, which
//! tells the digit holding the wanted rank and that rank within its group.
//! Each further pass looks only at the values of that group: while the group
//! is larger than [`COLLECT_AT_MOST`] it counts the next digit, otherwise it
//! keeps the group's values and selects among them. After four digits the
//! key (and so the value, bit for bit) is known without keeping any value.
//! On agent-like latencies one 1/16-octave group of a month holds a few
//! percent of its values, so a report takes two passes and keeps a few
//! thousand values per scope.
//!
//! A pass that sees another number of values in the group than the pass
//! before counted is [`Inconsistent`]: the values changed between passes
//! (the caller then starts over).

use std::collections::BTreeMap;

use super::rules::nearest_rank;

/// Bits of the key decided per counting pass.
pub const DIGIT_BITS: u32 = 16;

/// A group at most this large is collected and selected in memory (8 bytes a value).
pub const COLLECT_AT_MOST: u64 = 1 << 18;

/// Order-preserving map of an f64 onto u64 (the IEEE total order, as `f64::total_cmp`).
pub fn key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The inverse of [`key`].
pub fn unkey(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// The values of two passes disagreed: they changed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inconsistent;

#[derive(Debug)]
enum Step {
    /// Counting the digit below `shift` of the values in the group.
    Count(BTreeMap<u16, u64>),
    /// Keeping the group's values.
    Collect(Vec<f64>),
    /// The answer, `None` without values.
    Done(Option<f64>),
}

/// The nearest-rank `p` percentile of one scope's values, found over passes.
#[derive(Debug)]
pub struct Selection {
    p: f64,
    /// Values in the scope (known after the first pass).
    n: u64,
    /// The wanted rank within the group, 1-based.
    rank: u64,
    /// The key bits above `shift` every value of the group shares.
    prefix: u64,
    /// 64 while no digit is decided.
    shift: u32,
    /// Values in the group (the count the next pass must see again).
    group: u64,
    step: Step,
}

impl Selection {
    /// A selection of the `p` percentile, before the first pass.
    pub fn new(p: f64) -> Selection {
        Selection {
            p,
            n: 0,
            rank: 0,
            prefix: 0,
            shift: 64,
            group: 0,
            step: Step::Count(BTreeMap::new()),
        }
    }

    fn in_group(&self, k: u64) -> bool {
        self.shift == 64 || k >> self.shift == self.prefix
    }

    /// Offers one value of the scope (every pass offers the same values;
    /// non-finite ones are ignored: they are not durations).
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let k = key(v);
        if !self.in_group(k) {
            return;
        }
        match &mut self.step {
            Step::Count(hist) => {
                let digit = ((k >> (self.shift - DIGIT_BITS)) & 0xffff) as u16;
                *hist.entry(digit).or_default() += 1;
            }
            Step::Collect(values) => values.push(v),
            Step::Done(_) => {}
        }
    }

    /// Ends a pass: `Ok(true)` when another pass is needed.
    pub fn end_pass(&mut self) -> Result<bool, Inconsistent> {
        match std::mem::replace(&mut self.step, Step::Done(None)) {
            Step::Done(v) => {
                self.step = Step::Done(v);
                Ok(false)
            }
            Step::Collect(mut values) => {
                if values.len() as u64 != self.group {
                    return Err(Inconsistent);
                }
                let k = (self.rank - 1) as usize;
                let (_, v, _) = values.select_nth_unstable_by(k, f64::total_cmp);
                self.step = Step::Done(Some(*v));
                Ok(false)
            }
            Step::Count(hist) => {
                let total: u64 = hist.values().sum();
                if self.shift == 64 {
                    self.n = total;
                    if total == 0 {
                        return Ok(false);
                    }
                    self.rank = nearest_rank(self.p, total as usize) as u64;
                } else if total != self.group {
                    return Err(Inconsistent);
                }
                let mut before = 0u64;
                let mut chosen = None;
                for (&digit, &count) in &hist {
                    if before + count >= self.rank {
                        chosen = Some((digit, count));
                        break;
                    }
                    before += count;
                }
                let (digit, count) = chosen.ok_or(Inconsistent)?;
                self.rank -= before;
                self.prefix = if self.shift == 64 {
                    u64::from(digit)
                } else {
                    (self.prefix << DIGIT_BITS) | u64::from(digit)
                };
                self.shift -= DIGIT_BITS;
                self.group = count;
                if self.shift == 0 {
                    // Every value of the group has this very key.
                    self.step = Step::Done(Some(unkey(self.prefix)));
                    Ok(false)
                } else if count <= COLLECT_AT_MOST {
                    self.step = Step::Collect(Vec::with_capacity(count as usize));
                    Ok(true)
                } else {
                    self.step = Step::Count(BTreeMap::new());
                    Ok(true)
                }
            }
        }
    }

    /// `(n, percentile)` once no pass is needed (`None` without values).
    pub fn result(&self) -> (u64, Option<f64>) {
        match self.step {
            Step::Done(v) => (self.n, v),
            _ => (self.n, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::rules::percentile;

    /// Runs passes over `values` until done.
    fn select(values: &[f64], p: f64) -> (u64, Option<f64>, usize) {
        let mut s = Selection::new(p);
        let mut passes = 0;
        loop {
            passes += 1;
            for &v in values {
                s.add(v);
            }
            if !s.end_pass().unwrap() {
                break;
            }
        }
        let (n, v) = s.result();
        (n, v, passes)
    }

    #[test]
    fn key_orders_like_total_cmp_and_inverts() {
        let vs = [-1.5, -0.0, 0.0, 1e-300, 0.25, 1.0, 3.5e10];
        for w in vs.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} < {}", w[0], w[1]);
        }
        for v in vs {
            assert_eq!(unkey(key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn equals_sorting_on_spread_values() {
        let mut x = 0x1234_5678u64;
        let values: Vec<f64> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                0.05 + (x % 1_000_000) as f64 / 1e6 * 0.9
            })
            .collect();
        for p in [0.0, 1.0, 50.0, 95.0, 99.0, 99.9, 100.0] {
            let (n, v, passes) = select(&values, p);
            assert_eq!(n, values.len() as u64);
            assert_eq!(v, percentile(&mut values.clone(), p), "p{p}");
            assert_eq!(passes, 2, "p{p}: one count pass, one collect pass");
        }
    }

    #[test]
    fn identical_values_need_no_memory() {
        // 2^18 + 1 equal values: too many to collect, found by counting alone.
        let values = vec![0.125; (COLLECT_AT_MOST + 1) as usize];
        let (n, v, passes) = select(&values, 95.0);
        assert_eq!((n, v), (values.len() as u64, Some(0.125)));
        assert_eq!(passes, 4);
    }

    #[test]
    fn empty_and_non_finite() {
        assert_eq!(select(&[], 95.0), (0, None, 1));
        assert_eq!(select(&[f64::NAN, f64::INFINITY], 95.0).1, None);
        assert_eq!(select(&[2.0], 95.0).1, Some(2.0));
    }

    #[test]
    fn a_changed_pass_is_inconsistent() {
        let mut s = Selection::new(50.0);
        for v in [1.0, 2.0, 3.0] {
            s.add(v);
        }
        assert!(s.end_pass().unwrap());
        // 2.0 is the wanted group; it now holds two values.
        for v in [1.0, 2.0, 2.0, 3.0] {
            s.add(v);
        }
        assert_eq!(s.end_pass(), Err(Inconsistent));
    }
}
