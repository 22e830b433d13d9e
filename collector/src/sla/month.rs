//! Calendar months in a contract's zone, cut into slots (DESIGN.md §6): the
//! period, the slot grid, the local days, and the maintenance windows that
//! apply. Pure: zone rules in, absolute instants out.
//!
//! - `period_start` is local midnight of day 1, `period_end` local midnight
//!   of the next month's day 1 (a midnight that does not exist because of a
//!   DST gap resolves to the first instant after the gap, jiff's
//!   "compatible" rule). October 2026 in Europe/Amsterdam lasts 745 hours,
//!   March 743.
//! - Slots are `slot` long in absolute time from `period_start`. When the
//!   month is not a whole number of slots the **last slot is shorter** and
//!   every figure counts its real length in seconds.
//! - A slot belongs to the local day its start lies in.
//! - Maintenance: a one-off window starts at its local start (compatible rule
//!   for gaps and folds: a gap moves it forward by the gap, a repeated hour
//!   takes the first occurrence) and lasts `duration` of absolute time; a
//!   weekly window does the same on every matching local weekday, so
//!   "Sun 03:00" stays 03:00 local across DST changes. Windows that started
//!   in the previous month and reach into this one apply. A slot is
//!   MAINTENANCE when its **start** lies in a window (`start <= s < end`).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::contract::{Contract, MaintenanceRule};

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// A calendar month, `YYYY-MM` (years 1000..=9000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    year: i16,
    month: i8,
}

impl Month {
    /// `None` unless 1000 <= year <= 9000 and 1 <= month <= 12.
    pub fn new(year: i16, month: i8) -> Option<Month> {
        ((1000..=9000).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    pub fn year(self) -> i16 {
        self.year
    }

    /// 1..=12.
    pub fn month(self) -> i8 {
        self.month
    }

    /// The month (in `tz`) that contains `ts`; `None` outside the supported years.
    pub fn containing(ts: Timestamp, tz: &TimeZone) -> Option<Month> {
        let dt = tz.to_datetime(ts);
        Month::new(dt.year(), dt.month())
    }

    /// The month after this one (December 9000 stays itself).
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month::new(self.year + 1, 1).unwrap_or(self)
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before this one (January 1000 stays itself).
    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month::new(self.year - 1, 12).unwrap_or(self)
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// Day 1 of the month.
    pub fn first_day(self) -> Date {
        // In range by construction (years 1000..=9000).
        Date::new(self.year, self.month, 1).unwrap_or(Date::ZERO)
    }

    /// `[period_start, period_end)` of the month in `tz`.
    pub fn period(self, tz: &TimeZone) -> (Timestamp, Timestamp) {
        let start = local_instant(
            tz,
            self.first_day().to_datetime(jiff::civil::Time::midnight()),
        );
        let end = local_instant(
            tz,
            self.next_first_day()
                .to_datetime(jiff::civil::Time::midnight()),
        );
        (start, end)
    }

    fn next_first_day(self) -> Date {
        if self.month == 12 {
            Date::new(self.year + 1, 1, 1).unwrap_or(Date::MAX)
        } else {
            Date::new(self.year, self.month + 1, 1).unwrap_or(Date::MAX)
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Error for a month that is not `YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a month like \"2026-10\" (YYYY-MM, years 1000-9000)")]
pub struct MonthParseError(pub String);

impl FromStr for Month {
    type Err = MonthParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MonthParseError(s.to_string());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        Month::new(year, month).ok_or_else(bad)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A local date-time as an instant: gaps resolve forward, folds to the
/// earlier instant (jiff's "compatible" disambiguation, like RFC 5545).
pub fn local_instant(tz: &TimeZone, dt: DateTime) -> Timestamp {
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        // Only fails near jiff's year limits, which `Month` keeps away from.
        .unwrap_or_else(|_| {
            TimeZone::UTC
                .to_ambiguous_timestamp(dt)
                .compatible()
                .unwrap_or(Timestamp::UNIX_EPOCH)
        })
}

fn ns(ts: Timestamp) -> i128 {
    ts.as_nanosecond()
}

/// Ceiling of `a / b` for `b > 0`.
fn div_ceil(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

/// One maintenance window that overlaps a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    /// When it starts (may lie in the previous month).
    pub start: Timestamp,
    /// When it ends (exclusive; may lie in the next month).
    pub end: Timestamp,
    /// The rule it came from: `2026-11-01T02:00:00` or `weekly Sun 03:00:00`.
    pub rule: String,
}

/// A contract's month: period, slot grid, days and maintenance, computed once.
#[derive(Debug, Clone)]
pub struct MonthFrame {
    /// The calendar month.
    pub month: Month,
    /// Local midnight of day 1.
    pub start: Timestamp,
    /// Local midnight of the next month's day 1 (exclusive).
    pub end: Timestamp,
    start_ns: i128,
    end_ns: i128,
    slot_ns: i128,
    n_slots: u32,
    /// The slots whose start lies in a maintenance window, as sorted,
    /// disjoint `[lo, hi)` ranges (a few per window, not a byte per slot:
    /// the ledger keeps a frame per contract-month, 1,000 contracts included).
    maint: Vec<(u32, u32)>,
    /// Seconds of MAINTENANCE slots in the whole month (computed once: status asks per scrape).
    maint_seconds: u64,
    /// The windows that overlap the period, sorted by start.
    pub windows: Vec<MaintenanceWindow>,
    /// Local dates of the month, day 1 first.
    pub days: Vec<Date>,
    /// `day_first_slot[d]` is the first slot of day `d`; one extra entry = `n_slots`.
    day_first_slot: Vec<u32>,
}

impl MonthFrame {
    /// The frame of `month` for `contract` (its zone, slot and maintenance rules).
    pub fn new(contract: &Contract, month: Month) -> MonthFrame {
        let tz = &contract.tz;
        let (start, end) = month.period(tz);
        let (start_ns, end_ns) = (ns(start), ns(end));
        let slot_ns = i128::from(contract.slot_seconds().max(1)) * NANOS_PER_SEC;
        let len = (end_ns - start_ns).max(0);
        let n_slots = u32::try_from(div_ceil(len, slot_ns)).unwrap_or(u32::MAX);

        let first = month.first_day();
        let n_days = first.days_in_month() as usize;
        let mut days = Vec::with_capacity(n_days);
        let mut day_first_slot = Vec::with_capacity(n_days + 1);
        for d in 0..n_days {
            let date = first
                .checked_add(jiff::Span::new().days(d as i64))
                .unwrap_or(first);
            days.push(date);
            let day_start = if d == 0 {
                start_ns
            } else {
                ns(local_instant(
                    tz,
                    date.to_datetime(jiff::civil::Time::midnight()),
                ))
            };
            let idx = div_ceil(day_start - start_ns, slot_ns).clamp(0, i128::from(n_slots));
            day_first_slot.push(idx as u32);
        }
        day_first_slot.push(n_slots);

        let mut windows = Vec::new();
        for rule in &contract.maintenance {
            let dur = i128::try_from(rule.duration().as_nanos()).unwrap_or(i128::MAX / 4);
            let mut push = |local: DateTime| {
                let ws = local_instant(tz, local);
                let ws_ns = ns(ws);
                let we_ns = ws_ns + dur;
                if ws_ns < end_ns && we_ns > start_ns {
                    let we = Timestamp::from_nanosecond(we_ns).unwrap_or(Timestamp::MAX);
                    windows.push(MaintenanceWindow {
                        start: ws,
                        end: we,
                        rule: rule.describe(),
                    });
                }
            };
            match *rule {
                MaintenanceRule::Once { start, .. } => push(start),
                MaintenanceRule::Weekly { weekday, time, .. } => {
                    // Windows last at most 7 days: one starting 8 days before the month cannot reach it.
                    let mut date = first
                        .checked_sub(jiff::Span::new().days(8))
                        .unwrap_or(first);
                    let last = first.last_of_month();
                    while date <= last {
                        if date.weekday() == weekday {
                            push(date.to_datetime(time));
                        }
                        match date.tomorrow() {
                            Ok(d) => date = d,
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        windows.sort_by_key(|w| (w.start, w.end));
        windows.dedup();

        let mut maint: Vec<(u32, u32)> = Vec::new();
        for w in &windows {
            let lo = div_ceil(ns(w.start) - start_ns, slot_ns).clamp(0, i128::from(n_slots)) as u32;
            let hi = div_ceil(ns(w.end) - start_ns, slot_ns).clamp(0, i128::from(n_slots)) as u32;
            if hi <= lo {
                continue;
            }
            match maint.last_mut() {
                // Windows are sorted by start: merge an overlapping or touching one.
                Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                _ => maint.push((lo, hi)),
            }
        }

        let mut frame = MonthFrame {
            month,
            start,
            end,
            start_ns,
            end_ns,
            slot_ns,
            n_slots,
            maint,
            maint_seconds: 0,
            windows,
            days,
            day_first_slot,
        };
        frame.maint_seconds = frame
            .maint
            .iter()
            .flat_map(|&(lo, hi)| lo..hi)
            .map(|i| frame.slot_seconds(i))
            .sum();
        frame
    }

    /// Number of slots in the month.
    pub fn n_slots(&self) -> u32 {
        self.n_slots
    }

    /// Whether `ts` lies in `[start, end)`.
    pub fn contains(&self, ts: Timestamp) -> bool {
        ts >= self.start && ts < self.end
    }

    /// The slot `ts` lies in, with the nanoseconds since that slot's start.
    pub fn slot_of(&self, ts: Timestamp) -> Option<(u32, u64)> {
        let t = ns(ts);
        if t < self.start_ns || t >= self.end_ns {
            return None;
        }
        let off = t - self.start_ns;
        let idx = off / self.slot_ns;
        Some((idx as u32, (off - idx * self.slot_ns) as u64))
    }

    /// When slot `i` starts.
    pub fn slot_start(&self, i: u32) -> Timestamp {
        Timestamp::from_nanosecond(self.slot_start_ns(i)).unwrap_or(self.end)
    }

    /// When slot `i` ends (the period end for the last slot).
    pub fn slot_end(&self, i: u32) -> Timestamp {
        Timestamp::from_nanosecond(self.slot_end_ns(i)).unwrap_or(self.end)
    }

    fn slot_start_ns(&self, i: u32) -> i128 {
        self.start_ns + i128::from(i) * self.slot_ns
    }

    fn slot_end_ns(&self, i: u32) -> i128 {
        (self.slot_start_ns(i) + self.slot_ns).min(self.end_ns)
    }

    /// Real length of slot `i` in whole seconds (only the last slot may be shorter than `slot`).
    pub fn slot_seconds(&self, i: u32) -> u64 {
        ((self.slot_end_ns(i) - self.slot_start_ns(i)) / NANOS_PER_SEC) as u64
    }

    /// Nominal slot length in nanoseconds.
    pub fn slot_nanos(&self) -> i128 {
        self.slot_ns
    }

    /// Month length in whole seconds.
    pub fn length_seconds(&self) -> u64 {
        ((self.end_ns - self.start_ns) / NANOS_PER_SEC) as u64
    }

    /// Whether slot `i` is MAINTENANCE.
    pub fn is_maintenance(&self, i: u32) -> bool {
        // The last range starting at or before `i` holds it, if any does.
        let k = self.maint.partition_point(|&(lo, _)| lo <= i);
        k > 0 && i < self.maint[k - 1].1
    }

    /// Seconds of MAINTENANCE slots in the whole month (scheduled, known in advance).
    pub fn maintenance_seconds_total(&self) -> u64 {
        self.maint_seconds
    }

    /// Slots counted as of `now`: those that start at or before `now` (a
    /// slot that starts after `now` is not counted at all). Every slot of a
    /// past month counts.
    pub fn counted(&self, now: Timestamp) -> u32 {
        let t = ns(now);
        if t < self.start_ns {
            return 0;
        }
        let k = (t - self.start_ns) / self.slot_ns + 1;
        k.min(i128::from(self.n_slots)) as u32
    }

    /// Slots settled as of `now`: slot `i` is settled once `now >= end(i) + grace`.
    pub fn settled(&self, now: Timestamp, grace_ns: i128) -> u32 {
        let t = ns(now) - grace_ns;
        if t >= self.end_ns {
            return self.n_slots;
        }
        if t < self.start_ns {
            return 0;
        }
        ((t - self.start_ns) / self.slot_ns).min(i128::from(self.n_slots)) as u32
    }

    /// Slot range `[first, last)` of local day `d` (0-based).
    pub fn day_slots(&self, d: usize) -> (u32, u32) {
        (
            self.day_first_slot[d],
            self.day_first_slot[d + 1].max(self.day_first_slot[d]),
        )
    }

    /// Index of the local day slot `i` belongs to.
    pub fn day_of_slot(&self, i: u32) -> usize {
        // day_first_slot is sorted; the day is the last one starting at or before i.
        self.day_first_slot[..self.days.len()]
            .partition_point(|&f| f <= i)
            .saturating_sub(1)
    }
}
