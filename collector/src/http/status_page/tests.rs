//! Unit tests of the status page's rendering.

use super::*;
use crate::sla::SlaCounters;
use crate::sla::report::SlotCounts;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn agent(id: &str, location: &str, seen: Option<&str>) -> AgentStatus {
    AgentStatus {
        id: id.into(),
        location: location.into(),
        last_seen: seen.map(ts),
        results: 0,
        max_seq: 0,
        missing: 0,
        duplicates: 0,
        configured: true,
    }
}

#[test]
fn a_location_is_silent_only_when_all_its_agents_are() {
    let now = ts("2026-12-01T10:00:00Z");
    let rows = location_rows(
        &[
            agent("ams-history", "ams", Some("2026-11-30T09:00:00Z")),
            agent("ams-1", "ams", Some("2026-12-01T09:59:30Z")),
            agent("nyc-1", "nyc", Some("2026-12-01T09:54:59Z")),
            agent("sgp-1", "sgp", None),
        ],
        now,
    );
    let by: Vec<(&str, bool, Option<Timestamp>)> = rows
        .iter()
        .map(|r| (r.location.as_str(), r.silent, r.last_seen))
        .collect();
    assert_eq!(
        by,
        vec![
            ("ams", false, Some(ts("2026-12-01T09:59:30Z"))),
            ("nyc", true, Some(ts("2026-12-01T09:54:59Z"))),
            ("sgp", true, None),
        ]
    );
    assert_eq!(rows[0].agents, vec!["ams-1", "ams-history"]);
}

fn status(month: Month, down_now: bool, vendor: &str) -> ContractStatus {
    ContractStatus {
        contract: "hostco-shop".into(),
        vendor: vendor.into(),
        month,
        period_start: ts("2025-12-31T23:00:00Z"),
        period_end: ts("2026-01-31T23:00:00Z"),
        slots: SlotCounts::default(),
        availability_percent: Some(94.5),
        downtime_seconds: 2160,
        objectives: vec![ObjectiveResult {
            kind: crate::sla::ObjectiveKind::Availability,
            objective: "availability".into(),
            target: 99.9,
            attained: Some(94.5),
            met: false,
            phase: None,
            percentile: None,
            max: None,
            samples: None,
            metric: None,
        }],
        down_now,
        error_budget_remaining: Some(-0.5),
        credit_percent: 25.0,
        incidents: 12,
        counters: SlaCounters::default(),
    }
}

#[test]
fn a_card_shows_the_month_to_date_and_links_both_reports() {
    let o = Overview {
        now: ts("2026-01-10T10:00:00Z"),
        cards: vec![Card {
            status: status(Month::new(2026, 1).unwrap(), true, "Host<Co> & \"sons\""),
            target_percent: Some(99.9),
        }],
        locations: vec![],
    };
    let html = render_overview(&o);
    assert!(
        html.contains("Host&lt;Co&gt; &amp; &quot;sons&quot;"),
        "escaped"
    );
    assert!(!html.contains("Host<Co>"));
    assert!(html.contains("DOWN now"));
    assert!(html.contains("94.500 %"));
    assert!(html.contains("target 99.90 %"));
    assert!(html.contains("data-field=\"incidents\">12<"));
    assert!(html.contains("data-field=\"credit\" class=\"bad\">25 %<"));
    assert!(html.contains("overspent (-50 %)"));
    // This month and the previous one, across the year boundary, in every format.
    for m in ["2026-01", "2025-12"] {
        for f in ["html", "csv", "json"] {
            let link = format!("/api/v1/reports/hostco-shop/{m}?format={f}");
            assert!(html.contains(&link), "no {link}");
        }
    }
    assert!(html.contains("href=\"/status/hostco-shop\""));
    // No script, nothing from elsewhere.
    assert!(!html.contains("<script"));
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[test]
fn an_up_contract_says_so() {
    let o = Overview {
        now: ts("2026-01-10T10:00:00Z"),
        cards: vec![Card {
            status: status(Month::new(2026, 1).unwrap(), false, "HostCo"),
            target_percent: Some(99.9),
        }],
        locations: location_rows(&[agent("a", "ams", None)], ts("2026-01-10T10:00:00Z")),
    };
    let html = render_overview(&o);
    assert!(!html.contains("DOWN now"));
    assert!(html.contains("data-location=\"ams\""));
    assert!(html.contains("never"));
    assert!(html.contains("pill silent"));
}
