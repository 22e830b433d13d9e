//! All-in-one: `[embedded_agent]` makes one collector process probe and
//! store by itself (the quickstart's shape), and every example collector
//! config in `config/` passes `check-config`.

use std::path::Path;
use std::time::Duration;

use slaprobe_tests::http_server::{Route, Routes, TestServer};
use slaprobe_tests::procs::{Proc, bin_path, free_port, http_get, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_agent_probes_and_streams_into_its_own_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let site = TestServer::http(Routes::new().route("/", Route::ok("hello"))).await;
    // The default canary asks a resolver: here an in-process one on loopback
    // (tests never ask the system's).
    let dns = slaprobe_tests::dns_server::DnsServer::start()
        .await
        .unwrap();
    let port = free_port();
    let cfg = dir.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[collector]
public_read = true
listen = "127.0.0.1:{port}"
data_dir = "data"

[embedded_agent]
location = "local"
canary_query = "acme.test"
canary_nameservers = ["{dns}"]

[[checks]]
name = "site"
kind = "http"
interval = "1s"
timeout = "1s"
url = "{url}"
body_contains = "hello"
"#,
            url = site.url("/"),
            dns = dns.addr()
        ),
    )
    .unwrap();
    let mut collector = Proc::start(
        "collector",
        &bin_path("slaprobe-collector"),
        &["run", "--config", cfg.to_str().unwrap()],
        &[],
        dir,
    );
    let agent = wait_for(
        "3 results from the embedded agent",
        Duration::from_secs(30),
        || {
            let (_, body) = http_get(port, "/api/v1/agents", None)?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let a = v
                .as_array()?
                .iter()
                .find(|a| a["id"] == "embedded")?
                .clone();
            (a["results"].as_u64()? >= 3).then_some(a)
        },
    );
    assert_eq!(agent["location"], "local");
    let (_, metrics) = http_get(port, "/metrics", None).unwrap();
    assert!(
        metrics.contains(r#"slaprobe_probe_success{check="site",location="local"} 1"#),
        "{metrics}"
    );
    // The default canary ran (its first run lands within its 30 s interval).
    wait_for(
        "the embedded agent's canary result",
        Duration::from_secs(40),
        || {
            let (_, m) = http_get(port, "/metrics", None)?;
            m.contains(r#"slaprobe_probe_success{check="embedded-canary",location="local"} 1"#)
                .then_some(())
        },
    );

    assert_eq!(
        collector.stop(Duration::from_secs(40)),
        Some(0),
        "exits 0 on SIGTERM"
    );
    // The embedded agent stopped first and flushed: nothing left unacked.
    let spool =
        slaprobe_agent::spool::Spool::open(&dir.join("data/embedded-agent"), Default::default())
            .unwrap();
    assert_eq!(spool.unacked(), 0);
    assert!(spool.last_seq() >= 3);
}

#[test]
fn every_collector_example_in_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "toml")
            && text.lines().any(|l| l.trim() == "[collector]")
        {
            let out = std::process::Command::new(bin_path("slaprobe-collector"))
                .args(["check-config", "--config", path.to_str().unwrap()])
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{} must be valid:\n{}{}",
                path.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected config/collector.toml and config/quickstart.toml, found {checked}"
    );
}
