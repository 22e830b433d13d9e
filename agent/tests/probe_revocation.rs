//! Revocation of the leaf (`revocation`, `tls.revocation`, class
//! `tls_cert_revoked`) against local servers: TLS servers stapling OCSP
//! responses made at test time (in Rust and by `openssl ocsp`), an HTTP
//! OCSP responder, a CRL distribution point, and unreachable ones.

mod support;

use std::path::PathBuf;

use slaprobe_agent::config::Check;
use slaprobe_tests::certs::{LeafSpec, ServerCert, TestCa};
use slaprobe_tests::http_server::{Route, Routes, TestServer, refused_addr};
use slaprobe_tests::ocsp::{self, ResponseSpec, Signer, Status};
use slaprobe_wire::{
    CheckKind, FailureClass, ProbeResult, Revocation, RevocationSource, RevocationStatus,
};
use support::{assert_class, assert_ok, check, http, run};

struct Fixture {
    ca: TestCa,
    ca_file: PathBuf,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let ca = TestCa::new("slaprobe Revocation CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path(), "ca.pem");
    Fixture { ca, ca_file, dir }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// An HTTPS server presenting `leaf` and stapling `staple` (none when empty).
async fn serve(leaf: &ServerCert, staple: Vec<u8>) -> TestServer {
    let cfg = if staple.is_empty() {
        leaf.server_config()
    } else {
        leaf.server_config_stapling(staple)
    };
    TestServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Routes::new().route("/", Route::ok("ok")),
        Some(cfg),
    )
    .await
}

fn tls_check(fx: &Fixture, port: u16, f: impl FnOnce(&mut slaprobe_wire::CheckSpec)) -> Check {
    check(CheckKind::Tls, "3s", |s| {
        s.host = Some("localhost".into());
        s.port = Some(port);
        s.ca_file = Some(fx.ca_file.to_string_lossy().into_owned());
        f(s)
    })
}

fn revocation(r: &ProbeResult) -> &Revocation {
    r.tls
        .as_ref()
        .expect("tls section")
        .revocation
        .as_ref()
        .expect("tls.revocation")
}

fn assert_status(r: &ProbeResult, status: RevocationStatus, source: Option<RevocationSource>) {
    let rev = revocation(r);
    assert_eq!(rev.status, status, "{r:#?}");
    assert_eq!(rev.source, source, "{r:#?}");
}

fn detail(r: &ProbeResult) -> String {
    revocation(r).detail.clone().unwrap_or_default()
}

#[tokio::test]
async fn a_good_staple_is_good() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let srv = serve(&leaf, ResponseSpec::good(&fx.ca, &leaf).build()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_ok(&r);
    assert_status(&r, RevocationStatus::Good, Some(RevocationSource::Staple));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["tls"]["revocation"]["status"], "good");
    assert_eq!(json["tls"]["revocation"]["source"], "staple");
}

#[tokio::test]
async fn a_revoked_staple_fails_with_reason_and_time() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let spec = ResponseSpec::revoked(&fx.ca, &leaf, Some(1));
    let Status::Revoked { at, .. } = spec.status else {
        unreachable!()
    };
    let srv = serve(&leaf, spec.build()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
    let msg = &r.failure.as_ref().unwrap().message;
    let at_ts = jiff::Timestamp::from_second(at).unwrap();
    assert!(msg.contains("keyCompromise"), "{msg}");
    assert!(msg.contains(&at_ts.to_string()), "{msg}");
    let rev = revocation(&r);
    assert_eq!(rev.status, RevocationStatus::Revoked);
    assert_eq!(rev.source, Some(RevocationSource::Staple));
    assert_eq!(rev.reason.as_deref(), Some("keyCompromise"));
    assert_eq!(rev.revoked_at, Some(at_ts));
    // The certificate itself is still described.
    let t = r.tls.as_ref().unwrap();
    assert!(t.chain_valid && t.hostname_valid, "{t:#?}");
}

#[tokio::test]
async fn http_and_page_probes_stop_before_the_request_on_a_revoked_certificate() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let srv = serve(&leaf, ResponseSpec::revoked(&fx.ca, &leaf, None).build()).await;
    let url = srv.url_for_host("localhost", "/");
    let ca = fx.ca_file.to_string_lossy().into_owned();
    let h = run(&http(&url, "3s", |s| s.ca_file = Some(ca.clone()))).await;
    assert_class(&h, FailureClass::TlsCertRevoked);
    assert!(
        h.failure
            .as_ref()
            .unwrap()
            .message
            .contains("no reason given"),
        "{h:#?}"
    );
    let p = run(&check(CheckKind::Page, "3s", |s| {
        s.url = Some(url.clone());
        s.ca_file = Some(ca.clone());
    }))
    .await;
    assert_class(&p, FailureClass::TlsCertRevoked);
    assert_status(
        &p,
        RevocationStatus::Revoked,
        Some(RevocationSource::Staple),
    );
    assert!(srv.stats().requests().is_empty(), "no request was sent");
}

#[tokio::test]
async fn staples_that_cannot_be_believed_are_unknown_not_failures() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let other = fx.ca.localhost();
    let stranger = TestCa::new("Some Other CA");
    let no_eku = fx.ca.ocsp_responder(false);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "stale good",
            ResponseSpec {
                this_update: now() - 3 * 86_400,
                next_update: Some(now() - 86_400),
                ..ResponseSpec::good(&fx.ca, &leaf)
            }
            .build(),
            "nextUpdate",
        ),
        (
            "good from the future",
            ResponseSpec {
                this_update: now() + 86_400,
                next_update: Some(now() + 2 * 86_400),
                ..ResponseSpec::good(&fx.ca, &leaf)
            }
            .build(),
            "in the future",
        ),
        (
            "bad signature",
            ResponseSpec {
                corrupt_signature: true,
                ..ResponseSpec::revoked(&fx.ca, &leaf, Some(1))
            }
            .build(),
            "signature",
        ),
        (
            "another certificate's serial",
            ResponseSpec::revoked(&fx.ca, &other, Some(1)).build(),
            "does not cover",
        ),
        (
            "signed by another CA",
            ResponseSpec {
                ca: &stranger,
                ..ResponseSpec::revoked(&fx.ca, &leaf, Some(1))
            }
            .build(),
            "not signed by the issuer",
        ),
        (
            "delegated responder without id-kp-OCSPSigning",
            ResponseSpec {
                signer: Signer::Delegated(&no_eku),
                ..ResponseSpec::revoked(&fx.ca, &leaf, Some(1))
            }
            .build(),
            "lacks id-kp-OCSPSigning",
        ),
        ("tryLater", ocsp::unsuccessful(3), "tryLater"),
        ("garbage", b"not DER at all".to_vec(), "malformed"),
    ];
    for (name, staple, why) in cases {
        let srv = serve(&leaf, staple).await;
        let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
        assert!(r.success, "{name}: {r:#?}");
        assert_status(
            &r,
            RevocationStatus::Unknown,
            Some(RevocationSource::Staple),
        );
        assert!(detail(&r).contains(why), "{name}: {}", detail(&r));
        // With revocation_required the same staple fails, as untrusted.
        let r = run(&tls_check(&fx, srv.addr().port(), |s| {
            s.revocation_required = Some(true)
        }))
        .await;
        assert_class(&r, FailureClass::TlsCertUntrusted);
        assert!(
            r.failure
                .as_ref()
                .unwrap()
                .message
                .contains("revocation_required"),
            "{name}: {r:#?}"
        );
    }
}

#[tokio::test]
async fn a_stale_revocation_is_still_a_revocation_unless_on_hold() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let stale = |reason| ResponseSpec {
        this_update: now() - 30 * 86_400,
        next_update: Some(now() - 20 * 86_400),
        ..ResponseSpec::revoked(&fx.ca, &leaf, reason)
    };
    let srv = serve(&leaf, stale(Some(1)).build()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
    assert!(detail(&r).contains("stale"), "{r:#?}");
    // certificateHold can be lifted: a stale hold proves nothing.
    let srv = serve(&leaf, stale(Some(6)).build()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_ok(&r);
    assert_status(
        &r,
        RevocationStatus::Unknown,
        Some(RevocationSource::Staple),
    );
    // A fresh hold is a revocation for now.
    let srv = serve(&leaf, ResponseSpec::revoked(&fx.ca, &leaf, Some(6)).build()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
    assert!(
        r.failure
            .as_ref()
            .unwrap()
            .message
            .contains("certificateHold"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn staples_arrive_over_tls12_too() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let cfg = leaf.server_config_stapling_versions(
        ResponseSpec::revoked(&fx.ca, &leaf, Some(1)).build(),
        &[&rustls::version::TLS12],
    );
    let srv = TestServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Routes::new().route("/", Route::ok("ok")),
        Some(cfg),
    )
    .await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_eq!(r.tls.as_ref().unwrap().version.as_deref(), Some("TLSv1.2"));
    assert_class(&r, FailureClass::TlsCertRevoked);
}

#[tokio::test]
async fn a_black_holed_responder_leaves_time_for_the_request() {
    let fx = fixture();
    let silent = slaprobe_tests::http_server::SilentServer::start().await;
    let leaf = fx
        .ca
        .leaf(&LeafSpec::new(&["localhost"]).ocsp(&format!("http://{}/ocsp", silent.addr())));
    let srv = serve(&leaf, Vec::new()).await;
    let ca = fx.ca_file.to_string_lossy().into_owned();
    let h = run(&http(&srv.url_for_host("localhost", "/"), "2s", |s| {
        s.ca_file = Some(ca.clone());
        s.revocation = Some("ocsp".into());
    }))
    .await;
    assert_ok(&h);
    assert_status(&h, RevocationStatus::Unknown, None);
    assert!(detail(&h).contains("no answer within"), "{h:#?}");
    assert!(h.duration_seconds < 1.9, "{}", h.duration_seconds);
}

#[tokio::test]
async fn a_delegated_responder_and_sha256_cert_ids_are_understood() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let responder = fx.ca.ocsp_responder(true);
    let staple = ResponseSpec {
        signer: Signer::Delegated(&responder),
        sha256: true,
        ..ResponseSpec::revoked(&fx.ca, &leaf, Some(4))
    }
    .build();
    let srv = serve(&leaf, staple).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
    assert_eq!(revocation(&r).reason.as_deref(), Some("superseded"));
}

#[tokio::test]
async fn a_responder_certificate_left_out_of_the_response_is_found_in_ca_file() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let responder = fx.ca.ocsp_responder(true);
    let staple = ResponseSpec {
        signer: Signer::Delegated(&responder),
        omit_certs: true,
        ..ResponseSpec::revoked(&fx.ca, &leaf, Some(1))
    }
    .build();
    let srv = serve(&leaf, staple).await;
    // Not known: the signature cannot be checked.
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_ok(&r);
    assert_status(
        &r,
        RevocationStatus::Unknown,
        Some(RevocationSource::Staple),
    );
    // Known from ca_pem (next to the CA): believed.
    let ca = fx.ca.pem.clone();
    let r = run(&check(CheckKind::Tls, "3s", |s| {
        s.host = Some("localhost".into());
        s.port = Some(srv.addr().port());
        s.ca_pem = Some(format!("{ca}{}", responder.leaf_pem));
    }))
    .await;
    assert_class(&r, FailureClass::TlsCertRevoked);
}

#[tokio::test]
async fn an_intermediate_issued_leaf_is_checked_against_the_intermediate() {
    let fx = fixture();
    let inter = fx.ca.intermediate("slaprobe Revocation Intermediate", 365);
    let leaf = inter.localhost();
    let srv = serve(&leaf, ResponseSpec::revoked(&inter, &leaf, Some(1)).build()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
}

#[tokio::test]
async fn openssl_made_staples_are_understood() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let revoked = ocsp::openssl_response(fx.dir.path(), &fx.ca, &leaf, Some("keyCompromise"));
    let srv = serve(&leaf, revoked).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
    assert_eq!(revocation(&r).reason.as_deref(), Some("keyCompromise"));

    let good_leaf = fx.ca.localhost();
    let good = ocsp::openssl_response(fx.dir.path(), &fx.ca, &good_leaf, None);
    let srv = serve(&good_leaf, good).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_ok(&r);
    assert_status(&r, RevocationStatus::Good, Some(RevocationSource::Staple));
}

#[tokio::test]
async fn off_ignores_even_a_revoked_staple() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let srv = serve(&leaf, ResponseSpec::revoked(&fx.ca, &leaf, Some(1)).build()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |s| {
        s.revocation = Some("off".into())
    }))
    .await;
    assert_ok(&r);
    assert_status(&r, RevocationStatus::NotChecked, None);
}

#[tokio::test]
async fn other_certificate_verdicts_keep_their_classes() {
    let fx = fixture();
    let expired = fx.ca.expired(3);
    let srv = serve(
        &expired,
        ResponseSpec::revoked(&fx.ca, &expired, Some(1)).build(),
    )
    .await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsCertExpired);
    assert_status(&r, RevocationStatus::NotChecked, None);

    let wrong = fx.ca.wrong_host();
    let srv = serve(
        &wrong,
        ResponseSpec::revoked(&fx.ca, &wrong, Some(1)).build(),
    )
    .await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_class(&r, FailureClass::TlsHostnameMismatch);

    // Untrusted: no ca_file.
    let leaf = fx.ca.localhost();
    let srv = serve(&leaf, ResponseSpec::revoked(&fx.ca, &leaf, Some(1)).build()).await;
    let r = run(&check(CheckKind::Tls, "3s", |s| {
        s.host = Some("localhost".into());
        s.port = Some(srv.addr().port());
    }))
    .await;
    assert_class(&r, FailureClass::TlsCertUntrusted);
}

/// An HTTP server answering every path with `body` as an OCSP response.
async fn responder(body: Vec<u8>) -> TestServer {
    TestServer::http(Routes::new().route(
        "/",
        Route::ok(body).header("Content-Type", "application/ocsp-response"),
    ))
    .await
}

#[tokio::test]
async fn staple_mode_makes_no_extra_traffic() {
    let fx = fixture();
    let placeholder = responder(Vec::new()).await;
    let leaf = fx
        .ca
        .leaf(&LeafSpec::new(&["localhost"]).ocsp(&placeholder.url("/")));
    let srv = serve(&leaf, Vec::new()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |_| {})).await;
    assert_ok(&r);
    assert_status(&r, RevocationStatus::NotChecked, None);
    // The usual case stays short: most https results carry it.
    assert_eq!(revocation(&r).detail, None, "{r:#?}");
    let json = serde_json::to_string(&r.tls.as_ref().unwrap().revocation).unwrap();
    assert_eq!(json, r#"{"status":"not_checked","source":null}"#);
    assert_eq!(placeholder.stats().connections(), 0);
    // Required: must-staple in effect.
    let r = run(&tls_check(&fx, srv.addr().port(), |s| {
        s.revocation_required = Some(true)
    }))
    .await;
    assert_class(&r, FailureClass::TlsCertUntrusted);
    assert!(
        r.failure
            .as_ref()
            .unwrap()
            .message
            .contains("stapled no OCSP response"),
        "{r:#?}"
    );
}

/// A free loopback address, for a server whose URL must be in a
/// certificate before the server (and its answer about that certificate)
/// can exist.
fn free_addr() -> std::net::SocketAddr {
    refused_addr()
}

#[tokio::test]
async fn ocsp_mode_asks_the_responder_once_per_response_lifetime() {
    let fx = fixture();
    let addr = free_addr();
    let leaf = fx
        .ca
        .leaf(&LeafSpec::new(&["localhost"]).ocsp(&format!("http://{addr}/ocsp")));
    let answer = ResponseSpec::revoked(&fx.ca, &leaf, Some(1)).build();
    let ocsp_srv = TestServer::start(
        addr,
        Routes::new().route(
            "/ocsp",
            Route::ok(answer).header("Content-Type", "application/ocsp-response"),
        ),
        None,
    )
    .await;
    let srv = serve(&leaf, Vec::new()).await;
    let c = tls_check(&fx, srv.addr().port(), |s| {
        s.revocation = Some("ocsp".into())
    });
    let r = run(&c).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
    assert_status(
        &r,
        RevocationStatus::Revoked,
        Some(RevocationSource::Responder),
    );
    // GET first (this server only answers POST at /ocsp: 404), then POST.
    let reqs = ocsp_srv.stats().requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].method, "GET");
    assert!(reqs[0].target.starts_with("/ocsp/M"), "{reqs:#?}");
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(
        reqs[1].header("content-type"),
        Some("application/ocsp-request")
    );
    // Two more probes through one prober: the second uses the cached answer.
    let prober = slaprobe_agent::probe::Prober::new();
    let a = prober.probe(&c).await;
    let b = prober.probe(&c).await;
    assert_class(&a, FailureClass::TlsCertRevoked);
    assert_class(&b, FailureClass::TlsCertRevoked);
    assert_eq!(
        ocsp_srv.stats().requests().len(),
        4,
        "cached until nextUpdate"
    );
}

#[tokio::test]
async fn an_unreachable_responder_is_unknown_unless_required() {
    let fx = fixture();
    let dead = format!("http://{}/ocsp", refused_addr());
    let leaf = fx.ca.leaf(&LeafSpec::new(&["localhost"]).ocsp(&dead));
    let srv = serve(&leaf, Vec::new()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |s| {
        s.revocation = Some("ocsp".into())
    }))
    .await;
    assert_ok(&r);
    assert_status(&r, RevocationStatus::Unknown, None);
    assert!(detail(&r).contains("connect"), "{r:#?}");
    let r = run(&tls_check(&fx, srv.addr().port(), |s| {
        s.revocation = Some("ocsp".into());
        s.revocation_required = Some(true);
    }))
    .await;
    assert_class(&r, FailureClass::TlsCertUntrusted);
}

#[tokio::test]
async fn an_oversized_responder_answer_is_refused() {
    let fx = fixture();
    let big = responder(vec![0u8; 200 * 1024]).await;
    let leaf = fx
        .ca
        .leaf(&LeafSpec::new(&["localhost"]).ocsp(&big.url("/")));
    let srv = serve(&leaf, Vec::new()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), |s| {
        s.revocation = Some("ocsp".into())
    }))
    .await;
    assert_ok(&r);
    assert_status(
        &r,
        RevocationStatus::Unknown,
        Some(RevocationSource::Responder),
    );
    assert!(detail(&r).contains("limit"), "{r:#?}");
}

#[tokio::test]
async fn a_certificate_without_a_responder_is_not_checked() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let srv = serve(&leaf, Vec::new()).await;
    for mode in ["staple", "ocsp", "ocsp+crl"] {
        let r = run(&tls_check(&fx, srv.addr().port(), |s| {
            s.revocation = Some(mode.into())
        }))
        .await;
        assert_ok(&r);
        assert_status(&r, RevocationStatus::NotChecked, None);
    }
}

#[tokio::test]
async fn ocsp_crl_falls_back_to_the_crl() {
    let fx = fixture();
    let dead = format!("http://{}/ocsp", refused_addr());
    let addr = free_addr();
    let crl_url = format!("http://{addr}/crl");
    let revoked = fx
        .ca
        .leaf(&LeafSpec::new(&["localhost"]).ocsp(&dead).crl(&crl_url));
    let good = fx
        .ca
        .leaf(&LeafSpec::new(&["localhost"]).ocsp(&dead).crl(&crl_url));
    let crl = fx.ca.crl(&[(&revoked, Some(1))], 86_400);
    let crl_srv = TestServer::start(addr, Routes::new().route("/crl", Route::ok(crl)), None).await;

    let srv = serve(&revoked, Vec::new()).await;
    let mode = |s: &mut slaprobe_wire::CheckSpec| s.revocation = Some("ocsp+crl".into());
    let r = run(&tls_check(&fx, srv.addr().port(), mode)).await;
    assert_class(&r, FailureClass::TlsCertRevoked);
    assert_status(&r, RevocationStatus::Revoked, Some(RevocationSource::Crl));
    assert_eq!(revocation(&r).reason.as_deref(), Some("keyCompromise"));

    let srv = serve(&good, Vec::new()).await;
    let r = run(&tls_check(&fx, srv.addr().port(), mode)).await;
    assert_ok(&r);
    assert_status(&r, RevocationStatus::Good, Some(RevocationSource::Crl));
    // "ocsp" alone never fetches the CRL.
    let before = crl_srv.stats().requests().len();
    let r = run(&tls_check(&fx, srv.addr().port(), |s| {
        s.revocation = Some("ocsp".into())
    }))
    .await;
    assert_status(&r, RevocationStatus::Unknown, None);
    assert_eq!(crl_srv.stats().requests().len(), before);
}

/// Probes of many leaves of one CA that start together (an agent's first
/// round) share one download of the CRL: the others wait for it and use
/// the cached list.
#[tokio::test]
async fn concurrent_probes_download_a_crl_once() {
    let fx = fixture();
    let dead = format!("http://{}/ocsp", refused_addr());
    let addr = free_addr();
    let crl_url = format!("http://{addr}/crl");
    let leaves: Vec<ServerCert> = (0..6)
        .map(|_| {
            fx.ca
                .leaf(&LeafSpec::new(&["localhost"]).ocsp(&dead).crl(&crl_url))
        })
        .collect();
    let crl = fx.ca.crl(&[(&leaves[0], Some(1))], 86_400);
    // Slow enough that every probe asks while the first download runs.
    let crl_srv = TestServer::start(
        addr,
        Routes::new().route(
            "/crl",
            Route::ok(crl).delay(std::time::Duration::from_millis(300)),
        ),
        None,
    )
    .await;
    let mut servers = Vec::new();
    for leaf in &leaves {
        servers.push(serve(leaf, Vec::new()).await);
    }
    let checks: Vec<Check> = servers
        .iter()
        .map(|srv| {
            tls_check(&fx, srv.addr().port(), |s| {
                s.revocation = Some("ocsp+crl".into())
            })
        })
        .collect();
    let prober = slaprobe_agent::probe::Prober::new();
    let mut tasks = tokio::task::JoinSet::new();
    for c in checks {
        let p = prober.clone();
        tasks.spawn(async move { p.probe(&c).await });
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.unwrap());
    }
    let revoked = results
        .iter()
        .filter(|r| r.failure.as_ref().map(|f| f.class) == Some(FailureClass::TlsCertRevoked))
        .count();
    assert_eq!(revoked, 1, "{results:#?}");
    for r in &results {
        assert_eq!(revocation(r).source, Some(RevocationSource::Crl), "{r:#?}");
    }
    assert_eq!(
        crl_srv.stats().requests().len(),
        1,
        "one download for 6 probes"
    );
}

#[tokio::test]
async fn crls_that_cannot_be_believed_are_unknown() {
    let fx = fixture();
    let stranger = TestCa::new("slaprobe Revocation CA"); // same name, other key
    for name in ["forged", "stale"] {
        let addr = free_addr();
        let leaf = fx
            .ca
            .leaf(&LeafSpec::new(&["localhost"]).crl(&format!("http://{addr}/crl")));
        let (body, why) = match name {
            "forged" => (stranger.crl(&[(&leaf, None)], 86_400), "signature"),
            _ => (fx.ca.crl(&[(&leaf, None)], -7200), "stale"),
        };
        let _crl_srv =
            TestServer::start(addr, Routes::new().route("/crl", Route::ok(body)), None).await;
        let srv = serve(&leaf, Vec::new()).await;
        let r = run(&tls_check(&fx, srv.addr().port(), |s| {
            s.revocation = Some("ocsp+crl".into())
        }))
        .await;
        assert_ok(&r);
        assert_status(&r, RevocationStatus::Unknown, Some(RevocationSource::Crl));
        assert!(detail(&r).contains(why), "{name}: {r:#?}");
    }
}

#[test]
fn config_rejects_bad_revocation_settings() {
    use std::path::Path;
    let base = slaprobe_wire::CheckSpec {
        name: "t".into(),
        kind: CheckKind::Tls,
        host: Some("localhost".into()),
        ..Default::default()
    };
    let err = |s: &slaprobe_wire::CheckSpec| {
        Check::from_spec(s, 0, Path::new("a.toml"), Path::new("/"))
            .unwrap_err()
            .to_string()
    };
    let mut s = base.clone();
    s.revocation = Some("crl".into());
    let e = err(&s);
    assert!(
        e.contains("checks[t].revocation") && e.contains("ocsp+crl"),
        "{e}"
    );
    let mut s = base.clone();
    s.revocation = Some("off".into());
    s.revocation_required = Some(true);
    assert!(err(&s).contains("revocation_required"), "{}", err(&s));
    let mut s = base.clone();
    s.kind = CheckKind::Dns;
    s.host = None;
    s.query = Some("a.example".into());
    s.revocation = Some("ocsp".into());
    assert!(err(&s).contains("does not apply"), "{}", err(&s));
    for ok in ["off", "staple", "ocsp", "ocsp+crl"] {
        let mut s = base.clone();
        s.revocation = Some(ok.into());
        Check::from_spec(&s, 0, Path::new("a.toml"), Path::new("/")).expect(ok);
    }
}

#[tokio::test]
async fn the_probe_command_prints_tls_revocation() {
    let fx = fixture();
    let leaf = fx.ca.localhost();
    let srv = serve(&leaf, ResponseSpec::revoked(&fx.ca, &leaf, Some(1)).build()).await;
    let cfg = fx.dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"ams-1\"\nlocation = \"ams\"\n\
             [[checks]]\nname = \"acme-tls\"\nkind = \"tls\"\nhost = \"localhost\"\nport = {}\n\
             ca_file = \"ca.pem\"\ntimeout = \"5s\"\nrevocation = \"staple\"\n",
            srv.addr().port()
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe-agent"))
            .args(["probe", "--config"])
            .arg(&cfg)
            .output()
            .expect("run slaprobe-agent")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(r["failure"]["class"], "tls_cert_revoked", "{r}");
    assert_eq!(r["tls"]["revocation"]["status"], "revoked", "{r}");
    assert_eq!(r["tls"]["revocation"]["source"], "staple", "{r}");
    assert_eq!(r["tls"]["revocation"]["reason"], "keyCompromise", "{r}");
    assert!(r["tls"]["revocation"]["revoked_at"].is_string(), "{r}");
}

/// A responder that answers with `openssl ocsp` about the request it was
/// sent: a GET's request decoded from the URL by `openssl base64` (RFC 6960
/// A.1), a POST's from the body. Methods not in `accept` get 405. Records
/// each request's method.
struct OpensslResponder {
    addr: std::net::SocketAddr,
    methods: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl OpensslResponder {
    async fn start(dir: std::path::PathBuf, accept: &'static [&'static str]) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let methods = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = methods.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let head_end = loop {
                    let mut chunk = [0u8; 4096];
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i + 4);
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut line = head.lines().next().unwrap_or("").split(' ');
                let (method, target) = (
                    line.next().unwrap_or("").to_string(),
                    line.next().unwrap_or("").to_string(),
                );
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let mut chunk = [0u8; 4096];
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                seen.lock().unwrap().push(method.clone());
                let answer = if !accept.contains(&method.as_str()) {
                    None
                } else if method == "GET" {
                    let b64 = target
                        .trim_start_matches('/')
                        .replace("%2B", "+")
                        .replace("%2F", "/")
                        .replace("%3D", "=");
                    std::fs::write(dir.join("req.b64"), b64).unwrap();
                    let ok = std::process::Command::new("openssl")
                        .current_dir(&dir)
                        .args(["base64", "-d", "-A", "-in", "req.b64", "-out", "req.der"])
                        .status()
                        .unwrap()
                        .success();
                    ok.then(|| openssl_answer(&dir)).flatten()
                } else {
                    std::fs::write(dir.join("req.der"), &buf[head_end..]).unwrap();
                    openssl_answer(&dir)
                };
                let reply = match answer {
                    Some(body) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&body);
                        r
                    }
                    None => b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = sock.write_all(&reply).await;
            }
        });
        Self {
            addr,
            methods,
            _task: task,
        }
    }

    fn methods(&self) -> Vec<String> {
        self.methods.lock().unwrap().clone()
    }
}

/// `openssl ocsp` answering `dir/req.der` from `dir/index.txt` (written by
/// [`ocsp::openssl_response`]); None when it cannot parse the request.
fn openssl_answer(dir: &std::path::Path) -> Option<Vec<u8>> {
    let _ = std::fs::remove_file(dir.join("resp-srv.der"));
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args([
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "ca.pem",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.pem",
            "-reqin",
            "req.der",
            "-respout",
            "resp-srv.der",
            "-ndays",
            "1",
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| std::fs::read(dir.join("resp-srv.der")).ok())?
}

/// RFC 5019 §5 / RFC 6960 A.1: a short request goes by GET, which a real
/// responder (`openssl ocsp`) decodes from the URL and answers; a responder
/// that refuses GET is asked again by POST.
#[tokio::test]
async fn ocsp_requests_go_by_get_then_post() {
    let fx = fixture();
    let dir = fx.dir.path().to_path_buf();
    for (accept, want) in [
        (&["GET"][..], vec!["GET"]),
        (&["POST"][..], vec!["GET", "POST"]),
    ] {
        let responder = OpensslResponder::start(dir.clone(), accept).await;
        let leaf = fx
            .ca
            .leaf(&LeafSpec::new(&["localhost"]).ocsp(&format!("http://{}/", responder.addr)));
        // Writes the CA's files and an index.txt marking the leaf revoked.
        ocsp::openssl_response(&dir, &fx.ca, &leaf, Some("keyCompromise"));
        let srv = serve(&leaf, Vec::new()).await;
        let r = run(&tls_check(&fx, srv.addr().port(), |s| {
            s.revocation = Some("ocsp".into())
        }))
        .await;
        assert_class(&r, FailureClass::TlsCertRevoked);
        assert_status(
            &r,
            RevocationStatus::Revoked,
            Some(RevocationSource::Responder),
        );
        assert_eq!(revocation(&r).reason.as_deref(), Some("keyCompromise"));
        assert_eq!(responder.methods(), want, "accepting {accept:?}");
    }
}
