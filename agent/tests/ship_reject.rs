//! The shipper against a fake collector that refuses, all or nothing like the
//! real one, any batch holding a bad result with 400: the batch is bisected
//! until the bad results go alone, every good result is delivered exactly
//! once and only the bad ones are dropped (and counted). 401/403 drop nothing.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use slaprobe_agent::config::Secret;
use slaprobe_agent::ship::{self, ShipConfig, ShipStats};
use slaprobe_agent::spool::{Spool, SpoolOptions};
use slaprobe_tests::wait::wait_until_state;
use slaprobe_wire::{Ack, Batch, CheckKind, ProbeResult, Timestamp};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "tok-reject";

#[derive(Default)]
struct Fake {
    /// seq → check name of every stored result.
    stored: Mutex<BTreeMap<u64, String>>,
    duplicates: AtomicU32,
    posts: AtomicU32,
    rejected_posts: AtomicU32,
    /// Answer 401 to this many posts, then 403 to `forbid_first` more.
    unauthorized_first: AtomicU32,
    forbid_first: AtomicU32,
    /// Answer this many posts with a proxy's bare `400 Bad Request` (HTML).
    bare_400_first: AtomicU32,
    /// Answer this many posts with the collector's clock-skew 400.
    skew_first: AtomicU32,
}

async fn handle(fake: Arc<Fake>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    fake.posts.fetch_add(1, Ordering::SeqCst);
    let auth_ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    assert!(auth_ok);
    if fake.unauthorized_first.load(Ordering::SeqCst) > 0 {
        fake.unauthorized_first.fetch_sub(1, Ordering::SeqCst);
        return resp(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"unknown token"}"#.into(),
        );
    }
    if fake.forbid_first.load(Ordering::SeqCst) > 0 {
        fake.forbid_first.fetch_sub(1, Ordering::SeqCst);
        return resp(StatusCode::FORBIDDEN, r#"{"error":"not yours"}"#.into());
    }
    if fake.bare_400_first.load(Ordering::SeqCst) > 0 {
        fake.bare_400_first.fetch_sub(1, Ordering::SeqCst);
        return resp(
            StatusCode::BAD_REQUEST,
            "<html><body><h1>400 Bad Request</h1>nginx</body></html>".into(),
        );
    }
    if fake.skew_first.load(Ordering::SeqCst) > 0 {
        fake.skew_first.fetch_sub(1, Ordering::SeqCst);
        let msg = "results[0].started_at: 2026-12-01T10:00:00Z is 10m ahead of the collector's clock (at most 5m of skew is allowed)";
        return resp(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": msg, "reason": "clock_skew" }).to_string(),
        );
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut json = Vec::new();
    zstd::stream::read::Decoder::new(&body[..])
        .unwrap()
        .read_to_end(&mut json)
        .unwrap();
    let batch: Batch = serde_json::from_slice(&json).unwrap();
    // All or nothing, naming the first bad result, like the real collector.
    if let Some((i, r)) = batch
        .results
        .iter()
        .enumerate()
        .find(|(_, r)| r.check.starts_with("bad"))
    {
        fake.rejected_posts.fetch_add(1, Ordering::SeqCst);
        let msg = format!(
            "results[{i}].check: {:?} is not a check in the collector config",
            r.check
        );
        return resp(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": msg, "reason": "unknown_check" }).to_string(),
        );
    }
    if batch.results.iter().any(|r| r.check.starts_with("huge")) {
        return resp(
            StatusCode::PAYLOAD_TOO_LARGE,
            r#"{"error":"too large"}"#.into(),
        );
    }
    let mut stored = fake.stored.lock().unwrap();
    // Same seq, other bytes: 409 with the seq and this agent's max_seq.
    if let Some(r) = batch
        .results
        .iter()
        .find(|r| stored.get(&r.seq).is_some_and(|c| *c != r.check))
    {
        let max_seq = stored.keys().next_back().copied().unwrap_or(0);
        return resp(
            StatusCode::CONFLICT,
            serde_json::json!({
                "error": format!("results: seq {} is already stored with other content", r.seq),
                "reason": "seq_conflict", "seq": r.seq, "max_seq": max_seq,
            })
            .to_string(),
        );
    }
    let mut max = 0;
    for r in &batch.results {
        if stored.insert(r.seq, r.check.clone()).is_some() {
            fake.duplicates.fetch_add(1, Ordering::SeqCst);
        }
        max = max.max(r.seq);
    }
    resp(
        StatusCode::OK,
        serde_json::to_string(&Ack { acked: max }).unwrap(),
    )
}

fn resp(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

async fn fake_collector(fake: Arc<Fake>) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = fake.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fake = fake.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(fake, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/api/v1/results").parse().unwrap()
}

fn result(check: &str) -> ProbeResult {
    ProbeResult {
        seq: 0,
        agent: "ams-1".into(),
        location: "ams".into(),
        check: check.into(),
        kind: CheckKind::Http,
        target: "http://example.test/".into(),
        started_at: Timestamp::now(),
        duration_seconds: 0.01,
        success: true,
        failure: None,
        http: None,
        tls: None,
        dns: None,
        page: None,
        domain: None,
        browser: None,
    }
}

/// Spools `n` results, the ones at `bad` (1-based seqs) named `bad-…`.
fn fill_spool(dir: &std::path::Path, n: u64, bad: &[u64]) -> Arc<Mutex<Spool>> {
    let mut spool = Spool::open(dir, SpoolOptions::default()).unwrap();
    for seq in 1..=n {
        let name = if bad.contains(&seq) {
            format!("bad-{seq}")
        } else {
            "good".to_string()
        };
        assert_eq!(spool.append(&mut result(&name)).unwrap(), seq);
    }
    spool.sync().unwrap();
    Arc::new(Mutex::new(spool))
}

/// Runs the shipper until the spool is fully acked (or `limit` passes).
async fn ship_until_drained(
    url: url::Url,
    spool: Arc<Mutex<Spool>>,
    batch_max: usize,
    limit: Duration,
) -> Arc<ShipStats> {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("slaprobe_agent=debug")
        .try_init();
    let cfg = ShipConfig {
        results_url: url,
        token: Secret::new(TOKEN),
        agent: "ams-1".into(),
        batch_max,
        batch_interval: Duration::from_millis(100),
        client: slaprobe_agent::run::http_client(None).unwrap(),
    };
    let stats = Arc::new(ShipStats::default());
    let shutdown = CancellationToken::new();
    let writer_done = CancellationToken::new();
    writer_done.cancel();
    let task = tokio::spawn(ship::ship(
        cfg,
        spool.clone(),
        Arc::new(Notify::new()),
        stats.clone(),
        shutdown.clone(),
        writer_done,
        Duration::from_secs(2),
    ));
    wait_until_state(
        "the spool to drain",
        limit,
        Duration::from_millis(20),
        || {
            let s = spool.lock().unwrap();
            let (acked, last) = (s.acked(), s.last_seq());
            async move {
                if acked == last {
                    Ok(())
                } else {
                    Err(format!("acked {acked} of {last}"))
                }
            }
        },
    )
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("shipper stops")
        .unwrap();
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_results_are_isolated_and_dropped_good_ones_delivered() {
    let fake = Arc::new(Fake::default());
    let url = fake_collector(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    // Bad ones first, last, adjacent and in the middle of a 300-result spool
    // shipped in batches of up to 64.
    let bad = [1, 2, 100, 150, 151, 299, 300];
    let n = 300;
    let spool = fill_spool(dir.path(), n, &bad);
    let stats = ship_until_drained(url, spool.clone(), 64, Duration::from_secs(15)).await;

    let stored = fake.stored.lock().unwrap().clone();
    let expected: Vec<u64> = (1..=n).filter(|s| !bad.contains(s)).collect();
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        expected,
        "every good result delivered, no bad one"
    );
    assert!(stored.values().all(|c| c == "good"));
    assert_eq!(
        fake.duplicates.load(Ordering::SeqCst),
        0,
        "no good result sent twice"
    );
    assert_eq!(
        stats.results_rejected.load(Ordering::SeqCst),
        bad.len() as u64,
        "exactly the bad ones dropped"
    );
    assert_eq!(
        stats.results_acked.load(Ordering::SeqCst),
        expected.len() as u64
    );
    let posts = fake.posts.load(Ordering::SeqCst);
    println!(
        "{posts} posts ({} refused) for {n} results with {} bad",
        fake.rejected_posts.load(Ordering::SeqCst),
        bad.len()
    );
    // Bisection costs about log2(batch) posts per bad result, not one per result.
    assert!(posts < 150, "{posts} posts");
    assert_eq!(spool.lock().unwrap().unacked(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_and_forbidden_keep_retrying_and_drop_nothing() {
    let fake = Arc::new(Fake::default());
    fake.unauthorized_first.store(2, Ordering::SeqCst);
    fake.forbid_first.store(1, Ordering::SeqCst);
    let url = fake_collector(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = fill_spool(dir.path(), 20, &[]);
    let stats = ship_until_drained(url, spool, 64, Duration::from_secs(15)).await;
    let stored = fake.stored.lock().unwrap().clone();
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert_eq!(stats.results_rejected.load(Ordering::SeqCst), 0);
    assert!(
        stats.errors.load(Ordering::SeqCst) >= 3,
        "the refusals count as ship errors"
    );
    assert_eq!(
        fake.posts.load(Ordering::SeqCst),
        4,
        "three refusals, then one batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxys_bare_400_and_clock_skew_are_retried_and_drop_nothing() {
    let fake = Arc::new(Fake::default());
    fake.bare_400_first.store(3, Ordering::SeqCst);
    fake.skew_first.store(2, Ordering::SeqCst);
    let url = fake_collector(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = fill_spool(dir.path(), 40, &[]);
    let stats = ship_until_drained(url, spool, 64, Duration::from_secs(30)).await;
    let stored = fake.stored.lock().unwrap().clone();
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>(),
        "nothing lost to a 400 that is not the collector's verdict on a result"
    );
    assert_eq!(stats.results_rejected.load(Ordering::SeqCst), 0);
    assert_eq!(
        fake.posts.load(Ordering::SeqCst),
        6,
        "five refusals, then one batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_result_after_a_gap_is_dropped_not_resent_forever() {
    let fake = Arc::new(Fake::default());
    let url = fake_collector(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let small = SpoolOptions {
        segment_bytes: 1024,
        ..SpoolOptions::default()
    };
    {
        let mut spool = Spool::open(dir.path(), small).unwrap();
        for seq in 1..=20u64 {
            let name = if seq == 6 {
                "bad-6".to_string()
            } else {
                "good".into()
            };
            spool.append(&mut result(&name)).unwrap();
        }
        spool.sync().unwrap();
    }
    // The first segment is lost (dropped by the size bound, or cut as corrupt).
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    std::fs::remove_file(&segs[0]).unwrap();
    let mut spool = Spool::open(dir.path(), small).unwrap();
    let first_on_disk = spool.read_from(0, 1).unwrap()[0].0;
    assert!(first_on_disk > 1 && first_on_disk <= 6, "{first_on_disk}");
    let spool = Arc::new(Mutex::new(spool));
    let stats = ship_until_drained(url, spool, 64, Duration::from_secs(15)).await;
    let stored = fake.stored.lock().unwrap().clone();
    let expected: Vec<u64> = (first_on_disk..=20).filter(|s| *s != 6).collect();
    assert_eq!(stored.keys().copied().collect::<Vec<_>>(), expected);
    assert_eq!(stats.results_rejected.load(Ordering::SeqCst), 1);
    assert!(fake.posts.load(Ordering::SeqCst) < 10, "no resend loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_413_result_is_dropped_and_the_rest_delivered() {
    let fake = Arc::new(Fake::default());
    let url = fake_collector(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Mutex::new(
        Spool::open(dir.path(), SpoolOptions::default()).unwrap(),
    ));
    for seq in 1..=10u64 {
        let name = if seq == 4 { "huge-4" } else { "good" };
        spool.lock().unwrap().append(&mut result(name)).unwrap();
    }
    let stats = ship_until_drained(url, spool, 8, Duration::from_secs(20)).await;
    let stored = fake.stored.lock().unwrap().clone();
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3, 5, 6, 7, 8, 9, 10]
    );
    assert_eq!(stats.results_rejected.load(Ordering::SeqCst), 1);
    let posts = fake.posts.load(Ordering::SeqCst);
    assert!(posts < 15, "{posts} posts: no resend loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_moves_the_seq_past_the_collector_and_overwrites_nothing() {
    let fake = Arc::new(Fake::default());
    // The collector holds seqs 1..=30 from this agent's previous life.
    {
        let mut stored = fake.stored.lock().unwrap();
        for seq in 1..=30 {
            stored.insert(seq, format!("old-{seq}"));
        }
    }
    let url = fake_collector(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = fill_spool(dir.path(), 12, &[]);
    let stats = ship_until_drained(url, spool.clone(), 64, Duration::from_secs(15)).await;
    let stored = fake.stored.lock().unwrap().clone();
    for seq in 1..=30 {
        assert_eq!(stored[&seq], format!("old-{seq}"), "seq {seq} overwritten");
    }
    let new: Vec<u64> = stored
        .iter()
        .filter(|(_, c)| *c == "good")
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(
        new,
        (31..=42).collect::<Vec<_>>(),
        "every result delivered under a new seq"
    );
    assert_eq!(stats.seq_conflicts.load(Ordering::SeqCst), 1);
    assert_eq!(stats.results_rejected.load(Ordering::SeqCst), 0);
    assert_eq!(spool.lock().unwrap().last_seq(), 42);
}
