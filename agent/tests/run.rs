//! `slaprobe-agent run` in-process against a fake collector on 127.0.0.1:
//! checks pulled from the collector, results streamed with contiguous seqs
//! across restarts, nothing lost through an outage, probing goes on when the
//! collector is gone.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use slaprobe_agent::config::{AgentConfig, RawAgentFile, RawAgentSection, Secret};
use slaprobe_agent::spool::{Spool, SpoolOptions};
use slaprobe_wire::{Ack, AssignedChecks, Batch, CheckKind, CheckSpec};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-123";

/// What the fake collector saw and how it behaves.
#[derive(Default)]
struct Fake {
    /// seq → check name, for every result received (duplicates counted).
    seqs: Mutex<BTreeMap<u64, String>>,
    /// Every result received, as sent.
    results: Mutex<Vec<slaprobe_wire::ProbeResult>>,
    duplicates: AtomicU32,
    batches: AtomicU32,
    /// Answer 503 + Retry-After: 1 to this many batch posts first.
    refuse_first: AtomicU32,
    bad_auth: AtomicU32,
    checks: Mutex<Vec<CheckSpec>>,
    /// When false, every request is answered 500 (down but listening).
    up: AtomicBool,
    /// The latest result of each check.
    latest: Mutex<BTreeMap<String, slaprobe_wire::ProbeResult>>,
}

async fn handle(fake: Arc<Fake>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let auth_ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !req.uri().path().starts_with("/api/") {
        return resp(StatusCode::NOT_FOUND, "no".into());
    }
    if !auth_ok {
        fake.bad_auth.fetch_add(1, Ordering::SeqCst);
        return resp(StatusCode::UNAUTHORIZED, "bad token".into());
    }
    if !fake.up.load(Ordering::SeqCst) {
        return resp(StatusCode::INTERNAL_SERVER_ERROR, "down".into());
    }
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/api/v1/checks") => {
            let checks = fake.checks.lock().unwrap().clone();
            resp(
                StatusCode::OK,
                serde_json::to_string(&AssignedChecks { checks }).unwrap(),
            )
        }
        ("POST", "/api/v1/results") => {
            if fake.refuse_first.load(Ordering::SeqCst) > 0 {
                fake.refuse_first.fetch_sub(1, Ordering::SeqCst);
                let mut r = resp(StatusCode::SERVICE_UNAVAILABLE, "busy".into());
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                return r;
            }
            let zstd = req
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v == "zstd");
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let json = if zstd {
                let mut out = Vec::new();
                zstd::stream::read::Decoder::new(&body[..])
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
                out
            } else {
                body.to_vec()
            };
            let batch: Batch = match serde_json::from_slice(&json) {
                Ok(b) => b,
                Err(e) => return resp(StatusCode::BAD_REQUEST, e.to_string()),
            };
            fake.batches.fetch_add(1, Ordering::SeqCst);
            let mut seqs = fake.seqs.lock().unwrap();
            let mut max = 0;
            for r in &batch.results {
                assert_eq!(r.agent, "ams-1");
                assert_eq!(r.location, "ams");
                fake.latest
                    .lock()
                    .unwrap()
                    .insert(r.check.clone(), r.clone());
                if seqs.insert(r.seq, r.check.clone()).is_some() {
                    fake.duplicates.fetch_add(1, Ordering::SeqCst);
                }
                max = max.max(r.seq);
            }
            fake.results
                .lock()
                .unwrap()
                .extend(batch.results.iter().cloned());
            resp(
                StatusCode::OK,
                serde_json::to_string(&Ack { acked: max }).unwrap(),
            )
        }
        _ => resp(StatusCode::NOT_FOUND, "no".into()),
    }
}

fn resp(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// Serves the fake collector on `listener` until `stop`.
async fn serve(listener: tokio::net::TcpListener, fake: Arc<Fake>, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a.unwrap(),
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
}

fn http_check(name: &str, url: String) -> CheckSpec {
    CheckSpec {
        name: name.into(),
        kind: CheckKind::Http,
        interval: Some("1s".into()),
        timeout: Some("1s".into()),
        url: Some(url),
        ..Default::default()
    }
}

fn agent_config(collector: SocketAddr, spool_dir: &Path) -> AgentConfig {
    let raw = RawAgentFile {
        agent: RawAgentSection {
            id: Some("ams-1".into()),
            location: Some("ams".into()),
            collector: Some(format!("http://{collector}")),
            token: Some(Secret::new(TOKEN)),
            spool_dir: Some(spool_dir.to_path_buf()),
            batch_interval: Some("200ms".into()),
            checks_refresh: Some("1s".into()),
            ..Default::default()
        },
        checks: vec![],
    };
    AgentConfig::from_raw(raw, Path::new("test-agent.toml")).unwrap()
}

struct Setup {
    fake: Arc<Fake>,
    addr: SocketAddr,
    stop: CancellationToken,
}

async fn fake_collector() -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(Fake::default());
    fake.up.store(true, Ordering::SeqCst);
    // Two assigned checks: one against a refused port (fails fast), one
    // against the fake collector itself (answers 404: fails too, but
    // exercises a real exchange).
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    *fake.checks.lock().unwrap() = vec![
        http_check("refused", format!("http://{dead}/")),
        http_check("self", format!("http://{addr}/nothing")),
    ];
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, fake.clone(), stop.clone()));
    Setup { fake, addr, stop }
}

async fn run_agent_for(config: AgentConfig, d: Duration) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("slaprobe_agent=debug")
        .try_init();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(slaprobe_agent::run(config, shutdown.clone()));
    tokio::time::sleep(d).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("agent stops within 20 s of shutdown")
        .unwrap()
        .unwrap();
}

fn assert_contiguous(seqs: &BTreeMap<u64, String>) -> u64 {
    let keys: Vec<u64> = seqs.keys().copied().collect();
    let expected: Vec<u64> = (1..=keys.len() as u64).collect();
    assert_eq!(keys, expected, "seqs must be 1..=N without gaps");
    keys.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_checks_streams_results_and_continues_seq_across_restarts() {
    let s = fake_collector().await;
    let spool = tempfile::tempdir().unwrap();

    run_agent_for(
        agent_config(s.addr, spool.path()),
        Duration::from_millis(3500),
    )
    .await;
    let n1 = assert_contiguous(&s.fake.seqs.lock().unwrap());
    assert!(
        n1 >= 4,
        "two 1 s checks over 3.5 s give at least 4 results, got {n1}"
    );
    let names: std::collections::BTreeSet<String> =
        s.fake.seqs.lock().unwrap().values().cloned().collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["refused".to_string(), "self".to_string()]
    );
    assert_eq!(s.fake.duplicates.load(Ordering::SeqCst), 0);
    assert_eq!(s.fake.bad_auth.load(Ordering::SeqCst), 0);
    // Everything acked: nothing left in the spool.
    {
        let sp = Spool::open(spool.path(), SpoolOptions::default()).unwrap();
        assert_eq!(sp.unacked(), 0);
        assert_eq!(sp.last_seq(), n1);
    }

    // The restart probes on a multi-thread runtime of two workers
    // (`probe_threads = 2`), the first on the default single thread.
    let mut restarted = agent_config(s.addr, spool.path());
    assert_eq!(restarted.agent.probe_threads, 1);
    restarted.agent.probe_threads = 2;
    run_agent_for(restarted, Duration::from_millis(2500)).await;
    let n2 = assert_contiguous(&s.fake.seqs.lock().unwrap());
    assert!(
        n2 > n1 + 2,
        "the restarted agent went on from seq {n1} (now {n2})"
    );
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_retry_after_is_honoured() {
    let s = fake_collector().await;
    let spool = tempfile::tempdir().unwrap();
    // The first 3 posts get 503 + Retry-After: 1.
    s.fake.refuse_first.store(3, Ordering::SeqCst);
    run_agent_for(
        agent_config(s.addr, spool.path()),
        Duration::from_millis(5500),
    )
    .await;
    let n = assert_contiguous(&s.fake.seqs.lock().unwrap());
    assert!(n >= 6, "got {n}");
    assert_eq!(s.fake.refuse_first.load(Ordering::SeqCst), 0);
    assert_eq!(s.fake.duplicates.load(Ordering::SeqCst), 0);
    let sp = Spool::open(spool.path(), SpoolOptions::default()).unwrap();
    assert_eq!(
        sp.unacked(),
        0,
        "everything probed was delivered in the end"
    );
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probing_goes_on_while_the_collector_is_down_and_results_arrive_later() {
    let s = fake_collector().await;
    let spool = tempfile::tempdir().unwrap();
    // First run: learn the assignment (cached in the spool dir).
    run_agent_for(
        agent_config(s.addr, spool.path()),
        Duration::from_millis(1500),
    )
    .await;
    let before = assert_contiguous(&s.fake.seqs.lock().unwrap());

    // Collector answers 500 to everything; the agent restarts meanwhile.
    s.fake.up.store(false, Ordering::SeqCst);
    run_agent_for(
        agent_config(s.addr, spool.path()),
        Duration::from_millis(3000),
    )
    .await;
    let spooled = {
        let sp = Spool::open(spool.path(), SpoolOptions::default()).unwrap();
        assert!(
            sp.unacked() >= 4,
            "probing went on from the cached assignment: {} unacked",
            sp.unacked()
        );
        sp.last_seq()
    };
    assert_eq!(
        assert_contiguous(&s.fake.seqs.lock().unwrap()),
        before,
        "nothing arrived during the outage"
    );

    // Back up: the backlog is replayed in order, with the new results.
    s.fake.up.store(true, Ordering::SeqCst);
    run_agent_for(
        agent_config(s.addr, spool.path()),
        Duration::from_millis(2500),
    )
    .await;
    let after = assert_contiguous(&s.fake.seqs.lock().unwrap());
    assert!(
        after > spooled,
        "backlog ({spooled}) and new results delivered: {after}"
    );
    assert_eq!(s.fake.duplicates.load(Ordering::SeqCst), 0);
    s.stop.cancel();
}

/// The scheduled path carries revocation like `probe` does: a tls check
/// pulled from the collector with `revocation` set reaches a server
/// stapling a revoked answer, and the shipped result says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_results_carry_tls_revocation() {
    use slaprobe_tests::certs::TestCa;
    use slaprobe_tests::http_server::{Route, Routes, TestServer};
    use slaprobe_tests::ocsp::ResponseSpec;
    let ca = TestCa::new("slaprobe Scheduled CA");
    let leaf = ca.localhost();
    let srv = TestServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Routes::new().route("/", Route::ok("ok")),
        Some(leaf.server_config_stapling(ResponseSpec::revoked(&ca, &leaf, Some(1)).build())),
    )
    .await;
    let s = fake_collector().await;
    *s.fake.checks.lock().unwrap() = vec![CheckSpec {
        name: "acme-tls".into(),
        kind: CheckKind::Tls,
        interval: Some("1s".into()),
        timeout: Some("1s".into()),
        host: Some("localhost".into()),
        port: Some(srv.addr().port()),
        ca_pem: Some(ca.pem.clone()),
        revocation: Some("ocsp".into()),
        revocation_required: Some(true),
        ..Default::default()
    }];
    let spool = tempfile::tempdir().unwrap();
    run_agent_for(
        agent_config(s.addr, spool.path()),
        Duration::from_millis(2500),
    )
    .await;
    let results = s.fake.results.lock().unwrap().clone();
    let r = results
        .iter()
        .find(|r| r.check == "acme-tls")
        .unwrap_or_else(|| panic!("no acme-tls result in {results:#?}"));
    assert_eq!(
        r.class(),
        Some(slaprobe_wire::FailureClass::TlsCertRevoked),
        "{r:#?}"
    );
    let rev = r.tls.as_ref().unwrap().revocation.as_ref().unwrap();
    assert_eq!(rev.status, slaprobe_wire::RevocationStatus::Revoked);
    assert_eq!(rev.reason.as_deref(), Some("keyCompromise"));
}

/// The scheduled path runs domain checks assigned by the collector, finding
/// the RDAP server through `[agent] rdap_bootstrap`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_domain_checks_run_on_schedule() {
    let now = slaprobe_wire::Timestamp::now().as_second();
    let rdap = slaprobe_tests::rdap_server::RdapServer::start(now)
        .await
        .unwrap();
    let s = fake_collector().await;
    let domain = |name: &str, domain: &str| CheckSpec {
        name: name.into(),
        kind: CheckKind::Domain,
        interval: Some("1s".into()),
        timeout: Some("1s".into()),
        domain: Some(domain.into()),
        ..Default::default()
    };
    *s.fake.checks.lock().unwrap() = vec![
        domain("dom-ok", "ok.example"),
        domain("dom-held", "held.example"),
    ];
    let spool = tempfile::tempdir().unwrap();
    let boot = spool.path().join("dns.json");
    std::fs::write(
        &boot,
        format!(
            r#"{{"version":"1.0","services":[[["example"],["{}"]]]}}"#,
            rdap.base_url()
        ),
    )
    .unwrap();
    let mut config = agent_config(s.addr, spool.path());
    let raw = RawAgentSection {
        id: Some("ams-1".into()),
        location: Some("ams".into()),
        rdap_bootstrap: Some(boot),
        ..Default::default()
    };
    config.agent.rdap_bootstrap = AgentConfig::from_raw(
        RawAgentFile {
            agent: raw,
            checks: vec![],
        },
        Path::new("test-agent.toml"),
    )
    .unwrap()
    .agent
    .rdap_bootstrap;
    run_agent_for(config, Duration::from_millis(2500)).await;
    let latest = s.fake.latest.lock().unwrap().clone();
    let ok = latest.get("dom-ok").expect("dom-ok results arrived");
    assert!(ok.success, "{ok:?}");
    assert!(ok.domain.as_ref().unwrap().expires_at.is_some());
    let held = latest.get("dom-held").expect("dom-held results arrived");
    assert_eq!(held.class(), Some(slaprobe_wire::FailureClass::DomainHeld));
    assert!(rdap.requests().len() >= 2);
    s.stop.cancel();
}
