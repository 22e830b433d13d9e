//! The collector's connections under slow and hostile clients: half-open
//! connections are cut by the header-read timeout while a real agent keeps
//! being acked, idle keep-alive connections are closed, a body that does not
//! arrive gets 408, `max_connections` refuses (and counts) what is beyond it,
//! and a request refused before its body is read (401, 413, 429) reaches a
//! plain blocking client that sends its whole body first.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use slaprobe_agent::config::{AgentConfig, RawAgentFile, RawAgentSection, Secret};
use slaprobe_collector::ServerOptions;
use slaprobe_collector::conn::ConnLimits;
use slaprobe_collector::ingest::IngestLimits;
use slaprobe_tests::collector::{TestCollector, write_config};
use slaprobe_tests::http_server::{Route, Routes, TestServer};
use slaprobe_tests::prom::sha256_hex;
use slaprobe_tests::results::{TestResult, batch};
use slaprobe_tests::wait::wait_until;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "conn-test-token-ams-1";

fn config_toml(target: &str, extra: &str) -> String {
    format!(
        r#"
[collector]
public_read = true
listen = "127.0.0.1:0"
data_dir = "data"
{extra}

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{}"

[[checks]]
name = "c"
kind = "http"
interval = "1s"
timeout = "1s"
url = "{target}"
"#,
        sha256_hex(TOKEN)
    )
}

fn options(conn: ConnLimits) -> ServerOptions {
    ServerOptions {
        conn: Some(conn),
        ..ServerOptions::default()
    }
}

/// The results the collector holds from ams-1.
async fn stored(c: &TestCollector) -> u64 {
    let (status, body) = c.get("/api/v1/agents", None).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "ams-1")
        .and_then(|a| a["results"].as_u64())
        .unwrap_or(0)
}

/// Makes room for `n` open files in this process: both ends of every test
/// connection live here. Raises the soft limit with prlimit(1) (util-linux)
/// when it is lower (no unsafe code for setrlimit).
fn ensure_open_files(n: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if soft >= n {
        return;
    }
    let out = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={n}:"))
        .output()
        .expect("prlimit runs");
    assert!(
        out.status.success(),
        "cannot raise the open-file limit to {n} (soft {soft}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_cut_while_an_agent_is_acked() {
    ensure_open_files(8192);
    let tmp = tempfile::tempdir().unwrap();
    let target = TestServer::http(Routes::new().route("/", Route::ok("fine"))).await;
    let path = write_config(tmp.path(), &config_toml(&target.url("/"), ""));
    // The defaults: a 10 s header-read timeout, 4096 connections.
    let c = TestCollector::start(&path).await;

    let raw = RawAgentFile {
        agent: RawAgentSection {
            id: Some("ams-1".into()),
            location: Some("ams".into()),
            collector: Some(c.url("")),
            token: Some(Secret::new(TOKEN)),
            spool_dir: Some(tmp.path().join("spool")),
            batch_interval: Some("200ms".into()),
            checks_refresh: Some("1s".into()),
            ..Default::default()
        },
        checks: vec![],
    };
    let agent = AgentConfig::from_raw(raw, Path::new("agent.toml")).unwrap();
    let agent_stop = CancellationToken::new();
    let agent_task = tokio::spawn(slaprobe_agent::run(agent, agent_stop.clone()));

    // 2,000 connections that send half a request line and wait.
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..2000 {
        let mut s = tokio::net::TcpStream::connect(c.addr).await.unwrap();
        s.write_all(b"GET /api/v1/agen").await.unwrap();
        held.push(tokio::spawn(async move {
            let mut buf = [0u8; 64];
            // EOF or a reset: either way the collector let go.
            let _ = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await;
            Instant::now()
        }));
    }
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        c.conn_stats.open() >= 2000,
        "the collector holds them until the timeout: {}",
        c.conn_stats.open()
    );
    let before = stored(&c).await;
    // While they are held, the agent's batches keep being acked.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = stored(&c).await;
    assert!(
        during > before,
        "agent results kept arriving under 2,000 half-open connections ({before} -> {during})"
    );
    let mut last = started;
    for h in held {
        last = last.max(h.await.unwrap());
    }
    let closed_after = last.duration_since(started);
    println!(
        "2000 half-open connections opened in {opened:?}, all closed {closed_after:?} after the first"
    );
    assert!(
        closed_after < Duration::from_secs(15),
        "closed within 15 s, took {closed_after:?}"
    );
    assert!(
        closed_after >= Duration::from_secs(9),
        "not before the 10 s timeout: {closed_after:?}"
    );
    let (_, header, _) = c.conn_stats.timeouts();
    assert!(header >= 2000, "counted: {header}");
    let (_, metrics) = c.get("/metrics", None).await;
    assert!(
        metrics.contains("slaprobe_collector_connection_timeouts_total{phase=\"header\"}"),
        "{metrics}"
    );

    agent_stop.cancel();
    agent_task.await.unwrap().unwrap();
    assert!(stored(&c).await > during);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_and_slow_bodies_are_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_config(tmp.path(), &config_toml("http://127.0.0.1:9/", ""));
    let c = TestCollector::start_with(
        &path,
        options(ConnLimits {
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(1),
            ..ConnLimits::default()
        }),
    )
    .await;

    // Keep-alive: one request answered, then the idle connection is closed.
    let mut s = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let t = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("idle connection closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without another response");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // A body that never arrives: 408 after the body-read timeout.
    let mut s = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/results HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n{{\"agent\""
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(c.conn_stats.timeouts().2, 1);
    let (_, metrics) = c.get("/metrics", None).await;
    assert!(
        metrics.contains("slaprobe_ingest_rejected_total{reason=\"body_timeout\"} 1"),
        "{metrics}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_refused_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_config(
        tmp.path(),
        &config_toml("http://127.0.0.1:9/", "max_connections = 8"),
    );
    let c = TestCollector::start(&path).await;
    assert_eq!(c.config.collector.max_connections, 8);
    // reqwest's pool may hold one from the readiness probe.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(c.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut got)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("max_connections"), "{text}");
    assert!(c.conn_stats.refused() >= 1);
    drop(idle);
    // Slots come back once those close.
    let metrics = wait_until(
        "a connection slot to come back",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let r = c.client.get(c.url("/metrics")).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            Some(r.text().await.unwrap())
        },
    )
    .await;
    let refused = slaprobe_tests::prom::value(
        &metrics,
        "slaprobe_collector_connections_refused_total",
        &[],
    )
    .unwrap();
    assert!(refused >= 1.0, "{metrics}");
    c.stop().await;
}

/// A plain blocking client that writes its whole request before reading a
/// byte of the answer: `(status, body)`, or the I/O error it hit.
fn send_whole_then_read(port: u16, token: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let head = format!(
        "POST /api/v1/results HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refusals_reach_a_client_that_sends_its_whole_body_first() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_config(
        tmp.path(),
        &config_toml(
            "http://127.0.0.1:9/",
            "max_results_per_second_per_agent = 1",
        ),
    );
    let c = TestCollector::start_with(
        &path,
        ServerOptions {
            limits: IngestLimits {
                max_body_bytes: 1 << 20,
                ..IngestLimits::default()
            },
            ..ServerOptions::default()
        },
    )
    .await;
    let port = c.port();
    // Several MiB: far more than the socket buffers hold, so the collector
    // answers while the client is still writing.
    let padding = format!(
        "{{\"agent\":\"ams-1\",\"results\":[],\"pad\":\"{}\"}}",
        "x".repeat(4 << 20)
    );

    let body = padding.clone();
    let (status, text) =
        tokio::task::spawn_blocking(move || send_whole_then_read(port, "wrong", body.as_bytes()))
            .await
            .unwrap()
            .expect("401 readable, not a reset");
    assert_eq!(status, 401, "{text}");

    let body = padding.clone();
    let (status, text) =
        tokio::task::spawn_blocking(move || send_whole_then_read(port, TOKEN, body.as_bytes()))
            .await
            .unwrap()
            .expect("413 readable, not a reset");
    assert_eq!(status, 413, "{text}");

    // 11 results put the bucket (burst 10) in debt; the next request gets 429.
    let results: Vec<_> = (1..=11)
        .map(|seq| TestResult::new("ams-1", "ams", seq, "c").target("http://127.0.0.1:9/"))
        .collect();
    let (status, ack) = c.post_results(TOKEN, batch("ams-1", results)).await;
    assert_eq!(status, 200, "{ack}");
    let mut big = batch(
        "ams-1",
        [TestResult::new("ams-1", "ams", 12, "c").target("http://127.0.0.1:9/")],
    );
    big.push_str(&" ".repeat(900_000));
    let (status, text) =
        tokio::task::spawn_blocking(move || send_whole_then_read(port, TOKEN, big.as_bytes()))
            .await
            .unwrap()
            .expect("429 readable, not a reset");
    assert_eq!(status, 429, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    c.stop().await;
}
