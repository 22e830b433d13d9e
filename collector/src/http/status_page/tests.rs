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
        &BTreeMap::new(),
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
        locations: location_rows(
            &[agent("a", "ams", None)],
            &BTreeMap::new(),
            ts("2026-01-10T10:00:00Z"),
        ),
    };
    let html = render_overview(&o);
    assert!(!html.contains("DOWN now"));
    assert!(html.contains("data-location=\"ams\""));
    assert!(html.contains("never"));
    assert!(html.contains("pill silent"));
}

/// Rule 1a on the overview: a reporting location whose canaries fail is
/// impaired (its results count as no data), and its impaired time so far is
/// shown; a silent location stays silent whatever the ledger says.
#[test]
fn an_impaired_location_says_so_and_how_long() {
    let now = ts("2026-12-01T10:00:00Z");
    let seen = Some("2026-12-01T09:59:30Z");
    let status = |impaired, impaired_seconds| LocationStatus {
        impaired,
        impaired_seconds,
        counted: vec![],
    };
    let impairment = BTreeMap::from([
        ("ams".to_string(), status(true, 5400)),
        ("fra".to_string(), status(false, 120)),
        ("sgp".to_string(), status(true, 60)),
    ]);
    let rows = location_rows(
        &[
            agent("ams-1", "ams", seen),
            agent("fra-1", "fra", seen),
            agent("nyc-1", "nyc", seen),
            agent("sgp-1", "sgp", None),
        ],
        &impairment,
        now,
    );
    let by: Vec<(&str, bool, bool, u64)> = rows
        .iter()
        .map(|r| {
            (
                r.location.as_str(),
                r.silent,
                r.impaired,
                r.impaired_seconds,
            )
        })
        .collect();
    assert_eq!(
        by,
        vec![
            ("ams", false, true, 5400),
            ("fra", false, false, 120),
            ("nyc", false, false, 0),
            ("sgp", true, true, 60),
        ]
    );
    let html = render_overview(&Overview {
        now,
        cards: vec![],
        locations: rows,
    });
    let row = |loc: &str| {
        let at = html
            .find(&format!("<tr data-location=\"{loc}\">"))
            .unwrap_or_else(|| panic!("no row for {loc}"));
        html[at..at + html[at..].find("</tr>").unwrap()].to_string()
    };
    assert!(row("ams").contains("pill impaired"), "{}", row("ams"));
    assert!(
        row("ams").contains("(impaired 1 h 30 min so far)"),
        "{}",
        row("ams")
    );
    assert!(
        row("fra").contains("<span class=\"pill\">reporting</span>"),
        "{}",
        row("fra")
    );
    assert!(
        row("fra").contains("(impaired 2 min so far)"),
        "{}",
        row("fra")
    );
    assert!(!row("nyc").contains("impaired"), "{}", row("nyc"));
    assert!(row("sgp").contains("pill silent") && !row("sgp").contains("pill impaired"));
}
