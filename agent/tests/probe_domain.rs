//! Domain registration checks against a local RDAP server (axum on
//! 127.0.0.1) with RFC 9083-shaped answers: expiring, held, expired, missing
//! and hostile domains; through `Prober::probe` and `slaprobe-agent probe`.

mod support;

use std::path::Path;
use std::sync::Arc;

use slaprobe_agent::config::Check;
use slaprobe_agent::probe::Prober;
use slaprobe_agent::probe::domain::RdapBootstrap;
use slaprobe_tests::rdap_server::{REGISTRAR, RdapServer};
use slaprobe_wire::{CheckKind, CheckSpec, FailureClass, ProbeResult, Timestamp};
use support::{assert_class, assert_ok};

fn domain_check(domain: &str, rdap_url: Option<&str>, warn_days: Option<f64>) -> Check {
    let spec = CheckSpec {
        name: "d".into(),
        kind: CheckKind::Domain,
        timeout: Some("5s".into()),
        domain: Some(domain.into()),
        rdap_url: rdap_url.map(str::to_string),
        warn_days,
        ..Default::default()
    };
    Check::from_spec(&spec, 0, Path::new("a.toml"), Path::new("/")).expect("valid check")
}

async fn probe(srv: &RdapServer, domain: &str) -> ProbeResult {
    let check = domain_check(domain, Some(&srv.base_url()), Some(30.0));
    tokio::spawn(async move { Prober::new().probe(&check).await })
        .await
        .unwrap()
}

#[tokio::test]
async fn registration_is_reported() {
    let now = Timestamp::now().as_second();
    let srv = RdapServer::start(now).await.unwrap();

    let r = probe(&srv, "ok.example").await;
    assert_ok(&r);
    assert_eq!(r.kind, CheckKind::Domain);
    assert_eq!(r.target, "ok.example");
    let d = r.domain.as_ref().expect("domain section");
    assert_eq!(d.domain, "ok.example");
    assert_eq!(d.registrar.as_deref(), Some(REGISTRAR));
    assert_eq!(d.statuses, ["active"]);
    assert_eq!(d.http_status, Some(200));
    let exp = d.expires_at.unwrap().as_second();
    assert!((exp - (now + 400 * 86_400)).abs() <= 1, "{exp}");
    let days = d.days_left.unwrap();
    assert!((399.9..=400.01).contains(&days), "{days}");
    assert!(!d.expiring_soon);
    assert_eq!(
        d.rdap_url.as_deref(),
        Some(format!("{}domain/ok.example", srv.base_url()).as_str())
    );

    // Expiring within warn_days: a warning, not a failure.
    let r = probe(&srv, "expiring.example").await;
    assert_ok(&r);
    let d = r.domain.as_ref().unwrap();
    assert!(d.expiring_soon);
    assert!((4.9..=5.01).contains(&d.days_left.unwrap()));

    // No expiration event: reported without one, not failed.
    let r = probe(&srv, "noexpiry.example").await;
    assert_ok(&r);
    assert!(r.domain.as_ref().unwrap().expires_at.is_none());

    // Expired.
    let r = probe(&srv, "expired.example").await;
    assert_class(&r, FailureClass::DomainExpired);
    assert!(r.domain.as_ref().unwrap().days_left.unwrap() < -2.9);
}

#[tokio::test]
async fn held_domains_fail() {
    let now = Timestamp::now().as_second();
    let srv = RdapServer::start(now).await.unwrap();
    for (domain, status) in [
        ("held.example", "client hold"),
        ("serverheld.example", "serverHold"),
        ("pendingdelete.example", "pending delete"),
    ] {
        let r = probe(&srv, domain).await;
        assert_class(&r, FailureClass::DomainHeld);
        let msg = &r.failure.as_ref().unwrap().message;
        assert!(msg.contains(status), "{msg}");
        // The rest is still reported.
        let d = r.domain.as_ref().unwrap();
        assert!(d.expires_at.is_some() && d.registrar.is_some(), "{d:?}");
    }
}

#[tokio::test]
async fn unusable_answers_are_lookup_failures() {
    let now = Timestamp::now().as_second();
    let srv = RdapServer::start(now).await.unwrap();
    let cases = [
        ("unknown.example", "404"),
        ("huge.example", "limit"),
        ("garbage.example", "not JSON"),
        ("deep.example", "not JSON"),
    ];
    for (domain, says) in cases {
        let r = probe(&srv, domain).await;
        assert_class(&r, FailureClass::DomainLookup);
        let msg = &r.failure.as_ref().unwrap().message;
        assert!(msg.contains(says), "{domain}: {msg}");
        assert!(msg.len() <= 1024, "{domain}: {} bytes", msg.len());
        assert!(serde_json::to_vec(&r).unwrap().len() < 16 * 1024);
    }
    // Nobody listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/rdap/", l.local_addr().unwrap())
    };
    let check = domain_check("ok.example", Some(&dead), None);
    let r = Prober::new().probe(&check).await;
    assert_class(&r, FailureClass::DomainLookup);
    // No server for the TLD in the shipped bootstrap, and no rdap_url.
    let check = domain_check("ok.example", None, None);
    let r = Prober::new().probe(&check).await;
    assert_class(&r, FailureClass::DomainLookup);
    assert!(r.failure.unwrap().message.contains("rdap_bootstrap"));
}

#[tokio::test]
async fn bootstrap_routes_by_tld() {
    let now = Timestamp::now().as_second();
    let srv = RdapServer::start(now).await.unwrap();
    let json = format!(
        r#"{{"version":"1.0","services":[[["example"],["{}"]]]}}"#,
        srv.base_url()
    );
    let boot = Arc::new(RdapBootstrap::parse(json.as_bytes()).unwrap());
    let check = domain_check("ok.example", None, None);
    let r = Prober::new().with_rdap_bootstrap(boot).probe(&check).await;
    assert_ok(&r);
    assert_eq!(srv.requests(), ["/rdap/domain/ok.example"]);
}

#[test]
fn domain_config() {
    let check = |f: &dyn Fn(&mut CheckSpec)| {
        let mut s = CheckSpec {
            name: "d".into(),
            kind: CheckKind::Domain,
            domain: Some("Acme.Example.".into()),
            ..Default::default()
        };
        f(&mut s);
        Check::from_spec(&s, 0, Path::new("a.toml"), Path::new("/"))
    };
    let c = check(&|_| {}).unwrap();
    let slaprobe_agent::config::ProbeSpec::Domain(d) = &c.probe else {
        panic!()
    };
    assert_eq!(d.domain, "acme.example");
    assert_eq!(d.warn_days, 30.0);
    let e = check(&|s| s.domain = None).unwrap_err();
    assert_eq!(e.key, "checks[d].domain");
    let e = check(&|s| s.domain = Some("localhost".into())).unwrap_err();
    assert_eq!(e.key, "checks[d].domain");
    let e = check(&|s| s.rdap_url = Some("ftp://x/".into())).unwrap_err();
    assert_eq!(e.key, "checks[d].rdap_url");
    let e = check(&|s| s.url = Some("https://x/".into())).unwrap_err();
    assert_eq!(e.key, "checks[d].url");
    assert!(e.message.contains("does not apply to a domain check"));
    let e = check(&|s| s.warn_days = Some(-1.0)).unwrap_err();
    assert_eq!(e.key, "checks[d].warn_days");
    // IDNA applies.
    let c = check(&|s| s.domain = Some("bücher.example".into())).unwrap();
    assert_eq!(c.target, "xn--bcher-kva.example");
}

/// `slaprobe-agent probe` runs domain checks, with `[agent] rdap_bootstrap`.
#[tokio::test]
async fn cli_probe_runs_domain_checks() {
    let now = Timestamp::now().as_second();
    let srv = RdapServer::start(now).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dns.json"),
        format!(
            r#"{{"version":"1.0","services":[[["example"],["{}"]]]}}"#,
            srv.base_url()
        ),
    )
    .unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[agent]\nid = \"a\"\nlocation = \"l\"\nrdap_bootstrap = \"dns.json\"\n\n\
         [[checks]]\nname = \"acme-domain\"\nkind = \"domain\"\ndomain = \"expiring.example\"\nwarn_days = 30\n\n\
         [[checks]]\nname = \"held-domain\"\nkind = \"domain\"\ndomain = \"held.example\"\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe-agent"))
            .args(["probe", "--config"])
            .arg(&config)
            .output()
            .unwrap()
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
    let results: Vec<ProbeResult> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |n: &str| results.iter().find(|r| r.check == n).unwrap();
    let ok = by("acme-domain");
    assert!(ok.success);
    assert!(ok.domain.as_ref().unwrap().expiring_soon);
    assert_eq!(by("held-domain").class(), Some(FailureClass::DomainHeld));

    // A bootstrap that is not one is a config error naming the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[agent]\nid = \"a\"\nlocation = \"l\"\nrdap_bootstrap = \"agent.toml\"\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe-agent"))
            .args(["check-config", "--config"])
            .arg(&bad)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.rdap_bootstrap"), "{err}");
}
