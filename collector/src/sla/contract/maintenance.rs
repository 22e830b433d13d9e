//! Maintenance windows: `maintenance = [...]` as written
//! ([`RawMaintenance`]) and validated ([`MaintenanceRule`]), with the
//! contract-local date, time and weekly parsers they use.

use std::path::Path;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time, Weekday};
use serde::Deserialize;
use slaprobe_agent::config::{ConfigError, parse_duration};

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

/// A maintenance window may last at most a week (weekly windows then never
/// overlap their own next occurrence by more than themselves).
const MAX_MAINTENANCE: Duration = Duration::from_secs(7 * 86_400);

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

pub(super) fn maintenance_from_raw(
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
