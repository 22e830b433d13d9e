//! Scale-out end to end (DESIGN.md §9): two real collector processes on one
//! real PostgreSQL (started by the test), given a week of results from three
//! agents through the ingest API, split between them in overlapping batches
//! (some batches sent to both, every batch repeating the tail of the one
//! before). Then:
//! - every (agent, seq) is stored once: the database holds exactly the
//!   distinct results, and `slaprobe_ingest_results_total` summed over the
//!   two collectors equals them (each collector counts what *it* stored);
//! - both collectors serve the same previous-month report (JSON, CSV) and
//!   the `report` CLI on the PostgreSQL config prints the same bytes;
//! - all of it equals the report of a single collector on the embedded
//!   SQLite store given the same results (evidence digest included).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use slaprobe_collector::sla::Month;
use slaprobe_tests::clock::TestClock;
use slaprobe_tests::postgres::PgServer;
use slaprobe_tests::procs::{Proc, bin_path, free_port, http_get, post_batch, wait_for};
use slaprobe_tests::prom::sha256_hex;
use slaprobe_tests::results::TestResult;
use slaprobe_tests::sla_month::AGENTS;
use slaprobe_tests::wait::wait_for_state;

const CHECKS: [&str; 2] = ["web", "api"];
const ZONE: &str = "Europe/Amsterdam";
/// One result per check and agent every 5 minutes.
const EVERY: i64 = 300;

/// The JSON of one result, as an agent would send it.
fn raw_json(
    agent: usize,
    seq: u64,
    check: usize,
    started: Timestamp,
    fail: Option<&str>,
    processing: f64,
) -> String {
    let (id, loc, _) = AGENTS[agent];
    let c = CHECKS[check];
    let r = TestResult::new(id, loc, seq, c).started_at(started);
    match fail {
        None => r.processing(processing).duration(processing + 0.006),
        Some(class) => r
            .duration(0.5)
            .failure(class, &format!("{class} from {loc}")),
    }
    .to_string()
}

/// `steps` rounds of results per agent (seq order, continuing `seqs`) from
/// `start`, appended to `out`: outages seen from one, two and three
/// locations, a silent agent, slow responses; nothing at or after `until`.
fn generate(
    start: Timestamp,
    steps: i64,
    until: Timestamp,
    seqs: &mut [u64; 3],
    out: &mut [Vec<String>; 3],
) {
    for (agent, rows) in out.iter_mut().enumerate() {
        let seq = &mut seqs[agent];
        for i in 0..steps {
            // sgp is silent for a day: the others still make quorum.
            if agent == 2 && (1000..1288).contains(&i) {
                continue;
            }
            for check in 0..2 {
                let started = start
                    + SignedDuration::from_secs(i * EVERY + 20 + agent as i64 * 9)
                    + SignedDuration::from_millis(77);
                let fail = if check == 1 && (500..520).contains(&i) {
                    Some("connect_refused") // api down everywhere
                } else if check == 0 && i.rem_euclid(301) < 4 && agent < 2 {
                    Some("http_status") // web down from two locations
                } else if check == 0 && i.rem_euclid(97) == 3 && agent == 0 {
                    Some("timeout") // one location only: not DOWN under quorum 2
                } else {
                    None
                };
                let processing = if i.rem_euclid(20) == 0 {
                    0.4
                } else {
                    0.05 + (i * 7 + agent as i64).rem_euclid(90) as f64 / 1000.0
                };
                if started >= until {
                    continue;
                }
                *seq += 1;
                rows.push(raw_json(agent, *seq, check, started, fail, processing));
            }
        }
    }
}

fn config(port: u16, store: &str) -> String {
    let mut cfg = format!(
        "[collector]\npublic_read = true\nlisten = \"127.0.0.1:{port}\"\nmax_result_age = \"100d\"\n{store}\n"
    );
    for (id, loc, tok) in AGENTS {
        cfg += &format!(
            "[[agents]]\nid = \"{id}\"\nlocation = \"{loc}\"\ntoken_sha256 = \"{}\"\n",
            sha256_hex(tok.as_bytes())
        );
    }
    for c in CHECKS {
        cfg += &format!(
            "[[checks]]\nname = \"{c}\"\nkind = \"http\"\nurl = \"http://{c}.example/\"\ninterval = \"5m\"\n"
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
maintenance = [ {{ weekly = "Sun 03:00", duration = "30m" }} ]
credits = [ {{ below = 99.5, percent = 10 }}, {{ below = 99.0, percent = 25 }} ]
"#
    );
    cfg
}

/// Sends one POST of `body` and closes the connection after `wait`, without
/// reading the answer.
fn hang_up_after_sending(port: u16, token: &str, body: &[u8], wait: Duration) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /api/v1/results HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    std::thread::sleep(wait);
    drop(s);
}

fn post(port: u16, agent: usize, rows: &[String]) {
    let (id, _, token) = AGENTS[agent];
    let raws: Vec<&str> = rows.iter().map(String::as_str).collect();
    post_batch(port, id, token, &raws);
}

/// Batches of 400 per agent, each repeating the previous batch's last 60
/// results; `route(n)` says which ports batch `n` goes to.
fn post_split(data: &[Vec<String>; 3], route: impl Fn(usize) -> Vec<u16> + Sync) {
    std::thread::scope(|s| {
        for (agent, rows) in data.iter().enumerate() {
            let route = &route;
            s.spawn(move || {
                let mut n = 0;
                let mut from = 0;
                while from < rows.len() {
                    let lo = from.saturating_sub(60);
                    let hi = (from + 400).min(rows.len());
                    for port in route(n + agent) {
                        post(port, agent, &rows[lo..hi]);
                    }
                    from = hi;
                    n += 1;
                }
            });
        }
    });
}

fn start(clock: &TestClock, name: &str, cfg: &str, dir: &Path) -> (Proc, String) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, cfg).unwrap();
    let mut cmd = clock.command(&bin_path("slaprobe-collector"));
    cmd.args(["run", "--config", path.to_str().unwrap()])
        .env("SLAPROBE_LOG", "info");
    let p = Proc::spawn(name, cmd, dir);
    (p, path.to_str().unwrap().to_string())
}

fn ready(port: u16, p: &mut Proc) {
    wait_for("collector ready", Duration::from_secs(30), || {
        assert!(p.running(), "{} exited:\n{}", p.name, p.log_text());
        matches!(http_get(port, "/readyz", None), Some((200, _))).then_some(())
    });
}

fn get(port: u16, path: &str) -> String {
    let (status, body) = http_get(port, path, None).unwrap_or_else(|| panic!("GET {path} failed"));
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn cli_report(clock: &TestClock, cfg: &str, month: &str, format: &str) -> String {
    let out = clock
        .command(&bin_path("slaprobe-collector"))
        .args([
            "report",
            "--config",
            cfg,
            "--contract",
            "hostco-web",
            "--month",
            month,
            "--format",
            format,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report CLI failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `name{agent="id"}` in a text exposition.
fn per_agent(text: &str, name: &str, id: &str) -> f64 {
    let want = format!("{name}{{agent=\"{id}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[test]
fn two_collectors_on_one_postgres_agree_with_sqlite() {
    let pg = PgServer::start();
    let url = pg.create_database("slaprobe");
    let dir = tempfile::tempdir().unwrap();
    let tz = TimeZone::get(ZONE).unwrap();
    // The outcome depends on the date (the current month): SLAPROBE_TEST_NOW moves it.
    let clock = TestClock::from_env();
    let now = clock.now();
    let cur = Month::containing(now, &tz).unwrap();
    let prev = cur.prev();
    let (ps, _) = prev.period(&tz);
    let (cs, _) = cur.period(&tz);
    // A week inside the previous month, starting mid-day on its 8th, then the
    // last hours before now in the current month (which the collectors'
    // engines hold: without reading the shared store they would disagree).
    let mut data: [Vec<String>; 3] = Default::default();
    let mut seqs = [0u64; 3];
    generate(
        ps + SignedDuration::from_hours(7 * 24 + 13),
        7 * 86_400 / EVERY,
        now,
        &mut seqs,
        &mut data,
    );
    let prev_results: usize = data.iter().map(Vec::len).sum();
    let recent = (now - SignedDuration::from_hours(6)).max(cs);
    generate(
        recent,
        6 * 3600 / EVERY,
        now - SignedDuration::from_mins(1),
        &mut seqs,
        &mut data,
    );
    let distinct: usize = data.iter().map(Vec::len).sum();

    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let pg_store = format!("database_url = \"{url}\"");
    let (mut c1, cfg1) = start(&clock, "collector-1", &config(p1, &pg_store), dir.path());
    let (mut c2, _) = start(&clock, "collector-2", &config(p2, &pg_store), dir.path());
    let (mut solo, cfg3) = start(
        &clock,
        "solo-sqlite",
        &config(p3, "data_dir = \"solo-data\""),
        dir.path(),
    );
    ready(p1, &mut c1);
    ready(p2, &mut c2);
    ready(p3, &mut solo);

    // Batches alternate between the collectors; every 5th goes to both at once.
    post_split(&data, |n| {
        if n % 5 == 0 {
            vec![p1, p2]
        } else if n % 2 == 0 {
            vec![p1]
        } else {
            vec![p2]
        }
    });
    post_split(&data, |_| vec![p3]);

    // Stored once: the database has the distinct results.
    assert_eq!(
        pg.psql("slaprobe", "SELECT count(*) FROM results").trim(),
        distinct.to_string()
    );
    let distinct_pairs: BTreeSet<String> = pg
        .psql("slaprobe", "SELECT agent || ':' || seq FROM results")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(distinct_pairs.len(), distinct);
    // Each collector's probe metrics follow the store's feed, so both count
    // every stored result, whichever collector took it (within a poll).
    for (i, (id, _, _)) in AGENTS.iter().enumerate() {
        let want = data[i].len() as f64;
        wait_for_state(
            &format!("slaprobe_ingest_results_total for {id}: {want} on both collectors"),
            Duration::from_secs(10),
            Duration::from_millis(200),
            || {
                let (m1, m2) = (get(p1, "/metrics"), get(p2, "/metrics"));
                let both = (
                    per_agent(&m1, "slaprobe_ingest_results_total", id),
                    per_agent(&m2, "slaprobe_ingest_results_total", id),
                );
                if both == (want, want) {
                    Ok(())
                } else {
                    Err(both)
                }
            },
        );
    }

    // The same report everywhere.
    let month = prev.to_string();
    let path = format!("/api/v1/reports/hostco-web/{month}?format=json");
    let (r1, r2, r3) = (get(p1, &path), get(p2, &path), get(p3, &path));
    let v: Value = serde_json::from_str(&r1).unwrap();
    assert_eq!(
        v["evidence"]["results"].as_u64(),
        Some(prev_results as u64),
        "{r1}"
    );
    let slots = &v["slots"];
    assert!(
        slots["down"].as_u64().unwrap_or(0) > 0 && slots["up"].as_u64().unwrap_or(0) > 900,
        "{slots}"
    );
    assert_eq!(r1, r2, "the two collectors on PostgreSQL disagree");
    assert_eq!(r1, r3, "PostgreSQL and SQLite reports differ");
    let csv = format!("/api/v1/reports/hostco-web/{month}?format=csv");
    let (k1, k2, k3) = (get(p1, &csv), get(p2, &csv), get(p3, &csv));
    assert_eq!((&k1, &k1), (&k2, &k3));

    // The current month (as of each request's own `now`): the same figures
    // from both collectors although each engine saw only part of the results.
    // A slot boundary between two requests changes the figures: retry then.
    let current = format!("/api/v1/reports/hostco-web/{cur}?format=json");
    let strip = |body: String| {
        let mut v: Value = serde_json::from_str(&body).unwrap();
        v.as_object_mut().unwrap().remove("as_of");
        v
    };
    let mut agreed = false;
    for _ in 0..3 {
        let (a, b, c) = (
            strip(get(p1, &current)),
            strip(get(p2, &current)),
            strip(get(p3, &current)),
        );
        if a == b && b == c {
            assert_eq!(
                a["evidence"]["results"].as_u64(),
                Some((distinct - prev_results) as u64)
            );
            agreed = true;
            break;
        }
    }
    assert!(agreed, "current-month reports differ between collectors");

    // Month to date from the shared ledger: one collector keeps it, the
    // other follows; both serve the same version and figures within 5 s,
    // equal to the current month's report from the store.
    let live =
        |port: u16| -> Value { serde_json::from_str(&get(port, "/api/v1/contracts")).unwrap() };
    let same_as_report = |v: &Value| {
        let r = strip(get(p1, &current));
        let c = &v["contracts"][0];
        c["slots"] == r["slots"]
            && c["downtime_seconds"] == r["downtime_seconds"]
            && c["availability_percent"] == r["availability_percent"]
            && c["incidents"].as_u64() == r["incidents"].as_array().map(|a| a.len() as u64)
    };
    let agree = |what: &str| {
        wait_for(what, Duration::from_secs(5), || {
            let (a, b) = (live(p1), live(p2));
            (a["ledger"] == b["ledger"] && a["contracts"] == b["contracts"] && same_as_report(&a))
                .then_some(a)
        })
    };
    let before = agree("both collectors to serve the same ledger, equal to the store");

    // Clients that hang up right after sending (before reading the answer):
    // whatever the collector committed shows in the live figures of both.
    let mut late: [Vec<String>; 3] = Default::default();
    generate(
        (now - SignedDuration::from_mins(50)).max(cs),
        10,
        now - SignedDuration::from_secs(30),
        &mut seqs,
        &mut late,
    );
    // First at once (the collector may drop the request before or after
    // its commit), then after 200 ms (committed by then, answer unread).
    for wait_ms in [0, 200] {
        for (agent, rows) in late.iter().enumerate() {
            let (id, _, token) = AGENTS[agent];
            let body = format!(r#"{{"agent":"{id}","results":[{}]}}"#, rows.join(","));
            hang_up_after_sending(p1, token, body.as_bytes(), Duration::from_millis(wait_ms));
        }
    }
    let wanted = (distinct - prev_results + late.iter().map(Vec::len).sum::<usize>()) as u64;
    wait_for(
        "the hung-up batches to be stored",
        Duration::from_secs(10),
        || {
            let v: Value = serde_json::from_str(&get(p1, &current)).unwrap();
            (v["evidence"]["results"].as_u64() == Some(wanted)).then_some(())
        },
    );
    let after = agree("the hung-up batches to reach both collectors' live figures");
    assert!(
        after["ledger"]["cursor"].as_u64() > before["ledger"]["cursor"].as_u64(),
        "{after}"
    );

    // The offline CLI reads the shared database too, collectors still running.
    assert_eq!(
        cli_report(&clock, &cfg1, &month, "json"),
        r1,
        "CLI on PostgreSQL differs"
    );
    assert_eq!(
        cli_report(&clock, &cfg3, &month, "json"),
        r3,
        "CLI on SQLite differs"
    );

    // A third collector started now rebuilds from the shared store and agrees.
    c2.stop(Duration::from_secs(15));
    let (mut c2b, _) = start(&clock, "collector-2", &config(p2, &pg_store), dir.path());
    ready(p2, &mut c2b);
    assert_eq!(get(p2, &path), r1);
    for p in [&mut c1, &mut c2b, &mut solo] {
        assert_eq!(
            p.stop(Duration::from_secs(15)),
            Some(0),
            "{} did not stop cleanly:\n{}",
            p.name,
            p.log_text()
        );
    }
    assert!(!c1.log_text().contains("ERROR"), "{}", c1.log_text());
}
