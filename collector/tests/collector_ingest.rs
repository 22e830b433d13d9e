//! The collector over real HTTP: ingest (auth, limits, validation, encodings,
//! duplicates), the read API, `/metrics` (values and `promtool check metrics`),
//! restarts, and a throughput figure.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};
use slaprobe_collector::ServerOptions;
use slaprobe_collector::ingest::IngestLimits;
use slaprobe_tests::collector::TestCollector;
use slaprobe_tests::prom::sha256_hex;
use slaprobe_tests::results::TestResult;
use slaprobe_wire::Timestamp;

const AMS_TOKEN: &str = "token-of-ams-1";
const NYC_TOKEN: &str = "token-of-nyc-1";

/// Writes a collector config (and a CA file) into `dir`.
fn write_config(dir: &Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let toml = format!(
        r#"
[collector]
public_read = true
listen = "127.0.0.1:0"
data_dir = "data"
max_result_age = "2d"

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{ams}"

[[agents]]
id = "nyc-1"
location = "nyc"
token_sha256 = "{nyc}"

[[checks]]
name = "acme-www"
kind = "http"
url = "https://www.acme.example/"
ca_file = "ca.pem"

[[checks]]
name = "acme-dns"
kind = "dns"
query = "www.acme.example"
locations = ["nyc"]

[[checks]]
name = "acme-tls"
kind = "tls"
host = "www.acme.example"
locations = ["ams", "nyc"]

[[checks]]
name = "acme-page"
kind = "page"
url = "https://www.acme.example/"

[[contracts]]
name = "hostco-acme"
vendor = "HostCo"
checks = ["acme-www"]
"#,
        ams = sha256_hex(AMS_TOKEN),
        nyc = sha256_hex(NYC_TOKEN)
    );
    let path = dir.join("collector.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// The shared [`TestCollector`] plus this file's request helpers.
struct Harness {
    addr: SocketAddr,
    client: reqwest::Client,
    c: TestCollector,
}

impl Harness {
    async fn start(dir: &Path, options: ServerOptions) -> Harness {
        let c = TestCollector::start_with(&dir.join("collector.toml"), options).await;
        Harness {
            addr: c.addr,
            client: c.client.clone(),
            c,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(
        &self,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
        encoding: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(self.url("/api/v1/results"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post_batch(&self, token: &str, agent: &str, results: Vec<Value>) -> (u16, Value) {
        self.post(
            Some(token),
            json!({ "agent": agent, "results": results }).to_string(),
            None,
        )
        .await
    }

    async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn metrics(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    async fn stop(self) {
        self.c.stop().await;
    }
}

/// A result as an agent sends it; `started` is seconds before now.
fn result(
    agent: &str,
    location: &str,
    seq: u64,
    check: &str,
    kind: &str,
    ago_s: i64,
    success: bool,
) -> Value {
    // Each kind's target as the check defines it: the collector compares.
    let target = match kind {
        "dns" => "www.acme.example A",
        "tls" => "www.acme.example:443",
        _ => "https://www.acme.example/",
    };
    let mut r = TestResult::new(agent, location, seq, check)
        .kind(kind)
        .target(target)
        .ago(ago_s)
        .duration(0.183);
    if !success {
        r = r.failure("tls_cert_expired", "certificate expired");
    }
    let mut r = r.json();
    match kind {
        "http" => {
            r["http"] = json!({"status": 200, "version": "HTTP/1.1", "redirects": 0, "body_bytes": 27019,
                "phases": {"resolve": 0.001, "connect": 0.002, "tls": 0.011, "processing": 0.09, "transfer": 0.004}});
            r["tls"] = json!({"not_after": "2027-01-01T00:00:00Z", "earliest_not_after": "2026-12-31T00:00:00Z", "chain_valid": true, "hostname_valid": true});
        }
        "tls" => {
            r["tls"] = json!({"not_after": "2027-01-01T00:00:00Z", "chain_valid": true, "hostname_valid": true})
        }
        "dns" => {
            r["dns"] = json!({"nameserver": "127.0.0.1:5353", "rcode": "NOERROR", "answers": ["192.0.2.10"]})
        }
        "page" => {
            r["page"] = json!({"document_bytes": 27019, "total_bytes": 412000, "resources": 23, "failed_resources": 0, "load_seconds": 0.84})
        }
        _ => {}
    }
    r
}

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    })
}

#[tokio::test]
async fn results_flow_are_stored_whole_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    assert_eq!(
        h.client
            .get(h.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Odd spacing on purpose: the store must keep the bytes as sent.
    let r1 = result("ams-1", "ams", 1, "acme-www", "http", 30, true)
        .to_string()
        .replace(",\"", ", \"");
    let r2 = result("ams-1", "ams", 2, "acme-www", "http", 10, false).to_string();
    let r4 = result("ams-1", "ams", 4, "acme-page", "page", 5, true).to_string();
    let body = format!("{{\"agent\":\"ams-1\",\"results\":[ {r1} ,{r2},{r4}]}}");
    let (status, ack) = h.post(Some(AMS_TOKEN), body, None).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack, json!({"acked": 4}));

    // Raw JSON kept byte for byte, in (agent, seq) order.
    let data = dir.path().join("data");
    let stored = tokio::task::spawn_blocking(move || {
        slaprobe_collector::store::Reader::open_sqlite(&data)
            .unwrap()
            .results_between(
                &["acme-www".to_string(), "acme-page".to_string()],
                0,
                i64::MAX,
            )
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        stored.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 4]
    );
    assert_eq!(stored[0].raw, r1);
    assert_eq!(stored[1].class.as_deref(), Some("tls_cert_expired"));

    // Agents: 1, 2, 4 received → 1 missing.
    let (status, agents) = h.get_json("/api/v1/agents", None).await;
    assert_eq!(status, 200);
    let ams = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "ams-1")
        .unwrap()
        .clone();
    assert_eq!(
        (
            ams["results"].as_u64(),
            ams["max_seq"].as_u64(),
            ams["missing"].as_u64()
        ),
        (Some(3), Some(4), Some(1))
    );
    assert_eq!(ams["location"], "ams");
    assert!(ams["last_seen"].is_string());
    let nyc = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "nyc-1")
        .unwrap()
        .clone();
    assert_eq!(
        (nyc["results"].as_u64(), nyc["last_seen"].clone()),
        (Some(0), Value::Null)
    );

    // Metrics reflect the latest result per (check, location) and the counts.
    let m = h.metrics().await;
    let www = r#"check="acme-www",location="ams""#;
    assert_eq!(
        metric_value(&m, &format!("slaprobe_probe_success{{{www}}}")),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        metric_value(&m, &format!("slaprobe_probes_total{{{www}}}")),
        Some(2.0)
    );
    assert_eq!(
        metric_value(
            &m,
            &format!("slaprobe_probe_failures_total{{{www},class=\"tls_cert_expired\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &m,
            &format!("slaprobe_probe_duration_seconds{{{www},phase=\"total\"}}")
        ),
        Some(0.183)
    );
    assert_eq!(
        metric_value(
            &m,
            &format!("slaprobe_probe_duration_seconds{{{www},phase=\"processing\"}}")
        ),
        Some(0.09)
    );
    assert_eq!(
        metric_value(&m, &format!("slaprobe_http_status_code{{{www}}}")),
        Some(200.0)
    );
    let expiry = Timestamp::from_second(1_798_675_200).unwrap(); // 2026-12-31T00:00:00Z, the earliest in the chain
    assert_eq!(expiry.to_string(), "2026-12-31T00:00:00Z");
    assert_eq!(
        metric_value(
            &m,
            &format!("slaprobe_tls_cert_expiry_timestamp_seconds{{{www}}}")
        ),
        Some(1_798_675_200.0)
    );
    let page = r#"check="acme-page",location="ams""#;
    assert_eq!(
        metric_value(&m, &format!("slaprobe_page_bytes{{{page}}}")),
        Some(412_000.0)
    );
    assert_eq!(
        metric_value(&m, &format!("slaprobe_page_resources{{{page}}}")),
        Some(23.0)
    );
    assert_eq!(
        metric_value(&m, &format!("slaprobe_page_load_seconds{{{page}}}")),
        Some(0.84)
    );
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_check_info{check="acme-www",kind="http",target="https://www.acme.example/"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_results_total{agent="ams-1"}"#),
        Some(3.0)
    );
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_results_total{agent="nyc-1"}"#),
        Some(0.0)
    );
    assert!(
        m.contains(r#"slaprobe_agent_last_seen_timestamp_seconds{agent="ams-1",location="ams"}"#)
    );
    assert!(m.contains(&format!(
        "slaprobe_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));

    // An older result arriving later (a replay) counts but does not move the gauges back.
    let (status, _) = h
        .post_batch(
            AMS_TOKEN,
            "ams-1",
            vec![result("ams-1", "ams", 3, "acme-www", "http", 60, true)],
        )
        .await;
    assert_eq!(status, 200);
    let m = h.metrics().await;
    assert_eq!(
        metric_value(&m, &format!("slaprobe_probe_success{{{www}}}")),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&m, &format!("slaprobe_probes_total{{{www}}}")),
        Some(3.0)
    );
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    assert_eq!(agents[0]["missing"], 0);
    h.stop().await;
}

#[tokio::test]
async fn auth_and_agent_identity() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let batch = || {
        json!({"agent": "ams-1", "results": [result("ams-1", "ams", 1, "acme-www", "http", 1, true)]}).to_string()
    };

    let resp = h
        .client
        .post(h.url("/api/v1/results"))
        .body(batch())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let (status, body) = h.post(Some("not-a-token"), batch(), None).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.to_string().contains("not-a-token"));

    // nyc-1's token, ams-1's batch.
    let (status, body) = h.post(Some(NYC_TOKEN), batch(), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("agent:"),
        "{body}"
    );
    // Right envelope, a result of another agent inside.
    let mixed = json!({"agent": "ams-1", "results": [
        result("ams-1", "ams", 1, "acme-www", "http", 1, true),
        result("nyc-1", "nyc", 2, "acme-www", "http", 1, true)]});
    let (status, body) = h.post(Some(AMS_TOKEN), mixed.to_string(), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("results[1].agent:"),
        "{body}"
    );

    // Checks need a token too.
    assert_eq!(h.get_json("/api/v1/checks", None).await.0, 401);
    assert_eq!(h.get_json("/api/v1/checks", Some("nope")).await.0, 401);

    // Nothing was stored by any of the above.
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    assert!(
        agents.as_array().unwrap().iter().all(|a| a["results"] == 0),
        "{agents}"
    );
    let m = h.metrics().await;
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_ingest_rejected_total{reason="unauthorized"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_rejected_total{reason="forbidden"}"#),
        Some(2.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_requests_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;

    let (status, body) = h
        .post(
            Some(AMS_TOKEN),
            "{\"agent\": \"ams-1\", \"results\": [",
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("line 1 column"),
        "{body}"
    );

    let cases: Vec<(Value, &str, &str)> = vec![
        (
            {
                let mut r = result("ams-1", "ams", 1, "acme-www", "http", 1, true);
                r["started_at"] = json!("yesterday");
                r
            },
            "results[1].started_at:",
            "malformed",
        ),
        (
            {
                let mut r = result("ams-1", "ams", 1, "acme-www", "http", 1, true);
                r.as_object_mut().unwrap().remove("seq");
                r
            },
            "results[1]: missing field `seq`",
            "malformed",
        ),
        (
            {
                let mut r = result("ams-1", "ams", 1, "acme-www", "http", 1, true);
                r["http"]["phases"]["tls"] = json!("fast");
                r
            },
            "results[1].http.phases.tls:",
            "malformed",
        ),
        (
            result("ams-1", "ams", 1, "acme-nope", "http", 1, true),
            "results[1].check:",
            "unknown_check",
        ),
        (
            result("ams-1", "ams", 1, "acme-www", "http", 3 * 86_400, true),
            "results[1].started_at:",
            "too_old",
        ),
        (
            result("ams-1", "ams", 1, "acme-www", "http", -3600, true),
            "results[1].started_at:",
            "clock_skew",
        ),
        (
            result("ams-1", "ams", 1, "acme-www", "dns", 1, true),
            "results[1].kind:",
            "invalid",
        ),
        (
            result("ams-1", "nyc", 1, "acme-www", "http", 1, true),
            "results[1].location:",
            "invalid",
        ),
        (
            result("ams-1", "ams", 0, "acme-www", "http", 1, true),
            "results[1].seq:",
            "invalid",
        ),
        // acme-dns runs in nyc only.
        (
            result("ams-1", "ams", 1, "acme-dns", "dns", 1, true),
            "results[1].check: check \"acme-dns\" does not run at location \"ams\"",
            "not_assigned",
        ),
        (
            {
                let mut r = result("ams-1", "ams", 1, "acme-www", "http", 1, true);
                r["target"] = json!("https://other-client.example/");
                r
            },
            "results[1].target: \"https://other-client.example/\" but check \"acme-www\" probes",
            "wrong_target",
        ),
        (
            result("ams-1", "ams", 1, "acme-www", "http", 1, false)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o["failure"]["message"] = json!("x".repeat(70_000));
                    Value::Object(o)
                })
                .unwrap(),
            "results[1]: 705",
            "too_large",
        ),
        (
            result("ams-1", "ams", 1_000_000_001, "acme-www", "http", 1, true),
            "results[1].seq: 1000000001 is more than 1000000000 above the agent's highest stored seq 0",
            "seq_jump",
        ),
    ];
    for (bad, prefix, reason) in &cases {
        let good = result("ams-1", "ams", 7, "acme-www", "http", 1, true);
        let (status, body) = h
            .post_batch(AMS_TOKEN, "ams-1", vec![good, bad.clone()])
            .await;
        assert_eq!(status, 400, "{prefix}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.starts_with(prefix), "expected {prefix:?}, got {msg:?}");
        assert_eq!(body["reason"], *reason, "{body}");
    }
    // A small clock skew is tolerated.
    let (status, body) = h
        .post_batch(
            AMS_TOKEN,
            "ams-1",
            vec![result("ams-1", "ams", 9, "acme-www", "http", -60, true)],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The whole batch was refused each time: only seq 9 is stored.
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    assert_eq!(agents[0]["results"], 1, "{agents}");
    let m = h.metrics().await;
    for reason in [
        "malformed",
        "unknown_check",
        "too_old",
        "clock_skew",
        "invalid",
        "not_assigned",
        "wrong_target",
        "too_large",
        "seq_jump",
    ] {
        let want = 1 + cases.iter().filter(|c| c.2 == reason).count() as u64
            - u64::from(reason != "malformed");
        assert_eq!(
            metric_value(
                &m,
                &format!("slaprobe_ingest_rejected_total{{reason=\"{reason}\"}}")
            ),
            Some(want as f64),
            "{reason}"
        );
    }
    let (status, _) = h.post(Some(AMS_TOKEN), "{}", Some("br")).await;
    assert_eq!(status, 415);

    // The seq bound moves with the agent's highest stored seq (9 now).
    let far = 9 + 1_000_000_000;
    let (status, body) = h
        .post_batch(
            AMS_TOKEN,
            "ams-1",
            vec![result("ams-1", "ams", far, "acme-www", "http", 1, true)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = h
        .post_batch(
            AMS_TOKEN,
            "ams-1",
            vec![result(
                "ams-1",
                "ams",
                far + 1_000_000_001,
                "acme-www",
                "http",
                1,
                true,
            )],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    h.stop().await;
}

#[tokio::test]
async fn size_limits_answer_413() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let limits = IngestLimits {
        max_body_bytes: 8 << 10,
        max_decoded_bytes: 32 << 10,
        max_results: 5,
        ..Default::default()
    };
    let h = Harness::start(
        dir.path(),
        ServerOptions {
            limits,
            ..Default::default()
        },
    )
    .await;

    // Body over the limit (declared by Content-Length).
    let (status, body) = h.post(Some(AMS_TOKEN), vec![b' '; 9 << 10], None).await;
    assert_eq!(status, 413, "{body}");
    // Same, streamed without a length.
    assert_eq!(post_chunked(h.addr, AMS_TOKEN, 10, 1024).await, 413);
    // Under the limit, chunked is fine (and then merely malformed).
    assert_eq!(post_chunked(h.addr, AMS_TOKEN, 2, 1024).await, 400);
    // A zip bomb: small on the wire, over the decoded cap.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 1 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 8 << 10);
    let (status, body) = h.post(Some(AMS_TOKEN), bomb, Some("gzip")).await;
    assert_eq!(status, 413, "{body}");
    let zbomb = zstd::encode_all(&vec![b' '; 1 << 20][..], 3).unwrap();
    let (status, _) = h.post(Some(AMS_TOKEN), zbomb, Some("zstd")).await;
    assert_eq!(status, 413);
    // Too many results in one batch.
    let many: Vec<Value> = (1..=6).map(|s| json!({"seq": s})).collect();
    let (status, body) = h.post_batch(AMS_TOKEN, "ams-1", many).await;
    assert_eq!(status, 413, "{body}");
    let m = h.metrics().await;
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_rejected_total{reason="too_large"}"#),
        Some(5.0)
    );
    h.stop().await;

    // The default limit refuses a declared 17 MiB body without reading it.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let (status, _) = h.post(Some(AMS_TOKEN), vec![b' '; 17 << 20], None).await;
    assert_eq!(status, 413);
    // ...and takes a batch of several MiB (over axum's 2 MiB default for extractors).
    let big: Vec<Value> = (1..=8000)
        .map(|s| result("ams-1", "ams", s, "acme-www", "http", 5, true))
        .collect();
    let body = json!({"agent": "ams-1", "results": big}).to_string();
    assert!(body.len() > 3 << 20, "{}", body.len());
    assert_eq!(
        h.post(Some(AMS_TOKEN), body, None).await,
        (200, json!({"acked": 8000}))
    );
    h.stop().await;
}

/// POSTs a chunked body (no Content-Length) over a raw socket; returns the status.
async fn post_chunked(addr: SocketAddr, token: &str, chunks: usize, chunk_size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/results HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut req = head.into_bytes();
    for _ in 0..chunks {
        req.extend_from_slice(format!("{chunk_size:x}\r\n").as_bytes());
        req.extend(std::iter::repeat_n(b' ', chunk_size));
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    // The server may answer before reading everything; a failed write is fine.
    let _ = s.write_all(&req).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

#[tokio::test]
async fn duplicates_are_stored_once_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    // An agent resends the spooled bytes exactly: build each result once.
    let made: Vec<Value> = (0..=4)
        .map(|seq| result("ams-1", "ams", seq, "acme-www", "http", 5, true))
        .collect();
    let r = |seq: u64| made[seq as usize].clone();
    assert_eq!(
        h.post_batch(AMS_TOKEN, "ams-1", vec![r(1), r(2)]).await,
        (200, json!({"acked": 2}))
    );
    // The agent never saw the ack and resends, plus one new result.
    assert_eq!(
        h.post_batch(AMS_TOKEN, "ams-1", vec![r(1), r(2), r(3)])
            .await,
        (200, json!({"acked": 3}))
    );
    // The same seq twice in one batch.
    assert_eq!(
        h.post_batch(AMS_TOKEN, "ams-1", vec![r(4), r(4)]).await,
        (200, json!({"acked": 4}))
    );
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    let a = &agents[0];
    assert_eq!(
        (
            a["results"].as_u64(),
            a["max_seq"].as_u64(),
            a["missing"].as_u64(),
            a["duplicates"].as_u64()
        ),
        (Some(4), Some(4), Some(0), Some(3))
    );
    let m = h.metrics().await;
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_duplicates_total{agent="ams-1"}"#),
        Some(3.0)
    );
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_results_total{agent="ams-1"}"#),
        Some(4.0)
    );
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_probes_total{check="acme-www",location="ams"}"#
        ),
        Some(4.0)
    );
    h.stop().await;
}

/// The same (agent, seq) with other bytes is a reused seq: 409 naming the
/// seq and the agent's max_seq, counted, nothing of the batch stored, the
/// stored result untouched.
#[tokio::test]
async fn a_seq_resent_with_other_bytes_is_a_409_conflict() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let first: Vec<Value> = (1..=3)
        .map(|seq| result("ams-1", "ams", seq, "acme-www", "http", 5, true))
        .collect();
    assert_eq!(
        h.post_batch(AMS_TOKEN, "ams-1", first.clone()).await,
        (200, json!({"acked": 3}))
    );
    // A restarted agent that lost its spool state sends new results as 2..=4.
    let reused: Vec<Value> = (2..=4)
        .map(|seq| result("ams-1", "ams", seq, "acme-www", "http", 1, false))
        .collect();
    let (status, body) = h.post_batch(AMS_TOKEN, "ams-1", reused).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["reason"], "seq_conflict", "{body}");
    assert_eq!(body["seq"], 2, "{body}");
    assert_eq!(body["max_seq"], 3, "{body}");
    // An exact resend is still a plain duplicate.
    assert_eq!(
        h.post_batch(AMS_TOKEN, "ams-1", first).await,
        (200, json!({"acked": 3}))
    );
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    assert_eq!(agents[0]["results"], 3, "{agents}");
    assert_eq!(
        agents[0]["max_seq"], 3,
        "nothing of the refused batch stored"
    );
    let m = h.metrics().await;
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_conflicts_total{agent="ams-1"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_ingest_rejected_total{reason="seq_conflict"}"#
        ),
        Some(1.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn gzip_and_zstd_bodies() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let body = |seq| {
        json!({"agent": "nyc-1", "results": [result("nyc-1", "nyc", seq, "acme-dns", "dns", 5, true)]}).to_string()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body(1).as_bytes()).unwrap();
    assert_eq!(
        h.post(Some(NYC_TOKEN), gz.finish().unwrap(), Some("gzip"))
            .await,
        (200, json!({"acked": 1}))
    );
    let z = zstd::encode_all(body(2).as_bytes(), 3).unwrap();
    assert_eq!(
        h.post(Some(NYC_TOKEN), z, Some("zstd")).await,
        (200, json!({"acked": 2}))
    );
    let (status, body) = h
        .post(Some(NYC_TOKEN), b"\x1f\x8b garbage".to_vec(), Some("gzip"))
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    let nyc = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "nyc-1")
        .unwrap()
        .clone();
    assert_eq!(nyc["results"], 2);
    h.stop().await;
}

#[tokio::test]
async fn checks_are_filtered_by_location() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let names = |v: &Value| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (status, ams) = h.get_json("/api/v1/checks", Some(AMS_TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(names(&ams), ["acme-www", "acme-tls", "acme-page"]);
    let (_, nyc) = h.get_json("/api/v1/checks", Some(NYC_TOKEN)).await;
    assert_eq!(
        names(&nyc),
        ["acme-www", "acme-dns", "acme-tls", "acme-page"]
    );
    // The CA travels inline: agents do not have the collector's files.
    let www = &ams["checks"][0];
    assert!(
        www["ca_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE"),
        "{www}"
    );
    assert!(www.get("ca_file").is_none(), "{www}");
    // What is served parses as the agent's own check schema.
    let specs: slaprobe_wire::AssignedChecks = serde_json::from_value(nyc).unwrap();
    let checks =
        slaprobe_agent::config::validate_checks(&specs.checks, Path::new("served"), Path::new("."))
            .unwrap();
    assert_eq!(checks.len(), 4);
    // A checks fetch counts as contact.
    let m = h.metrics().await;
    assert!(
        m.contains(r#"slaprobe_agent_last_seen_timestamp_seconds{agent="nyc-1",location="nyc"}"#),
        "{m}"
    );
    h.stop().await;
}

#[tokio::test]
async fn restart_keeps_data_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let r = |seq, ok| result("ams-1", "ams", seq, "acme-www", "http", 5, ok);
    // Resent below byte for byte, as an agent does.
    let second = r(2, false);
    assert_eq!(
        h.post_batch(
            AMS_TOKEN,
            "ams-1",
            vec![r(1, true), second.clone(), r(4, true)]
        )
        .await
        .0,
        200
    );
    h.stop().await;

    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    let a = &agents[0];
    assert_eq!(
        (
            a["results"].as_u64(),
            a["max_seq"].as_u64(),
            a["missing"].as_u64()
        ),
        (Some(3), Some(4), Some(1))
    );
    let m = h.metrics().await;
    let www = r#"check="acme-www",location="ams""#;
    assert_eq!(
        metric_value(&m, &format!("slaprobe_probes_total{{{www}}}")),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            &format!("slaprobe_probe_failures_total{{{www},class=\"tls_cert_expired\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, &format!("slaprobe_probe_success{{{www}}}")),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&m, r#"slaprobe_ingest_results_total{agent="ams-1"}"#),
        Some(3.0)
    );
    // Still idempotent across the restart.
    assert_eq!(
        h.post_batch(AMS_TOKEN, "ams-1", vec![second, r(3, true)])
            .await,
        (200, json!({"acked": 3}))
    );
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    assert_eq!(
        (agents[0]["results"].as_u64(), agents[0]["missing"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(
        metric_value(
            &h.metrics().await,
            r#"slaprobe_ingest_duplicates_total{agent="ams-1"}"#
        ),
        Some(1.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let batch = vec![
        result("nyc-1", "nyc", 1, "acme-www", "http", 5, true),
        result("nyc-1", "nyc", 2, "acme-www", "http", 4, false),
        result("nyc-1", "nyc", 3, "acme-dns", "dns", 5, true),
        result("nyc-1", "nyc", 4, "acme-tls", "tls", 5, true),
        result("nyc-1", "nyc", 5, "acme-page", "page", 5, true),
    ];
    assert_eq!(h.post_batch(NYC_TOKEN, "nyc-1", batch).await.0, 200);
    let _ = h.post(Some(NYC_TOKEN), "nope", None).await;
    let text = h.metrics().await;
    for family in [
        "slaprobe_probe_success",
        "slaprobe_probe_duration_seconds",
        "slaprobe_probes_total",
        "slaprobe_probe_failures_total",
        "slaprobe_http_status_code",
        "slaprobe_tls_cert_expiry_timestamp_seconds",
        "slaprobe_page_bytes",
        "slaprobe_page_resources",
        "slaprobe_page_load_seconds",
        "slaprobe_check_info",
        "slaprobe_agent_last_seen_timestamp_seconds",
        "slaprobe_ingest_results_total",
        "slaprobe_ingest_duplicates_total",
        "slaprobe_ingest_rejected_total",
        "slaprobe_build_info",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} has no TYPE"
        );
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    h.stop().await;
}

/// Not a benchmark harness: a figure worth printing. Batches of 1,000
/// (COLLECTOR_BENCH_BATCHES of them, default 3) over real HTTP, fsync per commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_throughput() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let h = Harness::start(dir.path(), ServerOptions::default()).await;
    let batches: u64 = std::env::var("COLLECTOR_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let template = result("ams-1", "ams", 0, "acme-www", "http", 5, true);
    let bodies: Vec<String> = (0..batches)
        .map(|b| {
            let results: Vec<Value> = (1..=1000)
                .map(|i| {
                    let mut r = template.clone();
                    r["seq"] = json!(b * 1000 + i);
                    r
                })
                .collect();
            json!({"agent": "ams-1", "results": results}).to_string()
        })
        .collect();
    let t = Instant::now();
    for (b, body) in bodies.into_iter().enumerate() {
        let (status, ack) = h.post(Some(AMS_TOKEN), body, None).await;
        assert_eq!(
            (status, ack),
            (200, json!({"acked": (b as u64 + 1) * 1000}))
        );
    }
    let secs = t.elapsed().as_secs_f64();
    let n = batches * 1000;
    println!(
        "ingest throughput: {n} results in {secs:.2}s = {:.0} results/s (batches of 1000)",
        n as f64 / secs
    );
    let (_, agents) = h.get_json("/api/v1/agents", None).await;
    assert_eq!(agents[0]["results"], n);
    h.stop().await;
}

/// DNSSEC and domain checks: the served spec carries the trust anchor's
/// records, and the latest results' expiries become the two gauges.
#[tokio::test]
async fn dnssec_and_domain_expiry_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("anchor.ds"),
        "acme.example. IN DS 12345 13 2 00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\n",
    )
    .unwrap();
    let toml = format!(
        r#"
[collector]
public_read = true
listen = "127.0.0.1:0"
data_dir = "data"

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{ams}"

[[checks]]
name = "acme-dnssec"
kind = "dns"
query = "www.acme.example"
nameservers = ["192.0.2.53"]
dnssec = true
dnssec_trust_anchor = "anchor.ds"

[[checks]]
name = "acme-domain"
kind = "domain"
domain = "acme.example"
warn_days = 30
"#,
        ams = sha256_hex(AMS_TOKEN)
    );
    std::fs::write(dir.path().join("collector.toml"), toml).unwrap();
    let h = Harness::start(dir.path(), ServerOptions::default()).await;

    let (status, checks) = h.get_json("/api/v1/checks", Some(AMS_TOKEN)).await;
    assert_eq!(status, 200, "{checks}");
    let dnssec = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "acme-dnssec")
        .unwrap();
    assert!(dnssec.get("dnssec_trust_anchor").is_none(), "{dnssec}");
    assert!(
        dnssec["dnssec_trust_anchor_records"]
            .as_str()
            .unwrap()
            .contains("IN DS 12345 13 2"),
        "{dnssec}"
    );

    let mut dns = TestResult::new("ams-1", "ams", 1, "acme-dnssec")
        .kind("dns")
        .target("www.acme.example A")
        .ago(5)
        .failure("dns_dnssec_bogus", "DNSSEC bogus at 192.0.2.53:53: expired")
        .json();
    dns["dns"] = json!({"nameserver": "192.0.2.53:53", "rcode": "NOERROR", "answers": ["192.0.2.10"],
        "dnssec": {"status": "bogus", "reason": "RRSIG expired", "rrsig_expires_at": "2026-12-03T00:00:00Z"}});
    let mut domain = TestResult::new("ams-1", "ams", 2, "acme-domain")
        .kind("domain")
        .target("acme.example")
        .ago(5)
        .json();
    domain["domain"] = json!({"domain": "acme.example", "expires_at": "2027-01-01T00:00:00Z",
        "days_left": 31.0, "registrar": "Example Registrar, Inc.", "statuses": ["active"]});
    let (status, body) = h.post_batch(AMS_TOKEN, "ams-1", vec![dns, domain]).await;
    assert_eq!(status, 200, "{body}");

    let m = h.metrics().await;
    let at = |ts: &str| ts.parse::<Timestamp>().unwrap().as_second() as f64;
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_dns_rrsig_expiry_timestamp_seconds{check="acme-dnssec",location="ams"}"#
        ),
        Some(at("2026-12-03T00:00:00Z")),
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_domain_expiry_timestamp_seconds{check="acme-domain",location="ams"}"#
        ),
        Some(at("2027-01-01T00:00:00Z"))
    );
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_probe_failures_total{check="acme-dnssec",location="ams",class="dns_dnssec_bogus"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &m,
            r#"slaprobe_check_info{check="acme-domain",kind="domain",target="acme.example"}"#
        ),
        Some(1.0)
    );
    h.stop().await;
}
