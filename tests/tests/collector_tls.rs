//! HTTPS on the collector (`[collector] tls_cert_file`, `tls_key_file`) with
//! a test CA the agent trusts through `[agent] ca_file`, and mTLS
//! (`tls_client_ca_file`): an agent with a client certificate signed by that
//! CA streams its results; clients without one, or with one from another CA,
//! do not get in; plain HTTP on the TLS port gets nothing; the embedded
//! agent streams into an mTLS collector over its own loopback port.

use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use slaprobe_agent::config::{AgentConfig, RawAgentFile, RawAgentSection, Secret};
use slaprobe_agent::run::{http_client, http_client_with_identity};
use slaprobe_collector::{CollectorConfig, Server, ServerOptions};
use slaprobe_tests::certs::TestCa;
use slaprobe_tests::collector::TestCollector;
use slaprobe_tests::http_server::{Route, Routes, TestServer};
use slaprobe_tests::wait::wait_until;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "tls-agent-token-0123456789";

/// Starts an in-process collector with TLS (and mTLS when `client_ca` is
/// set, and an embedded agent when `embedded`); `client` must get through.
async fn start_collector(
    dir: &Path,
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    target: &str,
    embedded: bool,
    client: reqwest::Client,
) -> TestCollector {
    start_collector_with(
        dir,
        cert,
        key,
        client_ca,
        target,
        embedded,
        client,
        ServerOptions::default(),
    )
    .await
}

/// [`start_collector`] with `options`.
#[allow(clippy::too_many_arguments)]
async fn start_collector_with(
    dir: &Path,
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    target: &str,
    embedded: bool,
    client: reqwest::Client,
    options: ServerOptions,
) -> TestCollector {
    let mut toml = format!(
        "[collector]\npublic_read = true\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        toml.push_str(&format!("tls_client_ca_file = \"{}\"\n", ca.display()));
    }
    if embedded {
        // No canary: it would ask the system resolver (tests stay on loopback).
        toml.push_str("\n[embedded_agent]\nlocation = \"local\"\ncanary = false\n");
    }
    toml.push_str(&format!(
        "\n[[agents]]\nid = \"ams-1\"\nlocation = \"ams\"\ntoken_sha256 = \"{}\"\n\n[[checks]]\nname = \"c\"\nkind = \"http\"\ninterval = \"1s\"\ntimeout = \"1s\"\nurl = \"{target}\"\n",
        hex::encode(Sha256::digest(TOKEN.as_bytes()))
    ));
    std::fs::write(dir.join("collector.toml"), toml).unwrap();
    let config = CollectorConfig::load(&dir.join("collector.toml")).expect("config loads");
    assert!(config.collector.tls.is_some());
    TestCollector::start_config(config, options, client).await
}

fn agent_config(
    port: u16,
    spool: &Path,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> AgentConfig {
    let raw = RawAgentFile {
        agent: RawAgentSection {
            id: Some("ams-1".into()),
            location: Some("ams".into()),
            collector: Some(format!("https://127.0.0.1:{port}")),
            token: Some(Secret::new(TOKEN)),
            spool_dir: Some(spool.to_path_buf()),
            batch_interval: Some("200ms".into()),
            checks_refresh: Some("1s".into()),
            ca_file: Some(ca.to_path_buf()),
            tls_cert_file: identity.map(|(c, _)| c.to_path_buf()),
            tls_key_file: identity.map(|(_, k)| k.to_path_buf()),
            ..Default::default()
        },
        checks: vec![],
    };
    AgentConfig::from_raw(raw, Path::new("tls-agent.toml")).expect("agent config")
}

/// `(results, missing)` of ams-1 over HTTPS with `client`.
async fn agent_row(client: &reqwest::Client, port: u16) -> Option<(u64, u64)> {
    let r = client
        .get(format!("https://127.0.0.1:{port}/api/v1/agents"))
        .send()
        .await
        .ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    let a = v.as_array()?.iter().find(|a| a["id"] == "ams-1")?.clone();
    Some((a["results"].as_u64()?, a["missing"].as_u64()?))
}

/// Runs an agent until the collector holds at least `n` of its results, then stops it.
async fn agent_delivers(config: AgentConfig, client: &reqwest::Client, port: u16, n: u64) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(slaprobe_agent::run(config, shutdown.clone()));
    let missing = wait_until(
        "agent results to arrive over TLS",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || async {
            agent_row(client, port)
                .await
                .and_then(|(results, missing)| (results >= n).then_some(missing))
        },
    )
    .await;
    assert_eq!(missing, 0);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("agent stops")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_streams_to_an_https_collector_it_trusts_by_ca_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let target = TestServer::http(Routes::new().route("/", Route::ok("fine"))).await;
    let ca = TestCa::new("slaprobe collector CA");
    let ca_file = ca.write_pem(dir, "ca.pem");
    let (cert, key) = ca.localhost().write_pem_files(dir, "collector");
    let client = http_client(Some(&ca_file)).unwrap();
    let c = start_collector(
        dir,
        &cert,
        &key,
        None,
        &target.url("/"),
        false,
        client.clone(),
    )
    .await;

    // Trusted by ca_file: ready over HTTPS.
    let r = client
        .get(format!("https://127.0.0.1:{}/readyz", c.port()))
        .send()
        .await
        .expect("https works");
    assert!(r.status().is_success() || r.status() == 503);
    // Without the CA the collector is not trusted.
    let untrusting = http_client(None).unwrap();
    let e = untrusting
        .get(format!("https://127.0.0.1:{}/healthz", c.port()))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("UnknownIssuer"), "{e:?}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .use_preconfigured_tls(tls_client_config())
        .build()
        .unwrap();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{}/healthz", c.port()))
            .timeout(Duration::from_secs(12))
            .send()
            .await
            .is_err()
    );

    agent_delivers(
        agent_config(c.port(), &dir.join("spool"), &ca_file, None),
        &client,
        c.port(),
        3,
    )
    .await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_accepts_a_good_client_certificate_and_refuses_others() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let target = TestServer::http(Routes::new().route("/", Route::ok("fine"))).await;
    let server_ca = TestCa::new("slaprobe collector CA");
    let ca_file = server_ca.write_pem(dir, "ca.pem");
    let (cert, key) = server_ca.localhost().write_pem_files(dir, "collector");
    let client_ca = TestCa::new("slaprobe agents CA");
    let client_ca_file = client_ca.write_pem(dir, "agents-ca.pem");
    let (good_cert, good_key) = client_ca.client("ams-1").write_pem_files(dir, "ams-1");
    let rogue_ca = TestCa::new("someone else's CA");
    let (rogue_cert, rogue_key) = rogue_ca.client("ams-1").write_pem_files(dir, "rogue");
    let good = http_client_with_identity(Some(&ca_file), Some((&good_cert, &good_key))).unwrap();
    let c = start_collector(
        dir,
        &cert,
        &key,
        Some(&client_ca_file),
        &target.url("/"),
        false,
        good.clone(),
    )
    .await;
    let url = format!("https://127.0.0.1:{}/api/v1/checks", c.port());

    // A good client certificate: in.
    let r = good
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("mTLS with a good certificate");
    assert_eq!(r.status(), 200);
    // No client certificate, or one from another CA: the handshake fails.
    let none = http_client(Some(&ca_file)).unwrap();
    let e = none
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("no client certificate is refused");
    println!("without a client certificate: {e:?}");
    let rogue = http_client_with_identity(Some(&ca_file), Some((&rogue_cert, &rogue_key))).unwrap();
    let e = rogue
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("a certificate from another CA is refused");
    println!("with another CA's certificate: {e:?}");

    // The agent with its certificate streams results.
    agent_delivers(
        agent_config(
            c.port(),
            &dir.join("spool"),
            &ca_file,
            Some((&good_cert, &good_key)),
        ),
        &good,
        c.port(),
        3,
    )
    .await;

    // A half-configured agent identity is a config error naming the key.
    let raw = RawAgentFile {
        agent: RawAgentSection {
            id: Some("x".into()),
            location: Some("l".into()),
            tls_cert_file: Some(good_cert.clone()),
            ..Default::default()
        },
        checks: vec![],
    };
    let e = AgentConfig::from_raw(raw, Path::new("a.toml")).unwrap_err();
    assert!(e.to_string().contains("agent.tls_key_file"), "{e}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_agent_streams_into_an_mtls_collector_over_its_own_loopback_port() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let target = TestServer::http(Routes::new().route("/", Route::ok("fine"))).await;
    let server_ca = TestCa::new("slaprobe collector CA");
    let ca_file = server_ca.write_pem(dir, "ca.pem");
    let (cert, key) = server_ca.localhost().write_pem_files(dir, "collector");
    let client_ca = TestCa::new("slaprobe agents CA");
    let client_ca_file = client_ca.write_pem(dir, "agents-ca.pem");
    let (good_cert, good_key) = client_ca.client("ops").write_pem_files(dir, "ops");
    let good = http_client_with_identity(Some(&ca_file), Some((&good_cert, &good_key))).unwrap();
    let c = start_collector(
        dir,
        &cert,
        &key,
        Some(&client_ca_file),
        &target.url("/"),
        true,
        good.clone(),
    )
    .await;

    // Its results arrive (read over mTLS like any reader would).
    wait_until(
        "embedded agent results to arrive",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let v: serde_json::Value = good
                .get(c.url("/api/v1/agents"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let n = v
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["id"] == "embedded")
                .and_then(|a| a["results"].as_u64())
                .unwrap_or(0);
            (n >= 3).then_some(())
        },
    )
    .await;

    // Its port is plain loopback and serves nobody else: not another
    // agent's token, not the read endpoints.
    let link = c.embedded_url.clone().expect("the embedded agent's URL");
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    assert_ne!(link, format!("http://127.0.0.1:{}/", c.port()));
    let plain = http_client(None).unwrap();
    let r = plain
        .get(format!("{link}api/v1/checks"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = plain
        .post(format!("{link}api/v1/results"))
        .bearer_auth(TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = plain.get(format!("{link}metrics")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_cuts_slow_clients_and_lingers_like_the_plain_one() {
    use std::io::{Read as _, Write as _};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = TestCa::new("slaprobe collector CA");
    let ca_file = ca.write_pem(dir, "ca.pem");
    let (cert, key) = ca.localhost().write_pem_files(dir, "collector");
    let client = http_client(Some(&ca_file)).unwrap();
    let c = start_collector_with(
        dir,
        &cert,
        &key,
        None,
        "http://127.0.0.1:9/",
        false,
        client,
        ServerOptions {
            conn: Some(slaprobe_collector::conn::ConnLimits {
                handshake_timeout: Duration::from_secs(1),
                header_read_timeout: Duration::from_secs(1),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&ca_file).unwrap();
    for cert in
        <rustls::pki_types::CertificateDer<'_> as rustls::pki_types::pem::PemObject>::pem_slice_iter(
            &pem,
        )
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );

    // No handshake at all: dropped after the handshake timeout.
    let mut silent = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("dropped")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // A handshake, then half a request line: closed after the header timeout.
    let tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(tls.clone())
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    s.write_all(b"GET /api/v1/ag").await.unwrap();
    let t = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(c.conn_stats.timeouts().0 >= 1 && c.conn_stats.timeouts().1 >= 1);

    // An early 401 reaches a blocking client that writes its 4 MiB body first.
    let port = c.port();
    let (status, text) = tokio::task::spawn_blocking(move || {
        let conn = rustls::ClientConnection::new(tls, "localhost".try_into().unwrap()).unwrap();
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let body = vec![b'x'; 4 << 20];
        write!(
            s,
            "POST /api/v1/results HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer wrong\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .expect("head sent");
        s.write_all(&body).expect("the whole body is taken, not reset");
        s.flush().unwrap();
        let mut raw = Vec::new();
        // A close without close_notify after the answer is fine here.
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        (text.split_whitespace().nth(1).map(str::to_string), text)
    })
    .await
    .unwrap();
    assert_eq!(status.as_deref(), Some("401"), "{text}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_fail_at_start_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    let ca = TestCa::new("ca");
    let (cert, _) = ca.localhost().write_pem_files(dir, "collector");
    let toml = format!(
        "[collector]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\ntls_cert_file = \"{}\"\ntls_key_file = \"junk.pem\"\n",
        cert.display()
    );
    std::fs::write(dir.join("collector.toml"), toml).unwrap();
    let config = CollectorConfig::load(&dir.join("collector.toml")).unwrap();
    let e = Server::bind_with(config, ServerOptions::default())
        .await
        .err()
        .expect("a junk key fails start-up");
    assert!(format!("{e:#}").contains("collector.tls_key_file"), "{e:#}");

    std::fs::write(
        dir.join("collector.toml"),
        "[collector]\ndata_dir = \"data\"\ntls_key_file = \"junk.pem\"\n",
    )
    .unwrap();
    let e = CollectorConfig::load(&dir.join("collector.toml")).unwrap_err();
    assert!(e.to_string().contains("collector.tls_cert_file"), "{e}");
}

fn tls_client_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}
