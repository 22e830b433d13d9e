use std::path::Path;
use std::sync::Arc;

use slaprobe_wire::{CheckKind, CheckSpec};

use super::*;

fn spec(kind: CheckKind) -> CheckSpec {
    CheckSpec {
        name: "c".into(),
        kind,
        ..Default::default()
    }
}

fn check(s: &CheckSpec) -> Result<Check, ConfigError> {
    Check::from_spec(s, 0, Path::new("a.toml"), Path::new("."))
}

#[test]
fn http_defaults() {
    let mut s = spec(CheckKind::Http);
    s.url = Some("https://www.acme.example/".into());
    let c = check(&s).unwrap();
    assert_eq!(c.interval, DEFAULT_INTERVAL);
    assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    let ProbeSpec::Http(h) = c.probe else {
        panic!()
    };
    assert_eq!(h.max_redirects, 10);
    assert!(h.expect_status.is_none());
}

#[test]
fn any_kind_can_be_a_canary() {
    let mut s = spec(CheckKind::Dns);
    s.query = Some(".".into());
    s.canary = true;
    let c = check(&s).unwrap();
    assert!(c.canary);
    assert!(crate::cli::describe_checks(&[c]).contains("(canary)"));
    // Only a canary carries the key on the wire (assignments stay as they were).
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("\"canary\":true"), "{json}");
    s.canary = false;
    assert!(!serde_json::to_string(&s).unwrap().contains("canary"));
}

#[test]
fn errors_name_the_key() {
    let mut s = spec(CheckKind::Http);
    let e = check(&s).unwrap_err();
    assert_eq!(e.key, "checks[c].url");
    s.url = Some("ftp://x/".into());
    assert!(check(&s).unwrap_err().message.contains("only http"));
    s.url = Some("http://x/".into());
    s.query = Some("x".into());
    let e = check(&s).unwrap_err();
    assert_eq!(e.key, "checks[c].query");
    s.query = None;
    s.timeout = Some("2m".into());
    assert!(
        check(&s)
            .unwrap_err()
            .message
            .contains("longer than the interval")
    );
    s.timeout = Some("soon".into());
    assert_eq!(check(&s).unwrap_err().key, "checks[c].timeout");
}

#[test]
fn errors_carry_a_kind() {
    let mut s = spec(CheckKind::Http);
    assert_eq!(check(&s).unwrap_err().kind(), ConfigErrorKind::MissingKey);
    s.url = Some("ftp://x/".into());
    assert_eq!(check(&s).unwrap_err().kind(), ConfigErrorKind::BadValue);
    s.url = Some("http://x/".into());
    s.warn_days = Some(3.0);
    let e = check(&s).unwrap_err();
    assert_eq!(
        (e.kind(), e.key.as_str()),
        (ConfigErrorKind::UnknownKey, "checks[c].warn_days")
    );
    s.warn_days = None;
    s.max_connections = Some(8);
    assert_eq!(
        check(&s).unwrap_err().kind(),
        ConfigErrorKind::UnknownKey,
        "page only"
    );
    s.kind = CheckKind::Page;
    assert!(check(&s).is_ok());
    s.max_connections = Some(0);
    assert_eq!(check(&s).unwrap_err().key, "checks[c].max_connections");

    // From the file: unknown key, missing key, bad value, bad file.
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let p = dir.path().join("a.toml");
        std::fs::write(&p, text).unwrap();
        AgentConfig::load(&p).unwrap_err()
    };
    let e = load("[agent]\nid = \"a\"\nlocation = \"b\"\nbogus = 1\n");
    assert_eq!(
        (e.kind(), e.key.as_str()),
        (ConfigErrorKind::UnknownKey, "agent.bogus")
    );
    assert_eq!(
        load("[agent]\nid = \"a\"\n").kind(),
        ConfigErrorKind::MissingKey
    );
    let e = load("[agent]\nid = \"a\"\nlocation = \"b\"\nconcurrency = \"x\"\n");
    assert_eq!(
        (e.kind(), e.key.as_str()),
        (ConfigErrorKind::BadValue, "agent.concurrency")
    );
    assert_eq!(load("[agent\n").kind(), ConfigErrorKind::BadFile);
    let e = AgentConfig::load(&dir.path().join("none.toml")).unwrap_err();
    assert_eq!(e.kind(), ConfigErrorKind::BadFile);
}

#[test]
fn probe_threads_default_to_one_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let load = |extra: &str| {
        let p = dir.path().join("a.toml");
        std::fs::write(
            &p,
            format!("[agent]\nid = \"a\"\nlocation = \"b\"\n{extra}"),
        )
        .unwrap();
        AgentConfig::load(&p)
    };
    assert_eq!(load("").unwrap().agent.probe_threads, 1);
    assert_eq!(load("probe_threads = 4\n").unwrap().agent.probe_threads, 4);
    for bad in ["probe_threads = 0\n", "probe_threads = 65\n"] {
        let e = load(bad).unwrap_err();
        assert_eq!(
            (e.kind(), e.key.as_str()),
            (ConfigErrorKind::BadValue, "agent.probe_threads")
        );
        assert!(e.to_string().contains("out of range 1..=64"), "{e}");
    }
}

#[test]
fn timeout_default_capped_by_interval() {
    let mut s = spec(CheckKind::Tls);
    s.host = Some("h".into());
    s.interval = Some("5s".into());
    assert_eq!(check(&s).unwrap().timeout, Duration::from_secs(5));
}

#[test]
fn dns_nameservers_and_types() {
    let mut s = spec(CheckKind::Dns);
    s.query = Some("www.acme.example".into());
    s.nameservers = Some(vec![
        "127.0.0.1:5353".into(),
        "192.0.2.1".into(),
        "[::1]:53".into(),
    ]);
    s.record_type = Some("mx".into());
    let c = check(&s).unwrap();
    let ProbeSpec::Dns(d) = c.probe else { panic!() };
    assert_eq!(d.record_type, RecordType::Mx);
    assert_eq!(d.nameservers[1].port(), 53);
    s.record_type = Some("PTR".into());
    assert_eq!(check(&s).unwrap_err().key, "checks[c].record_type");
}

#[test]
fn secret_is_not_printed() {
    let s = Secret::new("hunter2");
    assert!(!format!("{s:?}").contains("hunter2"));
}

/// Memory must not depend on how checks are written: checks naming the same
/// `ca_file`, carrying the same `ca_pem` or the same `resolve` map share one
/// parsed copy; different values stay apart.
#[test]
fn trust_sets_and_resolve_maps_are_shared() {
    let dir = tempfile::tempdir().unwrap();
    let ca = slaprobe_tests::certs::TestCa::new("slaprobe intern CA");
    let other = slaprobe_tests::certs::TestCa::new("slaprobe other CA");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("other.pem"), &other.pem).unwrap();
    let mk = |name: &str, f: &dyn Fn(&mut CheckSpec)| {
        let mut s = spec(CheckKind::Http);
        s.name = name.into();
        s.url = Some("https://www.acme.example/".into());
        f(&mut s);
        s
    };
    let specs = vec![
        mk("file-1", &|s| s.ca_file = Some("ca.pem".into())),
        mk("file-2", &|s| s.ca_file = Some("ca.pem".into())),
        mk("pem-1", &|s| s.ca_pem = Some(ca.pem.clone())),
        mk("other", &|s| s.ca_file = Some("other.pem".into())),
        mk("pin-1", &|s| {
            s.resolve = Some([("WWW.acme.example".into(), "127.0.0.2".into())].into())
        }),
        mk("pin-2", &|s| {
            s.resolve = Some([("www.acme.example".into(), "127.0.0.2".into())].into())
        }),
        mk("pin-3", &|s| {
            s.resolve = Some([("www.acme.example".into(), "127.0.0.3".into())].into())
        }),
    ];
    let checks = validate_checks(&specs, &dir.path().join("a.toml"), dir.path()).unwrap();
    let net = |i: usize| match &checks[i].probe {
        ProbeSpec::Http(h) => h.net.clone(),
        _ => unreachable!(),
    };
    assert_eq!(net(0).extra_roots.len(), 1);
    assert!(
        Arc::ptr_eq(&net(0).extra_roots, &net(1).extra_roots),
        "same ca_file"
    );
    assert!(
        Arc::ptr_eq(&net(0).extra_roots, &net(2).extra_roots),
        "an inline ca_pem of the same certificate"
    );
    assert!(!Arc::ptr_eq(&net(0).extra_roots, &net(3).extra_roots));
    assert_ne!(net(0).extra_roots, net(3).extra_roots);
    assert!(
        Arc::ptr_eq(&net(4).resolve, &net(5).resolve),
        "same map once lowercased"
    );
    assert!(!Arc::ptr_eq(&net(4).resolve, &net(6).resolve));
    assert!(
        Arc::ptr_eq(&net(0).resolve, &net(3).resolve),
        "no pins: one empty map"
    );

    // A shared trust set gives one TLS client config for all its checks.
    let tls = crate::probe::tls::TlsShared::new();
    let a = tls.client_config(&net(0).extra_roots).unwrap();
    let b = tls.client_config(&net(1).extra_roots).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}
