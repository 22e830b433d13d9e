//! Months in a zone, slot grids, local days and maintenance windows (DST included).

mod sla_common;

use sla_common::{contract, ts};
use slaprobe_collector::sla::{Month, MonthFrame};

fn frame(toml_body: &str, month: &str) -> MonthFrame {
    MonthFrame::new(
        &contract(&format!("name = \"k\"\nchecks = [\"a\"]\n{toml_body}")),
        month.parse().unwrap(),
    )
}

#[test]
fn month_parse_and_display() {
    let m: Month = "2026-10".parse().unwrap();
    assert_eq!((m.year(), m.month()), (2026, 10));
    assert_eq!(m.to_string(), "2026-10");
    assert_eq!(m.next().to_string(), "2026-11");
    assert_eq!(
        "2026-12".parse::<Month>().unwrap().next().to_string(),
        "2027-01"
    );
    assert_eq!(
        "2026-01".parse::<Month>().unwrap().prev().to_string(),
        "2025-12"
    );
    for bad in [
        "2026-13",
        "2026-00",
        "26-10",
        "2026-1",
        "2026-10-01",
        "",
        "abcd-ef",
        "2026/10",
        "0999-01",
    ] {
        assert!(bad.parse::<Month>().is_err(), "{bad}");
    }
    assert_eq!(serde_json::to_string(&m).unwrap(), "\"2026-10\"");
    assert_eq!(serde_json::from_str::<Month>("\"2026-10\"").unwrap(), m);
}

/// (zone, month, period start, period end, hours, 60 s slots).
const PERIODS: &[(&str, &str, &str, &str, u64, u32)] = &[
    (
        "Europe/Amsterdam",
        "2026-10",
        "2026-09-30T22:00:00Z",
        "2026-10-31T23:00:00Z",
        745,
        44_700,
    ),
    (
        "Europe/Amsterdam",
        "2026-03",
        "2026-02-28T23:00:00Z",
        "2026-03-31T22:00:00Z",
        743,
        44_580,
    ),
    (
        "Europe/Amsterdam",
        "2026-11",
        "2026-10-31T23:00:00Z",
        "2026-11-30T23:00:00Z",
        720,
        43_200,
    ),
    (
        "America/New_York",
        "2026-11",
        "2026-11-01T04:00:00Z",
        "2026-12-01T05:00:00Z",
        721,
        43_260,
    ),
    (
        "America/New_York",
        "2026-03",
        "2026-03-01T05:00:00Z",
        "2026-04-01T04:00:00Z",
        743,
        44_580,
    ),
    (
        "UTC",
        "2026-02",
        "2026-02-01T00:00:00Z",
        "2026-03-01T00:00:00Z",
        672,
        40_320,
    ),
    (
        "UTC",
        "2028-02",
        "2028-02-01T00:00:00Z",
        "2028-03-01T00:00:00Z",
        696,
        41_760,
    ),
];

#[test]
fn periods_and_slot_counts() {
    for &(zone, month, start, end, hours, slots) in PERIODS {
        let f = frame(&format!("timezone = \"{zone}\""), month);
        assert_eq!(f.start, ts(start), "{zone} {month}");
        assert_eq!(f.end, ts(end), "{zone} {month}");
        assert_eq!(f.length_seconds(), hours * 3600, "{zone} {month}");
        assert_eq!(f.n_slots(), slots, "{zone} {month}");
        assert_eq!(f.slot_seconds(slots - 1), 60);
    }
}

#[test]
fn month_containing_uses_the_zone() {
    let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap();
    // 22:30 UTC on 30 September is 00:30 on 1 October in Amsterdam.
    assert_eq!(
        Month::containing(ts("2026-09-30T22:30:00Z"), &tz)
            .unwrap()
            .to_string(),
        "2026-10"
    );
    assert_eq!(
        Month::containing(ts("2026-09-30T21:59:59Z"), &tz)
            .unwrap()
            .to_string(),
        "2026-09"
    );
}

#[test]
fn last_slot_is_shorter_when_the_month_is_not_whole_slots() {
    // 745 h = 2,682,000 s = 6385 × 420 s + 300 s.
    let f = frame("timezone = \"Europe/Amsterdam\"\nslot = \"7m\"", "2026-10");
    assert_eq!(f.n_slots(), 6386);
    assert_eq!(f.slot_seconds(0), 420);
    assert_eq!(f.slot_seconds(6384), 420);
    assert_eq!(f.slot_seconds(6385), 300);
    assert_eq!(f.slot_end(6385), f.end);
    let total: u64 = (0..f.n_slots()).map(|i| f.slot_seconds(i)).sum();
    assert_eq!(total, f.length_seconds());
}

#[test]
fn slot_of_and_counted() {
    let f = frame("timezone = \"Europe/Amsterdam\"", "2026-10");
    assert_eq!(f.slot_of(ts("2026-09-30T22:00:00Z")), Some((0, 0)));
    assert_eq!(
        f.slot_of(ts("2026-09-30T22:01:59.5Z")),
        Some((1, 59_500_000_000))
    );
    assert_eq!(f.slot_of(ts("2026-09-30T21:59:59.999Z")), None);
    assert_eq!(f.slot_of(ts("2026-10-31T23:00:00Z")), None);
    assert_eq!(
        f.slot_of(ts("2026-10-31T22:59:59Z")),
        Some((44_699, 59_000_000_000))
    );
    // A slot counts once it has started: at its very start it does.
    assert_eq!(f.counted(ts("2026-09-30T21:00:00Z")), 0);
    assert_eq!(f.counted(ts("2026-09-30T22:00:00Z")), 1);
    assert_eq!(f.counted(ts("2026-09-30T22:00:59Z")), 1);
    assert_eq!(f.counted(ts("2026-09-30T22:01:00Z")), 2);
    assert_eq!(f.counted(ts("2027-01-01T00:00:00Z")), 44_700);
}

#[test]
fn days_follow_local_midnights() {
    let f = frame("timezone = \"Europe/Amsterdam\"", "2026-10");
    assert_eq!(f.days.len(), 31);
    let lens: Vec<u32> = (0..31)
        .map(|d| f.day_slots(d).1 - f.day_slots(d).0)
        .collect();
    // 25 October 2026 has 25 hours.
    assert_eq!(lens[24], 1500);
    assert!(
        lens.iter().enumerate().all(|(d, &n)| d == 24 || n == 1440),
        "{lens:?}"
    );
    assert_eq!(f.day_of_slot(0), 0);
    assert_eq!(f.day_of_slot(1439), 0);
    assert_eq!(f.day_of_slot(1440), 1);
    assert_eq!(f.day_of_slot(44_699), 30);

    let f = frame("timezone = \"Europe/Amsterdam\"", "2026-03");
    assert_eq!(
        f.day_slots(28).1 - f.day_slots(28).0,
        1380,
        "29 March 2026 has 23 hours"
    );
}

fn windows(f: &MonthFrame) -> Vec<(String, String)> {
    f.windows
        .iter()
        .map(|w| (w.start.to_string(), w.end.to_string()))
        .collect()
}

fn maint_slots(f: &MonthFrame) -> u32 {
    (0..f.n_slots()).filter(|&i| f.is_maintenance(i)).count() as u32
}

#[test]
fn weekly_windows_keep_local_time_across_dst() {
    let f = frame(
        "timezone = \"Europe/Amsterdam\"\nmaintenance = [{ weekly = \"Sun 03:00\", duration = \"1h\" }]",
        "2026-10",
    );
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        windows(&f),
        [
            s("2026-10-04T01:00:00Z", "2026-10-04T02:00:00Z"),
            s("2026-10-11T01:00:00Z", "2026-10-11T02:00:00Z"),
            s("2026-10-18T01:00:00Z", "2026-10-18T02:00:00Z"),
            // After the clocks go back, 03:00 is CET.
            s("2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"),
        ]
    );
    assert_eq!(maint_slots(&f), 240);
    assert_eq!(f.maintenance_seconds_total(), 4 * 3600);

    // New York, spring forward on 8 March 2026: "Sun 01:30" stays 01:30 local.
    let f = frame(
        "timezone = \"America/New_York\"\nmaintenance = [{ weekly = \"Sun 01:30\", duration = \"1h\" }]",
        "2026-03",
    );
    let starts: Vec<String> = f.windows.iter().map(|w| w.start.to_string()).collect();
    assert_eq!(
        starts,
        [
            "2026-03-01T06:30:00Z",
            "2026-03-08T06:30:00Z",
            "2026-03-15T05:30:00Z",
            "2026-03-22T05:30:00Z",
            "2026-03-29T05:30:00Z"
        ]
    );
    // The 8 March window lasts one absolute hour even though the local clock jumps.
    assert_eq!(f.windows[1].end, ts("2026-03-08T07:30:00Z"));
}

#[test]
fn a_window_in_a_dst_gap_moves_forward() {
    // 02:30 does not exist on 29 March 2026 in Amsterdam: it becomes 03:30 CEST.
    let f = frame(
        "timezone = \"Europe/Amsterdam\"\nmaintenance = [{ start = \"2026-03-29T02:30:00\", duration = \"30m\" }]",
        "2026-03",
    );
    assert_eq!(
        windows(&f),
        [(
            "2026-03-29T01:30:00Z".to_string(),
            "2026-03-29T02:00:00Z".to_string()
        )]
    );
    assert_eq!(maint_slots(&f), 30);
}

#[test]
fn a_window_from_the_previous_month_reaches_in() {
    // Wednesday 30 September 23:00 local + 2 h: the first hour of October.
    let f = frame(
        "timezone = \"Europe/Amsterdam\"\nmaintenance = [{ weekly = \"Wed 23:00\", duration = \"2h\" }]",
        "2026-10",
    );
    assert_eq!(f.windows[0].start, ts("2026-09-30T21:00:00Z"));
    assert!(f.is_maintenance(0) && f.is_maintenance(59) && !f.is_maintenance(60));
    // 4 more Wednesdays (7, 14, 21, 28) of 120 slots each.
    assert_eq!(maint_slots(&f), 60 + 4 * 120);

    let f = frame(
        "maintenance = [{ start = \"2026-09-30T23:00:00\", duration = \"3h\" }]",
        "2026-10",
    );
    assert_eq!(maint_slots(&f), 120);
    // A one-off window in another month does not apply.
    let f = frame(
        "maintenance = [{ start = \"2026-11-30T23:00:00\", duration = \"3h\" }]",
        "2026-10",
    );
    assert!(f.windows.is_empty());
    assert_eq!(maint_slots(&f), 0);
}

#[test]
fn maintenance_is_decided_by_the_slot_start() {
    // Window 03:00:30-04:00:30 UTC: the 03:00 slot started before it, the
    // 04:00 slot started inside it.
    let f = frame(
        "maintenance = [{ start = \"2026-10-05T03:00:30\", duration = \"1h\" }]",
        "2026-10",
    );
    let slot = |s: &str| f.slot_of(ts(s)).unwrap().0;
    assert!(!f.is_maintenance(slot("2026-10-05T03:00:00Z")));
    assert!(f.is_maintenance(slot("2026-10-05T03:01:00Z")));
    assert!(f.is_maintenance(slot("2026-10-05T04:00:00Z")));
    assert!(!f.is_maintenance(slot("2026-10-05T04:01:00Z")));
    assert_eq!(maint_slots(&f), 60);
    // Exactly aligned: 03:00 slot in, 04:00 slot out.
    let f = frame(
        "maintenance = [{ start = \"2026-10-05T03:00:00\", duration = \"1h\" }]",
        "2026-10",
    );
    let slot = |s: &str| f.slot_of(ts(s)).unwrap().0;
    assert!(f.is_maintenance(slot("2026-10-05T03:00:00Z")));
    assert!(!f.is_maintenance(slot("2026-10-05T04:00:00Z")));
    assert!(!f.is_maintenance(slot("2026-10-05T02:59:00Z")));
}
