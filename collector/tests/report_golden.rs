//! The report renderings byte for byte: the HTML, CSV and JSON of a few
//! months built by the real SLA engine must equal the files checked in
//! under `tests/golden/`. The other report tests say what a rendering must
//! contain; this one says that a change to the renderers' code (a refactor)
//! leaves every byte where it was. The collector's version, which the HTML
//! names, is replaced by `@VERSION@` so that a release does not touch the
//! files.
//!
//! A deliberate change to a rendering: run with `SLAPROBE_GOLDEN_UPDATE=1`,
//! read the diff of `tests/golden/`, and commit it with the change.

mod render_support;

use std::path::PathBuf;

use jiff::SignedDuration;
use render_support::{
    acme_contract, acme_outages, after_month, contract, month_of_results, report_of, ts,
};
use slaprobe_collector::render::{self, Format};
use slaprobe_collector::sla::report::{ExcludedFailure, ImpairedStretch, LocationCoverage};
use slaprobe_collector::sla::{MonthReport, Observation};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The rendering with the collector's version replaced by `@VERSION@`.
fn normalized(text: &str) -> String {
    text.replace(
        &format!("slaprobe-collector {}", env!("CARGO_PKG_VERSION")),
        "slaprobe-collector @VERSION@",
    )
}

/// Compares every format of `report` with `golden/<name>.<ext>` (or writes
/// them when `SLAPROBE_GOLDEN_UPDATE` is set), naming the first line that differs.
fn assert_golden(name: &str, report: &MonthReport) {
    let update = std::env::var_os("SLAPROBE_GOLDEN_UPDATE").is_some();
    for format in Format::ALL {
        let got = normalized(&render::render(report, format));
        let path = golden_dir().join(format!("{name}.{}", format.as_str()));
        if update {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with SLAPROBE_GOLDEN_UPDATE=1 to create it)",
                path.display()
            )
        });
        if got != want {
            let line = got
                .split('\n')
                .zip(want.split('\n'))
                .position(|(g, w)| g != w)
                .unwrap_or_else(|| got.split('\n').count().min(want.split('\n').count()));
            let at = |s: &str| {
                s.split('\n')
                    .nth(line)
                    .unwrap_or("<end of file>")
                    .to_string()
            };
            panic!(
                "{} differs from the rendering ({} bytes now, {} expected), first at line {}:\n  now:      {:?}\n  expected: {:?}",
                path.display(),
                got.len(),
                want.len(),
                line + 1,
                at(&got),
                at(&want)
            );
        }
    }
}

fn acme_results() -> Vec<Observation<'static>> {
    month_of_results(&["www", "api"], &["ams", "fra", "nyc"], &acme_outages())
}

/// The realistic month, complete: four incidents, maintenance, a silent
/// period, a slow day, a long hostile message.
#[test]
fn complete_month() {
    assert_golden(
        "acme-complete",
        &report_of(&acme_contract(), &acme_results(), after_month()),
    );
}

/// The same month as of 17 October, 12:00 local: provisional, future days greyed.
#[test]
fn month_to_date() {
    assert_golden(
        "acme-to-date",
        &report_of(
            &acme_contract(),
            &acme_results(),
            ts("2026-10-17T10:00:00Z"),
        ),
    );
}

/// No result at all: every day n/a, nothing measured.
#[test]
fn silent_month() {
    assert_golden("silent", &report_of(&acme_contract(), &[], after_month()));
}

/// Canaries and a location whose impairment excluded failures (the coverage
/// tables), hostile names, and a zone this machine does not know (UTC shown).
#[test]
fn coverage_hostile_names_and_unknown_zone() {
    let mut r = report_of(&acme_contract(), &acme_results(), after_month());
    r.canaries = vec!["canary-dns".into()];
    r.locations.push(LocationCoverage {
        location: "=<b>zrh</b>".into(),
        impaired_seconds: 5400,
        silent_seconds: 60,
        excluded_failures: vec![ExcludedFailure {
            start: ts("2026-10-03T10:00:00Z"),
            end: ts("2026-10-03T11:30:00Z"),
            duration_seconds: 5400,
            slots: 90,
            checks: vec!["www".into()],
            classes: vec!["connect_timeout".into()],
            reasons: vec!["canaries_failed".into()],
        }],
        impaired_stretches: vec![ImpairedStretch {
            start: ts("2026-10-03T10:00:00Z"),
            end: ts("2026-10-03T11:30:00Z"),
            duration_seconds: 5400,
            slots: 90,
            reasons: vec!["canaries_failed".into()],
        }],
    });
    r.contract = "<b>&\"x\"".into();
    r.vendor = "Vendor's <i>\"best\"</i>".into();
    r.timezone = "Mars/Olympus_Mons".into();
    r.incidents[0]
        .locations
        .push("<img src=x onerror=alert(1)>".into());
    r.incidents[0].sample_message = Some("</td></tr></table><script>alert(1)</script>\u{0}".into());
    assert_golden("hostile", &r);
}

/// Web Vitals (LCP, CLS) and a total-latency objective over one location's
/// results every five minutes, UTC: the Web Vitals section, CLS shown
/// unitless, days over the maximum marked, a few failures.
#[test]
fn web_vitals_month() {
    let c = contract(
        r#"name = "agency-shop"
vendor = "WebAgency"
timezone = "UTC"
checks = ["www"]
slot = "60s"
quorum = 1
objectives = [
  { kind = "availability", target = 99.0 },
  { kind = "web_vital", metric = "lcp", percentile = 75, max = "2.5s" },
  { kind = "web_vital", metric = "cls", percentile = 75, max = 0.1 },
  { kind = "latency", phase = "total", percentile = 90, max = "3s" },
]
credits = [{ below = 99.0, percent = 5 }]
"#,
    );
    let mut obs = Vec::new();
    let mut t = ts("2026-10-01T00:00:00Z");
    let end = ts("2026-11-01T00:00:00Z");
    let mut k: u64 = 0;
    while t < end {
        k += 1;
        let day = (t.as_second() - ts("2026-10-01T00:00:00Z").as_second()) / 86_400;
        // Days 10 to 12 are slow and shift; every 97th result fails.
        let slow = (9..12).contains(&day);
        let wobble = (k * 37 % 100) as f64 / 100.0;
        let success = !k.is_multiple_of(97);
        let mut phases = [None; 11];
        if success {
            phases[5] = Some(1.2 + wobble * if slow { 3.0 } else { 1.0 });
            phases[6] = Some(1.5 + wobble * if slow { 2.5 } else { 0.9 });
            phases[7] = Some(0.02 + wobble * if slow { 0.2 } else { 0.07 });
        } else {
            phases[5] = Some(30.0);
        }
        obs.push(Observation {
            check: "www",
            location: "ams",
            started_at: t,
            success,
            class: (!success).then_some(slaprobe_wire::FailureClass::PageJsError),
            message: (!success).then_some("1 uncaught JavaScript error(s)"),
            phases,
        });
        t += SignedDuration::from_secs(300);
    }
    assert_golden("web-vitals", &report_of(&c, &obs, after_month()));
}
