//! The whole pipeline with the real binaries, as a new user would run it:
//! an agent with no local checks pulls three checks from a collector (https
//! with a test CA, dns against an authoritative test server, a failing http),
//! probes local targets and streams results; `/metrics` then shows each named
//! metric with the right labels and values, `promtool check metrics` passes;
//! bad tokens, cross-agent posts, malformed JSON and duplicate seqs get the
//! answers of DESIGN.md §5; SIGTERM stops the agent with nothing missing.

use std::path::Path;
use std::time::Duration;

use slaprobe_tests::certs::TestCa;
use slaprobe_tests::dns_server::DnsServer;
use slaprobe_tests::http_server::{Route, Routes, TestServer, refused_addr};
use slaprobe_tests::procs::{Proc, bin_path, free_port, http_get, http_request, wait_for};
use slaprobe_tests::prom::{promtool_check_metrics, sha256_hex, value};
use slaprobe_tests::results::{TestResult, batch};

const AMS_TOKEN: &str = "ams-token-0123456789";
const NYC_TOKEN: &str = "nyc-token-9876543210";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A result of `check` probing `target` (the check's URL).
fn result_json(agent: &str, location: &str, seq: u64, check: &str, target: &str) -> TestResult {
    TestResult::new(agent, location, seq, check).target(target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pulls_checks_streams_to_collector_and_metrics_are_right() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Targets: https with a test CA, an authoritative DNS server, a refused port.
    let ca = TestCa::new("slaprobe pipeline CA");
    let ca_file = ca.write_pem(dir, "ca.pem");
    let cert = ca.localhost();
    let https = TestServer::https(Routes::new().route("/", Route::ok("Acme welcome")), &cert).await;
    let dns = DnsServer::start().await.unwrap();
    let dead = refused_addr();

    let port = free_port();
    let collector_cfg = write(
        dir,
        "collector.toml",
        &format!(
            r#"
[collector]
public_read = true
listen = "127.0.0.1:{port}"
data_dir = "{data}"

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{ams_hash}"

[[agents]]
id = "nyc-1"
location = "nyc"
token_sha256 = "{nyc_hash}"

[[checks]]
name = "acme-https"
kind = "http"
interval = "1s"
timeout = "1s"
url = "{https_url}"
ca_file = "{ca_file}"
body_contains = "Acme"

[[checks]]
name = "acme-dns"
kind = "dns"
interval = "1s"
timeout = "1s"
query = "www.acme.test"
record_type = "A"
nameservers = ["{dns_addr}"]
expect_answers = ["192.0.2.10", "192.0.2.11"]

[[checks]]
name = "acme-down"
kind = "http"
interval = "1s"
timeout = "1s"
url = "http://{dead}/"

[[checks]]
name = "nyc-only"
kind = "http"
url = "http://{dead}/"
locations = ["nyc"]
"#,
            data = dir.join("data").display(),
            ams_hash = sha256_hex(AMS_TOKEN),
            nyc_hash = sha256_hex(NYC_TOKEN),
            https_url = https.url("/"),
            ca_file = ca_file.display(),
            dns_addr = dns.addr(),
        ),
    );
    let agent_cfg = write(
        dir,
        "agent.toml",
        &format!(
            r#"
[agent]
id = "ams-1"
location = "ams"
collector = "http://127.0.0.1:{port}"
token = "{AMS_TOKEN}"
spool_dir = "{spool}"
batch_interval = "200ms"
checks_refresh = "2s"
"#,
            spool = dir.join("spool").display()
        ),
    );

    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut collector = Proc::start(
        "collector",
        &bin_path("slaprobe-collector"),
        &["run", "--config", &collector_cfg],
        &[],
        &logs,
    );
    wait_for("collector /readyz", Duration::from_secs(30), || {
        http_get(port, "/readyz", None).filter(|(s, _)| *s == 200)
    });

    // The agent is assigned what runs at "ams" only.
    let (status, body) = http_get(port, "/api/v1/checks", Some(AMS_TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    let assigned: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = assigned["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["acme-dns", "acme-down", "acme-https"]);
    assert!(
        assigned["checks"][0].get("ca_pem").is_some()
            || assigned["checks"].to_string().contains("BEGIN CERTIFICATE")
    );

    let mut agent = Proc::start(
        "agent",
        &bin_path("slaprobe-agent"),
        &["run", "--config", &agent_cfg],
        &[],
        &logs,
    );

    // Results flow: at least two rounds of the three checks.
    let agents = wait_for("6 results stored", Duration::from_secs(30), || {
        let (s, body) = http_get(port, "/api/v1/agents", None)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let ams = v.as_array()?.iter().find(|a| a["id"] == "ams-1")?.clone();
        (s == 200 && ams["results"].as_u64()? >= 6).then_some(ams)
    });
    assert_eq!(agents["location"], "ams");
    assert_eq!(agents["missing"], 0);

    // Metrics: each named metric with the right labels and values.
    let (status, text) = http_get(port, "/metrics", None).unwrap();
    assert_eq!(status, 200);
    let ams = |check: &'static str| vec![("check", check), ("location", "ams")];
    assert_eq!(
        value(&text, "slaprobe_probe_success", &ams("acme-https")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "slaprobe_probe_success", &ams("acme-dns")),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "slaprobe_probe_success", &ams("acme-down")),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "slaprobe_http_status_code", &ams("acme-https")),
        Some(200.0)
    );
    assert!(value(&text, "slaprobe_probes_total", &ams("acme-https")).unwrap() >= 2.0);
    assert!(
        value(
            &text,
            "slaprobe_probe_failures_total",
            &[
                ("check", "acme-down"),
                ("location", "ams"),
                ("class", "connect_refused")
            ]
        )
        .unwrap()
            >= 2.0
    );
    let expiry = value(
        &text,
        "slaprobe_tls_cert_expiry_timestamp_seconds",
        &ams("acme-https"),
    )
    .unwrap();
    assert!(
        (expiry - cert.not_after as f64).abs() < 2.0,
        "expiry {expiry} vs cert {}",
        cert.not_after
    );
    for phase in [
        "total",
        "resolve",
        "connect",
        "tls",
        "processing",
        "transfer",
    ] {
        let v = value(
            &text,
            "slaprobe_probe_duration_seconds",
            &[
                ("check", "acme-https"),
                ("location", "ams"),
                ("phase", phase),
            ],
        );
        assert!(
            v.is_some_and(|v| (0.0..1.0).contains(&v)),
            "phase {phase}: {v:?}"
        );
    }
    assert_eq!(
        value(
            &text,
            "slaprobe_check_info",
            &[
                ("check", "acme-https"),
                ("kind", "http"),
                ("target", https.url("/").as_str())
            ]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            "slaprobe_ingest_results_total",
            &[("agent", "ams-1")]
        )
        .unwrap()
            >= 6.0
    );
    let last_seen = value(
        &text,
        "slaprobe_agent_last_seen_timestamp_seconds",
        &[("agent", "ams-1"), ("location", "ams")],
    )
    .unwrap();
    assert!((last_seen - jiff::Timestamp::now().as_second() as f64).abs() < 30.0);
    assert!(text.contains("slaprobe_build_info{"));
    promtool_check_metrics(&text);

    // Ingest answers (DESIGN.md §5).
    let post = |token: &str, body: &str| {
        http_request(
            port,
            "POST",
            "/api/v1/results",
            Some(token),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap()
    };
    let batch = |agent: &str, results: &[TestResult]| batch(agent, results.iter().cloned());
    let (s, body) = post(
        "wrong-token",
        &batch(
            "ams-1",
            &[result_json(
                "ams-1",
                "ams",
                999_999,
                "acme-https",
                &https.url("/"),
            )],
        ),
    );
    assert_eq!(s, 401, "{body}");
    let (s, body) = post(
        NYC_TOKEN,
        &batch(
            "ams-1",
            &[result_json(
                "ams-1",
                "ams",
                999_999,
                "acme-https",
                &https.url("/"),
            )],
        ),
    );
    assert_eq!(s, 403, "{body}");
    let (s, body) = post(
        NYC_TOKEN,
        r#"{"agent":"nyc-1","results":[{"seq":1,"agent":"nyc-1""#,
    );
    assert_eq!(s, 400, "{body}");
    assert!(!body.is_empty(), "a 400 says what is wrong");
    let (s, body) = post(
        NYC_TOKEN,
        &batch(
            "nyc-1",
            &[result_json("nyc-1", "nyc", 1, "no-such-check", "http://x/")],
        ),
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("no-such-check"), "{body}");

    // Duplicates: the same (agent, seq) twice is stored once and counted.
    let one = batch(
        "nyc-1",
        &[result_json(
            "nyc-1",
            "nyc",
            1,
            "nyc-only",
            &format!("http://{dead}/"),
        )],
    );
    let (s, body) = post(NYC_TOKEN, &one);
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["acked"],
        1
    );
    let (s, body) = post(NYC_TOKEN, &one);
    assert_eq!(s, 200, "{body}");
    let (_, body) = http_get(port, "/api/v1/agents", None).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let nyc = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "nyc-1")
        .unwrap();
    assert_eq!(nyc["results"], 1);
    let (_, text) = http_get(port, "/metrics", None).unwrap();
    assert_eq!(
        value(
            &text,
            "slaprobe_ingest_duplicates_total",
            &[("agent", "nyc-1")]
        ),
        Some(1.0)
    );

    // SIGTERM: the agent flushes and exits 0; every seq it made is stored.
    assert_eq!(
        agent.stop(Duration::from_secs(20)),
        Some(0),
        "agent exits 0 on SIGTERM"
    );
    let (_, body) = http_get(port, "/api/v1/agents", None).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ams = v
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "ams-1")
        .unwrap();
    assert_eq!(ams["missing"], 0, "{ams}");
    assert_eq!(ams["results"], ams["max_seq"], "{ams}");
    let spool = slaprobe_agent::spool::Spool::open(&dir.join("spool"), Default::default()).unwrap();
    assert_eq!(spool.unacked(), 0, "everything acked before exit");
    assert_eq!(Some(spool.last_seq()), ams["max_seq"].as_u64());

    assert_eq!(
        collector.stop(Duration::from_secs(20)),
        Some(0),
        "collector exits 0 on SIGTERM"
    );
}
