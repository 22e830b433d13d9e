//! Acked means committed: the real collector process is SIGKILLed, again and
//! again, while clients post batches as fast as they can; after each kill
//! every (agent, seq) the collector acked is in the store, read straight from
//! the SQLite files with `store::Reader` while the collector is down.
//!
//! Clients behave like agents: a batch that got no answer (the process died
//! under it) or a 503 is sent again, unchanged, once the collector is back,
//! so at the end nothing is missing and nothing is stored twice.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use slaprobe_collector::store::Reader;
use slaprobe_tests::procs::{Proc, bin_path, free_port, http_get, http_request, wait_for};
use slaprobe_tests::results::{TestResult, batch};

const AGENTS: usize = 3;
const BATCH: u64 = 50;
const KILLS: usize = 8;

fn token(i: usize) -> String {
    format!("crash-token-{i}-0123456789")
}

fn result_json(agent: &str, seq: u64, now: jiff::Timestamp) -> TestResult {
    TestResult::new(agent, "loc", seq, "c")
        .target("http://127.0.0.1:9/")
        .started_at(now)
}

/// Per client: the highest seq the collector acked (acks cover a prefix,
/// since each client has one batch in flight, in seq order).
struct Client {
    acked: AtomicU64,
    posts: AtomicU64,
    unanswered: AtomicU64,
}

fn client_loop(i: usize, port: u16, c: Arc<Client>, stop: Arc<AtomicBool>) {
    let agent = format!("a{i}");
    let tok = token(i);
    let mut first = 1u64;
    while !stop.load(Ordering::Relaxed) {
        let now = jiff::Timestamp::now();
        let body = batch(
            &agent,
            (first..first + BATCH).map(|s| result_json(&agent, s, now)),
        );
        // The same batch until it is acked.
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            c.posts.fetch_add(1, Ordering::Relaxed);
            match http_request(
                port,
                "POST",
                "/api/v1/results",
                Some(&tok),
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            ) {
                Some((200, text)) => {
                    let v: serde_json::Value = serde_json::from_str(&text).expect("ack is JSON");
                    let acked = v["acked"].as_u64().expect("acked");
                    assert_eq!(acked, first + BATCH - 1, "ack covers the batch");
                    c.acked.store(acked, Ordering::SeqCst);
                    break;
                }
                Some((503, _)) => std::thread::sleep(Duration::from_millis(20)),
                Some((s, text)) => panic!("unexpected answer {s}: {text}"),
                None => {
                    // Killed mid-request (or not up yet): retry the same batch.
                    c.unanswered.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        first += BATCH;
    }
}

/// Every seq stored per agent, read from the files of a stopped collector.
fn stored(data: &Path) -> Vec<BTreeSet<u64>> {
    let reader = Reader::open_sqlite(data).expect("store opens after SIGKILL");
    let mut out = vec![BTreeSet::new(); AGENTS];
    for r in reader
        .results_between(&["c".to_string()], i64::MIN, i64::MAX)
        .unwrap()
    {
        let i: usize = r.agent[1..].parse().unwrap();
        assert!(
            out[i].insert(r.seq),
            "{} seq {} stored twice",
            r.agent,
            r.seq
        );
    }
    out
}

#[test]
fn sigkill_mid_ingest_never_loses_an_acked_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let port = free_port();
    let mut cfg = format!(
        "[collector]\npublic_read = true\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[[checks]]\nname = \"c\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n",
        data.display()
    );
    for i in 0..AGENTS {
        let hash = hex::encode(Sha256::digest(token(i).as_bytes()));
        cfg.push_str(&format!(
            "\n[[agents]]\nid = \"a{i}\"\nlocation = \"loc\"\ntoken_sha256 = \"{hash}\"\n"
        ));
    }
    let cfg_path = dir.join("collector.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let start_collector = || {
        let p = Proc::start(
            "collector",
            &bin_path("slaprobe-collector"),
            &["run", "--config", cfg_path.to_str().unwrap()],
            &[],
            &logs,
        );
        wait_for("collector /readyz", Duration::from_secs(30), || {
            http_get(port, "/readyz", None).filter(|(s, _)| *s == 200)
        });
        p
    };

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<Arc<Client>> = (0..AGENTS)
        .map(|_| {
            Arc::new(Client {
                acked: AtomicU64::new(0),
                posts: AtomicU64::new(0),
                unanswered: AtomicU64::new(0),
            })
        })
        .collect();
    let threads: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (c, stop) = (c.clone(), stop.clone());
            std::thread::spawn(move || client_loop(i, port, c, stop))
        })
        .collect();

    let started = Instant::now();
    let kills_at = Mutex::new(Vec::new());
    for round in 0..KILLS {
        let mut collector = start_collector();
        // Let the clients hammer it for a while, at a varying point in time.
        let before: Vec<u64> = clients
            .iter()
            .map(|c| c.acked.load(Ordering::SeqCst))
            .collect();
        std::thread::sleep(Duration::from_millis(300 + fastrand_ms(round)));
        // Snapshot the acks *before* the kill: each of these is committed.
        collector.signal("KILL");
        let acked: Vec<u64> = clients
            .iter()
            .map(|c| c.acked.load(Ordering::SeqCst))
            .collect();
        collector.kill();
        let stored = stored(&data);
        for i in 0..AGENTS {
            let missing: Vec<u64> = (1..=acked[i]).filter(|s| !stored[i].contains(s)).collect();
            assert!(
                missing.is_empty(),
                "round {round}: a{i} acked up to {} but {} of them are not stored: {:?}…",
                acked[i],
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
        let progress: u64 = acked.iter().zip(&before).map(|(a, b)| a - b).sum();
        kills_at
            .lock()
            .unwrap()
            .push((acked.iter().sum::<u64>(), progress));
    }
    // A last start: the clients' pending batches go in, nothing is missing.
    let collector = start_collector();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("client thread");
    }
    drop(collector);
    let stored = stored(&data);
    let mut total = 0;
    for (i, c) in clients.iter().enumerate() {
        let acked = c.acked.load(Ordering::SeqCst);
        let max = stored[i].last().copied().unwrap_or(0);
        // Seqs 1..=max are all there: a batch that was committed but whose
        // ack was lost was re-sent and stored once.
        assert_eq!(stored[i].len() as u64, max, "a{i}: gaps in 1..={max}");
        assert!(
            max >= acked && max <= acked + BATCH,
            "a{i}: stored up to {max}, acked {acked}"
        );
        total += stored[i].len();
    }
    let posts: u64 = clients
        .iter()
        .map(|c| c.posts.load(Ordering::Relaxed))
        .sum();
    let unanswered: u64 = clients
        .iter()
        .map(|c| c.unanswered.load(Ordering::Relaxed))
        .sum();
    let rounds = kills_at.into_inner().unwrap();
    println!(
        "crash safety: {KILLS} SIGKILLs in {:.1} s; {total} results stored, {posts} posts ({unanswered} unanswered); acked results gained per round: {:?}",
        started.elapsed().as_secs_f64(),
        rounds.iter().map(|r| r.1).collect::<Vec<_>>()
    );
    assert!(
        rounds.iter().filter(|r| r.1 > 0).count() >= KILLS / 2,
        "the clients made progress in most rounds: {rounds:?}"
    );
}

/// A varying delay (0–500 ms) so kills land at different points of ingest.
fn fastrand_ms(round: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (u64::from(nanos) ^ (round as u64).wrapping_mul(0x9e37_79b9)) % 500
}
