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
use std::time::Duration;

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};
use slaprobe_collector::CollectorConfig;
use slaprobe_collector::render;
use slaprobe_collector::sla::{Contract, Month, MonthReport, Observation, evaluate_month};
use slaprobe_tests::clock::TestClock;
use slaprobe_tests::procs::{Proc, http_get};
use slaprobe_tests::prom::{promtool_check_metrics, value_exact};
use slaprobe_tests::results::TestResult;
use slaprobe_tests::sla_month::{AGENTS, CheckDef, MonthCollector, contract_status};
use slaprobe_wire::ProbeResult;

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

/// Posts every result, one agent after another, 2,500 a request; returns
/// the batches stored (each accepted request is one batch, one feed number).
fn post_all(files: &MonthCollector, results: &[Gen]) -> u64 {
    let mut batches = 0;
    for agent in 0..AGENTS.len() {
        let mine: Vec<&str> = results
            .iter()
            .filter(|g| g.agent == agent)
            .map(|g| g.raw.as_str())
            .collect();
        batches += files.post(agent, &mine, 2500);
    }
    batches
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

// The scenario as named cases over one shared month (`MonthRun`): each
// case reads the collector as the earlier ones left it, so they run in
// this order, on one collector, as of the clock of the test.
fn month_end_to_end(clock: TestClock) {
    let mut m = MonthRun::prepare(clock);
    check_config_lists_the_contracts(&m);
    m.start_and_post();
    report_endpoint_refuses_bad_requests(&m);
    let prev = previous_month_equals_evaluate_month_and_naive(&m);
    evidence_agrees_with_both_recipes(&m, &prev);
    let (prev, prev_body) = one_more_result_changes_the_digest(&mut m, &prev);
    let cur = current_month_equals_evaluate_month_as_of(&m);
    let csv = csv_and_html_are_served(&m);
    let live = status_and_metrics_follow_the_ledger(&m, &prev, &cur);
    offline_cli_equals_http_after_compaction(&mut m, &prev, &prev_body, &csv);
    restart_rebuilds_the_month_to_date(&mut m, &live, &prev_body);
}

/// The month under test: its files and collector, the dates it turns on,
/// the contract, and every result posted.
struct MonthRun {
    files: MonthCollector,
    /// The running collector (none before [`MonthRun::start_and_post`] and while stopped).
    collector: Option<Proc>,
    tz: TimeZone,
    now: Timestamp,
    /// The current month and the previous one, whose period is `[ps, pe)`.
    cur: Month,
    prev: Month,
    ps: Timestamp,
    pe: Timestamp,
    /// The one-off maintenance window of the previous month.
    once: (Timestamp, Timestamp),
    /// `hostco-web` as the collector validated it.
    hostco: Contract,
    /// The generated results, and the same parsed as the collector stores them.
    results: Vec<Gen>,
    parsed: Vec<ProbeResult>,
    /// The last seq of each agent.
    seqs: [u64; 3],
    /// The batches posted so far (the feed position the ledger must reach).
    batches: u64,
}

impl MonthRun {
    /// Writes the config (two contracts, maintenance, credits) and generates
    /// the data: from an hour before the previous month to now (the current
    /// month only for its last two days, to stay fast). Starts nothing.
    fn prepare(clock: TestClock) -> MonthRun {
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
        let contracts = format!(
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
        let checks = CHECKS.map(|name| CheckDef {
            name,
            canary: false,
        });
        let files = MonthCollector::new(clock, "100d", &checks, &contracts);
        let config = CollectorConfig::load(&files.config_path).unwrap();
        let hostco = config
            .contracts
            .iter()
            .find(|c| c.name == "hostco-web")
            .unwrap()
            .clone();

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
        let parsed = results
            .iter()
            .map(|g| serde_json::from_str(&g.raw).unwrap())
            .collect();
        MonthRun {
            files,
            collector: None,
            tz,
            now,
            cur,
            prev,
            ps,
            pe,
            once,
            hostco,
            results,
            parsed,
            seqs,
            batches: 0,
        }
    }

    /// Starts the collector and posts every generated result.
    fn start_and_post(&mut self) {
        self.collector = Some(self.files.start());
        self.batches += post_all(&self.files, &self.results);
    }

    fn port(&self) -> u16 {
        self.files.port
    }

    fn get_json(&self, path: &str) -> (u16, Value, String) {
        self.files.get_json(path)
    }

    /// The README's script recipe over the previous month of `hostco-web`.
    fn script_digest(&self) -> (u64, String) {
        self.files.evidence_script(&[
            "--checks",
            &CHECKS.join(","),
            "--from-ms",
            &self.ps.as_millisecond().to_string(),
            "--to-ms",
            &self.pe.as_millisecond().to_string(),
        ])
    }

    /// The README's CLI recipe over the previous month of `hostco-web`.
    fn cli_digest(&self) -> (u64, String) {
        self.files
            .evidence_cli("hostco-web", &self.prev.to_string())
    }

    /// Stops the collector; returns its exit code.
    fn stop(&mut self) -> Option<i32> {
        let mut collector = self.collector.take().expect("the collector runs");
        collector.stop(Duration::from_secs(15))
    }
}

/// `check-config` summarises each contract on one line.
fn check_config_lists_the_contracts(m: &MonthRun) {
    let cc = m
        .files
        .cli_output(&["check-config", "--config", m.files.config()]);
    let summary = String::from_utf8_lossy(&cc.stdout);
    assert!(cc.status.success());
    assert!(
        summary.contains(
            "hostco-web  vendor HostCo  checks: web, api  zone Europe/Amsterdam  slot 10m  quorum 2"
        ),
        "{summary}"
    );
    assert!(summary.contains("processing p95 <= 300ms"), "{summary}");
}

/// The report endpoint refuses an unknown contract (404), a malformed or
/// future month and an unknown format (400).
fn report_endpoint_refuses_bad_requests(m: &MonthRun) {
    let (prev, cur) = (m.prev, m.cur);
    assert_eq!(m.get_json(&format!("/api/v1/reports/nope/{prev}")).0, 404);
    let (s, v, _) = m.get_json("/api/v1/reports/hostco-web/2026-13");
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("YYYY-MM"), "{v}");
    assert_eq!(
        m.get_json(&format!("/api/v1/reports/hostco-web/{}", cur.next()))
            .0,
        400
    );
    assert_eq!(
        m.get_json(&format!("/api/v1/reports/hostco-web/{prev}?format=pdf"))
            .0,
        400
    );
}

/// The previous month's JSON report equals `evaluate_month` on the posted
/// results, and the naive evaluation: slots, availability, downtime,
/// incidents, the latency percentile, met flags, credit, the local
/// calendar month's length. Returns the report.
fn previous_month_equals_evaluate_month_and_naive(m: &MonthRun) -> MonthReport {
    let (prev, ps, pe) = (m.prev, m.ps, m.pe);
    let (status, v1, body1) = m.get_json(&format!("/api/v1/reports/hostco-web/{prev}?format=json"));
    assert_eq!(status, 200, "{body1}");
    let http: MonthReport = serde_json::from_value(v1.clone()).unwrap();
    let mut expected = evaluate_month(
        &m.hostco,
        prev,
        m.parsed.iter().map(Observation::from_result),
        m.now,
    );
    expected.evidence = http.evidence.clone();
    // Compared as text: serde_json's default float parsing is not exact, its printing is.
    assert_eq!(
        render::json(&expected),
        body1,
        "HTTP report differs from evaluate_month"
    );
    assert_eq!(http.as_of, None);

    let nv = naive(
        &m.results,
        (ps, pe),
        &windows(&m.tz, prev, m.once),
        2,
        &[0, 1],
    );
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
    http
}

/// The previous month's evidence is the digest of the posted results (in
/// agent, seq order), and both README recipes on the SQLite file agree.
fn evidence_agrees_with_both_recipes(m: &MonthRun, http: &MonthReport) {
    let mut mine: Vec<&Gen> = m
        .results
        .iter()
        .filter(|g| g.started >= m.ps && g.started < m.pe)
        .collect();
    mine.sort_by(|a, b| (AGENTS[a.agent].0, a.seq).cmp(&(AGENTS[b.agent].0, b.seq)));
    let mut h = Sha256::new();
    for g in &mine {
        h.update(g.raw.as_bytes());
        h.update(b"\n");
    }
    assert_eq!(http.evidence.results, mine.len() as u64);
    assert_eq!(http.evidence.sha256, hex::encode(h.finalize()));
    let recipe = m.script_digest();
    assert_eq!(
        recipe,
        (http.evidence.results, http.evidence.sha256.clone())
    );
    assert_eq!(m.cli_digest(), recipe);
}

/// One more result in the previous month: one more in the evidence, and a
/// new digest, which the script recipe finds too. Returns the report and
/// its body as they now are.
fn one_more_result_changes_the_digest(
    m: &mut MonthRun,
    http: &MonthReport,
) -> (MonthReport, String) {
    m.seqs[2] += 1;
    let extra_t = m.ps + SignedDuration::from_hours(30) + SignedDuration::from_secs(1);
    let extra = Gen {
        agent: 2,
        seq: m.seqs[2],
        check: 1,
        started: extra_t,
        success: true,
        processing: Some(0.1),
        raw: raw_json(2, m.seqs[2], 1, extra_t, None, 0.1),
    };
    m.batches += post_all(&m.files, std::slice::from_ref(&extra));
    let (_, v2, body2) = m.get_json(&format!("/api/v1/reports/hostco-web/{}", m.prev));
    let http2: MonthReport = serde_json::from_value(v2).unwrap();
    assert_eq!(http2.evidence.results, http.evidence.results + 1);
    assert_ne!(http2.evidence.sha256, http.evidence.sha256);
    assert_eq!(m.script_digest().1, http2.evidence.sha256);
    (http2, body2)
}

/// The current month comes from the engine: equal to `evaluate_month` as
/// of its `as_of`. Returns the report.
fn current_month_equals_evaluate_month_as_of(m: &MonthRun) -> MonthReport {
    let (status, vc, bodyc) = m.get_json(&format!("/api/v1/reports/hostco-web/{}", m.cur));
    assert_eq!(status, 200, "{bodyc}");
    let cur_http: MonthReport = serde_json::from_value(vc.clone()).unwrap();
    let as_of = cur_http.as_of.expect("month to date has as_of");
    let mut cur_expected = evaluate_month(
        &m.hostco,
        m.cur,
        m.parsed.iter().map(Observation::from_result),
        as_of,
    );
    cur_expected.evidence = cur_http.evidence.clone();
    assert_eq!(
        render::json(&cur_expected),
        bodyc,
        "engine report differs from evaluate_month"
    );
    cur_http
}

/// The previous month renders as CSV and HTML. Returns the CSV.
fn csv_and_html_are_served(m: &MonthRun) -> String {
    let prev = m.prev;
    let (s, csv) = http_get(
        m.port(),
        &format!("/api/v1/reports/hostco-web/{prev}?format=csv"),
        None,
    )
    .unwrap();
    assert_eq!(s, 200);
    assert!(csv.contains("hostco-web"));
    let (s, html) = http_get(
        m.port(),
        &format!("/api/v1/reports/hostco-web/{prev}?format=html"),
        None,
    )
    .unwrap();
    assert_eq!(s, 200);
    assert!(html.contains("<html") || html.contains("<!DOCTYPE") || html.contains("<!doctype"));
    csv
}

/// What the month-to-date status and the SLA counters read once the ledger
/// has caught up, for the restart to compare with.
struct LiveFigures {
    /// `hostco-web` in `/api/v1/contracts`.
    status: Value,
    eligible: f64,
    downtime: f64,
}

/// The labels of `hostco-web`'s contract-wide families.
const CONTRACT_LABELS: [(&str, &str); 2] = [("contract", "hostco-web"), ("vendor", "HostCo")];

/// The labels of one of `hostco-web`'s objectives.
fn objective_labels(objective: &'static str) -> [(&'static str, &'static str); 3] {
    [
        CONTRACT_LABELS[0],
        CONTRACT_LABELS[1],
        ("objective", objective),
    ]
}

/// Month-to-date status and `/metrics`, once the ledger has followed the
/// feed to the last batch posted (it does not wait for requests): the SLA
/// families with their labels (promtool-valid), and the counters within
/// what the reports allow.
fn status_and_metrics_follow_the_ledger(
    m: &MonthRun,
    http2: &MonthReport,
    cur_http: &MonthReport,
) -> LiveFigures {
    let c1 = contract_status(&m.files.wait_for_ledger(m.batches), "hostco-web");
    assert_eq!(c1["month"], m.cur.to_string());
    assert_eq!(c1["vendor"], "HostCo");
    assert_eq!(c1["slots"]["up"], cur_http.slots.up);
    let (_, text) = http_get(m.port(), "/metrics", None).unwrap();
    promtool_check_metrics(&text);
    let cv = CONTRACT_LABELS;
    assert_eq!(
        value_exact(
            &text,
            "slaprobe_sla_target_ratio",
            &objective_labels("availability")
        ),
        Some(0.995)
    );
    assert!(value_exact(&text, "slaprobe_sla_met", &objective_labels("availability")).is_some());
    assert!(
        value_exact(
            &text,
            "slaprobe_sla_met",
            &objective_labels("latency_processing_p95")
        )
        .is_some()
    );
    assert_eq!(
        value_exact(
            &text,
            "slaprobe_sla_latency_max_seconds",
            &objective_labels("latency_processing_p95")
        ),
        Some(0.3)
    );
    assert!(
        value_exact(
            &text,
            "slaprobe_sla_target_ratio",
            &objective_labels("latency_processing_p95")
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
    let (_, vpp, _) = m.get_json(&format!("/api/v1/reports/hostco-web/{}", m.prev.prev()));
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
    LiveFigures {
        status: c1,
        eligible,
        downtime,
    }
}

/// The CLI with the collector stopped: both recipes agree on the compacted
/// store, the JSON and CSV reports are byte for byte the HTTP ones, and an
/// unknown contract or a malformed month exits 2 (listing the contracts).
fn offline_cli_equals_http_after_compaction(
    m: &mut MonthRun,
    http2: &MonthReport,
    body2: &str,
    csv: &str,
) {
    assert_eq!(m.stop(), Some(0));
    let compacted = compact_all(&m.files.dir.path().join("data"));
    assert!(compacted > http2.evidence.results, "{compacted} compacted");
    let want = (http2.evidence.results, http2.evidence.sha256.clone());
    assert_eq!(m.script_digest(), want);
    assert_eq!(m.cli_digest(), want);
    let prev = m.prev.to_string();
    let config = m.files.config();
    let out_file = m.files.dir.path().join("report.json");
    m.files.cli(&[
        "report",
        "--config",
        config,
        "--contract",
        "hostco-web",
        "--month",
        &prev,
        "--format",
        "json",
        "--output",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), body2);
    let cli_csv = m.files.cli_output(&[
        "report",
        "--config",
        config,
        "--contract",
        "hostco-web",
        "--month",
        &prev,
        "--format",
        "csv",
    ]);
    assert!(cli_csv.status.success());
    assert_eq!(String::from_utf8(cli_csv.stdout).unwrap(), csv);
    let bad = m.files.cli_output(&[
        "report",
        "--config",
        config,
        "--contract",
        "nope",
        "--month",
        &prev,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("hostco-web") && err.contains("dnsco-api"),
        "{err}"
    );
    let bad = m.files.cli_output(&[
        "report",
        "--config",
        config,
        "--contract",
        "hostco-web",
        "--month",
        "10-2026",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

/// A restart: the replay rebuilds the same month to date, the counters
/// carry on from the store (never back), the previous month's report is
/// the same bytes.
fn restart_rebuilds_the_month_to_date(m: &mut MonthRun, before: &LiveFigures, body2: &str) {
    m.collector = Some(m.files.start());
    let (_, contracts, _) = m.get_json("/api/v1/contracts");
    let (c1, c2) = (&before.status, contract_status(&contracts, "hostco-web"));
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
    let (_, text) = http_get(m.port(), "/metrics", None).unwrap();
    promtool_check_metrics(&text);
    // The counters are kept in the store: a restart carries them on (a
    // slot or two may settle meanwhile), never back.
    let (eligible, downtime) = (before.eligible, before.downtime);
    let slot_s = SLOT as f64;
    let eligible2 = value_exact(
        &text,
        "slaprobe_sla_eligible_seconds_total",
        &CONTRACT_LABELS,
    )
    .unwrap();
    let downtime2 = value_exact(
        &text,
        "slaprobe_sla_downtime_seconds_total",
        &CONTRACT_LABELS,
    )
    .unwrap();
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
    let (_, _, body3) = m.get_json(&format!("/api/v1/reports/hostco-web/{}", m.prev));
    assert_eq!(body3, body2, "the previous month after restart");
    if let Some(line) = m
        .collector
        .as_ref()
        .unwrap()
        .log_text()
        .lines()
        .rfind(|l| l.contains("SLA ledger loaded"))
    {
        eprintln!("{line}");
    }
    m.stop();
}
