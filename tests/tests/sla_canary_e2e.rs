//! Rule 1a end to end (issue 17) with the real collector binary on a test
//! clock: a month to date in which location `ams` loses its own network for
//! stretches (its canary and every check fail together), its agent once
//! reports `agent_error`, `sgp` is silent for a while, and real vendor
//! outages happen elsewhere. Then:
//! - each contract's report confirms exactly the real outages (under quorum
//!   2 and under quorum 1, where without rule 1a every ams stretch would be
//!   confirmed downtime);
//! - the monitoring coverage lists ams's impaired time, sgp's silent time and
//!   the stretches impairment kept from being confirmed, with their reasons;
//! - the live figures of `/api/v1/contracts`, the HTTP report and the
//!   offline CLI `report` agree (and the HTTP and CLI reports are the same
//!   JSON apart from `as_of`);
//! - the evidence covers the canary results: its count, the CLI `evidence`
//!   digest and `scripts/evidence_digest.py --report` agree;
//! - `slaprobe_location_impaired_seconds_total` counts the month's impaired
//!   minutes although they all arrived late, and the metrics follow a live
//!   canary failure.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use slaprobe_collector::sla::{Month, MonthReport};
use slaprobe_tests::clock::TestClock;
use slaprobe_tests::procs::http_get;
use slaprobe_tests::prom::{sha256_hex, value_exact};
use slaprobe_tests::results::TestResult;
use slaprobe_tests::sla_month::{AGENTS, CheckDef, MonthCollector, contract_status};
use slaprobe_tests::wait::wait_for_every;
/// The vendors' checks, then the canary.
const CHECKS: [&str; 3] = ["web", "api", "canary"];
const SLOT: i64 = 3600;
const ZONE: &str = "Europe/Amsterdam";

/// Slots (from the month's start) in which ams's own network is down.
const AMS_DOWN: [(i64, i64); 3] = [(50, 56), (200, 203), (300, 310)];
/// The real outages: `api` from every location; `web` from nyc and sgp.
const API_OUTAGE: (i64, i64) = (120, 124);
const WEB_OUTAGE: (i64, i64) = (302, 304);
/// ams's agent fails itself (agent_error) in this slot, after a web failure.
const AGENT_ERROR_SLOT: i64 = 400;
/// sgp sends nothing at all.
const SGP_SILENT: (i64, i64) = (250, 255);

fn within(i: i64, (a, b): (i64, i64)) -> bool {
    i >= a && i < b
}

/// The results of `agent` in slot `i`: `(check, offset seconds, failure class)`.
fn scenario(i: i64, agent: usize) -> Vec<(usize, i64, Option<&'static str>)> {
    if agent == 2 && within(i, SGP_SILENT) {
        return vec![];
    }
    let off = 40 + agent as i64 * 20;
    if agent == 0 && AMS_DOWN.iter().any(|r| within(i, *r)) {
        return (0..3)
            .map(|c| (c, off + c as i64, Some("connect_timeout")))
            .collect();
    }
    let mut out = Vec::new();
    let web = if agent > 0 && within(i, WEB_OUTAGE) {
        Some("http_status")
    } else if agent == 0 && i == AGENT_ERROR_SLOT {
        Some("connect_refused")
    } else {
        None
    };
    out.push((0, off, web));
    if agent == 0 && i == AGENT_ERROR_SLOT {
        out.push((0, off + 100, Some("agent_error")));
    }
    out.push((1, off + 1, within(i, API_OUTAGE).then_some("http_status")));
    out.push((2, off + 2, None));
    out
}

/// One posted result.
struct Gen {
    agent: usize,
    check: usize,
    started: Timestamp,
    fail: Option<&'static str>,
    raw: String,
}

fn result_json(agent: usize, seq: u64, check: usize, t: Timestamp, fail: Option<&str>) -> String {
    let (id, loc, _) = AGENTS[agent];
    let r = TestResult::new(id, loc, seq, CHECKS[check]).started_at(t);
    match fail {
        None => r.processing(0.05).duration(0.06),
        Some(class) => r.duration(1.0).failure(class, &format!("{class} at {loc}")),
    }
    .to_string()
}

/// Results a request: posts of a month are split into batches this big.
const PER_BATCH: usize = 2000;

fn without_as_of(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("as_of");
    v
}

/// `(start slot, slots)` of each incident / excluded stretch, from its `start` and `end`.
fn runs(items: &[(Timestamp, Timestamp)], ps: Timestamp) -> Vec<(i64, i64)> {
    items
        .iter()
        .map(|(s, e)| {
            (
                s.duration_since(ps).as_secs() / SLOT,
                e.duration_since(*s).as_secs() / SLOT,
            )
        })
        .collect()
}

#[test]
fn as_of_mid_month() {
    impaired_location_month(TestClock::at_local(ZONE, "2026-11-20T12:05:00"));
}

#[test]
fn as_of_the_spring_dst_month() {
    // March 2027 has a 23-hour day (the 28th): the slots still line up.
    impaired_location_month(TestClock::at_local(ZONE, "2027-03-29T12:05:00"));
}

fn impaired_location_month(clock: TestClock) {
    let tz = TimeZone::get(ZONE).unwrap();
    let now = clock.now();
    let month = Month::containing(now, &tz).unwrap();
    let (ps, _) = month.period(&tz);
    eprintln!("as of {now} ({}), month {month}", tz.to_datetime(now));

    let contracts = format!(
        r#"[[contracts]]
name = "hostco-web"
vendor = "HostCo"
checks = ["web", "api"]
timezone = "{ZONE}"
slot = "1h"
quorum = 2
objectives = [ {{ kind = "availability", target = 99.5 }} ]
credits = [ {{ below = 99.5, percent = 10 }}, {{ below = 99.0, percent = 25 }} ]

[[contracts]]
name = "cdnco-web"
vendor = "CDNCo"
checks = ["web"]
timezone = "{ZONE}"
slot = "1h"
quorum = 1
objectives = [ {{ kind = "availability", target = 99.9 }} ]
"#
    );
    let checks = CHECKS.map(|name| CheckDef {
        name,
        canary: name == "canary",
    });
    let files = MonthCollector::new(clock, "40d", &checks, &contracts);
    let port = files.port;
    let cfg_s = files.config();

    // A canary listed in a contract is a clear config error.
    let bad_path = files.write_file(
        "bad.toml",
        &files
            .config_text
            .replace("checks = [\"web\"]\n", "checks = [\"web\", \"canary\"]\n"),
    );
    let bad = files.cli_output(&["check-config", "--config", bad_path.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("contracts[cdnco-web].checks") && err.contains("canary"),
        "{err}"
    );

    // The month to date, up to 90 s ago.
    let until = now - SignedDuration::from_secs(90);
    let n_slots = until.duration_since(ps).as_secs() / SLOT + 1;
    let mut seqs = [0u64; 3];
    let mut gens = Vec::new();
    for i in 0..n_slots {
        for (agent, seq) in seqs.iter_mut().enumerate() {
            for (check, off, fail) in scenario(i, agent) {
                let started =
                    ps + SignedDuration::from_secs(i * SLOT + off) + SignedDuration::from_millis(7);
                if started >= until {
                    continue;
                }
                *seq += 1;
                gens.push(Gen {
                    agent,
                    check,
                    started,
                    fail,
                    raw: result_json(agent, *seq, check, started, fail),
                });
            }
        }
    }
    assert!(
        n_slots > 410,
        "the scenario needs 410 slots, the month has {n_slots}"
    );

    let mut collector = files.start();
    let mut batches = 0;
    for agent in 0..3 {
        let mine: Vec<&str> = gens
            .iter()
            .filter(|g| g.agent == agent)
            .map(|g| g.raw.as_str())
            .collect();
        batches += files.post(agent, &mine, PER_BATCH);
    }
    files.wait_for_ledger(batches);

    let counted = n_slots; // every started slot, the current one included
    for (name, quorum_one) in [("hostco-web", false), ("cdnco-web", true)] {
        // The HTTP report.
        let (status, v, body) = files.get_json(&format!("/api/v1/reports/{name}/{month}"));
        assert_eq!(status, 200, "{body}");
        let r: MonthReport = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.canaries, ["canary"]);

        // Exactly the real outages are confirmed.
        let incidents: Vec<(Timestamp, Timestamp)> =
            r.incidents.iter().map(|i| (i.start, i.end)).collect();
        let expected = if quorum_one {
            vec![(WEB_OUTAGE.0, 2)]
        } else {
            vec![(API_OUTAGE.0, 4), (WEB_OUTAGE.0, 2)]
        };
        assert_eq!(runs(&incidents, ps), expected, "{name} incidents");
        for i in &r.incidents {
            assert!(
                !i.locations.contains(&"ams".to_string()) || !quorum_one,
                "{name}: ams's excluded results are not among the incident's locations: {i:?}"
            );
        }
        let down: i64 = expected.iter().map(|(_, n)| n).sum();
        assert_eq!(
            (r.slots.down as i64, r.slots.up as i64, r.slots.nodata),
            (down, counted - down, 0),
            "{name} slots"
        );
        assert_eq!(r.downtime_seconds as i64, down * SLOT);

        // Monitoring coverage.
        let cov: Vec<(&str, u64, u64)> = r
            .locations
            .iter()
            .map(|l| (l.location.as_str(), l.impaired_seconds, l.silent_seconds))
            .collect();
        let ams_impaired = (AMS_DOWN.iter().map(|(a, b)| b - a).sum::<i64>() + 1) * SLOT;
        assert_eq!(
            cov,
            [
                ("ams", ams_impaired as u64, 0),
                ("nyc", 0, 0),
                ("sgp", 0, ((SGP_SILENT.1 - SGP_SILENT.0) * SLOT) as u64)
            ],
            "{name} coverage"
        );
        let ams = &r.locations[0];
        // When ams was impaired: each network stretch, then the agent_error slot.
        let stretches: Vec<(Timestamp, Timestamp)> = ams
            .impaired_stretches
            .iter()
            .map(|x| (x.start, x.end))
            .collect();
        let mut expected_stretches: Vec<(i64, i64)> =
            AMS_DOWN.iter().map(|(a, b)| (*a, b - a)).collect();
        expected_stretches.push((AGENT_ERROR_SLOT, 1));
        assert_eq!(runs(&stretches, ps), expected_stretches, "{name} stretches");
        let reasons: Vec<String> = ams
            .impaired_stretches
            .iter()
            .map(|x| x.reasons.join(";"))
            .collect();
        assert_eq!(
            reasons,
            [
                "canaries_failed",
                "canaries_failed",
                "canaries_failed",
                "agent_error"
            ]
        );
        assert!(r.locations[1].impaired_stretches.is_empty());
        let excluded: Vec<(Timestamp, Timestamp)> = ams
            .excluded_failures
            .iter()
            .map(|x| (x.start, x.end))
            .collect();
        if quorum_one {
            // Under quorum 1 every ams stretch would have been confirmed
            // downtime, except where the real outage already was.
            assert_eq!(
                runs(&excluded, ps),
                [(50, 6), (200, 3), (300, 2), (304, 6), (AGENT_ERROR_SLOT, 1)],
                "{name} excluded"
            );
            let last = ams.excluded_failures.last().unwrap();
            assert_eq!(
                (last.reasons.as_slice(), last.classes.as_slice()),
                (
                    &["agent_error".to_string()][..],
                    &["connect_refused".to_string()][..]
                )
            );
            assert_eq!(ams.excluded_failures[0].reasons, ["canaries_failed"]);
            assert_eq!(ams.excluded_failures[0].classes, ["connect_timeout"]);
        } else {
            // Under quorum 2, one failing location never confirmed anything.
            assert!(excluded.is_empty(), "{name}: {excluded:?}");
        }

        // The live figures equal the report's.
        let (_, cs, _) = files.get_json("/api/v1/contracts");
        let c = contract_status(&cs, name);
        assert_eq!(c["slots"], v["slots"], "{name}: live slots");
        assert_eq!(c["downtime_seconds"], v["downtime_seconds"]);
        assert_eq!(c["availability_percent"], v["availability_percent"]);
        assert_eq!(c["credit_percent"], v["credit_percent"]);
        assert_eq!(c["incidents"], r.incidents.len());

        // The offline CLI gives the same report (apart from when it was asked).
        let out = files.cli(&[
            "report",
            "--config",
            cfg_s,
            "--contract",
            name,
            "--month",
            &month.to_string(),
            "--format",
            "json",
        ]);
        let offline: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            without_as_of(offline),
            without_as_of(v.clone()),
            "{name}: CLI report"
        );

        // The evidence covers the canary results rule 1a read.
        let covered: Vec<usize> = if quorum_one {
            vec![0, 2]
        } else {
            vec![0, 1, 2]
        };
        let n = gens
            .iter()
            .filter(|g| covered.contains(&g.check) && g.started >= ps)
            .count();
        assert_eq!(r.evidence.results, n as u64, "{name} evidence count");
        let ev = files.cli(&[
            "evidence",
            "--config",
            cfg_s,
            "--contract",
            name,
            "--month",
            &month.to_string(),
        ]);
        assert_eq!(sha256_hex(&ev), r.evidence.sha256, "{name}: evidence CLI");
        let report_file = files.write_file(&format!("{name}.json"), &body);
        let (script_n, script_sha256) =
            files.evidence_script(&["--report", report_file.to_str().unwrap()]);
        assert_eq!(script_n, n as u64);
        assert_eq!(script_sha256, r.evidence.sha256, "{name}: script");

        // CSV and HTML follow.
        let (_, csv) = http_get(
            port,
            &format!("/api/v1/reports/{name}/{month}?format=csv"),
            None,
        )
        .unwrap();
        assert!(
            csv.contains(&format!("location,ams,{ams_impaired},0,")),
            "{csv}"
        );
        let (_, html) = http_get(
            port,
            &format!("/api/v1/reports/{name}/{month}?format=html"),
            None,
        )
        .unwrap();
        assert!(html.contains("Monitoring coverage"), "{name}: HTML");
    }

    // The location track counted the month's impaired minutes although every
    // result arrived after its minute had settled (as an agent's spool
    // replays once its network is back): rule 1a per location on the UTC
    // minute grid, computed here from what was posted.
    let mut minutes: std::collections::BTreeMap<(usize, i64), (bool, bool, bool)> =
        Default::default();
    for g in &gens {
        let canary = CHECKS[g.check] == "canary";
        let agent_error = g.fail == Some("agent_error");
        if !canary && !agent_error {
            continue;
        }
        let e = minutes
            .entry((g.agent, g.started.as_second().div_euclid(60)))
            .or_default();
        e.0 |= canary;
        e.1 |= canary && g.fail.is_none();
        e.2 |= agent_error;
    }
    let backfilled = |agent: usize| {
        60 * minutes
            .iter()
            .filter(|((a, _), (seen, pass, err))| *a == agent && (*err || (*seen && !*pass)))
            .count() as u64
    };
    let ams_backfilled = backfilled(0);
    assert!(ams_backfilled >= 19 * 60, "{ams_backfilled}");
    assert_eq!(backfilled(1), 0);
    wait_for_every(
        "the back-filled impaired minutes in slaprobe_location_impaired_seconds_total",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || {
            let (_, m) = http_get(port, "/metrics", None)?;
            // The canary is named as one (the page alert leaves it out), the vendors' checks are not.
            assert_eq!(
                value_exact(&m, "slaprobe_check_canary", &[("check", "canary")]),
                Some(1.0)
            );
            assert!(!m.contains("slaprobe_check_canary{check=\"web\"}"));
            (value_exact(
                &m,
                "slaprobe_location_impaired_seconds_total",
                &[("location", "ams")],
            ) == Some(ams_backfilled as f64))
            .then_some(())
        },
    );

    // Live: a failing canary at ams now makes the location impaired once its minute settles.
    let t = files.clock.now() - SignedDuration::from_secs(3);
    seqs[0] += 1;
    let fail = result_json(0, seqs[0], 2, t, Some("connect_timeout"));
    files.post(0, &[fail.as_str()], PER_BATCH);
    seqs[1] += 1;
    let ok = result_json(1, seqs[1], 2, t, None);
    files.post(1, &[ok.as_str()], PER_BATCH);
    wait_for_every(
        "slaprobe_location_impaired{location=\"ams\"} 1",
        Duration::from_secs(200),
        Duration::from_millis(500),
        || {
            let (_, m) = http_get(port, "/metrics", None)?;
            let ams = [("location", "ams")];
            let nyc = [("location", "nyc")];
            (value_exact(&m, "slaprobe_location_impaired", &ams) == Some(1.0)
                && value_exact(&m, "slaprobe_location_impaired_seconds_total", &ams)
                    == Some((ams_backfilled + 60) as f64)
                && value_exact(&m, "slaprobe_location_impaired", &nyc) == Some(0.0)
                && value_exact(&m, "slaprobe_location_impaired_seconds_total", &nyc) == Some(0.0))
            .then_some(())
        },
    );
    // The same over the API, next to the contracts' live figures.
    let (_, cs, _) = files.get_json("/api/v1/contracts");
    let ams = cs["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["location"] == "ams")
        .unwrap()
        .clone();
    assert_eq!(ams["impaired_seconds"], ams_backfilled + 60, "{cs}");
    assert_eq!(collector.stop(Duration::from_secs(30)), Some(0));
}
