//! Helpers for `report_render`: a realistic month of synthetic results
//! through the real SLA engine, and small readers (HTML tags, RFC 4180 CSV,
//! PNG) plus a Chromium driver to check the renderings.
#![allow(dead_code)]

pub mod markup;
pub mod png;
pub mod tools;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::Format as _;
use jiff::{SignedDuration, Timestamp};
use slaprobe_collector::sla::contract::RawContract;
use slaprobe_collector::sla::{
    Contract, Month, MonthReport, Observation, Phase, evaluate_month, evidence_digest,
};
use slaprobe_wire::FailureClass;

/// A validated contract from a TOML body (without the `[[contracts]]` header).
pub fn contract(toml_text: &str) -> Contract {
    let raw: RawContract = figment::Figment::from(figment::providers::Toml::string(toml_text))
        .extract()
        .expect("test TOML parses");
    let intervals: HashMap<String, Duration> = ["www", "api"]
        .iter()
        .map(|n| (n.to_string(), Duration::from_secs(60)))
        .collect();
    Contract::from_raw(&raw, &intervals, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

/// The contract of the realistic month: Amsterdam, 1-minute slots, quorum 2,
/// availability 99.9 % and processing p95 <= 800 ms, weekly and one-off maintenance.
pub fn acme_contract() -> Contract {
    contract(
        r#"name = "hostco-acme"
vendor = "HostCo \"Premium\" <Hosting> & Co"
timezone = "Europe/Amsterdam"
checks = ["www", "api"]
slot = "60s"
quorum = 2
objectives = [
  { kind = "availability", target = 99.9 },
  { kind = "latency", phase = "processing", percentile = 95, max = "800ms" },
]
maintenance = [{ weekly = "Sun 03:00", duration = "1h" }, { start = "2026-10-14T22:00:00", duration = "2h" }]
credits = [{ below = 99.9, percent = 10 }, { below = 99.0, percent = 25 }, { below = 95.0, percent = 100 }]
"#,
    )
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub fn october() -> Month {
    "2026-10".parse().unwrap()
}

/// A failure episode: `check` fails at `locations` during `[from, to)` (UTC).
pub struct Outage {
    pub check: &'static str,
    pub locations: &'static [&'static str],
    pub from: Timestamp,
    pub to: Timestamp,
    pub class: FailureClass,
    pub message: &'static str,
}

/// The long, hostile message of the night-time API timeout: quotes, commas,
/// a newline, markup and a URL, 500+ characters.
pub fn long_message() -> &'static str {
    static MSG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MSG.get_or_init(|| {
        let mut m = String::from(
            "timeout after 10s waiting for response headers from https://api.acme.example/v2/health?probe=1, \
             phase \"processing\"; server said <script>alert(\"x\")</script> & closed\nsecond line: ",
        );
        while m.chars().count() < 520 {
            m.push_str("upstream-pool-exhausted ");
        }
        m.push_str("END-OF-MESSAGE");
        m
    })
}

/// The realistic month's outages (local times noted; Amsterdam is UTC+2 until 25 October, then UTC+1).
pub fn acme_outages() -> Vec<Outage> {
    vec![
        // 3 Oct 14:05-14:23 local: the site answers 503 at two locations (nyc still fine): DOWN.
        Outage {
            check: "www",
            locations: &["ams", "fra"],
            from: ts("2026-10-03T12:05:00Z"),
            to: ts("2026-10-03T12:23:00Z"),
            class: FailureClass::HttpStatus,
            message: "HTTP 503 Service Unavailable",
        },
        // 12 Oct 02:10-02:55 local: API timeouts from fra and nyc, with a long hostile message.
        Outage {
            check: "api",
            locations: &["fra", "nyc"],
            from: ts("2026-10-12T00:10:00Z"),
            to: ts("2026-10-12T00:55:00Z"),
            class: FailureClass::Timeout,
            message: long_message(),
        },
        // 14 Oct 22:00-24:00 local: everything fails inside the announced maintenance: not counted.
        Outage {
            check: "www",
            locations: &["ams", "fra", "nyc"],
            from: ts("2026-10-14T20:00:00Z"),
            to: ts("2026-10-14T22:00:00Z"),
            class: FailureClass::ConnectRefused,
            message: "connection refused (planned maintenance)",
        },
        // 20 Oct 09:00-10:00 local: only ams fails: below quorum, no incident.
        Outage {
            check: "www",
            locations: &["ams"],
            from: ts("2026-10-20T07:00:00Z"),
            to: ts("2026-10-20T08:00:00Z"),
            class: FailureClass::Timeout,
            message: "timeout (local network at ams)",
        },
        // 22 Oct 16:40 local: a one-minute blip at two locations, with a formula-like message.
        Outage {
            check: "api",
            locations: &["ams", "nyc"],
            from: ts("2026-10-22T14:40:00Z"),
            to: ts("2026-10-22T14:41:00Z"),
            class: FailureClass::Other,
            message: "=cmd|' /C calc'!A0",
        },
        // 28 Oct 06:00-09:30 local (UTC+1 now): the site is down everywhere for 3.5 hours.
        Outage {
            check: "www",
            locations: &["ams", "fra", "nyc"],
            from: ts("2026-10-28T05:00:00Z"),
            to: ts("2026-10-28T08:30:00Z"),
            class: FailureClass::ConnectRefused,
            message: "connect: connection refused (192.0.2.10:443)",
        },
    ]
}

/// Every location's result for every check and minute of October 2026 in
/// Amsterdam, except a 2-hour silence on 7 October (no data); failures per
/// `outages`; processing times around 250-500 ms, slow (850-1250 ms) on 16 October.
pub fn month_of_results(
    checks: &'static [&'static str],
    locations: &'static [&'static str],
    outages: &[Outage],
) -> Vec<Observation<'static>> {
    let start = ts("2026-09-30T22:00:00Z");
    let end = ts("2026-10-31T23:00:00Z");
    let silent = (ts("2026-10-07T08:00:00Z"), ts("2026-10-07T10:00:00Z"));
    let slow = (ts("2026-10-15T22:00:00Z"), ts("2026-10-16T22:00:00Z"));
    let mut out = Vec::with_capacity(checks.len() * locations.len() * 44_700);
    let mut t = start;
    let mut n: u64 = 0;
    while t < end {
        if !(t >= silent.0 && t < silent.1) {
            for check in checks {
                for (li, loc) in locations.iter().enumerate() {
                    let at = t + SignedDuration::from_secs(7 + 11 * li as i64);
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let noise = ((n >> 33) % 1000) as f64 / 1000.0;
                    let failing = outages.iter().find(|o| {
                        o.check == *check && o.locations.contains(loc) && at >= o.from && at < o.to
                    });
                    out.push(match failing {
                        Some(o) => Observation {
                            check,
                            location: loc,
                            started_at: at,
                            success: false,
                            class: Some(o.class),
                            message: Some(o.message),
                            phases: {
                                let mut p = [None; Phase::ALL.len()];
                                p[Phase::Total.index()] = Some(10.0);
                                p
                            },
                        },
                        None => {
                            let processing = if at >= slow.0 && at < slow.1 {
                                0.85 + noise * 0.4
                            } else {
                                0.25 + noise * 0.25
                            };
                            let mut phases = [None; Phase::ALL.len()];
                            phases[Phase::Processing.index()] = Some(processing);
                            phases[Phase::Total.index()] = Some(processing + 0.05);
                            Observation {
                                check,
                                location: loc,
                                started_at: at,
                                success: true,
                                class: None,
                                message: None,
                                phases,
                            }
                        }
                    });
                }
            }
        }
        t += SignedDuration::from_secs(60);
    }
    out
}

/// The report of `obs` as of `now`, with an evidence digest over stand-in raw lines.
pub fn report_of(contract: &Contract, obs: &[Observation<'_>], now: Timestamp) -> MonthReport {
    let mut report = evaluate_month(contract, october(), obs.iter().copied(), now);
    let lines: Vec<String> = obs
        .iter()
        .map(|o| {
            format!(
                "{{\"check\":\"{}\",\"location\":\"{}\",\"started_at\":\"{}\",\"success\":{}}}",
                o.check, o.location, o.started_at, o.success
            )
        })
        .collect();
    let (results, sha256) = evidence_digest(lines.iter().map(|l| l.as_bytes()));
    report.evidence.results = results;
    report.evidence.sha256 = sha256;
    report
}

/// After the month: every slot counted.
pub fn after_month() -> Timestamp {
    ts("2026-11-05T00:00:00Z")
}

/// Many short incidents: a 2-minute failure at two locations every 100 minutes (~440 incidents).
pub fn many_outages() -> Vec<Outage> {
    let mut v = Vec::new();
    let mut t = ts("2026-10-01T00:00:00Z");
    let end = ts("2026-10-31T20:00:00Z");
    while t < end {
        v.push(Outage {
            check: "www",
            locations: &["ams", "fra"],
            from: t,
            to: t + SignedDuration::from_secs(120),
            class: FailureClass::HttpStatus,
            message: "HTTP 502 Bad Gateway",
        });
        t += SignedDuration::from_secs(6000);
    }
    v
}
