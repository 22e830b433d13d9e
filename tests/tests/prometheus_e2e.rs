//! The ops kit against the real tools: a real Prometheus (Debian
//! `prometheus`) scrapes a real collector fed by a real agent probing local
//! targets, with the shipped rules loaded; every dashboard panel query is
//! evaluated through Prometheus's HTTP API; a broken vendor's burn-rate alert
//! reaches a real Alertmanager (Debian `prometheus-alertmanager`) and is
//! delivered to a webhook receiver in this test, while a healthy vendor
//! raises nothing; a certificate with 5 days left raises the certificate alert.
//!
//! Every kind of check runs (http, tls, dns, page; passing and failing) so
//! that every dashboard panel has data to show.
//!
//! Only the alerts' `for:` durations are shortened to 0s (a test cannot wait
//! minutes); their expressions, the recording rules and the dashboards are
//! the shipped files as they are.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use slaprobe_tests::certs::TestCa;
use slaprobe_tests::dns_server::DnsServer;
use slaprobe_tests::http_server::{Route, Routes, TestServer, refused_addr};
use slaprobe_tests::procs::{Proc, bin_path, free_port, http_get, wait_for};

const TOKEN: &str = "prom-e2e-token";
/// The viewer token Prometheus scrapes with (`[[viewers]]`, `credentials_file`).
const VIEWER_TOKEN: &str = "prom-e2e-viewer-token";

/// Alertmanager webhook deliveries: (path, JSON body).
type Deliveries = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A webhook receiver on 127.0.0.1 that records every POST.
fn webhook_receiver() -> (u16, Deliveries) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Deliveries = Arc::default();
    let out = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut s = stream;
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, body_start) = loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buf[..i]).into_owned(), i + 4);
                    }
                };
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while buf.len() < body_start + len {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                if let Ok(v) =
                    serde_json::from_slice(&buf[body_start..(body_start + len).min(buf.len())])
                {
                    seen.lock().unwrap().push((path, v));
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    (port, out)
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Instant query through Prometheus's HTTP API.
fn prom_query(port: u16, expr: &str) -> serde_json::Value {
    let (status, body) = http_get(
        port,
        &format!("/api/v1/query?query={}", urlencode(expr)),
        None,
    )
    .unwrap_or_else(|| panic!("prometheus did not answer query {expr}"));
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad JSON for {expr}: {e}: {body}"));
    assert_eq!(status, 200, "query {expr} failed: {body}");
    assert_eq!(v["status"], "success", "query {expr}: {body}");
    v
}

fn firing_alerts(port: u16) -> Vec<serde_json::Value> {
    let (_, body) = http_get(port, "/api/v1/alerts", None).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["state"] == "firing")
        .collect()
}

/// Every expr of every panel and templating query of a dashboard, with the
/// template variables filled in.
fn dashboard_queries(path: &Path) -> Vec<(String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            walk(&p["panels"], out);
        }
    }
    walk(&v["panels"], &mut out);
    out.into_iter()
        .map(|(t, e)| {
            let e = e
                .replace("$__rate_interval", "1m")
                .replace("$__interval", "15s")
                .replace("$__range", "1h")
                .replace("${__range}", "1h");
            // Every template variable becomes "match anything".
            let mut filled = String::new();
            let mut rest = e.as_str();
            while let Some(i) = rest.find('$') {
                filled.push_str(&rest[..i]);
                let after = &rest[i + 1..];
                let (name_len, skip) = if let Some(stripped) = after.strip_prefix('{') {
                    let end = stripped.find('}').unwrap_or(stripped.len());
                    (end, end + 2)
                } else {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (end, end)
                };
                let _ = name_len;
                filled.push_str(".*");
                rest = &after[skip..];
            }
            filled.push_str(rest);
            (t, filled)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alertmanager_and_dashboards_against_a_live_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");

    // Targets: a healthy site, a broken one (refused), a certificate with 5 days left.
    let healthy = TestServer::http(Routes::new().route("/", Route::ok("fine"))).await;
    let broken = refused_addr();
    let ca = TestCa::new("prom e2e CA");
    let ca_file = ca.write_pem(dir, "ca.pem");
    let expiring = TestServer::https(
        Routes::new().route("/", Route::ok("soon")),
        &ca.expiring_in(5),
    )
    .await;
    let dns = DnsServer::start().await.unwrap();
    // A DNSSEC-signed zone (knotd) and a registry whose domain expires in 5 days.
    let now = slaprobe_wire::Timestamp::now().as_second();
    let knot = slaprobe_tests::knot::KnotZones::start(now).await.unwrap();
    let anchor_file = dir.join("anchor.ds");
    std::fs::write(&anchor_file, knot.anchor()).unwrap();
    let rdap = slaprobe_tests::rdap_server::RdapServer::start(now)
        .await
        .unwrap();

    let collector_port = free_port();
    let collector_cfg = dir.join("collector.toml");
    std::fs::write(
        &collector_cfg,
        format!(
            r#"
[collector]
listen = "127.0.0.1:{collector_port}"
data_dir = "data"

# Prometheus scrapes with this viewer's token (credentials_file).
[[viewers]]
name = "prometheus"
token_sha256 = "{viewer_hash}"

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{hash}"

[[checks]]
name = "healthy-www"
kind = "http"
interval = "1s"
timeout = "1s"
url = "{healthy_url}"

[[checks]]
name = "broken-www"
kind = "http"
interval = "1s"
timeout = "1s"
url = "http://{broken}/"

[[checks]]
name = "expiring-tls"
kind = "tls"
interval = "1s"
timeout = "1s"
host = "127.0.0.1"
port = {tls_port}
ca_file = "{ca_file}"

[[checks]]
name = "healthy-dns"
kind = "dns"
interval = "1s"
timeout = "1s"
query = "www.acme.test"
nameservers = ["{dns_addr}"]

[[checks]]
name = "missing-dns"
kind = "dns"
interval = "1s"
timeout = "1s"
query = "missing.acme.test"
nameservers = ["{dns_addr}"]

[[checks]]
name = "healthy-page"
kind = "page"
interval = "1s"
timeout = "1s"
url = "{healthy_url}"

[[checks]]
name = "signed-dns"
kind = "dns"
interval = "1s"
timeout = "1s"
query = "www.good.test"
nameservers = ["{knot_addr}"]
dnssec = true
dnssec_trust_anchor = "{anchor_file}"

[[checks]]
name = "expiring-domain"
kind = "domain"
interval = "1s"
timeout = "1s"
domain = "expiring.example"
rdap_url = "{rdap_url}"

[[checks]]
name = "healthy-browser"
kind = "browser"
interval = "3s"
timeout = "3s"
url = "{healthy_url}"

[[contracts]]
name = "healthy"
vendor = "HealthyCo"
checks = ["healthy-www"]
slot = "1s"
quorum = 1
objectives = [ {{ kind = "availability", target = 99.9 }} ]

[[contracts]]
name = "broken"
vendor = "BrokenCo"
checks = ["broken-www"]
slot = "1s"
quorum = 1
objectives = [ {{ kind = "availability", target = 99.9 }} ]
"#,
            hash = hex::encode(Sha256::digest(TOKEN.as_bytes())),
            viewer_hash = hex::encode(Sha256::digest(VIEWER_TOKEN.as_bytes())),
            healthy_url = healthy.url("/"),
            tls_port = expiring.addr().port(),
            ca_file = ca_file.display(),
            dns_addr = dns.addr(),
            knot_addr = knot.addr(),
            anchor_file = anchor_file.display(),
            rdap_url = rdap.base_url(),
        ),
    )
    .unwrap();
    let agent_cfg = dir.join("agent.toml");
    std::fs::write(
        &agent_cfg,
        format!(
            "[agent]\nid = \"ams-1\"\nlocation = \"ams\"\ncollector = \"http://127.0.0.1:{collector_port}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"spool\"\nbatch_interval = \"200ms\"\nchecks_refresh = \"2s\"\n"
        ),
    )
    .unwrap();

    // The shipped rules, with only `for:` shortened.
    let rules_dir = dir.join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    for name in ["slaprobe-recording.yml", "slaprobe-alerts.yml"] {
        let text = std::fs::read_to_string(repo.join("dashboards/rules").join(name)).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("for:") {
                    format!("{}for: 0s", &l[..l.len() - l.trim_start().len()])
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(rules_dir.join(name), text).unwrap();
    }

    let (hook_port, deliveries) = webhook_receiver();
    let am_port = free_port();
    let am_cfg = dir.join("alertmanager.yml");
    std::fs::write(
        &am_cfg,
        format!(
            "route:\n  receiver: ticket\n  group_by: [alertname, contract]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n  routes:\n    - matchers: ['severity=\"page\"']\n      receiver: page\n    - matchers: ['severity=\"ticket\"']\n      receiver: ticket\nreceivers:\n  - name: page\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/page\n  - name: ticket\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/ticket\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    // As an operator writes it: the token and a newline (Prometheus trims it).
    let token_file = dir.join("viewer.token");
    std::fs::write(&token_file, format!("{VIEWER_TOKEN}\n")).unwrap();
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}/slaprobe-*.yml\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: slaprobe-collector\n    authorization:\n      credentials_file: {token_file}\n    static_configs:\n      - targets: ['127.0.0.1:{collector_port}']\n",
            rules = rules_dir.display(),
            token_file = token_file.display()
        ),
    )
    .unwrap();

    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let _collector = Proc::start(
        "collector",
        &bin_path("slaprobe-collector"),
        &["run", "--config", collector_cfg.to_str().unwrap()],
        &[],
        &logs,
    );
    wait_for("collector ready", Duration::from_secs(30), || {
        http_get(collector_port, "/readyz", None).filter(|(s, _)| *s == 200)
    });
    // With a viewer configured, /metrics needs its token; Prometheus has it.
    assert_eq!(
        http_get(collector_port, "/metrics", None).map(|(s, _)| s),
        Some(401)
    );
    assert_eq!(
        http_get(collector_port, "/metrics", Some(VIEWER_TOKEN)).map(|(s, _)| s),
        Some(200)
    );
    let _agent = Proc::start(
        "agent",
        &bin_path("slaprobe-agent"),
        &["run", "--config", agent_cfg.to_str().unwrap()],
        &[],
        &logs,
    );
    let am_data = dir.join("am-data");
    let _alertmanager = Proc::start(
        "alertmanager",
        Path::new(&which("prometheus-alertmanager", "alertmanager")),
        &[
            &format!("--config.file={}", am_cfg.display()),
            &format!("--storage.path={}", am_data.display()),
            &format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=",
        ],
        &[],
        &logs,
    );
    let prom_data = dir.join("prom-data");
    let _prometheus = Proc::start(
        "prometheus",
        Path::new(&which("prometheus", "prometheus")),
        &[
            &format!("--config.file={}", prom_cfg.display()),
            &format!("--storage.tsdb.path={}", prom_data.display()),
            &format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &[],
        &logs,
    );
    wait_for("prometheus ready", Duration::from_secs(60), || {
        http_get(prom_port, "/-/ready", None).filter(|(s, _)| *s == 200)
    });
    wait_for("alertmanager ready", Duration::from_secs(60), || {
        http_get(am_port, "/-/ready", None).filter(|(s, _)| *s == 200)
    });

    // The broken vendor pages, through Alertmanager, to our webhook.
    let page = wait_for(
        "burn-rate page delivered to the webhook",
        Duration::from_secs(120),
        || {
            deliveries
                .lock()
                .unwrap()
                .iter()
                .find(|(path, v)| {
                    path == "/page"
                        && v["alerts"].as_array().into_iter().flatten().any(|a| {
                            a["labels"]["alertname"] == "SlaprobeSLABurnRateFast"
                                && a["labels"]["contract"] == "broken"
                        })
                })
                .cloned()
        },
    );
    let alert = page.1["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "SlaprobeSLABurnRateFast")
        .unwrap()
        .clone();
    assert_eq!(alert["labels"]["vendor"], "BrokenCo");
    assert_eq!(alert["labels"]["severity"], "page");
    for key in ["summary", "description", "dashboard"] {
        assert!(
            alert["annotations"][key]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "annotation {key}: {alert}"
        );
    }

    // The certificate with 5 days left: the 14-day alert, not the 3-day one.
    let cert = wait_for("certificate alert firing", Duration::from_secs(60), || {
        firing_alerts(prom_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "SlaprobeCertExpiringSoon")
    });
    assert_eq!(cert["labels"]["check"], "expiring-tls");

    // The domain with 5 days left: the 7-day page (and the 30-day ticket).
    let domain = wait_for("domain alert firing", Duration::from_secs(60), || {
        firing_alerts(prom_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "SlaprobeDomainExpiringCritical")
    });
    assert_eq!(domain["labels"]["check"], "expiring-domain");
    // knotd's signatures have ~14 days left: no DNSSEC alert.
    assert!(
        !firing_alerts(prom_port)
            .iter()
            .any(|a| a["labels"]["alertname"] == "SlaprobeDnssecSignaturesExpiring"),
        "DNSSEC alert on a freshly signed zone"
    );

    // Every dashboard panel query parses, evaluates and, on this live setup
    // with every kind of check, returns data.
    let mut empty = BTreeSet::new();
    let mut total = 0;
    for name in ["sla-overview.json", "site-detail.json", "agent-fleet.json"] {
        for (title, expr) in dashboard_queries(&repo.join("dashboards").join(name)) {
            total += 1;
            let v = prom_query(prom_port, &expr);
            let has_data = v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
                || v["data"]["resultType"] == "scalar";
            if !has_data {
                empty.insert(format!("{name}: {title}: {expr}"));
            }
        }
    }
    eprintln!(
        "{total} dashboard queries evaluated; {} returned no data:",
        empty.len()
    );
    for e in &empty {
        eprintln!("  {e}");
    }
    assert!(
        empty.is_empty(),
        "panels without data on a live setup: {empty:#?}"
    );
    assert!(total >= 20, "dashboards have {total} queries");

    // The healthy vendor raised nothing, anywhere.
    for a in firing_alerts(prom_port) {
        assert_ne!(
            a["labels"]["contract"], "healthy",
            "healthy vendor alerted: {a}"
        );
    }
    for (_, v) in deliveries.lock().unwrap().iter() {
        for a in v["alerts"].as_array().into_iter().flatten() {
            assert_ne!(
                a["labels"]["contract"], "healthy",
                "healthy vendor notified: {a}"
            );
        }
    }
}

/// The path of the first of two command names found on PATH.
fn which(a: &str, b: &str) -> String {
    for name in [a, b] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p.to_string_lossy().into_owned();
            }
        }
    }
    panic!(
        "neither {a} nor {b} on PATH; scripts/test.sh installs Debian's prometheus and prometheus-alertmanager"
    )
}
