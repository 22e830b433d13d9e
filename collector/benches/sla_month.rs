//! A month of 1-minute results from 3 locations for 10 checks (~1.34 M
//! results) through `evaluate_month` and through the live engine, printing
//! wall time and peak RSS; then `status` at scrape scale (10 contracts × 10
//! checks × 3 locations, a full month each).
//!
//! Run: `cargo bench -p slaprobe-collector --bench sla_month`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use figment::providers::Format;
use jiff::{SignedDuration, Timestamp};
use slaprobe_collector::sla::contract::RawContract;
use slaprobe_collector::sla::{Contract, Month, Observation, SlaEngine, evaluate_month};
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
fn month_results(start: Timestamp, slots: u32) -> impl Iterator<Item = Observation<'static>> {
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
            let mut phases = [None; 6];
            phases[3] = Some((x >> 20) as f64 % 900.0 / 1000.0);
            phases[5] = Some((x >> 30) as f64 % 1500.0 / 1000.0);
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

    reset_peak();
    let t = Instant::now();
    let mut engine = SlaEngine::new(vec![c.clone()], start);
    for o in month_results(start, slots) {
        engine.observe(&o);
    }
    let fed = t.elapsed();
    let t = Instant::now();
    let st = engine.status("2026-10-31T22:30:00Z".parse().expect("ts"));
    let first_status = t.elapsed();
    let live = engine.report("hostco-acme", month, after).expect("held");
    let total = fed + first_status;
    println!(
        "engine: observe {:.3} s + first status {:.1} ms = {:.3} s, peak RSS {:.1} MB; report == evaluate_month: {}",
        fed.as_secs_f64(),
        first_status.as_secs_f64() * 1e3,
        total.as_secs_f64(),
        peak_rss_mb(),
        live == offline
    );
    assert_eq!(live, offline, "engine and evaluate_month disagree");
    assert_eq!(st.len(), 1);
    drop(engine);

    // Scrape scale: 10 contracts over the same 10 checks × 3 locations.
    reset_peak();
    let contracts: Vec<Contract> = (0..10).map(|i| contract(&format!("c{i}"))).collect();
    let mut engine = SlaEngine::new(contracts, start);
    let t = Instant::now();
    for o in month_results(start, slots) {
        engine.observe(&o);
    }
    let fed = t.elapsed();
    let now: Timestamp = "2026-10-31T22:30:00Z".parse().expect("ts");
    engine.status(now);
    let extra: Vec<Observation> = month_results(start, slots).skip(n - 300).collect();
    let mut times = Vec::new();
    for k in 0..20i64 {
        // A few fresh results between scrapes, like a live collector.
        for o in &extra[(k as usize * 15)..(k as usize * 15 + 15)] {
            engine.observe(o);
        }
        let t = Instant::now();
        let st = engine.status(
            now.checked_add(SignedDuration::from_secs(k * 15))
                .expect("ts"),
        );
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(st.len(), 10);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "status, 10 contracts x 10 checks x 3 locations, full month (fed in {:.2} s): median {:.2} ms, max {:.2} ms, peak RSS {:.1} MB",
        fed.as_secs_f64(),
        times[times.len() / 2],
        times[times.len() - 1],
        peak_rss_mb()
    );
}
