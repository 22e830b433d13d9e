//! DNS probe against an in-process authoritative hickory server, a fake
//! SERVFAIL server and a silent UDP port.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use slaprobe_agent::config::{Check, DnsSpec, RecordType};
use slaprobe_agent::probe::{Outcome, Prober, dns};
use slaprobe_tests::dns_server::{
    BIG_TXT_COUNT, DnsServer, RcodeServer, SERIAL, SilentUdp, big_txt,
};
use slaprobe_tests::wait::LOADED_SLACK;
use slaprobe_wire::{CheckKind, CheckSpec, DnsDetail, FailureClass};

fn spec(query: &str, rtype: RecordType, nameservers: &[SocketAddr]) -> DnsSpec {
    DnsSpec {
        query: query.into(),
        record_type: rtype,
        nameservers: nameservers.to_vec(),
        expect_answers: None,
        dnssec: None,
        consistency: None,
    }
}

fn expecting(mut s: DnsSpec, answers: &[&str]) -> DnsSpec {
    s.expect_answers = Some(
        answers
            .iter()
            .map(|a| slaprobe_agent::config::trim_answer(a))
            .collect(),
    );
    s
}

async fn run(s: &DnsSpec) -> Outcome {
    dns::probe(s, tokio::time::Instant::now() + Duration::from_secs(5)).await
}

fn detail(o: &Outcome) -> &DnsDetail {
    o.dns.as_ref().expect("dns section present")
}

fn class(o: &Outcome) -> Option<FailureClass> {
    o.failure.as_ref().map(|f| f.class)
}

/// Asserts success and returns the answers.
fn ok_answers(o: &Outcome) -> Vec<String> {
    assert!(o.failure.is_none(), "unexpected failure: {:?}", o.failure);
    let d = detail(o);
    assert_eq!(d.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(d.servers.len(), 1);
    assert!(d.servers[0].success);
    assert_eq!(d.servers[0].transport.as_deref(), Some("udp"));
    assert!(d.servers[0].latency_seconds > 0.0);
    d.answers.clone()
}

#[tokio::test]
async fn every_record_type() {
    let srv = DnsServer::start().await.unwrap();
    let ns = [srv.addr()];
    let cases: &[(&str, RecordType, &[&str])] = &[
        (
            "www.acme.test",
            RecordType::A,
            &["192.0.2.10", "192.0.2.11"],
        ),
        ("www.acme.test", RecordType::Aaaa, &["2001:db8::10"]),
        ("alias.acme.test", RecordType::Cname, &["www.acme.test"]),
        (
            "acme.test",
            RecordType::Mx,
            &["10 mail.acme.test", "20 mail2.acme.test"],
        ),
        // Two records; the second has two character-strings, concatenated.
        (
            "acme.test",
            RecordType::Txt,
            &["hello world", "v=spf1 -all"],
        ),
        (
            "acme.test",
            RecordType::Ns,
            &["ns1.acme.test", "ns2.acme.test"],
        ),
        (
            "acme.test",
            RecordType::Caa,
            &["0 issue \"letsencrypt.org\""],
        ),
        // Absolute names are accepted as written.
        (
            "www.acme.test.",
            RecordType::A,
            &["192.0.2.10", "192.0.2.11"],
        ),
    ];
    for (query, rtype, want) in cases {
        let o = run(&spec(query, *rtype, &ns)).await;
        let mut got = ok_answers(&o);
        got.sort();
        assert_eq!(got, *want, "{query} {rtype:?}");
        assert_eq!(detail(&o).nameserver, srv.addr().to_string());
    }
    let o = run(&spec("acme.test", RecordType::Soa, &ns)).await;
    assert_eq!(
        ok_answers(&o),
        [format!(
            "ns1.acme.test hostmaster.acme.test {SERIAL} 3600 600 86400 60"
        )]
    );

    // An A query for an alias reports addresses only, never the CNAME.
    let o = run(&spec("alias.acme.test", RecordType::A, &ns)).await;
    let d = detail(&o);
    assert!(
        d.answers
            .iter()
            .all(|a| a.parse::<std::net::IpAddr>().is_ok()),
        "{d:?}"
    );
}

#[tokio::test]
async fn no_records_of_the_type_is_a_mismatch() {
    let srv = DnsServer::start().await.unwrap();
    let o = run(&spec("www.acme.test", RecordType::Mx, &[srv.addr()])).await;
    assert_eq!(class(&o), Some(FailureClass::DnsAnswerMismatch));
    assert!(
        o.failure
            .as_ref()
            .unwrap()
            .message
            .contains("no MX records for www.acme.test"),
        "{:?}",
        o.failure
    );
    assert_eq!(detail(&o).rcode.as_deref(), Some("NOERROR"));
    assert!(detail(&o).answers.is_empty());
}

#[tokio::test]
async fn rcodes() {
    let srv = DnsServer::start().await.unwrap();
    let fake = RcodeServer::servfail().await.unwrap();
    let cases = [
        ("nope.acme.test", srv.addr(), "NXDOMAIN"),
        ("www.elsewhere.test", srv.addr(), "REFUSED"), // outside every zone
        ("www.acme.test", fake.addr(), "SERVFAIL"),
    ];
    for (query, ns, rcode) in cases {
        let o = run(&spec(query, RecordType::A, &[ns])).await;
        assert_eq!(
            class(&o),
            Some(FailureClass::DnsRcode),
            "{query}: {:?}",
            o.failure
        );
        assert!(o.failure.as_ref().unwrap().message.contains(rcode));
        let d = detail(&o);
        assert_eq!(d.rcode.as_deref(), Some(rcode));
        assert_eq!(d.servers[0].rcode.as_deref(), Some(rcode));
        assert!(!d.servers[0].success);
        assert_eq!(
            d.servers[0].failure.as_ref().map(|f| f.class),
            Some(FailureClass::DnsRcode)
        );
    }
}

/// Through `Prober::probe` (the real outer deadline): a silent server is a
/// `dns_error` reported just before the 2 s timeout, never a `timeout`.
#[tokio::test]
async fn silent_server_is_dns_error_within_the_timeout() {
    let silent = SilentUdp::bind().unwrap();
    let cs = CheckSpec {
        name: "silent".into(),
        kind: CheckKind::Dns,
        timeout: Some("2s".into()),
        query: Some("www.acme.test".into()),
        nameservers: Some(vec![silent.addr().to_string()]),
        ..Default::default()
    };
    let check = Check::from_spec(&cs, 0, Path::new("t.toml"), Path::new(".")).unwrap();
    let t0 = Instant::now();
    let r = Prober::new().probe(&check).await;
    let took = t0.elapsed();
    // The 2 s timeout, plus what a loaded machine may add to it.
    assert!(
        took < Duration::from_secs(2) + LOADED_SLACK,
        "took {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "gave up early: {took:?}"
    );
    assert!(!r.success);
    assert_eq!(r.class(), Some(FailureClass::DnsError), "{:?}", r.failure);
    assert!(
        r.failure.as_ref().unwrap().message.contains("no answer"),
        "{:?}",
        r.failure
    );
    let d = r.dns.unwrap();
    assert_eq!(d.nameserver, silent.addr().to_string());
    assert_eq!(d.rcode, None);
    assert_eq!(d.servers.len(), 1);
    assert_eq!(
        d.servers[0].failure.as_ref().map(|f| f.class),
        Some(FailureClass::DnsError)
    );
}

#[tokio::test]
async fn truncated_answer_falls_back_to_tcp() {
    let srv = DnsServer::start().await.unwrap();
    let o = run(&spec("big.acme.test", RecordType::Txt, &[srv.addr()])).await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let d = detail(&o);
    assert_eq!(d.servers[0].transport.as_deref(), Some("tcp"));
    assert_eq!(d.answers.len(), BIG_TXT_COUNT);
    let mut want: Vec<String> = (0..BIG_TXT_COUNT).map(big_txt).collect();
    want.sort();
    let mut got = d.answers.clone();
    got.sort();
    assert_eq!(got, want);

    // The same answers are what expect_answers compares against.
    let all: Vec<&str> = want.iter().map(String::as_str).collect();
    let o = run(&expecting(
        spec("big.acme.test", RecordType::Txt, &[srv.addr()]),
        &all,
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
}

#[tokio::test]
async fn expect_answers() {
    let srv = DnsServer::start().await.unwrap();
    let ns = [srv.addr()];
    let www = || spec("www.acme.test", RecordType::A, &ns);

    // Exact set, in another order, with a duplicate: passes.
    let o = run(&expecting(
        www(),
        &["192.0.2.11", "192.0.2.10", "192.0.2.11"],
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);

    // Written differently but meaning the same records: passes.
    let o = run(&expecting(
        spec("acme.test", RecordType::Mx, &ns),
        &["20 MAIL2.acme.test.", " 10  mail.acme.test "],
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let o = run(&expecting(
        spec("www.acme.test", RecordType::Aaaa, &ns),
        &["2001:DB8:0:0::10"],
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let o = run(&expecting(
        spec("acme.test", RecordType::Caa, &ns),
        &["0 issue letsencrypt.org"],
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);

    // A subset, a superset or a different set: mismatch, named in the message.
    for answers in [
        &["192.0.2.10"][..],
        &["192.0.2.10", "192.0.2.11", "192.0.2.12"],
        &["198.51.100.1"],
    ] {
        let o = run(&expecting(www(), answers)).await;
        assert_eq!(
            class(&o),
            Some(FailureClass::DnsAnswerMismatch),
            "{answers:?}"
        );
        let d = detail(&o);
        assert_eq!(d.rcode.as_deref(), Some("NOERROR"));
        assert_eq!(d.answers, ["192.0.2.10", "192.0.2.11"]);
        assert!(o.failure.as_ref().unwrap().message.contains("expected"));
    }

    // TXT is compared exactly (case matters there).
    let o = run(&expecting(
        spec("acme.test", RecordType::Txt, &ns),
        &["V=SPF1 -ALL", "hello world"],
    ))
    .await;
    assert_eq!(class(&o), Some(FailureClass::DnsAnswerMismatch));
}

#[tokio::test]
async fn one_failing_nameserver_fails_the_check() {
    let good = DnsServer::start().await.unwrap();
    let bad = RcodeServer::servfail().await.unwrap();
    let o = run(&expecting(
        spec("www.acme.test", RecordType::A, &[good.addr(), bad.addr()]),
        &["192.0.2.10", "192.0.2.11"],
    ))
    .await;
    assert_eq!(class(&o), Some(FailureClass::DnsRcode));
    assert!(
        o.failure
            .as_ref()
            .unwrap()
            .message
            .contains("1 of 2 nameservers failed"),
        "{:?}",
        o.failure
    );
    let d = detail(&o);
    // Top level: the failing one, although it is listed second.
    assert_eq!(d.nameserver, bad.addr().to_string());
    assert_eq!(d.rcode.as_deref(), Some("SERVFAIL"));
    assert!(d.answers.is_empty());
    // Servers: both, in the configured order.
    assert_eq!(d.servers.len(), 2);
    assert_eq!(d.servers[0].nameserver, good.addr().to_string());
    assert!(d.servers[0].success);
    assert_eq!(d.servers[0].answers, ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(d.servers[1].nameserver, bad.addr().to_string());
    assert!(!d.servers[1].success);

    // Both good (two servers for one zone): success, top level is the first.
    let twin = DnsServer::start().await.unwrap();
    let o = run(&spec(
        "www.acme.test",
        RecordType::A,
        &[twin.addr(), good.addr()],
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(detail(&o).nameserver, twin.addr().to_string());
    assert_eq!(detail(&o).servers.len(), 2);
}

/// Many silent servers are queried concurrently: the probe still ends on time.
#[tokio::test]
async fn nameservers_are_queried_concurrently() {
    let silent: Vec<SilentUdp> = (0..4).map(|_| SilentUdp::bind().unwrap()).collect();
    let addrs: Vec<SocketAddr> = silent.iter().map(SilentUdp::addr).collect();
    let t0 = Instant::now();
    let o = dns::probe(
        &spec("www.acme.test", RecordType::A, &addrs),
        tokio::time::Instant::now() + Duration::from_millis(500),
    )
    .await;
    // Under the 2 s four servers queried one after another take, with
    // room for a loaded machine (0.5 s on an idle one).
    assert!(
        t0.elapsed() < Duration::from_millis(1600),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(class(&o), Some(FailureClass::DnsError));
    assert_eq!(detail(&o).servers.len(), 4);
    assert!(detail(&o).servers.iter().all(|s| !s.success));
}

// ---------------------------------------------------------------------------
// consistency = true: the nameservers of an NS or SOA check must agree.

fn consistent(mut s: DnsSpec, serial_lag: u32) -> DnsSpec {
    s.consistency = Some(slaprobe_agent::config::Consistency { serial_lag });
    s
}

#[tokio::test]
async fn consistent_servers_pass() {
    let a = DnsServer::start().await.unwrap();
    let b = DnsServer::start().await.unwrap();
    let o = run(&consistent(
        spec("acme.test", RecordType::Soa, &[a.addr(), b.addr()]),
        0,
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let d = detail(&o);
    assert!(d.servers.iter().all(|s| s.authoritative == Some(true)));
    let o = run(&consistent(
        spec("acme.test", RecordType::Ns, &[a.addr(), b.addr()]),
        0,
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
}

#[tokio::test]
async fn soa_serials_must_agree_within_the_lag() {
    let a = DnsServer::start().await.unwrap();
    let b = DnsServer::start().await.unwrap();
    let behind = DnsServer::start_variant(SERIAL - 2, None).await.unwrap();
    let ns = [a.addr(), behind.addr(), b.addr()];
    let o = run(&consistent(spec("acme.test", RecordType::Soa, &ns), 0)).await;
    assert_eq!(class(&o), Some(FailureClass::DnsInconsistent));
    let msg = &o.failure.as_ref().unwrap().message;
    assert!(
        msg.contains(&format!("{} has {}", behind.addr(), SERIAL - 2)),
        "{msg}"
    );
    assert!(!msg.contains(&format!("{} has", a.addr())), "{msg}");
    // The lagging server is the one marked, and is reported on top.
    let d = detail(&o);
    assert_eq!(d.nameserver, behind.addr().to_string());
    assert!(d.servers[0].success && !d.servers[1].success && d.servers[2].success);
    // Within serial_lag: fine.
    let o = run(&consistent(spec("acme.test", RecordType::Soa, &ns), 2)).await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let o = run(&consistent(spec("acme.test", RecordType::Soa, &ns), 1)).await;
    assert_eq!(class(&o), Some(FailureClass::DnsInconsistent));
    // Without consistency the serials are not compared.
    let o = run(&spec("acme.test", RecordType::Soa, &ns)).await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
}

#[tokio::test]
async fn serials_compare_in_serial_arithmetic() {
    // 5 is ahead of 4294967290 (RFC 1982: the counter wrapped).
    let old = DnsServer::start_variant(4_294_967_290, None).await.unwrap();
    let new = DnsServer::start_variant(5, None).await.unwrap();
    let o = run(&consistent(
        spec("acme.test", RecordType::Soa, &[new.addr(), old.addr()]),
        0,
    ))
    .await;
    let msg = &o.failure.as_ref().unwrap().message;
    assert!(
        msg.contains(&format!("{} has 4294967290", old.addr())),
        "{msg}"
    );
    let o = run(&consistent(
        spec("acme.test", RecordType::Soa, &[new.addr(), old.addr()]),
        11,
    ))
    .await;
    assert!(o.failure.is_none(), "{:?}", o.failure);
}

#[tokio::test]
async fn ns_sets_must_match() {
    let a = DnsServer::start().await.unwrap();
    let b = DnsServer::start().await.unwrap();
    let odd = DnsServer::start_variant(SERIAL, Some("ns3")).await.unwrap();
    let o = run(&consistent(
        spec(
            "acme.test",
            RecordType::Ns,
            &[a.addr(), odd.addr(), b.addr()],
        ),
        0,
    ))
    .await;
    assert_eq!(class(&o), Some(FailureClass::DnsInconsistent));
    let msg = &o.failure.as_ref().unwrap().message;
    assert!(
        msg.contains(&odd.addr().to_string()) && msg.contains("ns3.acme.test"),
        "{msg}"
    );
    assert!(!msg.contains(&a.addr().to_string()), "{msg}");
}

#[tokio::test]
async fn every_server_must_be_authoritative() {
    let a = DnsServer::start().await.unwrap();
    let relay = slaprobe_tests::dns_server::DnsRelay::clearing_aa(a.addr())
        .await
        .unwrap();
    let ns = [a.addr(), relay.addr()];
    let o = run(&consistent(spec("acme.test", RecordType::Soa, &ns), 0)).await;
    assert_eq!(class(&o), Some(FailureClass::DnsInconsistent));
    let msg = &o.failure.as_ref().unwrap().message;
    assert!(
        msg.contains("not authoritative") && msg.contains(&relay.addr().to_string()),
        "{msg}"
    );
    let d = detail(&o);
    assert_eq!(d.servers[1].authoritative, Some(false));
    // A server failing on its own is reported as such, not as inconsistency.
    let silent = SilentUdp::bind().unwrap();
    let s = consistent(
        spec("acme.test", RecordType::Soa, &[a.addr(), silent.addr()]),
        0,
    );
    let o = dns::probe(&s, tokio::time::Instant::now() + Duration::from_millis(500)).await;
    assert_eq!(class(&o), Some(FailureClass::DnsError));
}

#[tokio::test]
async fn many_differing_servers_are_named_within_bounds() {
    let good = DnsServer::start().await.unwrap();
    let mut lagging = Vec::new();
    for i in 0..8 {
        lagging.push(
            DnsServer::start_variant(SERIAL - 1 - i, None)
                .await
                .unwrap(),
        );
    }
    let mut ns = vec![good.addr()];
    ns.extend(lagging.iter().map(|s| s.addr()));
    let o = run(&consistent(spec("acme.test", RecordType::Soa, &ns), 0)).await;
    let msg = &o.failure.as_ref().unwrap().message;
    assert!(msg.contains("and 3 more"), "{msg}");
    assert!(msg.len() < 1024, "{}", msg.len());
}

#[test]
fn consistency_config() {
    let base = CheckSpec {
        name: "c".into(),
        kind: CheckKind::Dns,
        query: Some("acme.test".into()),
        record_type: Some("A".into()),
        nameservers: Some(vec!["127.0.0.1:53".into()]),
        consistency: Some(true),
        ..Default::default()
    };
    let check = |s: &CheckSpec| Check::from_spec(s, 0, Path::new("a.toml"), Path::new("/"));
    let e = check(&base).unwrap_err();
    assert_eq!(e.key, "checks[c].consistency");
    assert!(e.message.contains("NS and SOA"), "{e}");
    let mut s = base.clone();
    s.record_type = Some("NS".into());
    assert!(check(&s).is_ok());
    s.serial_lag = Some(3);
    assert_eq!(check(&s).unwrap_err().key, "checks[c].serial_lag");
    s.record_type = Some("SOA".into());
    let c = check(&s).unwrap();
    let slaprobe_agent::config::ProbeSpec::Dns(d) = c.probe else {
        panic!()
    };
    assert_eq!(d.consistency.unwrap().serial_lag, 3);
    s.nameservers = None;
    assert!(
        check(&s)
            .unwrap_err()
            .message
            .contains("needs `nameservers`")
    );
    s.consistency = None;
    s.nameservers = Some(vec!["127.0.0.1:53".into()]);
    assert_eq!(check(&s).unwrap_err().key, "checks[c].serial_lag");
}
