//! SLA evaluation end to end with the real collector binary: a synthetic
//! month (the previous calendar month, plus the last two days of this one)
//! from three agents in three locations is posted through the ingest API,
//! then:
//! - the HTTP JSON report of the previous month equals `evaluate_month` on
//!   the same observations and an independent, naive evaluation written here
//!   (slots, availability, downtime, incidents, latency percentile, met
//!   flags, credit), covering quorum (one failing location is not DOWN, two
//!   are; one location with data is enough), the last result of a slot
//!   deciding, maintenance (one-off and weekly), gaps, and October's DST day;
//! - `evidence.sha256` equals the digest recomputed from the posted results,
//!   from the SQLite file by the README's independent script
//!   (`scripts/evidence_digest.py`) and by `slaprobe-collector evidence`,
//!   before and after every result is compacted, and changes when one more
//!   result arrives;
//! - the current month's report (from the engine) equals `evaluate_month` as of its `as_of`;
//! - `/metrics` has the SLA families with the right labels and passes `promtool check metrics`;
//! - the offline CLI report (collector stopped, results compacted) equals the HTTP report byte for byte;
//! - a restart rebuilds the same month-to-date status.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};
use slaprobe_collector::CollectorConfig;
use slaprobe_collector::render;
use slaprobe_collector::sla::{Month, MonthReport, Observation, evaluate_month};
use slaprobe_tests::clock::TestClock;
use slaprobe_tests::procs::{Proc, bin_path, free_port, http_get, post_batch, wait_for};
use slaprobe_tests::prom::{promtool_check_metrics, sha256_hex, value_exact};
use slaprobe_tests::results::TestResult;
use slaprobe_wire::ProbeResult;

const AGENTS: [(&str, &str, &str); 3] = [
    ("a-ams", "ams", "tok-ams-0123456789"),
    ("a-nyc", "nyc", "tok-nyc-0123456789"),
    ("a-sgp", "sgp", "tok-sgp-0123456789"),
];
const CHECKS: [&str; 2] = ["web", "api"];
const SLOT: i64 = 600;
const ZONE: &str = "Europe/Amsterdam";

/// One generated result: what the naive evaluator reads, and the exact JSON posted.
#[derive(Clone)]
struct Gen {
    agent: usize,
    seq: u64,
    check: usize,
    started: Timestamp,
    success: bool,
    processing: Option<f64>,
    raw: String,
}

fn raw_json(
    agent: usize,
    seq: u64,
    check: usize,
    started: Timestamp,
    fail: Option<&str>,
    processing: f64,
) -> String {
    let (id, loc, _) = AGENTS[agent];
    let check_name = CHECKS[check];
    let r = TestResult::new(id, loc, seq, check_name).started_at(started);
    match fail {
        None => r.processing(processing).duration(processing + 0.006),
        Some(class) => r
            .duration(0.5)
            .failure(class, &format!("{class} from {loc}")),
    }
    .to_string()
}

/// The scenario: which results exist and which fail, by slot index `i`
/// counted from `base` (UTC slots of 10 minutes).
struct Scenario {
    base: Timestamp,
    /// The one-off maintenance window of the previous month, absolute.
    once: (Timestamp, Timestamp),
}

impl Scenario {
    /// `(offset seconds in the slot, failure class)` per result of `agent`
    /// for `check` in slot `i`; empty when it sends nothing.
    fn results(&self, i: i64, agent: usize, check: usize) -> Vec<(i64, Option<&'static str>)> {
        let t = self.base + SignedDuration::from_secs(i * SLOT);
        // A gap: nobody reports (NODATA).
        if (2000..2012).contains(&i) {
            return vec![];
        }
        // Only sgp reports; its web check fails in two slots: DOWN with one location.
        if (3000..3006).contains(&i) {
            if agent != 2 {
                return vec![];
            }
            let fail = check == 0 && (3002..3004).contains(&i);
            return vec![(200, fail.then_some("http_status"))];
        }
        // ams is silent for a while: quorum min(2, 2).
        if (4000..4100).contains(&i) && agent == 0 {
            return vec![];
        }
        let off = 60 + agent as i64 * 50 + check as i64 * 7;
        // The one-off maintenance window: everything fails, yet it is MAINTENANCE.
        if t >= self.once.0 && t < self.once.1 {
            return vec![(off, Some("connect_timeout"))];
        }
        // api down from every location for an hour: DOWN.
        if check == 1 && (1000..1006).contains(&i) {
            return vec![(off, Some("connect_refused"))];
        }
        // web fails from ams and nyc for three slots: DOWN under quorum 2.
        if check == 0 && (10..13).contains(&i.rem_euclid(211)) && agent < 2 {
            return vec![(
                off,
                Some(if agent == 0 {
                    "http_status"
                } else {
                    "connect_timeout"
                }),
            )];
        }
        // web fails from ams only: not DOWN under quorum 2.
        if check == 0 && i.rem_euclid(97) == 5 && agent == 0 {
            return vec![(off, Some("http_status"))];
        }
        // An early failure overridden by a later pass in the same slot: PASS decides.
        if check == 0 && i.rem_euclid(50) == 7 && agent == 0 {
            return vec![(5, Some("timeout")), (off, None)];
        }
        vec![(off, None)]
    }

    fn processing(i: i64, agent: usize, check: usize) -> f64 {
        if i.rem_euclid(15) == 0 {
            0.35
        } else {
            0.08 + ((i * 7 + agent as i64 * 13 + check as i64 * 29).rem_euclid(100)) as f64 / 1000.0
        }
    }
}

/// Generates every result in slots `[from_i, to_i)` whose start is before `until`,
/// continuing each agent's seq.
fn generate(
    sc: &Scenario,
    from_i: i64,
    to_i: i64,
    until: Timestamp,
    seqs: &mut [u64; 3],
    out: &mut Vec<Gen>,
) {
    for i in from_i..to_i {
        for (agent, seq_of) in seqs.iter_mut().enumerate() {
            for check in 0..2 {
                for (off, fail) in sc.results(i, agent, check) {
                    let started = sc.base
                        + SignedDuration::from_secs(i * SLOT + off)
                        + SignedDuration::from_millis(123);
                    if started >= until {
                        continue;
                    }
                    *seq_of += 1;
                    let seq = *seq_of;
                    let p = Scenario::processing(i, agent, check);
                    out.push(Gen {
                        agent,
                        seq,
                        check,
                        started,
                        success: fail.is_none(),
                        processing: fail.is_none().then_some(p),
                        raw: raw_json(agent, seq, check, started, fail, p),
                    });
                }
            }
        }
    }
}

/// Posts every result, one agent after another; returns the batches stored
/// (each accepted request is one batch, one feed number).
fn post_all(port: u16, results: &[Gen]) -> u64 {
    let mut batches = 0;
    for (agent, (id, _, token)) in AGENTS.iter().enumerate() {
        let mine: Vec<&Gen> = results.iter().filter(|g| g.agent == agent).collect();
        for chunk in mine.chunks(2500) {
            let raws: Vec<&str> = chunk.iter().map(|g| g.raw.as_str()).collect();
            post_batch(port, id, token, &raws);
            batches += 1;
        }
    }
    batches
}

/// Waits until the collector's SLA ledger reflects feed position `batches`.
fn wait_for_ledger(port: u16, batches: u64) -> Value {
    wait_for(
        "the SLA ledger to catch up",
        Duration::from_secs(60),
        || {
            let (s, v, _) = get_json(port, "/api/v1/contracts");
            (s == 200 && v["ledger"]["cursor"].as_u64() >= Some(batches)).then_some(v)
        },
    )
}

/// The naive evaluation of §6 over the generated results, written
/// independently of the collector (no shared code).
struct Naive {
    up: u32,
    down: u32,
    maintenance: u32,
    nodata: u32,
    availability: Option<f64>,
    downtime: u64,
    /// (start, duration seconds) per incident.
    incidents: Vec<(Timestamp, u64)>,
    p95: Option<f64>,
    samples: usize,
    credit: f64,
}

fn naive(
    results: &[Gen],
    period: (Timestamp, Timestamp),
    windows: &[(Timestamp, Timestamp)],
    quorum: usize,
    checks: &[usize],
) -> Naive {
    let (ps, pe) = period;
    let len = pe.duration_since(ps).as_secs();
    let n = (len + SLOT - 1) / SLOT;
    let slot_of = |t: Timestamp| (t.duration_since(ps).as_secs().div_euclid(SLOT)) as usize;
    let in_maint = |t: Timestamp| windows.iter().any(|(a, b)| t >= *a && t < *b);
    // (check, agent location, slot) -> (started, success): the last one wins.
    let mut last: HashMap<(usize, usize, usize), (Timestamp, bool)> = HashMap::new();
    let mut latency: Vec<f64> = Vec::new();
    for g in results
        .iter()
        .filter(|g| checks.contains(&g.check) && g.started >= ps && g.started < pe)
    {
        let s = slot_of(g.started);
        let e = last
            .entry((g.check, g.agent, s))
            .or_insert((g.started, g.success));
        if g.started > e.0 {
            *e = (g.started, g.success);
        }
        let slot_start = ps + SignedDuration::from_secs(s as i64 * SLOT);
        if let Some(p) = g.processing
            && !in_maint(slot_start)
        {
            latency.push(p);
        }
    }
    let mut out = Naive {
        up: 0,
        down: 0,
        maintenance: 0,
        nodata: 0,
        availability: None,
        downtime: 0,
        incidents: vec![],
        p95: None,
        samples: latency.len(),
        credit: 0.0,
    };
    let (mut up_s, mut down_s) = (0u64, 0u64);
    let mut run: Option<(Timestamp, u64)> = None;
    for s in 0..n as usize {
        let start = ps + SignedDuration::from_secs(s as i64 * SLOT);
        let secs = (SLOT.min(len - s as i64 * SLOT)) as u64;
        let state = if in_maint(start) {
            'M'
        } else {
            let mut any_down = false;
            let mut any_up = false;
            for &c in checks {
                let with_data: Vec<bool> = (0..3)
                    .filter_map(|a| last.get(&(c, a, s)).map(|x| x.1))
                    .collect();
                if with_data.is_empty() {
                    continue;
                }
                let fails = with_data.iter().filter(|ok| !**ok).count();
                if fails >= 1 && fails >= quorum.min(with_data.len()) {
                    any_down = true;
                } else {
                    any_up = true;
                }
            }
            if any_down {
                'D'
            } else if any_up {
                'U'
            } else {
                'N'
            }
        };
        match state {
            'U' => {
                out.up += 1;
                up_s += secs;
            }
            'D' => {
                out.down += 1;
                down_s += secs;
            }
            'M' => out.maintenance += 1,
            _ => out.nodata += 1,
        }
        if state == 'D' {
            run = Some(match run {
                Some((st, d)) => (st, d + secs),
                None => (start, secs),
            });
        } else if let Some(r) = run.take() {
            out.incidents.push(r);
        }
    }
    if let Some(r) = run.take() {
        out.incidents.push(r);
    }
    out.downtime = down_s;
    if up_s + down_s > 0 {
        out.availability = Some(up_s as f64 / (up_s + down_s) as f64 * 100.0);
    }
    latency.sort_by(f64::total_cmp);
    if !latency.is_empty() {
        let rank = (0.95 * latency.len() as f64).ceil() as usize;
        out.p95 = Some(latency[rank.max(1) - 1]);
    }
    let tiers = [(99.5, 10.0), (99.0, 25.0), (95.0, 100.0)];
    out.credit = out.availability.map_or(0.0, |a| {
        tiers
            .iter()
            .filter(|(below, _)| *below > a)
            .map(|t| t.1)
            .fold(0.0, f64::max)
    });
    out
}

/// Maintenance windows of the first contract in `month`: the one-off one and every Sunday 03:00 local for 30 min.
fn windows(
    tz: &TimeZone,
    month: Month,
    once: (Timestamp, Timestamp),
) -> Vec<(Timestamp, Timestamp)> {
    let mut out = vec![once];
    let mut d = jiff::civil::date(month.year(), month.month(), 1);
    while d.month() == month.month() {
        if d.weekday() == Weekday::Sunday {
            let start = d.at(3, 0, 0, 0).to_zoned(tz.clone()).unwrap().timestamp();
            out.push((start, start + SignedDuration::from_mins(30)));
        }
        d = d.tomorrow().unwrap();
    }
    out
}

/// The README's independent recipe: `scripts/evidence_digest.py` (Python 3
/// with `zstandard`) reading the SQLite file itself, uncompacted rows and
/// compacted chunks alike.
fn script_digest(db: &Path, checks: &[&str], from_ms: i64, to_ms: i64) -> (u64, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/evidence_digest.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg("--db")
        .arg(db)
        .args([
            "--checks",
            &checks.join(","),
            "--from-ms",
            &from_ms.to_string(),
            "--to-ms",
            &to_ms.to_string(),
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "evidence_digest.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let n: u64 = lines.next().unwrap().trim().parse().unwrap();
    (n, lines.next().unwrap().trim().to_string())
}

/// The README's other recipe: `slaprobe-collector evidence … | sha256sum`.
fn cli_digest(clock: &TestClock, bin: &Path, cfg: &str, month: Month) -> (u64, String) {
    let out = clock
        .command(bin)
        .args([
            "evidence",
            "--config",
            cfg,
            "--contract",
            "hostco-web",
            "--month",
            &month.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "evidence failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    (n, sha256_hex(&out.stdout))
}

/// Compacts every stored result as the collector's compactor would once
/// they are settled (an hour after the last one), after marking them
/// consumed by the SLA ledger (compaction never takes rows it has not seen).
fn compact_all(data_dir: &Path) -> u64 {
    use slaprobe_collector::store::{LedgerConn, LedgerWrite, Maintenance, Reader, StoreAddress};
    let loc = StoreAddress::Sqlite(data_dir.to_path_buf());
    let reader = Reader::open(&loc).unwrap();
    let head = reader.feed_head().unwrap();
    let state = reader.ledger_since(u64::MAX).unwrap().state;
    if state.cursor < head {
        let mut conn = LedgerConn::open(&loc).unwrap();
        conn.write(&LedgerWrite {
            base: state.version,
            cursor: head,
            rows: vec![],
            reset_contracts: vec![],
        })
        .unwrap();
    }
    let later = Timestamp::now().as_millisecond() + 400 * 86_400_000;
    let stats = Maintenance::open(&loc)
        .unwrap()
        .compact(later, 3_600_000)
        .unwrap();
    assert_eq!(reader.count_results().unwrap() > 0, stats.results > 0);
    stats.results
}

fn get_json(port: u16, path: &str) -> (u16, Value, String) {
    let (status, body) = http_get(port, path, None).unwrap_or_else(|| panic!("GET {path} failed"));
    let v = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, v, body)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// The outcome depends on the date (which month is current, how much of it
// has passed, whether the previous one is still held, DST days), so the
// scenario runs as of fixed instants too, not only as of today.

#[test]
fn as_of_now() {
    month_end_to_end(TestClock::from_env());
}

#[test]
fn as_of_the_1st_at_0005() {
    month_end_to_end(TestClock::at_local(ZONE, "2026-12-01T00:05:00"));
}

#[test]
fn as_of_the_1st_at_0900() {
    month_end_to_end(TestClock::at_local(ZONE, "2027-01-01T09:00:00"));
}

#[test]
fn as_of_the_2nd() {
    month_end_to_end(TestClock::at_local(ZONE, "2026-12-02T12:00:00"));
}

#[test]
fn as_of_the_15th() {
    month_end_to_end(TestClock::at_local(ZONE, "2026-12-15T12:00:00"));
}

#[test]
fn as_of_the_last_day_at_2355() {
    month_end_to_end(TestClock::at_local(ZONE, "2026-11-30T23:55:00"));
}

#[test]
fn as_of_the_spring_dst_change() {
    // 2026-03-29: 02:00 local does not exist in Amsterdam.
    month_end_to_end(TestClock::at_local(ZONE, "2026-03-29T03:30:00"));
}

#[test]
fn as_of_the_autumn_dst_change() {
    // 2026-10-25: 02:00-03:00 local happens twice in Amsterdam.
    month_end_to_end(TestClock::at_local(ZONE, "2026-10-25T02:30:00"));
}

fn month_end_to_end(clock: TestClock) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tz = TimeZone::get(ZONE).unwrap();
    let now = clock.now();
    eprintln!("as of {now} ({})", tz.to_datetime(now));
    let cur = Month::containing(now, &tz).unwrap();
    let prev = cur.prev();
    let (ps, pe) = prev.period(&tz);
    let once_local = format!("{}-10T02:00:00", prev);
    let once_start = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", &once_local)
        .unwrap()
        .to_zoned(tz.clone())
        .unwrap()
        .timestamp();
    let once = (once_start, once_start + SignedDuration::from_hours(2));

    let mut cfg = format!(
        "[collector]\npublic_read = true\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\nmax_result_age = \"100d\"\n"
    );
    for (id, loc, tok) in AGENTS {
        cfg += &format!(
            "[[agents]]\nid = \"{id}\"\nlocation = \"{loc}\"\ntoken_sha256 = \"{}\"\n",
            sha256_hex(tok.as_bytes())
        );
    }
    for c in CHECKS {
        cfg += &format!(
            "[[checks]]\nname = \"{c}\"\nkind = \"http\"\nurl = \"http://{c}.example/\"\ninterval = \"10m\"\n"
        );
    }
    cfg += &format!(
        r#"[[contracts]]
name = "hostco-web"
vendor = "HostCo"
checks = ["web", "api"]
timezone = "{ZONE}"
slot = "10m"
quorum = 2
objectives = [ {{ kind = "availability", target = 99.5 }}, {{ kind = "latency", phase = "processing", percentile = 95, max = "300ms" }} ]
maintenance = [ {{ start = "{once_local}", duration = "2h" }}, {{ weekly = "Sun 03:00", duration = "30m" }} ]
credits = [ {{ below = 99.5, percent = 10 }}, {{ below = 99.0, percent = 25 }}, {{ below = 95.0, percent = 100 }} ]

[[contracts]]
name = "dnsco-api"
vendor = "DNSCo"
checks = ["api"]
slot = "10m"
quorum = 1
objectives = [ {{ kind = "availability", target = 99.9 }} ]
"#
    );
    let cfg_path = dir.path().join("collector.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let cfg_s = cfg_path.to_str().unwrap().to_string();
    let config = CollectorConfig::load(&cfg_path).unwrap();
    let hostco = config
        .contracts
        .iter()
        .find(|c| c.name == "hostco-web")
        .unwrap()
        .clone();

    // check-config lists the contracts.
    let bin = bin_path("slaprobe-collector");
    let cc = clock
        .command(&bin)
        .args(["check-config", "--config", &cfg_s])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&cc.stdout);
    assert!(cc.status.success());
    assert!(
        summary.contains(
            "hostco-web  vendor HostCo  checks: web, api  zone Europe/Amsterdam  slot 10m  quorum 2"
        ),
        "{summary}"
    );
    assert!(summary.contains("processing p95 <= 300ms"), "{summary}");

    // The data: from an hour before the previous month to now (the current
    // month only for its last two days, to stay fast).
    let base = ps - SignedDuration::from_hours(1);
    let sc = Scenario { base, once };
    let slots_to = |t: Timestamp| t.duration_since(base).as_secs().div_euclid(SLOT) + 1;
    let mut seqs = [0u64; 3];
    let mut results = Vec::new();
    generate(
        &sc,
        0,
        slots_to(pe + SignedDuration::from_hours(1)),
        now,
        &mut seqs,
        &mut results,
    );
    let recent_from = slots_to(now - SignedDuration::from_hours(48))
        .max(slots_to(pe + SignedDuration::from_hours(1)));
    let until = now - SignedDuration::from_secs(90);
    generate(
        &sc,
        recent_from,
        slots_to(until),
        until,
        &mut seqs,
        &mut results,
    );
    eprintln!("{} results", results.len());

    let mut run = clock.command(&bin);
    run.args(["run", "--config", &cfg_s])
        .env("SLAPROBE_LOG", "info");
    let mut collector = Proc::spawn("collector", run, dir.path());
    wait_for("collector ready", Duration::from_secs(20), || {
        http_get(port, "/readyz", None).filter(|(s, _)| *s == 200)
    });
    let mut batches = post_all(port, &results);

    // Errors of the report endpoint.
    assert_eq!(
        get_json(port, &format!("/api/v1/reports/nope/{prev}")).0,
        404
    );
    let (s, v, _) = get_json(port, "/api/v1/reports/hostco-web/2026-13");
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("YYYY-MM"), "{v}");
    assert_eq!(
        get_json(port, &format!("/api/v1/reports/hostco-web/{}", cur.next())).0,
        400
    );
    assert_eq!(
        get_json(
            port,
            &format!("/api/v1/reports/hostco-web/{prev}?format=pdf")
        )
        .0,
        400
    );

    // The previous month's report against evaluate_month and the naive evaluation.
    let parsed: Vec<ProbeResult> = results
        .iter()
        .map(|g| serde_json::from_str(&g.raw).unwrap())
        .collect();
    let (status, v1, body1) = get_json(
        port,
        &format!("/api/v1/reports/hostco-web/{prev}?format=json"),
    );
    assert_eq!(status, 200, "{body1}");
    let http: MonthReport = serde_json::from_value(v1.clone()).unwrap();
    let mut expected = evaluate_month(
        &hostco,
        prev,
        parsed.iter().map(Observation::from_result),
        now,
    );
    expected.evidence = http.evidence.clone();
    // Compared as text: serde_json's default float parsing is not exact, its printing is.
    assert_eq!(
        render::json(&expected),
        body1,
        "HTTP report differs from evaluate_month"
    );
    assert_eq!(http.as_of, None);

    let nv = naive(&results, (ps, pe), &windows(&tz, prev, once), 2, &[0, 1]);
    assert_eq!(
        (
            http.slots.up,
            http.slots.down,
            http.slots.maintenance,
            http.slots.nodata
        ),
        (nv.up, nv.down, nv.maintenance, nv.nodata)
    );
    assert!(nv.down > 0 && nv.maintenance > 0 && nv.nodata > 0);
    assert!(close(
        http.availability_percent.unwrap(),
        nv.availability.unwrap()
    ));
    assert_eq!(http.downtime_seconds, nv.downtime);
    let got: Vec<(Timestamp, u64)> = http
        .incidents
        .iter()
        .map(|i| (i.start, i.duration_seconds))
        .collect();
    assert_eq!(got, nv.incidents);
    let lat = &http.objectives[1];
    assert_eq!(lat.samples, Some(nv.samples as u64));
    assert!(close(lat.attained.unwrap(), nv.p95.unwrap()));
    assert_eq!(lat.met, nv.p95.unwrap() <= 0.3);
    assert_eq!(http.objectives[0].met, nv.availability.unwrap() >= 99.5);
    assert!(close(http.credit_percent, nv.credit));
    // The month is calendar-local: October in Amsterdam has 745 hours.
    assert_eq!(
        pe.duration_since(ps).as_secs() as u64,
        (http.slots.up + http.slots.down + http.slots.maintenance + http.slots.nodata) as u64
            * SLOT as u64
    );
    // A DOWN incident with both failing locations and their classes.
    let two = http
        .incidents
        .iter()
        .find(|i| i.locations == ["ams", "nyc"])
        .expect("an incident from ams and nyc");
    assert_eq!(two.classes, ["connect_timeout", "http_status"]);
    let one = http
        .incidents
        .iter()
        .find(|i| i.locations == ["sgp"])
        .expect("the one-location incident");
    assert_eq!(one.duration_seconds, 1200);

    // Evidence: from the posted results, and with the README recipe on the SQLite file.
    let mut mine: Vec<&Gen> = results
        .iter()
        .filter(|g| g.started >= ps && g.started < pe)
        .collect();
    mine.sort_by(|a, b| (AGENTS[a.agent].0, a.seq).cmp(&(AGENTS[b.agent].0, b.seq)));
    let mut h = Sha256::new();
    for g in &mine {
        h.update(g.raw.as_bytes());
        h.update(b"\n");
    }
    assert_eq!(http.evidence.results, mine.len() as u64);
    assert_eq!(http.evidence.sha256, hex::encode(h.finalize()));
    let db = dir.path().join("data/slaprobe.db");
    let recipe = script_digest(
        &db,
        &["web", "api"],
        ps.as_millisecond(),
        pe.as_millisecond(),
    );
    assert_eq!(
        recipe,
        (http.evidence.results, http.evidence.sha256.clone())
    );
    assert_eq!(cli_digest(&clock, &bin, &cfg_s, prev), recipe);

    // One more result: the digest changes.
    seqs[2] += 1;
    let extra_t = ps + SignedDuration::from_hours(30) + SignedDuration::from_secs(1);
    let extra = Gen {
        agent: 2,
        seq: seqs[2],
        check: 1,
        started: extra_t,
        success: true,
        processing: Some(0.1),
        raw: raw_json(2, seqs[2], 1, extra_t, None, 0.1),
    };
    batches += post_all(port, std::slice::from_ref(&extra));
    let (_, v2, body2) = get_json(port, &format!("/api/v1/reports/hostco-web/{prev}"));
    let http2: MonthReport = serde_json::from_value(v2).unwrap();
    assert_eq!(http2.evidence.results, http.evidence.results + 1);
    assert_ne!(http2.evidence.sha256, http.evidence.sha256);
    assert_eq!(
        script_digest(
            &db,
            &["web", "api"],
            ps.as_millisecond(),
            pe.as_millisecond()
        )
        .1,
        http2.evidence.sha256
    );

    // The current month comes from the engine: equal to evaluate_month as of its as_of.
    let (status, vc, bodyc) = get_json(port, &format!("/api/v1/reports/hostco-web/{cur}"));
    assert_eq!(status, 200, "{bodyc}");
    let cur_http: MonthReport = serde_json::from_value(vc.clone()).unwrap();
    let as_of = cur_http.as_of.expect("month to date has as_of");
    let mut cur_expected = evaluate_month(
        &hostco,
        cur,
        parsed.iter().map(Observation::from_result),
        as_of,
    );
    cur_expected.evidence = cur_http.evidence.clone();
    assert_eq!(
        render::json(&cur_expected),
        bodyc,
        "engine report differs from evaluate_month"
    );

    // CSV and HTML renderings.
    let (s, csv) = http_get(
        port,
        &format!("/api/v1/reports/hostco-web/{prev}?format=csv"),
        None,
    )
    .unwrap();
    assert_eq!(s, 200);
    assert!(csv.contains("hostco-web"));
    let (s, html) = http_get(
        port,
        &format!("/api/v1/reports/hostco-web/{prev}?format=html"),
        None,
    )
    .unwrap();
    assert_eq!(s, 200);
    assert!(html.contains("<html") || html.contains("<!DOCTYPE") || html.contains("<!doctype"));

    // Month-to-date status and metrics, once the ledger has followed the
    // feed to the last batch posted (it does not wait for requests).
    let status1 = wait_for_ledger(port, batches);
    let c1 = status1["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hostco-web")
        .unwrap()
        .clone();
    assert_eq!(c1["month"], cur.to_string());
    assert_eq!(c1["vendor"], "HostCo");
    assert_eq!(c1["slots"]["up"], cur_http.slots.up);
    let (_, text) = http_get(port, "/metrics", None).unwrap();
    promtool_check_metrics(&text);
    let cv = [("contract", "hostco-web"), ("vendor", "HostCo")];
    let cvo = |o: &'static str| {
        [
            ("contract", "hostco-web"),
            ("vendor", "HostCo"),
            ("objective", o),
        ]
    };
    assert_eq!(
        value_exact(&text, "slaprobe_sla_target_ratio", &cvo("availability")),
        Some(0.995)
    );
    assert!(value_exact(&text, "slaprobe_sla_met", &cvo("availability")).is_some());
    assert!(value_exact(&text, "slaprobe_sla_met", &cvo("latency_processing_p95")).is_some());
    assert_eq!(
        value_exact(
            &text,
            "slaprobe_sla_latency_max_seconds",
            &cvo("latency_processing_p95")
        ),
        Some(0.3)
    );
    assert!(
        value_exact(
            &text,
            "slaprobe_sla_target_ratio",
            &cvo("latency_processing_p95")
        )
        .is_none()
    );
    for name in [
        "slaprobe_sla_down",
        "slaprobe_sla_credit_ratio",
        "slaprobe_sla_error_budget_remaining_ratio",
        "slaprobe_sla_downtime_seconds_total",
        "slaprobe_sla_eligible_seconds_total",
        "slaprobe_sla_incidents_total",
    ] {
        assert!(
            value_exact(&text, name, &cv).is_some(),
            "{name} missing:\n{text}"
        );
    }
    for reason in ["maintenance", "nodata"] {
        assert!(
            value_exact(
                &text,
                "slaprobe_sla_excluded_seconds_total",
                &[cv[0], cv[1], ("reason", reason)]
            )
            .is_some()
        );
    }
    // The counters (README, "SLA metrics"): a slot is counted when it
    // settles, and a settled slot that gets data later (here: every past
    // slot, since the collector started on an empty store and the month was
    // posted afterwards) is counted in `eligible` when it does. So once the
    // ledger has caught up, `eligible` holds every settled UP or DOWN slot
    // of both months: all of the previous month (its last slot may not have
    // settled yet on the 1st just after midnight) and the current month's
    // but its last two (not settled yet).
    let eligible = value_exact(&text, "slaprobe_sla_eligible_seconds_total", &cv).unwrap();
    let downtime = value_exact(&text, "slaprobe_sla_downtime_seconds_total", &cv).unwrap();
    let slot_s = SLOT as f64;
    // The data starts an hour before the previous month: its month counts too.
    let (_, vpp, _) = get_json(port, &format!("/api/v1/reports/hostco-web/{}", prev.prev()));
    let pp_updown = vpp["slots"]["up"].as_f64().unwrap() + vpp["slots"]["down"].as_f64().unwrap();
    let prev_updown = f64::from(http2.slots.up + http2.slots.down) + pp_updown;
    let cur_updown = c1["slots"]["up"].as_f64().unwrap() + c1["slots"]["down"].as_f64().unwrap();
    let (lo, hi) = (
        (prev_updown - 1.0 + cur_updown - 2.0).max(0.0) * slot_s,
        (prev_updown + cur_updown) * slot_s,
    );
    assert!(
        eligible >= lo && eligible <= hi,
        "eligible {eligible} not in [{lo}, {hi}]"
    );
    // Downtime counts every slot that was ever DOWN after it settled (a
    // slot DOWN on the first location's data alone stays counted when the
    // others' results make it UP), so at least the month's downtime.
    let prev_down = f64::from(http2.slots.down) + vpp["slots"]["down"].as_f64().unwrap();
    let cur_down = c1["slots"]["down"].as_f64().unwrap();
    assert!(
        downtime >= (prev_down - 1.0 + cur_down - 2.0).max(0.0) * slot_s && downtime <= eligible,
        "downtime {downtime}"
    );
    for (id, _, _) in AGENTS {
        assert_eq!(
            value_exact(&text, "slaprobe_agent_missing_results", &[("agent", id)]),
            Some(0.0)
        );
    }

    // The CLI with the collector stopped: byte for byte the HTTP report,
    // also once every result is compacted; both recipes agree on the
    // compacted store.
    assert_eq!(collector.stop(Duration::from_secs(15)), Some(0));
    let compacted = compact_all(&dir.path().join("data"));
    assert!(compacted > http2.evidence.results, "{compacted} compacted");
    let want = (http2.evidence.results, http2.evidence.sha256.clone());
    assert_eq!(
        script_digest(
            &db,
            &["web", "api"],
            ps.as_millisecond(),
            pe.as_millisecond()
        ),
        want
    );
    assert_eq!(cli_digest(&clock, &bin, &cfg_s, prev), want);
    let out_file = dir.path().join("report.json");
    let cli = clock
        .command(&bin)
        .args([
            "report",
            "--config",
            &cfg_s,
            "--contract",
            "hostco-web",
            "--month",
            &prev.to_string(),
            "--format",
            "json",
            "--output",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), body2);
    let cli_csv = clock
        .command(&bin)
        .args([
            "report",
            "--config",
            &cfg_s,
            "--contract",
            "hostco-web",
            "--month",
            &prev.to_string(),
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(cli_csv.status.success());
    assert_eq!(String::from_utf8(cli_csv.stdout).unwrap(), csv);
    let bad = clock
        .command(&bin)
        .args([
            "report",
            "--config",
            &cfg_s,
            "--contract",
            "nope",
            "--month",
            &prev.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("hostco-web") && err.contains("dnsco-api"),
        "{err}"
    );
    let bad = clock
        .command(&bin)
        .args([
            "report",
            "--config",
            &cfg_s,
            "--contract",
            "hostco-web",
            "--month",
            "10-2026",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));

    // Restart: the replay rebuilds the same month to date.
    let mut run = clock.command(&bin);
    run.args(["run", "--config", &cfg_s]);
    let mut collector = Proc::spawn("collector", run, dir.path());
    wait_for("collector ready again", Duration::from_secs(20), || {
        http_get(port, "/readyz", None).filter(|(s, _)| *s == 200)
    });
    let (_, status2, _) = get_json(port, "/api/v1/contracts");
    let c2 = status2["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "hostco-web")
        .unwrap()
        .clone();
    for key in [
        "availability_percent",
        "downtime_seconds",
        "incidents",
        "objectives",
        "credit_percent",
    ] {
        assert_eq!(c1[key], c2[key], "{key} after restart");
    }
    for key in ["up", "down", "maintenance"] {
        assert_eq!(
            c1["slots"][key], c2["slots"][key],
            "slots.{key} after restart"
        );
    }
    let (_, text) = http_get(port, "/metrics", None).unwrap();
    promtool_check_metrics(&text);
    // The counters are kept in the store: a restart carries them on (a
    // slot or two may settle meanwhile), never back.
    let eligible2 = value_exact(&text, "slaprobe_sla_eligible_seconds_total", &cv).unwrap();
    let downtime2 = value_exact(&text, "slaprobe_sla_downtime_seconds_total", &cv).unwrap();
    assert!(
        eligible2 >= eligible && eligible2 <= eligible + 2.0 * slot_s,
        "eligible after restart {eligible2} vs {eligible}"
    );
    assert!(
        downtime2 >= downtime && downtime2 <= downtime + 2.0 * slot_s,
        "downtime after restart {downtime2} vs {downtime}"
    );
    let settled = c2["counters"]["eligible_seconds"].as_f64().unwrap();
    assert!(
        eligible2 >= settled && eligible2 <= settled + slot_s,
        "{eligible2} vs {settled}"
    );
    let (_, _, body3) = get_json(port, &format!("/api/v1/reports/hostco-web/{prev}"));
    assert_eq!(body3, body2, "the previous month after restart");
    if let Some(line) = collector
        .log_text()
        .lines()
        .rfind(|l| l.contains("SLA ledger loaded"))
    {
        eprintln!("{line}");
    }
    collector.stop(Duration::from_secs(15));
}
