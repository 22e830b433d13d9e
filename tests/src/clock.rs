//! A test's idea of "now", for tests whose outcome depends on the date (the
//! current month, the days since it began, a DST change in the contract's
//! zone).
//!
//! A [`TestClock`] runs "as of" a chosen instant: it keeps a whole-second
//! offset from the real clock, so time still passes at the real rate. The
//! test reads [`TestClock::now`]; the real binaries it starts run with
//! libfaketime preloaded (Debian package `faketime`, installed by
//! `scripts/test.sh`) and the same offset, so the test and every process it starts (and
//! restarts) share one timeline.
//!
//! `SLAPROBE_TEST_NOW` (an RFC 3339 instant) makes [`TestClock::from_env`]
//! run "as of" that instant instead of the real date: the README's recipe
//! for running the whole suite as of another day.

use std::path::{Path, PathBuf};
use std::process::Command;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The environment variable that moves [`TestClock::from_env`] to another instant.
pub const NOW_ENV: &str = "SLAPROBE_TEST_NOW";

/// "Now" for a test: the real clock plus a whole-second offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestClock {
    offset: SignedDuration,
}

impl TestClock {
    /// The real clock (no offset).
    pub fn real() -> TestClock {
        TestClock {
            offset: SignedDuration::ZERO,
        }
    }

    /// The real clock, or `SLAPROBE_TEST_NOW` when it is set.
    pub fn from_env() -> TestClock {
        match std::env::var(NOW_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let at: Timestamp = v
                    .trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("{NOW_ENV}={v:?} is not an RFC 3339 instant: {e}"));
                TestClock::at(at)
            }
            _ => TestClock::real(),
        }
    }

    /// A clock that reads `at` now and runs on from there.
    pub fn at(at: Timestamp) -> TestClock {
        let secs = at.as_second() - Timestamp::now().as_second();
        TestClock {
            offset: SignedDuration::from_secs(secs),
        }
    }

    /// A clock that reads the local date-time `local` (`2026-12-01T00:05:00`)
    /// in zone `zone` now (an ambiguous or skipped local time resolves like
    /// RFC 5545: the earlier instant, or after the gap).
    pub fn at_local(zone: &str, local: &str) -> TestClock {
        let tz = TimeZone::get(zone).unwrap_or_else(|e| panic!("zone {zone}: {e}"));
        let dt: DateTime = local
            .parse()
            .unwrap_or_else(|e| panic!("{local:?} is not a civil date-time: {e}"));
        let at = tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .unwrap_or_else(|e| panic!("{local} in {zone}: {e}"));
        TestClock::at(at)
    }

    /// Whether this is the real clock.
    pub fn is_real(&self) -> bool {
        self.offset.is_zero()
    }

    /// The offset from the real clock.
    pub fn offset(&self) -> SignedDuration {
        self.offset
    }

    /// The current instant on this clock.
    pub fn now(&self) -> Timestamp {
        Timestamp::now() + self.offset
    }

    /// A command that runs `bin` on this clock: `bin` itself for the real
    /// clock, else `bin` with libfaketime preloaded and `FAKETIME=+N` (whole
    /// seconds, the offset). The child is `bin` itself (not a wrapper), so
    /// signals sent to it reach it.
    pub fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        if !self.is_real() {
            // libfaketime offsets are from the real clock; when this test
            // itself runs under faketime (`faketime DATE scripts/test.sh`),
            // its "real" clock already carries that offset.
            let secs = self.offset.as_secs() + inherited_offset_secs();
            cmd.env("LD_PRELOAD", libfaketime())
                .env("FAKETIME", format!("{secs:+}"))
                .env_remove("FAKETIME_SHARED")
                // Only the wall clock moves: timers and timeouts run on the
                // real monotonic clock, as on a machine set to that date.
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        cmd
    }
}

/// The offset, in seconds, of the faketime this process runs under (0
/// without one). `faketime DATE cmd` sets a relative `FAKETIME=-N`; any
/// other form would make the test clock's children disagree with it.
fn inherited_offset_secs() -> i64 {
    match std::env::var("FAKETIME") {
        Ok(v) if !v.trim().is_empty() => parse_offset(&v).unwrap_or_else(|| {
            panic!(
                "this test runs under FAKETIME={v:?}: use a relative offset (what `faketime DATE ...` sets), not an absolute or frozen time"
            )
        }),
        _ => 0,
    }
}

/// A libfaketime relative offset (`-36163`, `+2d`, `-1.5h`) in seconds;
/// `None` for any other form (absolute, `@` start-at, frozen).
fn parse_offset(v: &str) -> Option<i64> {
    let v = v.trim();
    let (num, scale) = match v.chars().last()? {
        'm' => (&v[..v.len() - 1], 60.0),
        'h' => (&v[..v.len() - 1], 3600.0),
        'd' => (&v[..v.len() - 1], 86_400.0),
        'y' => (&v[..v.len() - 1], 365.0 * 86_400.0),
        c if c.is_ascii_digit() => (v, 1.0),
        _ => return None,
    };
    if !(num.starts_with('+') || num.starts_with('-')) {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    n.is_finite().then(|| (n * scale).round() as i64)
}

/// The path of libfaketime (Debian package `faketime`); panics with how to
/// install it when missing.
pub fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib").ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| d.path().join("faketime/libfaketime.so.1"))
            .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("libfaketime is needed to run a binary as of another date: apt-get install faketime (scripts/test.sh installs it)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_local_reads_that_instant_and_keeps_running() {
        let c = TestClock::at_local("Europe/Amsterdam", "2026-12-01T00:05:00");
        let now = c.now();
        // 2026-12-01T00:05 in Amsterdam (UTC+1) is 2026-11-30T23:05Z.
        let want: Timestamp = "2026-11-30T23:05:00Z".parse().unwrap();
        assert!(
            now.duration_since(want).abs() < SignedDuration::from_secs(2),
            "{now}"
        );
        assert!(!c.is_real());
        assert!(TestClock::real().is_real());
    }

    #[test]
    fn faketime_offsets_parse() {
        for (v, want) in [
            ("-36163", Some(-36_163)),
            ("+120", Some(120)),
            ("+2d", Some(172_800)),
            ("-1.5h", Some(-5_400)),
            ("+15m", Some(900)),
            ("@2026-12-01 00:05:00", None),
            ("2026-12-01 00:05:00", None),
            ("120", None),
            ("+x", None),
        ] {
            assert_eq!(parse_offset(v), want, "{v}");
        }
    }

    #[test]
    fn command_runs_the_binary_on_the_test_clock() {
        let c = TestClock::at("2030-06-15T12:00:00Z".parse().unwrap());
        let out = c
            .command(Path::new("date"))
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2030-06-15");
    }
}
