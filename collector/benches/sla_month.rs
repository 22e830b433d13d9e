//! A month of 1-minute results from 3 locations for 10 checks (~1.34 M
//! results) through `evaluate_month` (what every report runs), printing
//! wall time and peak RSS.
//!
//! Run: `cargo bench -p slaprobe-collector --bench sla_month`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use figment::providers::Format;
use jiff::{SignedDuration, Timestamp};
use slaprobe_collector::sla::contract::RawContract;
use slaprobe_collector::sla::{Contract, Month, Observation, Phase, evaluate_month};
use slaprobe_wire::FailureClass;

const CHECKS: [&str; 10] = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];
const LOCS: [&str; 3] = ["ams", "fra", "nyc"];

fn contract(name: &str) -> Contract {
    let toml = format!(
        r#"name = "{name}"
vendor = "HostCo"
checks = {CHECKS:?}
timezone = "Europe/Amsterdam"
slot = "60s"
quorum = 2
objectives = [
  {{ kind = "availability", target = 99.9 }},
  {{ kind = "latency", phase = "processing", percentile = 95, max = "800ms" }},
]
maintenance = [{{ weekly = "Sun 03:00", duration = "1h" }}]
credits = [{{ below = 99.9, percent = 10 }}, {{ below = 99.0, percent = 25 }}]
"#
    );
    let raw: RawContract = figment::Figment::from(figment::providers::Toml::string(&toml))
        .extract()
        .expect("bench TOML");
    let intervals: HashMap<String, Duration> = CHECKS
        .iter()
        .map(|c| (c.to_string(), Duration::from_secs(60)))
        .collect();
    Contract::from_raw(&raw, &intervals, Path::new("bench.toml")).expect("bench contract")
}

/// Every (slot, check, location) of the month once, a few seconds into the
/// slot; an outage of an hour on day 10 and scattered single failures.
fn month_results(
    start: Timestamp,
    slots: u32,
) -> impl Iterator<Item = Observation<'static>> + Clone {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..slots)
        .flat_map(move |s| {
            (0..CHECKS.len()).flat_map(move |c| (0..LOCS.len()).map(move |l| (s, c, l)))
        })
        .map(move |(s, c, l)| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = start
                .checked_add(SignedDuration::new(
                    i64::from(s) * 60 + (c * 3 + l) as i64,
                    (x % 1_000_000_000) as i32,
                ))
                .expect("in range");
            let outage = (13_000..13_060).contains(&s) && c == 0;
            let ok = !outage && x % 500 != 7;
            let mut phases = [None; Phase::ALL.len()];
            phases[Phase::Processing.index()] = Some((x >> 20) as f64 % 900.0 / 1000.0);
            phases[Phase::Total.index()] = Some((x >> 30) as f64 % 1500.0 / 1000.0);
            Observation {
                check: CHECKS[c],
                location: LOCS[l],
                started_at: at,
                success: ok,
                class: (!ok).then_some(FailureClass::ConnectTimeout),
                message: (!ok).then_some("connect timed out after 10s"),
                phases,
            }
        })
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets VmHWM (Linux `clear_refs` 5) so each phase reports its own peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let c = contract("hostco-acme");
    let month: Month = "2026-10".parse().expect("month");
    let (start, _) = month.period(&c.tz);
    let slots = 745 * 60;
    let n = slots as usize * CHECKS.len() * LOCS.len();
    let after = "2026-11-01T12:00:00Z".parse::<Timestamp>().expect("ts");
    println!(
        "results: {n} ({slots} slots x {} checks x {} locations)",
        CHECKS.len(),
        LOCS.len()
    );
    println!("baseline peak RSS: {:.1} MB", peak_rss_mb());

    reset_peak();
    let t = Instant::now();
    let offline = evaluate_month(&c, month, month_results(start, slots), after);
    let dt = t.elapsed();
    println!(
        "evaluate_month: {:.3} s, peak RSS {:.1} MB  (availability {:?}, down slots {}, incidents {}, p95 processing {:?})",
        dt.as_secs_f64(),
        peak_rss_mb(),
        offline.availability_percent,
        offline.slots.down,
        offline.incidents.len(),
        offline.objectives[1].attained
    );

    // Rule 1a: the same month plus one canary result per location and
    // minute (ams's canary failing for an hour on day 20), the contract
    // reading it.
    let mut with_canary = c.clone();
    with_canary.canaries = vec!["cn".into()];
    let canaries = (0..slots).flat_map(move |s| {
        (0..LOCS.len()).map(move |l| Observation {
            check: "cn",
            location: LOCS[l],
            started_at: start
                .checked_add(SignedDuration::from_secs(i64::from(s) * 60 + 40))
                .expect("in range"),
            success: !(l == 0 && (28_000..28_060).contains(&s)),
            class: None,
            message: None,
            phases: [None; Phase::ALL.len()],
        })
    });
    reset_peak();
    let t = Instant::now();
    let r = evaluate_month(
        &with_canary,
        month,
        month_results(start, slots).chain(canaries),
        after,
    );
    let dt = t.elapsed();
    println!(
        "evaluate_month with a canary ({} more results): {:.3} s, peak RSS {:.1} MB  (down slots {}, ams impaired {} s)",
        slots as usize * LOCS.len(),
        dt.as_secs_f64(),
        peak_rss_mb(),
        r.slots.down,
        r.locations[0].impaired_seconds
    );

    // The live figures come from the SLA ledger now (collector/src/sla/ledger/):
    // its costs at scale are measured end to end by bench/scale.sh.
    let _ = n;
}
