//! The tls probe (and TLS inside the http probe) against servers presenting
//! certificates made for the test: the details must match what the
//! certificates really are, also when verification fails.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use slaprobe_agent::config::Check;
use slaprobe_tests::certs::{self, LeafSpec, ServerCert, TestCa};
use slaprobe_tests::http_server::{
    BannerServer, Route, Routes, SilentServer, TestServer, refused_addr,
};
use slaprobe_tests::wait::LOADED_SLACK;
use slaprobe_tests::wait::wait_until;
use slaprobe_wire::{CheckKind, FailureClass, TlsDetail};
use support::{assert_class, assert_ok, check, http, run};

struct Fixture {
    ca: TestCa,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let ca = TestCa::new("slaprobe Test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path(), "ca.pem");
    Fixture {
        ca,
        ca_file,
        _dir: dir,
    }
}

async fn serve(cert: &ServerCert) -> TestServer {
    TestServer::https(Routes::new().route("/", Route::ok("ok")), cert).await
}

fn tls_check(host: &str, port: u16, ca_file: Option<&PathBuf>, warn_days: f64) -> Check {
    check(CheckKind::Tls, "3s", |s| {
        s.host = Some(host.into());
        s.port = Some(port);
        s.warn_days = Some(warn_days);
        s.ca_file = ca_file.map(|p| p.to_string_lossy().into_owned());
    })
}

fn days_until(unix: i64) -> f64 {
    (unix as f64 - jiff::Timestamp::now().as_second() as f64) / 86_400.0
}

fn assert_days(t: &TlsDetail, expected: f64) {
    let d = t.days_left.expect("days_left");
    assert!(
        (d - expected).abs() < 0.001,
        "days_left {d}, expected {expected}"
    );
}

fn assert_describes(t: &TlsDetail, cert: &ServerCert) {
    assert_eq!(t.subject.as_deref(), Some(cert.subject.as_str()));
    assert_eq!(t.issuer.as_deref(), Some(cert.issuer.as_str()));
    assert_eq!(t.sans, cert.sans);
    assert_eq!(t.not_after.map(|ts| ts.as_second()), Some(cert.not_after));
    assert_eq!(
        t.earliest_not_after.map(|ts| ts.as_second()),
        Some(cert.earliest_not_after)
    );
    assert_eq!(t.chain_length as usize, cert.chain.len());
    assert_days(t, days_until(cert.earliest_not_after));
}

#[tokio::test]
async fn valid_certificate_details() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let srv = serve(&leaf).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_ok(&r);
    assert!(r.http.is_none());
    let t = r.tls.as_ref().unwrap();
    assert_describes(t, &leaf);
    assert_eq!(t.sans, vec!["localhost", "127.0.0.1", "::1"]);
    assert_eq!(t.version.as_deref(), Some("TLSv1.3"));
    assert!(t.cipher.is_some());
    assert!(t.chain_valid && t.hostname_valid && !t.expiring_soon);
    assert!((89.99..90.0).contains(&t.days_left.unwrap()));
    // An IP literal is checked against the IP SANs.
    let r = run(&tls_check(
        "127.0.0.1",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_ok(&r);
}

#[tokio::test]
async fn expiring_soon_is_a_warning_not_a_failure() {
    let fx = fixture();
    let leaf = fx.ca.expiring_in(5);
    let srv = serve(&leaf).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_ok(&r);
    let t = r.tls.as_ref().unwrap();
    assert!(t.expiring_soon);
    assert_describes(t, &leaf);
    assert!((4.99..5.0).contains(&t.days_left.unwrap()));
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        3.0,
    ))
    .await;
    assert!(!r.tls.as_ref().unwrap().expiring_soon);
}

#[tokio::test]
async fn intermediate_expiring_first_sets_days_left() {
    let fx = fixture();
    let inter = fx.ca.intermediate("slaprobe Test Intermediate", 20);
    let leaf = inter.localhost();
    let srv = serve(&leaf).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        30.0,
    ))
    .await;
    assert_ok(&r);
    let t = r.tls.as_ref().unwrap();
    assert_eq!(t.chain_length, 2);
    assert_eq!(t.issuer.as_deref(), Some("CN=slaprobe Test Intermediate"));
    assert_eq!(
        t.earliest_not_after.map(|ts| ts.as_second()),
        Some(inter.not_after)
    );
    assert_describes(t, &leaf);
    assert!((19.99..20.0).contains(&t.days_left.unwrap()));
    assert!(t.expiring_soon, "the intermediate expires within warn_days");
}

#[tokio::test]
async fn expired_certificate_reports_its_date() {
    let fx = fixture();
    let leaf = fx.ca.expired(3);
    let srv = serve(&leaf).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_class(&r, FailureClass::TlsCertExpired);
    let t = r
        .tls
        .as_ref()
        .expect("details even when verification fails");
    assert_describes(t, &leaf);
    assert!(
        (-3.001..-2.99).contains(&t.days_left.unwrap()),
        "{:?}",
        t.days_left
    );
    assert!(!t.chain_valid);
    assert!(
        t.hostname_valid,
        "the name is right, only the date is wrong"
    );
    assert!(t.expiring_soon);
    assert!(
        t.version.is_some(),
        "handshake completed in report-only mode"
    );
    let expected = jiff::Timestamp::from_second(leaf.not_after)
        .unwrap()
        .to_string();
    assert!(
        r.failure.as_ref().unwrap().message.contains(&expected),
        "{:?} lacks {expected}",
        r.failure
    );
}

#[tokio::test]
async fn not_yet_valid_counts_as_expired() {
    let fx = fixture();
    let srv = serve(&fx.ca.not_yet_valid(2)).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_class(&r, FailureClass::TlsCertExpired);
    assert!(
        r.failure
            .as_ref()
            .unwrap()
            .message
            .contains("not valid before")
    );
}

#[tokio::test]
async fn unknown_issuer_and_self_signed_are_untrusted() {
    let fx = fixture();
    let other = TestCa::new("Someone Else CA");
    let leaf = other.localhost();
    let srv = serve(&leaf).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_class(&r, FailureClass::TlsCertUntrusted);
    let t = r.tls.as_ref().unwrap();
    assert_describes(t, &leaf);
    assert!(!t.chain_valid);
    assert!(
        t.hostname_valid,
        "computed from the SANs although the chain failed"
    );
    assert!(
        r.failure
            .as_ref()
            .unwrap()
            .message
            .contains("CN=Someone Else CA")
    );

    let ss = certs::self_signed();
    let srv = serve(&ss).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_class(&r, FailureClass::TlsCertUntrusted);
    assert_eq!(
        r.tls.as_ref().unwrap().issuer,
        r.tls.as_ref().unwrap().subject
    );
    // Without any ca_file, the test CA is untrusted too (system roots only).
    let srv = serve(&fx.ca.localhost()).await;
    let r = run(&tls_check("localhost", srv.addr().port(), None, 14.0)).await;
    assert_class(&r, FailureClass::TlsCertUntrusted);
}

#[tokio::test]
async fn wrong_host_is_a_hostname_mismatch() {
    let fx = fixture();
    let leaf = fx.ca.wrong_host();
    let srv = serve(&leaf).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_class(&r, FailureClass::TlsHostnameMismatch);
    let t = r.tls.as_ref().unwrap();
    assert_describes(t, &leaf);
    assert!(t.chain_valid);
    assert!(!t.hostname_valid);
    assert!(
        r.failure
            .as_ref()
            .unwrap()
            .message
            .contains("www.elsewhere.example")
    );
}

#[tokio::test]
async fn handshake_failures() {
    // Something that is not TLS answers.
    let ssh = BannerServer::start(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let r = run(&tls_check("127.0.0.1", ssh.addr().port(), None, 14.0)).await;
    assert_class(&r, FailureClass::TlsHandshake);
    // The server closes at once.
    let closer = BannerServer::start(b"").await;
    let r = run(&tls_check("127.0.0.1", closer.addr().port(), None, 14.0)).await;
    assert_class(&r, FailureClass::TlsHandshake);
    // A plain HTTP server on an https URL.
    let plain = TestServer::http(Routes::new()).await;
    let r = run(&http(&format!("https://{}/", plain.addr()), "3s", |_| {})).await;
    assert_class(&r, FailureClass::TlsHandshake);
}

#[tokio::test]
async fn silent_server_times_out_in_the_handshake() {
    let silent = SilentServer::start().await;
    let mut c = tls_check("127.0.0.1", silent.addr().port(), None, 14.0);
    c.timeout = Duration::from_secs(2);
    let t0 = Instant::now();
    let r = run(&c).await;
    assert_class(&r, FailureClass::Timeout);
    // The 2 s timeout, plus what a loaded machine may add to it.
    assert!(t0.elapsed() < c.timeout + LOADED_SLACK);
}

#[tokio::test]
async fn connect_and_dns_failures() {
    let r = run(&tls_check("127.0.0.1", refused_addr().port(), None, 14.0)).await;
    assert_class(&r, FailureClass::ConnectRefused);
    let r = run(&tls_check("no-such-host.invalid", 443, None, 14.0)).await;
    assert_class(&r, FailureClass::DnsError);
}

#[tokio::test]
async fn ipv6_and_tls12() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let srv = TestServer::start(
        "[::1]:0".parse().unwrap(),
        Routes::new(),
        Some(leaf.server_config()),
    )
    .await;
    let r = run(&tls_check(
        "::1",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_ok(&r);
    assert!(r.tls.as_ref().unwrap().hostname_valid);

    let srv12 = TestServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Routes::new(),
        Some(leaf.server_config_versions(&[&rustls::version::TLS12])),
    )
    .await;
    let r = run(&tls_check(
        "localhost",
        srv12.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_ok(&r);
    let t = r.tls.as_ref().unwrap();
    assert_eq!(t.version.as_deref(), Some("TLSv1.2"));
    assert!(
        t.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS_ECDHE_ECDSA_")),
        "{:?}",
        t.cipher
    );
}

#[tokio::test]
async fn http_probe_stops_before_the_request_on_a_bad_certificate() {
    let fx = fixture();
    let ca_file = fx.ca_file.to_string_lossy().into_owned();
    let cases = [
        (fx.ca.expired(1), FailureClass::TlsCertExpired),
        (
            TestCa::new("Rogue CA").localhost(),
            FailureClass::TlsCertUntrusted,
        ),
        (fx.ca.wrong_host(), FailureClass::TlsHostnameMismatch),
    ];
    for (cert, class) in cases {
        let srv = serve(&cert).await;
        let r = run(&http(
            &format!("https://localhost:{}/", srv.addr().port()),
            "3s",
            |s| s.ca_file = Some(ca_file.clone()),
        ))
        .await;
        assert_class(&r, class);
        let t = r.tls.as_ref().expect("tls section on an https failure");
        assert_eq!(t.not_after.map(|ts| ts.as_second()), Some(cert.not_after));
        let h = r.http.as_ref().unwrap();
        assert!(h.phases.tls.is_some() && h.status.is_none());
        assert!(
            srv.stats().requests().is_empty(),
            "no request over a rejected connection"
        );
    }
    // And a good one with a leaf trusted directly through ca_pem.
    let leaf = fx.ca.leaf(&LeafSpec::new(&["localhost"]));
    let srv = serve(&leaf).await;
    let r = run(&http(
        &format!("https://localhost:{}/", srv.addr().port()),
        "3s",
        |s| s.ca_pem = Some(fx.ca.pem.clone()),
    ))
    .await;
    assert_ok(&r);
}

#[tokio::test]
async fn an_oversized_certificate_message_says_how_big_it_is() {
    let fx = fixture();
    let leaf = fx.ca.many_sans(10_000);
    let chain: Vec<Vec<u8>> = leaf.chain.iter().map(|c| c.to_vec()).collect();
    assert!(chain[0].len() > 150_000, "{} bytes", chain[0].len());
    let srv = slaprobe_tests::tls_raw::BigCertServer::start(&chain).await;
    let r = run(&tls_check(
        "localhost",
        srv.addr().port(),
        Some(&fx.ca_file),
        14.0,
    ))
    .await;
    assert_class(&r, FailureClass::TlsHandshake);
    let msg = &r.failure.as_ref().unwrap().message;
    assert!(
        msg.contains(&format!(
            "server certificate message of {} bytes exceeds the 64 KiB limit",
            srv.certificate_len
        )),
        "{msg}"
    );
}

/// `openssl s_server` (TLS 1.3 only) on a free loopback port presenting
/// `leaf`; killed when dropped. rustls' server refuses to send a
/// certificate message over 64 KiB, openssl does not.
struct OpensslServer(std::process::Child, u16);

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn openssl_tls13(leaf: &ServerCert, dir: &std::path::Path) -> OpensslServer {
    let (cert, key) = leaf.write_pem_files(dir, "big");
    let port = slaprobe_tests::http_server::refused_addr().port();
    let child = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-tls1_3", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run openssl s_server (Debian package openssl)");
    let srv = OpensslServer(child, port);
    // openssl s_server says nothing when it listens: its port answering is the signal.
    wait_until(
        "openssl s_server to listen",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        },
    )
    .await;
    srv
}

#[tokio::test]
async fn an_oversized_tls13_certificate_message_reports_the_encrypted_flight() {
    let fx = fixture();
    let leaf = fx.ca.many_sans(10_000);
    let srv = openssl_tls13(&leaf, fx._dir.path()).await;
    let r = run(&tls_check("localhost", srv.1, Some(&fx.ca_file), 14.0)).await;
    assert_class(&r, FailureClass::TlsHandshake);
    let msg = &r.failure.as_ref().unwrap().message;
    assert!(
        msg.contains("server certificate message exceeds the 64 KiB limit"),
        "{msg}"
    );
    let flight: u64 = msg
        .split("came to ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no flight size in {msg}"));
    let cert_len = leaf.chain[0].len() as u64;
    assert!(
        flight > cert_len && flight < cert_len + 4096,
        "{flight} vs certificate {cert_len}"
    );
}
