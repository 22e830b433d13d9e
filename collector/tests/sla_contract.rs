//! `[[contracts]]` validation: defaults, and every rejected value naming its key.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::Format;
use jiff::civil::Weekday;
use slaprobe_collector::sla::contract::{MaintenanceRule, RawContract};
use slaprobe_collector::sla::{Contract, Objective, ObjectiveKind, Phase, validate_contracts};

fn checks() -> HashMap<String, Duration> {
    [
        ("acme-www", 60),
        ("acme-tls", 300),
        ("acme-dns", 30),
        ("slow", 120),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), Duration::from_secs(s)))
    .collect()
}

/// The DESIGN.md §3 example, as TOML.
const EXAMPLE: &str = r#"
name = "hostco-acme"
vendor = "HostCo"
checks = ["acme-www", "acme-tls"]
timezone = "Europe/Amsterdam"
slot = "300s"
quorum = 2
objectives = [
  { kind = "availability", target = 99.9 },
  { kind = "latency", phase = "processing", percentile = 95, max = "800ms" },
]
maintenance = [
  { start = "2026-11-01T02:00:00", duration = "2h" },
  { weekly = "Sun 03:00", duration = "1h" },
]
credits = [ { below = 99.9, percent = 10 }, { below = 99.0, percent = 25 }, { below = 95.0, percent = 100 } ]
"#;

fn raw(toml_text: &str) -> RawContract {
    figment::Figment::from(figment::providers::Toml::string(toml_text))
        .extract()
        .expect("test TOML parses")
}

fn validate(r: &RawContract) -> Result<Contract, slaprobe_agent::config::ConfigError> {
    Contract::from_raw(r, &checks(), Path::new("collector.toml"))
}

#[test]
fn design_example_validates() {
    let c = validate(&raw(EXAMPLE)).unwrap();
    assert_eq!(c.name, "hostco-acme");
    assert_eq!(c.vendor, "HostCo");
    assert_eq!(c.checks, ["acme-www", "acme-tls"]);
    assert_eq!(c.timezone, "Europe/Amsterdam");
    assert_eq!(c.slot, Duration::from_secs(300));
    assert_eq!(c.quorum, 2);
    assert_eq!(c.objectives[0], Objective::Availability { target: 99.9 });
    assert_eq!(
        c.objectives[1],
        Objective::Latency {
            phase: Phase::Processing,
            percentile: 95.0,
            max: Duration::from_millis(800)
        }
    );
    assert_eq!(c.objectives[1].label(), "latency_processing_p95");
    assert_eq!(c.availability_target(), Some(99.9));
    assert!(matches!(
        c.maintenance[1],
        MaintenanceRule::Weekly {
            weekday: Weekday::Sunday,
            ..
        }
    ));
    // Sorted by `below` descending.
    let below: Vec<f64> = c.credits.iter().map(|t| t.below).collect();
    assert_eq!(below, [99.9, 99.0, 95.0]);
}

#[test]
fn defaults() {
    let c = validate(&raw(r#"name = "x"
checks = ["acme-www"]"#))
    .unwrap();
    assert_eq!(c.vendor, "x");
    assert_eq!(c.timezone, "UTC");
    assert_eq!(c.slot, Duration::from_secs(60));
    assert_eq!(c.quorum, 2);
    assert!(c.objectives.is_empty() && c.maintenance.is_empty() && c.credits.is_empty());
}

#[test]
fn zones_resolve() {
    for tz in [
        "Europe/Amsterdam",
        "America/New_York",
        "UTC",
        "Asia/Kolkata",
    ] {
        let c = validate(&raw(&format!(
            "name = \"x\"\nchecks = [\"acme-www\"]\ntimezone = \"{tz}\""
        )))
        .unwrap();
        assert_eq!(c.timezone, tz);
    }
}

#[test]
fn the_bundled_tzdb_is_a_fallback() {
    // Enabled with jiff's `tzdb-bundle-always`: zones resolve even on a host without /usr/share/zoneinfo.
    let db = jiff::tz::TimeZoneDatabase::bundled();
    for tz in ["Europe/Amsterdam", "America/New_York"] {
        assert!(db.get(tz).is_ok(), "{tz} missing from the bundled tzdb");
    }
}

#[test]
fn weekly_and_one_off_forms() {
    let ok = [
        r#"{ weekly = "Sun 03:00", duration = "1h" }"#,
        r#"{ weekly = "sunday 03:00:30", duration = "1h" }"#,
        r#"{ weekly = "MON 3:00", duration = "7days" }"#,
        r#"{ start = "2026-11-01T02:00", duration = "90m" }"#,
        r#"{ start = "2026-11-01 02:00:00", duration = "1s" }"#,
    ];
    for m in ok {
        let r = raw(&format!(
            "name = \"x\"\nchecks = [\"acme-www\"]\nmaintenance = [{m}]"
        ));
        validate(&r).unwrap_or_else(|e| panic!("{m}: {e}"));
    }
}

/// (TOML body after `name = "k"`, expected key suffix, expected message fragment).
const BAD: &[(&str, &str, &str)] = &[
    ("checks = []", "checks", "at least one"),
    ("checks = [\"nope\"]", "checks", "unknown check \"nope\""),
    ("checks = [\"acme-www\", \"acme-www\"]", "checks", "twice"),
    (
        "checks = [\"acme-www\", \"acme-tls\"]\nslot = \"60s\"",
        "slot",
        "acme-tls",
    ),
    (
        "checks = [\"acme-www\"]\nslot = \"500ms\"",
        "slot",
        "1s to 1 day",
    ),
    (
        "checks = [\"acme-www\"]\nslot = \"2days\"",
        "slot",
        "1s to 1 day",
    ),
    (
        "checks = [\"acme-www\"]\nslot = \"90500ms\"",
        "slot",
        "whole number",
    ),
    (
        "checks = [\"acme-www\"]\nslot = \"sixty\"",
        "slot",
        "invalid duration",
    ),
    (
        "checks = [\"acme-www\"]\ntimezone = \"Mars/Olympus\"",
        "timezone",
        "unknown time zone",
    ),
    (
        "checks = [\"acme-www\"]\nquorum = 0",
        "quorum",
        "at least 1",
    ),
    ("checks = [\"acme-www\"]\nvendor = \" \"", "vendor", "empty"),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"uptime\", target = 99 }]",
        "objectives[0].kind",
        "unknown objective kind",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"availability\" }]",
        "objectives[0].target",
        "missing",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"availability\", target = 0 }]",
        "objectives[0].target",
        "(0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"availability\", target = 100.5 }]",
        "objectives[0].target",
        "(0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"availability\", target = 99, max = \"1s\" }]",
        "objectives[0].max",
        "not used",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"availability\", target = 99 }, { kind = \"availability\", target = 98 }]",
        "objectives[1]",
        "second availability",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"ttfb\", percentile = 95, max = \"1s\" }]",
        "objectives[0].phase",
        "unknown phase",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", percentile = 95, max = \"1s\" }]",
        "objectives[0].phase",
        "missing",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", percentile = 0, max = \"1s\" }]",
        "objectives[0].percentile",
        "(0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", percentile = 101, max = \"1s\" }]",
        "objectives[0].percentile",
        "(0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", percentile = 95, max = \"fast\" }]",
        "objectives[0].max",
        "invalid duration",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", percentile = 95, max = \"0s\" }]",
        "objectives[0].max",
        "greater than 0",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", percentile = 95 }]",
        "objectives[0].max",
        "missing",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", percentile = 95, max = \"1s\", target = 3 }]",
        "objectives[0].target",
        "not used",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", percentile = 95, max = \"1s\" }, { kind = \"latency\", phase = \"tls\", percentile = 95, max = \"2s\" }]",
        "objectives[1]",
        "duplicate objective latency_tls_p95",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"web_vital\", metric = \"inp\", percentile = 75, max = \"200ms\" }]",
        "objectives[0].metric",
        "unknown Web Vital",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"web_vital\", percentile = 75, max = \"2.5s\" }]",
        "objectives[0].metric",
        "missing",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"web_vital\", metric = \"cls\", percentile = 75, max = \"100ms\" }]",
        "objectives[0].max",
        "unitless",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"web_vital\", metric = \"lcp\", percentile = 75, max = 2.5 }]",
        "objectives[0].max",
        "write a duration",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"web_vital\", metric = \"lcp\", phase = \"tls\", percentile = 75, max = \"2.5s\" }]",
        "objectives[0].phase",
        "not used by a web_vital",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"latency\", phase = \"tls\", metric = \"lcp\", percentile = 95, max = \"1s\" }]",
        "objectives[0].metric",
        "not used by a latency",
    ),
    (
        "checks = [\"acme-www\"]\nobjectives = [{ kind = \"web_vital\", metric = \"lcp\", percentile = 75, max = \"2.5s\" }, { kind = \"web_vital\", metric = \"lcp\", percentile = 75, max = \"4s\" }]",
        "objectives[1]",
        "duplicate objective web_vital_lcp_p75",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ duration = \"1h\" }]",
        "maintenance[0].start",
        "missing",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ start = \"2026-11-01T02:00:00\", weekly = \"Sun 03:00\", duration = \"1h\" }]",
        "maintenance[0].weekly",
        "not both",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ weekly = \"Sun 25:00\", duration = \"1h\" }]",
        "maintenance[0].weekly",
        "Sun 03:00",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ weekly = \"Sunday\", duration = \"1h\" }]",
        "maintenance[0].weekly",
        "Sun 03:00",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ weekly = \"Dim 03:00\", duration = \"1h\" }]",
        "maintenance[0].weekly",
        "Sun 03:00",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ weekly = \"Sun 3h\", duration = \"1h\" }]",
        "maintenance[0].weekly",
        "Sun 03:00",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ start = \"2026-11-01T02:00:00Z\", duration = \"1h\" }]",
        "maintenance[0].start",
        "no offset",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ start = \"2026-02-30T02:00:00\", duration = \"1h\" }]",
        "maintenance[0].start",
        "local date",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ start = \"tomorrow\", duration = \"1h\" }]",
        "maintenance[0].start",
        "local date",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ weekly = \"Sun 03:00\", duration = \"0s\" }]",
        "maintenance[0].duration",
        "out of range",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ weekly = \"Sun 03:00\", duration = \"8days\" }]",
        "maintenance[0].duration",
        "out of range",
    ),
    (
        "checks = [\"acme-www\"]\nmaintenance = [{ weekly = \"Sun 03:00\", duration = \"long\" }]",
        "maintenance[0].duration",
        "invalid duration",
    ),
    (
        "checks = [\"acme-www\"]\ncredits = [{ below = 0, percent = 10 }]",
        "credits[0].below",
        "(0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\ncredits = [{ below = 100.1, percent = 10 }]",
        "credits[0].below",
        "(0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\ncredits = [{ below = 99, percent = -1 }]",
        "credits[0].percent",
        "[0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\ncredits = [{ below = 99, percent = 101 }]",
        "credits[0].percent",
        "[0, 100]",
    ),
    (
        "checks = [\"acme-www\"]\ncredits = [{ below = 99, percent = 10 }, { below = 99, percent = 20 }]",
        "credits[1].below",
        "already",
    ),
    (
        "checks = [\"acme-www\"]\ncredits = [{ below = 99.9, percent = 25 }, { below = 99.0, percent = 10 }]",
        "credits[1].percent",
        "must not earn a smaller credit",
    ),
];

#[test]
fn rejects_bad_values_naming_the_key() {
    for (body, key, fragment) in BAD {
        let r = raw(&format!("name = \"k\"\n{body}"));
        let e = validate(&r).expect_err(body);
        assert_eq!(e.key, format!("contracts[k].{key}"), "{body}: {e}");
        assert!(
            e.message.contains(fragment),
            "{body}: message {:?} lacks {fragment:?}",
            e.message
        );
        assert_eq!(e.file, Path::new("collector.toml"));
    }
}

#[test]
fn bad_names() {
    for name in ["", "a/b", "has space", &"x".repeat(129)] {
        let r = raw(&format!("name = {name:?}\nchecks = [\"acme-www\"]"));
        let e = validate(&r).expect_err(name);
        assert!(e.key.ends_with(".name"), "{e}");
    }
}

#[test]
fn validate_contracts_rejects_duplicate_names() {
    let a = raw("name = \"a\"\nchecks = [\"acme-www\"]");
    let b = raw("name = \"b\"\nchecks = [\"acme-dns\"]");
    let ok = validate_contracts(&[a.clone(), b.clone()], &checks(), Path::new("c.toml")).unwrap();
    assert_eq!(ok.len(), 2);
    let e = validate_contracts(&[a.clone(), b, a], &checks(), Path::new("c.toml")).unwrap_err();
    assert_eq!(e.key, "contracts[a].name");
    assert!(e.message.contains("duplicate"), "{e}");
    // The first bad contract's own error comes through with its key.
    let bad = raw("name = \"c\"\nchecks = [\"nope\"]");
    let e = validate_contracts(&[bad], &checks(), Path::new("c.toml")).unwrap_err();
    assert_eq!(e.key, "contracts[c].checks");
}

#[test]
fn web_vital_objectives() {
    let c = validate(&raw(r#"
name = "agency"
checks = ["acme-www"]
objectives = [
  { kind = "web_vital", metric = "lcp", percentile = 75, max = "2.5s" },
  { kind = "web_vital", metric = "cls", percentile = 75, max = 0.1 },
  { kind = "web_vital", metric = "tbt", percentile = 75, max = "200ms" },
]
"#))
    .unwrap();
    assert_eq!(
        c.objectives[0],
        Objective::WebVital {
            metric: Phase::Lcp,
            percentile: 75.0,
            max: 2.5
        }
    );
    assert_eq!(c.objectives[0].label(), "web_vital_lcp_p75");
    assert_eq!(c.objectives[0].kind(), ObjectiveKind::WebVital);
    assert_eq!(
        c.objectives[1],
        Objective::WebVital {
            metric: Phase::Cls,
            percentile: 75.0,
            max: 0.1
        }
    );
    assert_eq!(c.availability_target(), None);
    // Sampled like latency objectives, in contract order.
    let sampled: Vec<(Phase, f64)> = c.latency_objectives().map(|(p, q, _)| (p, q)).collect();
    assert_eq!(
        sampled,
        vec![(Phase::Lcp, 75.0), (Phase::Cls, 75.0), (Phase::Tbt, 75.0)]
    );
}
