//! Hostile targets: whatever a probed site sends, a result line stays under
//! 16 KiB (`probe::bound`), with the full counts next to the cut lists.
//! Each test prints the size it measured.

mod support;

use slaprobe_agent::probe::bound::MAX_RESULT_BYTES;
use slaprobe_tests::certs::{LeafSpec, TestCa};
use slaprobe_tests::dns_server::{DnsServer, MANY_TXT_COUNT};
use slaprobe_tests::http_server::{Route, Routes, TestServer};
use slaprobe_wire::{CheckKind, FailureClass, ProbeResult};
use support::{assert_class, check, http, run};

/// The JSON line of `r`, asserted under the bound; returns its size.
fn line_size(what: &str, r: &ProbeResult) -> usize {
    let n = serde_json::to_vec(r).unwrap().len();
    println!("{what}: result line {n} bytes");
    assert!(n < MAX_RESULT_BYTES, "{what}: {n} bytes: {r:#?}");
    n
}

#[tokio::test]
async fn a_certificate_with_9000_ip_sans() {
    let ca = TestCa::new("slaprobe Test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path(), "ca.pem");
    let mut names = vec!["localhost".to_string()];
    names.extend((0..9000).map(|i| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)));
    let leaf = ca.leaf(&LeafSpec::new(&names));
    let srv = TestServer::https(Routes::new().route("/", Route::ok("ok")), &leaf).await;
    let ca_file = ca_file.to_string_lossy().into_owned();

    // The tls probe, valid for the name: success, the SANs cut, the total kept.
    let tls = check(CheckKind::Tls, "5s", |s| {
        s.host = Some("localhost".into());
        s.port = Some(srv.addr().port());
        s.ca_file = Some(ca_file.clone());
    });
    let r = run(&tls).await;
    assert!(r.success, "{:?}", r.failure);
    let t = r.tls.as_ref().unwrap();
    assert_eq!(t.sans_total, Some(9001));
    assert!(
        !t.sans.is_empty() && t.sans.len() <= 100,
        "{}",
        t.sans.len()
    );
    assert_eq!(t.sans[0], "localhost");
    line_size("tls, 9,000 SANs", &r);

    // Not valid for the name asked: the mismatch message lists names, cut.
    let wrong = check(CheckKind::Tls, "5s", |s| {
        s.host = Some("127.0.0.1".into());
        s.port = Some(srv.addr().port());
        s.ca_file = Some(ca_file.clone());
    });
    let r = run(&wrong).await;
    assert_class(&r, FailureClass::TlsHostnameMismatch);
    assert!(r.failure.as_ref().unwrap().message.len() <= 1024);
    line_size("tls, 9,000 SANs, name mismatch", &r);

    // The http probe carries the same tls section.
    let h = http(&srv.url_for_host("localhost", "/"), "5s", |s| {
        s.ca_file = Some(ca_file.clone());
        s.resolve = support::resolve("localhost", "127.0.0.1");
    });
    let r = run(&h).await;
    assert!(r.success, "{:?}", r.failure);
    line_size("http, 9,000 SANs", &r);
}

#[tokio::test]
async fn a_400_kb_location_header() {
    let long = format!("/{}", "a".repeat(400 * 1024));
    let srv = TestServer::http(
        Routes::new()
            .route("/", Route::redirect(302, &long))
            .route("/ftp", Route::redirect(302, &format!("ftp://x/{long}"))),
    )
    .await;
    let r = run(&http(&srv.url("/"), "5s", |_| {})).await;
    assert!(!r.success);
    line_size("http, 400 KB Location", &r);
    if let Some(u) = r.http.as_ref().and_then(|h| h.final_url.as_ref()) {
        assert!(u.len() <= 2048, "{}", u.len());
    }
    // A Location just under hyper's head limit that is followed or refused.
    let long = format!("/{}", "b".repeat(300 * 1024));
    let srv = TestServer::http(
        Routes::new()
            .route("/", Route::redirect(302, &long))
            .route("/ftp", Route::redirect(302, &format!("ftp://x{long}"))),
    )
    .await;
    for path in ["/", "/ftp"] {
        let r = run(&http(&srv.url(path), "5s", |_| {})).await;
        assert!(!r.success, "{r:?}");
        line_size(&format!("http, 300 KB Location ({path})"), &r);
        let h = r.http.as_ref().unwrap();
        assert!(h.final_url.as_ref().is_none_or(|u| u.len() <= 2048));
    }
}

#[tokio::test]
async fn two_thousand_txt_answers_over_tcp() {
    let dns = DnsServer::start_hostile().await.unwrap();
    let c = check(CheckKind::Dns, "5s", |s| {
        s.query = Some("many.acme.test".into());
        s.record_type = Some("TXT".into());
        s.nameservers = Some(vec![dns.addr().to_string(), dns.addr().to_string()]);
        s.expect_answers = Some(vec!["something else".into()]);
    });
    let r = run(&c).await;
    assert_class(&r, FailureClass::DnsAnswerMismatch);
    let d = r.dns.as_ref().unwrap();
    assert_eq!(d.answers_total, Some(MANY_TXT_COUNT as u32));
    assert!(d.answers.len() <= 100);
    for s in &d.servers {
        assert_eq!(s.transport.as_deref(), Some("tcp"));
        assert_eq!(s.answers_total, Some(MANY_TXT_COUNT as u32));
    }
    line_size("dns, 2,000 TXT answers, 2 nameservers", &r);
}

#[tokio::test]
async fn a_page_with_500_broken_resources() {
    let html: String = (0..500)
        .map(|i| format!("<img src=\"/missing/{i}/{}.png\">", "p".repeat(3000)))
        .collect();
    let srv = TestServer::http(Routes::new().route("/", Route::ok(html))).await;
    let c = check(CheckKind::Page, "10s", |s| {
        s.url = Some(srv.url("/"));
    });
    let r = run(&c).await;
    assert_class(&r, FailureClass::PageResourceFailed);
    let p = r.page.as_ref().unwrap();
    assert_eq!(p.failed_resources, p.resources, "{p:?}");
    assert!(p.failures.len() <= 20);
    line_size("page, 500 broken resources", &r);
}
