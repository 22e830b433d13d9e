//! DESIGN.md §6 rules 1–8, each with cases that could fail, through the
//! offline evaluation (`evaluate_month`) and the pure functions.

mod sla_common;

use jiff::Timestamp;
use sla_common::{at, contract, fail, pass, ts};
use slaprobe_collector::sla::contract::CreditTier;
use slaprobe_collector::sla::report::SlotCounts;
use slaprobe_collector::sla::rules::{
    SlotState, check_state, contract_state, credit_percent, error_budget_remaining, nearest_rank,
    percentile,
};
use slaprobe_collector::sla::{MonthReport, Observation, evaluate_month, evidence_digest};
use slaprobe_wire::FailureClass;

const T0: &str = "2026-10-01T00:00:00Z";
const LATER: &str = "2027-01-01T00:00:00Z";
const OCT_SLOTS: u32 = 31 * 1440;

fn t0() -> Timestamp {
    ts(T0)
}

fn eval(body: &str, obs: &[Observation<'_>], now: &str) -> MonthReport {
    let c = contract(&format!("name = \"k\"\n{body}"));
    evaluate_month(&c, "2026-10".parse().unwrap(), obs.iter().copied(), ts(now))
}

/// One result: (check, location, seconds after T0, PASS?).
type R = (&'static str, &'static str, i64, bool);

fn observations(rs: &[R]) -> Vec<Observation<'static>> {
    rs.iter()
        .map(|&(c, l, s, ok)| {
            if ok {
                pass(c, l, at(t0(), s), 0.1)
            } else {
                fail(c, l, at(t0(), s), FailureClass::ConnectRefused, "refused")
            }
        })
        .collect()
}

/// (name, contract body, results, expected up, down, maintenance among the
/// first slots; every other slot of October is NODATA).
type SlotCase = (&'static str, &'static str, &'static [R], u32, u32, u32);

const SLOT_CASES: &[SlotCase] = &[
    (
        "last result wins: FAIL then PASS",
        "checks = [\"a\"]\nquorum = 1",
        &[("a", "x", 10, false), ("a", "x", 50, true)],
        1,
        0,
        0,
    ),
    (
        "last result wins: PASS then FAIL",
        "checks = [\"a\"]\nquorum = 1",
        &[("a", "x", 10, true), ("a", "x", 50, false)],
        0,
        1,
        0,
    ),
    (
        "last result wins whatever the arrival order",
        "checks = [\"a\"]\nquorum = 1",
        &[("a", "x", 50, false), ("a", "x", 10, true)],
        0,
        1,
        0,
    ),
    (
        "a result in the next slot decides that slot only",
        "checks = [\"a\"]\nquorum = 1",
        &[("a", "x", 10, false), ("a", "x", 60, true)],
        1,
        1,
        0,
    ),
    (
        "same instant: FAIL beats PASS",
        "checks = [\"a\"]\nquorum = 1",
        &[("a", "x", 10, true), ("a", "x", 10, false)],
        0,
        1,
        0,
    ),
    (
        "quorum 2 of 3: one failing is UP",
        "checks = [\"a\"]\nquorum = 2",
        &[
            ("a", "x", 1, false),
            ("a", "y", 2, true),
            ("a", "z", 3, true),
        ],
        1,
        0,
        0,
    ),
    (
        "quorum 2 of 3: two failing is DOWN",
        "checks = [\"a\"]\nquorum = 2",
        &[
            ("a", "x", 1, false),
            ("a", "y", 2, false),
            ("a", "z", 3, true),
        ],
        0,
        1,
        0,
    ),
    (
        "quorum capped: the one location with data fails",
        "checks = [\"a\"]\nquorum = 2",
        &[("a", "x", 1, false)],
        0,
        1,
        0,
    ),
    (
        "quorum 3 capped at 2 locations with data",
        "checks = [\"a\"]\nquorum = 3",
        &[("a", "x", 1, false), ("a", "y", 2, false)],
        0,
        1,
        0,
    ),
    (
        "quorum 3 of 3 with two failing is UP",
        "checks = [\"a\"]\nquorum = 3",
        &[
            ("a", "x", 1, false),
            ("a", "y", 2, false),
            ("a", "z", 3, true),
        ],
        1,
        0,
        0,
    ),
    (
        "a location's earlier FAIL replaced by its PASS does not count",
        "checks = [\"a\"]\nquorum = 2",
        &[
            ("a", "x", 1, false),
            ("a", "y", 2, false),
            ("a", "y", 30, true),
        ],
        1,
        0,
        0,
    ),
    (
        "any check DOWN makes the contract DOWN",
        "checks = [\"a\", \"b\"]\nquorum = 1",
        &[("a", "x", 1, true), ("b", "x", 2, false)],
        0,
        1,
        0,
    ),
    (
        "one check UP, the other without data: UP",
        "checks = [\"a\", \"b\"]\nquorum = 1",
        &[("a", "x", 1, true)],
        1,
        0,
        0,
    ),
    (
        "results of other checks are ignored",
        "checks = [\"a\"]\nquorum = 1",
        &[("b", "x", 1, false)],
        0,
        0,
        0,
    ),
    (
        "results outside the month are ignored",
        "checks = [\"a\"]\nquorum = 1",
        &[("a", "x", -1, false), ("a", "x", 31 * 86_400, false)],
        0,
        0,
        0,
    ),
    (
        "maintenance overrides DOWN data (slot 0 in a window)",
        "checks = [\"a\"]\nquorum = 1\nmaintenance = [{ start = \"2026-10-01T00:00:00\", duration = \"1m\" }]",
        &[("a", "x", 1, false), ("a", "x", 61, false)],
        0,
        1,
        1,
    ),
];

#[test]
fn slot_states() {
    for &(name, body, rs, up, down, maint) in SLOT_CASES {
        let r = eval(body, &observations(rs), LATER);
        let expect = SlotCounts {
            up,
            down,
            maintenance: maint,
            nodata: OCT_SLOTS - up - down - maint,
        };
        assert_eq!(r.slots, expect, "{name}");
        assert_eq!(r.downtime_seconds, u64::from(down) * 60, "{name}");
        assert_eq!(r.maintenance_seconds, u64::from(maint) * 60, "{name}");
        assert_eq!(r.nodata_seconds, u64::from(expect.nodata) * 60, "{name}");
    }
}

#[test]
fn pure_state_rules() {
    use SlotState::*;
    // (pass, fail, quorum) → state
    for (p, f, q, s) in [
        (0, 0, 2, NoData),
        (3, 0, 2, Up),
        (2, 1, 2, Up),
        (1, 2, 2, Down),
        (0, 1, 2, Down),
        (0, 2, 5, Down),
        (1, 1, 1, Down),
        (1, 1, 2, Up),
    ] {
        assert_eq!(check_state(p, f, q), s, "pass {p} fail {f} quorum {q}");
    }
    assert_eq!(contract_state([Up, Down, NoData], false), Down);
    assert_eq!(contract_state([Up, NoData], false), Up);
    assert_eq!(contract_state([NoData, NoData], false), NoData);
    assert_eq!(contract_state([Up, Down], true), Maintenance);
    assert_eq!(contract_state([], false), NoData);
}

#[test]
fn availability_and_nodata_exclusion() {
    // 3 UP, 1 DOWN, the rest NODATA: 75 %.
    let rs: &[R] = &[
        ("a", "x", 0, true),
        ("a", "x", 60, true),
        ("a", "x", 120, false),
        ("a", "x", 180, true),
    ];
    let r = eval(
        "checks = [\"a\"]\nquorum = 1\nobjectives = [{ kind = \"availability\", target = 99 }]",
        &observations(rs),
        LATER,
    );
    assert_eq!(r.availability_percent, Some(75.0));
    assert_eq!(r.objectives[0].attained, Some(75.0));
    assert!(!r.objectives[0].met);
    assert_eq!(r.slots.nodata, OCT_SLOTS - 4);

    // No eligible slot at all: null, met by the documented rule, no credit.
    let r = eval(
        "checks = [\"a\"]\nobjectives = [{ kind = \"availability\", target = 99 }]\ncredits = [{ below = 100, percent = 50 }]",
        &[],
        LATER,
    );
    assert_eq!(r.availability_percent, None);
    assert_eq!(r.objectives[0].attained, None);
    assert!(r.objectives[0].met);
    assert_eq!(r.credit_percent, 0.0);
    assert_eq!(r.incidents.len(), 0);
}

#[test]
fn incidents_are_runs_of_down_split_by_maintenance_nodata_and_up() {
    let body = "checks = [\"a\", \"b\"]\nquorum = 2\nmaintenance = [{ start = \"2026-10-01T00:05:00\", duration = \"2m\" }]";
    let mut obs = Vec::new();
    // Slots 0-9 DOWN on check a (x and y fail), with b UP; 5-6 are maintenance.
    for s in 0..10 {
        obs.push(fail(
            "a",
            "x",
            at(t0(), s * 60 + 1),
            FailureClass::Timeout,
            "timed out after 10s",
        ));
        obs.push(fail(
            "a",
            "y",
            at(t0(), s * 60 + 2),
            FailureClass::ConnectRefused,
            "connection refused",
        ));
        obs.push(pass("b", "x", at(t0(), s * 60 + 3), 0.1));
    }
    // A failing location of a check that is not DOWN (b: 1 of 2 fail) is not part of the incident.
    obs.push(fail(
        "b",
        "q",
        at(t0(), 4),
        FailureClass::TooManyRedirects,
        "redirect loop",
    ));
    // Slot 10 NODATA; 11-12 DOWN on b (11: z and w fail, v and u pass: 2 of 4;
    // 12: only z has data and fails: quorum capped); 13 UP; 14 DOWN.
    for s in [11, 12, 14] {
        obs.push(fail(
            "b",
            "z",
            at(t0(), s * 60 + 5),
            FailureClass::HttpStatus,
            "HTTP 503",
        ));
    }
    obs.push(fail(
        "b",
        "w",
        at(t0(), 11 * 60 + 9),
        FailureClass::DnsError,
        "nxdomain",
    ));
    obs.push(pass("b", "v", at(t0(), 11 * 60 + 10), 0.1));
    obs.push(pass("b", "u", at(t0(), 11 * 60 + 11), 0.1));
    obs.push(pass("a", "x", at(t0(), 13 * 60), 0.1));
    let r = eval(body, &obs, LATER);
    let got: Vec<(String, String, u64, u32)> = r
        .incidents
        .iter()
        .map(|i| {
            (
                i.start.to_string(),
                i.end.to_string(),
                i.duration_seconds,
                i.slots,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "2026-10-01T00:00:00Z".into(),
                "2026-10-01T00:05:00Z".into(),
                300,
                5
            ),
            (
                "2026-10-01T00:07:00Z".into(),
                "2026-10-01T00:10:00Z".into(),
                180,
                3
            ),
            (
                "2026-10-01T00:11:00Z".into(),
                "2026-10-01T00:13:00Z".into(),
                120,
                2
            ),
            (
                "2026-10-01T00:14:00Z".into(),
                "2026-10-01T00:15:00Z".into(),
                60,
                1
            ),
        ]
    );
    let first = &r.incidents[0];
    assert_eq!(first.locations, ["x", "y"]);
    assert_eq!(first.classes, ["connect_refused", "timeout"]);
    assert_eq!(first.checks, ["a"]);
    assert_eq!(first.sample_message.as_deref(), Some("timed out after 10s"));
    let third = &r.incidents[2];
    assert_eq!(third.locations, ["w", "z"]);
    assert_eq!(third.classes, ["dns_error", "http_status"]);
    assert_eq!(third.checks, ["b"]);
    assert_eq!(third.sample_message.as_deref(), Some("nxdomain"));
    assert_eq!(
        r.slots,
        SlotCounts {
            up: 1,
            down: 11,
            maintenance: 2,
            nodata: OCT_SLOTS - 14
        }
    );
    assert_eq!(r.downtime_seconds, 660);
}

#[test]
fn nearest_rank_percentile() {
    // (p, n, rank)
    for (p, n, rank) in [
        (95.0, 20, 19),
        (95.0, 1, 1),
        (50.0, 4, 2),
        (50.0, 5, 3),
        (99.9, 1000, 999),
        (99.9, 1001, 1000),
        (100.0, 7, 7),
        (0.1, 7, 1),
        (90.0, 10, 9),
    ] {
        assert_eq!(nearest_rank(p, n), rank, "p{p} of {n}");
    }
    let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
    assert_eq!(percentile(&mut v, 95.0), Some(19.0));
    assert_eq!(percentile(&mut [], 95.0), None);

    // Through a report: 20 successful results 1..20 ms; failures and
    // maintenance slots do not count.
    let body = "checks = [\"a\"]\nquorum = 1\nobjectives = [{ kind = \"latency\", phase = \"processing\", percentile = 95, max = \"19ms\" }, { kind = \"latency\", phase = \"total\", percentile = 50, max = \"1s\" }]\nmaintenance = [{ start = \"2026-10-02T00:00:00\", duration = \"1h\" }]";
    let mut obs: Vec<Observation> = (1..=20)
        .map(|i| {
            pass(
                "a",
                "x",
                at(t0(), i64::from(i) * 3600),
                f64::from(i) / 1000.0,
            )
        })
        .collect();
    obs.push(fail("a", "x", at(t0(), 30), FailureClass::Timeout, "slow"));
    obs.push(pass("a", "x", at(ts("2026-10-02T00:00:00Z"), 30), 5.0)); // in maintenance
    let r = eval(body, &obs, LATER);
    let lat = &r.objectives[0];
    assert_eq!(lat.attained, Some(0.019));
    assert_eq!(lat.samples, Some(20));
    assert!(lat.met, "0.019 <= 0.019");
    assert_eq!(lat.phase.as_deref(), Some("processing"));
    assert_eq!(lat.max, Some(0.019));
    // total = 2 × processing in the helper: the median of 2..40 ms is the 10th value.
    assert_eq!(r.objectives[1].attained, Some(0.020));
    let r = eval(&body.replace("19ms", "18ms"), &obs, LATER);
    assert!(!r.objectives[0].met);
}

#[test]
fn credits() {
    let tiers = [
        CreditTier {
            below: 99.9,
            percent: 10.0,
        },
        CreditTier {
            below: 99.0,
            percent: 25.0,
        },
        CreditTier {
            below: 95.0,
            percent: 100.0,
        },
    ];
    for (attained, credit) in [
        (Some(100.0), 0.0),
        (Some(99.9), 0.0),
        (Some(99.89), 10.0),
        (Some(99.0), 10.0),
        (Some(98.99), 25.0),
        (Some(94.0), 100.0),
        (Some(0.0), 100.0),
        (None, 0.0),
    ] {
        assert_eq!(credit_percent(&tiers, attained), credit, "{attained:?}");
    }
    assert_eq!(credit_percent(&[], Some(1.0)), 0.0);

    // Through a report: 2 DOWN of 100 eligible → 98 % → 25 %.
    let mut rs: Vec<R> = (0..98).map(|s| ("a", "x", s * 60, true)).collect();
    rs.extend([("a", "x", 98 * 60, false), ("a", "x", 99 * 60, false)]);
    let body = "checks = [\"a\"]\nquorum = 1\ncredits = [ { below = 99.9, percent = 10 }, { below = 99.0, percent = 25 }, { below = 95.0, percent = 100 } ]";
    let r = eval(body, &observations(&rs), LATER);
    assert_eq!(r.availability_percent, Some(98.0));
    assert_eq!(r.credit_percent, 25.0);
}

#[test]
fn error_budget() {
    // November 2026 UTC: 720 h; 1 h maintenance; 99.9 % → 2588.4 s allowed; 600 s spent.
    let c = contract(
        "name = \"k\"\nchecks = [\"a\"]\nquorum = 1\nobjectives = [{ kind = \"availability\", target = 99.9 }]\nmaintenance = [{ start = \"2026-11-03T00:00:00\", duration = \"1h\" }]",
    );
    let base = ts("2026-11-01T00:00:00Z");
    let obs: Vec<Observation> = (0..100)
        .map(|s| {
            if s < 10 {
                fail("a", "x", at(base, s * 60), FailureClass::Timeout, "t")
            } else {
                pass("a", "x", at(base, s * 60), 0.1)
            }
        })
        .collect();
    let r = evaluate_month(&c, "2026-11".parse().unwrap(), obs, ts(LATER));
    assert_eq!(r.downtime_seconds, 600);
    let expect = 1.0 - 600.0 / ((1.0 - 99.9 / 100.0) * (2_592_000.0 - 3600.0));
    assert!(
        (r.error_budget_remaining.unwrap() - expect).abs() < 1e-12,
        "{:?}",
        r.error_budget_remaining
    );
    assert!((expect - 0.768_196_569_309_200_2).abs() < 1e-12);

    assert_eq!(error_budget_remaining(99.0, 0, 1000, 0), Some(1.0));
    // Overspent budgets go negative: twice the allowed 10 s.
    assert!((error_budget_remaining(99.0, 20, 1000, 0).unwrap() + 1.0).abs() < 1e-9);
    assert!((error_budget_remaining(99.0, 5, 1100, 100).unwrap() - 0.5).abs() < 1e-9);
    assert_eq!(error_budget_remaining(100.0, 0, 1000, 0), Some(1.0));
    assert_eq!(error_budget_remaining(100.0, 60, 1000, 0), None);
    // Without an availability objective there is no budget.
    let r = eval("checks = [\"a\"]", &[], LATER);
    assert_eq!(r.error_budget_remaining, None);
}

#[test]
fn month_to_date_counts_only_started_slots() {
    let rs: &[R] = &[
        ("a", "x", 0, true),
        ("a", "x", 60, false),
        ("a", "x", 3600, false),
    ];
    let body =
        "checks = [\"a\"]\nquorum = 1\nobjectives = [{ kind = \"availability\", target = 99 }]";
    // At 00:01:30 two slots have started: UP and DOWN; the 01:00 result is in the future.
    let r = eval(body, &observations(rs), "2026-10-01T00:01:30Z");
    assert_eq!(
        r.slots,
        SlotCounts {
            up: 1,
            down: 1,
            maintenance: 0,
            nodata: 0
        }
    );
    assert_eq!(r.as_of, Some(ts("2026-10-01T00:01:30Z")));
    assert_eq!(r.days.len(), 1);
    // At 00:30 the 28 slots in between are NODATA; the error budget uses the whole month.
    let r = eval(body, &observations(rs), "2026-10-01T00:30:00Z");
    assert_eq!(
        r.slots,
        SlotCounts {
            up: 1,
            down: 1,
            maintenance: 0,
            nodata: 29
        }
    );
    let expect = 1.0 - 60.0 / ((1.0 - 0.99) * 31.0 * 86_400.0);
    assert!((r.error_budget_remaining.unwrap() - expect).abs() < 1e-12);
    // Before the month: nothing counted.
    let r = eval(body, &observations(rs), "2026-09-30T00:00:00Z");
    assert_eq!(r.slots, SlotCounts::default());
    assert!(r.days.is_empty());
    // A past month: everything, no as_of.
    let r = eval(body, &observations(rs), LATER);
    assert_eq!(r.slots.down, 2);
    assert_eq!(r.as_of, None);
    assert_eq!(r.days.len(), 31);
}

#[test]
fn per_day_figures() {
    let body = "timezone = \"Europe/Amsterdam\"\nchecks = [\"a\"]\nquorum = 1\nobjectives = [{ kind = \"latency\", phase = \"processing\", percentile = 50, max = \"1s\" }]";
    let start = ts("2026-09-30T22:00:00Z"); // local midnight, 1 October
    // Day 1: 2 DOWN + 2 UP (0.1, 0.3); day 2: 1 UP (0.2).
    let obs = vec![
        fail("a", "x", at(start, 0), FailureClass::Timeout, "t"),
        fail("a", "x", at(start, 60), FailureClass::Timeout, "t"),
        pass("a", "x", at(start, 120), 0.1),
        pass("a", "x", at(start, 86_399), 0.3),
        pass("a", "x", at(start, 86_400), 0.2),
    ];
    let c = contract(&format!("name = \"k\"\n{body}"));
    let r = evaluate_month(&c, "2026-10".parse().unwrap(), obs, ts(LATER));
    assert_eq!(r.days.len(), 31);
    let d1 = &r.days[0];
    assert_eq!(d1.date.to_string(), "2026-10-01");
    assert_eq!(
        d1.slots,
        SlotCounts {
            up: 2,
            down: 2,
            maintenance: 0,
            nodata: 1436
        }
    );
    assert_eq!(d1.availability_percent, Some(50.0));
    assert_eq!(d1.downtime_seconds, 120);
    assert_eq!(d1.latency[0].value, Some(0.1));
    assert_eq!(d1.latency[0].samples, 2);
    assert_eq!(r.days[1].latency[0].value, Some(0.2));
    assert_eq!(r.days[2].latency[0].value, None);
    assert_eq!(r.days[24].slots.nodata, 1500, "25 October has 25 hours");
    let sum: u32 = r
        .days
        .iter()
        .map(|d| d.slots.up + d.slots.down + d.slots.maintenance + d.slots.nodata)
        .sum();
    assert_eq!(sum, 44_700);
}

#[test]
fn report_json_has_the_design_fields() {
    let body = "vendor = \"HostCo\"\nchecks = [\"a\"]\nquorum = 1\nobjectives = [{ kind = \"availability\", target = 99.9 }, { kind = \"latency\", phase = \"processing\", percentile = 95, max = \"800ms\" }]\nmaintenance = [{ weekly = \"Sun 03:00\", duration = \"1h\" }]\ncredits = [{ below = 99.9, percent = 10 }]";
    let rs: &[R] = &[("a", "ams", 0, true), ("a", "nyc", 60, false)];
    let r = eval(body, &observations(rs), LATER);
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "contract",
        "vendor",
        "month",
        "timezone",
        "period_start",
        "period_end",
        "slot_seconds",
        "quorum",
        "slots",
        "availability_percent",
        "downtime_seconds",
        "maintenance_seconds",
        "nodata_seconds",
        "objectives",
        "incidents",
        "credit_percent",
        "error_budget_remaining",
        "days",
        "maintenance",
        "locations",
        "checks",
        "evidence",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["month"], "2026-10");
    assert_eq!(v["vendor"], "HostCo");
    assert_eq!(v["period_start"], "2026-10-01T00:00:00Z");
    assert_eq!(v["slots"]["down"], 1);
    for key in ["up", "down", "maintenance", "nodata"] {
        assert!(v["slots"].get(key).is_some());
    }
    for key in ["kind", "target", "attained", "met"] {
        assert!(
            v["objectives"][0].get(key).is_some() && v["objectives"][1].get(key).is_some(),
            "{key}"
        );
    }
    assert_eq!(v["objectives"][1]["phase"], "processing");
    assert_eq!(v["objectives"][1]["max"], 0.8);
    for key in [
        "start",
        "end",
        "duration_seconds",
        "locations",
        "classes",
        "sample_message",
    ] {
        assert!(v["incidents"][0].get(key).is_some(), "{key}");
    }
    assert_eq!(v["incidents"][0]["locations"], serde_json::json!(["nyc"]));
    // The monitoring coverage (rule 1a): one object per location.
    let month = 31 * 86_400 - 60;
    assert_eq!(
        v["locations"],
        serde_json::json!([
            {"location": "ams", "impaired_seconds": 0, "silent_seconds": month, "excluded_failures": [], "impaired_stretches": []},
            {"location": "nyc", "impaired_seconds": 0, "silent_seconds": month, "excluded_failures": [], "impaired_stretches": []},
        ])
    );
    assert_eq!(v["evidence"]["results"], 0);
    assert_eq!(v["maintenance"].as_array().unwrap().len(), 4);
    let back: MonthReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn evidence_digest_is_sha256_of_lines() {
    let rows: [&[u8]; 2] = [br#"{"seq":1}"#, br#"{"seq":2}"#];
    let (n, hex) = evidence_digest(rows.iter().copied());
    assert_eq!(n, 2);
    assert_eq!(
        hex,
        "2dc3eda31cdc4f48b964946ebb421f585e14e377623c34652b6bd6840db370cf"
    );
    assert_eq!(
        evidence_digest(std::iter::empty()),
        (
            0,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_string()
        )
    );
}

#[test]
fn agent_error_impairs_its_location_for_the_slot() {
    // Rule 1a, second clause. Slot 0: the only location's agent failed
    // itself: NODATA, not DOWN. Slot 1: x fails for real while y's agent is
    // at fault: x alone decides (min(quorum 2, 1 location with data) = 1):
    // DOWN. Slot 2: an agent_error anywhere in the slot impairs x, so its
    // earlier PASS counts as no data too: NODATA (before rule 1a: UP).
    let obs = vec![
        fail(
            "a",
            "x",
            at(t0(), 5),
            FailureClass::AgentError,
            "too many open files",
        ),
        fail(
            "a",
            "x",
            at(t0(), 65),
            FailureClass::ConnectRefused,
            "refused",
        ),
        fail("a", "y", at(t0(), 66), FailureClass::AgentError, "panicked"),
        pass("a", "x", at(t0(), 125), 0.1),
        fail(
            "a",
            "x",
            at(t0(), 170),
            FailureClass::AgentError,
            "panicked",
        ),
    ];
    let r = eval("checks = [\"a\"]\nquorum = 2", &obs, LATER);
    assert_eq!((r.slots.up, r.slots.down), (0, 1));
    assert_eq!(r.slots.nodata, OCT_SLOTS - 1);
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(r.incidents[0].locations, ["x"]);
    assert_eq!(r.incidents[0].classes, ["connect_refused"]);
    let cov: Vec<(&str, u64, u64)> = r
        .locations
        .iter()
        .map(|l| (l.location.as_str(), l.impaired_seconds, l.silent_seconds))
        .collect();
    let month = u64::from(OCT_SLOTS) * 60;
    assert_eq!(cov, [("x", 120, month - 180), ("y", 60, month - 60)]);
    assert!(r.locations.iter().all(|l| l.excluded_failures.is_empty()));
    // x's two impaired slots are apart: two stretches; each agent_error.
    let x: Vec<(Timestamp, u32, Vec<String>)> = r.locations[0]
        .impaired_stretches
        .iter()
        .map(|s| (s.start, s.slots, s.reasons.clone()))
        .collect();
    let ae = vec!["agent_error".to_string()];
    assert_eq!(x, [(t0(), 1, ae.clone()), (at(t0(), 120), 1, ae)]);
}

/// `eval` with canary checks `cn1`, `cn2` configured.
fn eval_canaries(body: &str, obs: &[Observation<'_>]) -> MonthReport {
    let mut c = contract(&format!("name = \"k\"\n{body}"));
    c.canaries = vec!["cn1".into(), "cn2".into()];
    evaluate_month(
        &c,
        "2026-10".parse().unwrap(),
        obs.iter().copied(),
        ts(LATER),
    )
}

#[test]
fn failed_canaries_impair_the_location_and_its_failures_are_excluded() {
    let refused = |c: &'static str, l: &'static str, s: i64| {
        fail(c, l, at(t0(), s), FailureClass::ConnectTimeout, "no route")
    };
    let obs = vec![
        // Slot 0: x's network is down: its canaries and its check fail; y passes.
        refused("cn1", "x", 1),
        refused("cn2", "x", 2),
        refused("a", "x", 3),
        pass("a", "y", at(t0(), 4), 0.1),
        // Slot 1: the same, and y has no result: no location counts, NODATA.
        refused("cn1", "x", 61),
        refused("a", "x", 62),
        // Slot 2: one of x's canaries gets through: x is not impaired, its
        // failure counts (quorum 1): DOWN.
        refused("cn1", "x", 121),
        pass("cn2", "x", at(t0(), 122), 0.01),
        refused("a", "x", 123),
        pass("a", "y", at(t0(), 124), 0.1),
        // Slot 3: x fails without any canary result: not impaired: DOWN.
        refused("a", "x", 181),
        // Slot 4: y's canary failed but y's check passed; x is fine: UP.
        refused("cn1", "y", 241),
        pass("a", "y", at(t0(), 242), 0.1),
        pass("a", "x", at(t0(), 243), 0.1),
    ];
    let body = "checks = [\"a\"]\nquorum = 1";
    let r = eval_canaries(body, &obs);
    assert_eq!(
        (r.slots.up, r.slots.down, r.slots.nodata),
        (2, 2, OCT_SLOTS - 4)
    );
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(
        (r.incidents[0].start, r.incidents[0].slots),
        (at(t0(), 120), 2)
    );
    assert_eq!(r.canaries, ["cn1", "cn2"]);
    let x = &r.locations[0];
    assert_eq!((x.location.as_str(), x.impaired_seconds), ("x", 120));
    assert_eq!(x.excluded_failures.len(), 1, "{:?}", x.excluded_failures);
    let e = &x.excluded_failures[0];
    // Slot 1 would have been DOWN too (x alone had data): one run of two slots.
    assert_eq!((e.start, e.slots, e.duration_seconds), (t0(), 2, 120));
    assert_eq!(e.checks, ["a"]);
    assert_eq!(e.classes, ["connect_timeout"]);
    assert_eq!(e.reasons, ["canaries_failed"]);
    let y = &r.locations[1];
    assert_eq!((y.location.as_str(), y.impaired_seconds), ("y", 60));
    assert!(y.excluded_failures.is_empty());
    // When each was impaired: the stretches add up to impaired_seconds.
    let stretches = |l: &slaprobe_collector::sla::report::LocationCoverage| {
        l.impaired_stretches
            .iter()
            .map(|s| {
                (
                    s.start,
                    s.end,
                    s.slots,
                    s.duration_seconds,
                    s.reasons.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let cf = vec!["canaries_failed".to_string()];
    assert_eq!(stretches(x), [(t0(), at(t0(), 120), 2, 120, cf.clone())]);
    assert_eq!(stretches(y), [(at(t0(), 240), at(t0(), 300), 1, 60, cf)]);
    // Any order of arrival gives the same report.
    let mut rev = obs.clone();
    rev.reverse();
    assert_eq!(eval_canaries(body, &rev), r);
    // Without canaries configured, the same results confirm x's network outage.
    let naive = eval(body, &obs, LATER);
    assert_eq!((naive.slots.up, naive.slots.down), (1, 4));
    assert!(naive.locations.iter().all(|l| l.impaired_seconds == 0));
}

/// Revoked certificates (class `tls_cert_revoked`, as an agent's result
/// line carries it) are an incident class like the others, in the JSON,
/// HTML and CSV reports; a build that did not know the class would say
/// `other`.
#[test]
fn revoked_certificates_are_an_incident_class() {
    let line = |loc: &str, secs: i64| {
        format!(
            r#"{{"seq":1,"agent":"{loc}-1","location":"{loc}","check":"a","kind":"tls",
            "target":"www.acme.example:443","started_at":"{}","duration_seconds":0.02,
            "success":false,"failure":{{"class":"tls_cert_revoked",
            "message":"certificate revoked 2026-09-30T10:00:00Z (reason: keyCompromise), per the stapled OCSP response"}},
            "tls":{{"chain_valid":true,"hostname_valid":true,"chain_length":2,
            "revocation":{{"status":"revoked","source":"staple","reason":"keyCompromise",
            "revoked_at":"2026-09-30T10:00:00Z"}}}}}}"#,
            at(t0(), secs)
        )
    };
    let results: Vec<slaprobe_wire::ProbeResult> = [("x", 5), ("y", 7), ("x", 65), ("y", 67)]
        .iter()
        .map(|(l, s)| serde_json::from_str(&line(l, *s)).unwrap())
        .collect();
    let rev = results[0]
        .tls
        .as_ref()
        .unwrap()
        .revocation
        .as_ref()
        .unwrap();
    assert_eq!(rev.status, slaprobe_wire::RevocationStatus::Revoked);
    let obs: Vec<Observation<'_>> = results.iter().map(Observation::from_result).collect();
    let r = eval("checks = [\"a\"]\nquorum = 2", &obs, LATER);
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(r.incidents[0].classes, ["tls_cert_revoked"]);
    assert_eq!(r.incidents[0].slots, 2);
    let json = slaprobe_collector::render::json(&r);
    assert!(json.contains("\"tls_cert_revoked\""), "{json}");
    let html = slaprobe_collector::render::html(&r);
    assert!(html.contains("tls_cert_revoked"));
    assert!(
        html.contains("keyCompromise"),
        "the sample message is shown"
    );
    let csv = slaprobe_collector::render::csv(&r);
    assert!(
        csv.lines()
            .any(|l| l.starts_with("incident") && l.contains("tls_cert_revoked")),
        "{csv}"
    );
}

#[test]
fn dnssec_and_domain_failures_are_incident_classes() {
    // Two locations agree the zone is bogus, then the domain is held: one
    // incident per run of DOWN slots, each with the class that caused it.
    let obs = vec![
        fail(
            "a",
            "x",
            at(t0(), 5),
            FailureClass::DnsDnssecBogus,
            "RRSIG expired",
        ),
        fail(
            "a",
            "y",
            at(t0(), 6),
            FailureClass::DnsDnssecBogus,
            "RRSIG expired",
        ),
        pass("a", "x", at(t0(), 65), 0.1),
        pass("a", "y", at(t0(), 66), 0.1),
        fail(
            "a",
            "x",
            at(t0(), 125),
            FailureClass::DomainHeld,
            "client hold",
        ),
        fail(
            "a",
            "y",
            at(t0(), 126),
            FailureClass::DnsInconsistent,
            "serials differ",
        ),
    ];
    let r = eval("checks = [\"a\"]\nquorum = 2", &obs, LATER);
    assert_eq!(r.incidents.len(), 2, "{:?}", r.incidents);
    assert_eq!(r.incidents[0].classes, ["dns_dnssec_bogus"]);
    assert_eq!(r.incidents[1].classes, ["dns_inconsistent", "domain_held"]);
}
