//! DNSSEC validation: against knotd serving signed zones on 127.0.0.1 (a
//! good name, expired signatures, a DS that matches no key, an unsigned
//! zone), and the chain walk over in-memory zones signed at a fixed date.

mod support;

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;

use hickory_proto::dnssec::DigestType;
use hickory_proto::dnssec::rdata::{DNSSECRData, DS};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use slaprobe_agent::config::Check;
use slaprobe_agent::probe::dnssec::{Fetch, TrustAnchor, validate};
use slaprobe_tests::knot::{KnotZones, ZoneKey, ds_line};
use slaprobe_wire::{CheckKind, CheckSpec, DnssecStatus, FailureClass, Timestamp};
use support::{assert_class, assert_ok, run};

/// A dns check of `query` A at `ns`, with DNSSEC and the anchor file `anchor`
/// (relative to `base`), validated as config is.
fn dnssec_check(query: &str, ns: &str, anchor: &str, base: &Path) -> Check {
    let spec = CheckSpec {
        name: "t".into(),
        kind: CheckKind::Dns,
        timeout: Some("5s".into()),
        query: Some(query.into()),
        nameservers: Some(vec![ns.into()]),
        dnssec: Some(true),
        dnssec_trust_anchor: Some(anchor.into()),
        ..Default::default()
    };
    Check::from_spec(&spec, 0, &base.join("agent.toml"), base).expect("valid check")
}

#[tokio::test]
async fn knot_signed_zones() {
    let now = Timestamp::now().as_second();
    let knot = KnotZones::start(now).await.unwrap();
    std::fs::write(knot.dir().join("anchor.ds"), knot.anchor()).unwrap();
    let ns = knot.addr().to_string();
    let check = |q: &str| dnssec_check(q, &ns, "anchor.ds", knot.dir());

    // Good: knotd's own signatures verify from the anchor (its KSK's DS).
    let r = run(&check("www.good.test")).await;
    assert_ok(&r);
    // A figure, not a bound: validation adds a DNSKEY query and two ECDSA checks.
    eprintln!(
        "DNSSEC probe of www.good.test: {:.1} ms",
        r.duration_seconds * 1000.0
    );
    let d = r.dns.as_ref().unwrap();
    assert_eq!(d.answers, ["192.0.2.10"]);
    let sec = d.dnssec.as_ref().expect("dns.dnssec");
    assert_eq!(sec.status, DnssecStatus::Secure, "{sec:?}");
    assert_eq!(sec.reason, None);
    // knotd signs for 14 days by default: the earliest expiry is ahead, within a month.
    let exp = sec.rrsig_expires_at.expect("rrsig_expires_at").as_second();
    assert!(exp > now && exp <= now + 31 * 86_400, "{exp} vs {now}");
    assert_eq!(
        d.servers[0].dnssec.as_ref().map(|s| s.status),
        Some(DnssecStatus::Secure)
    );

    // Expired signature on the answer.
    let r = run(&check("www.expired.test")).await;
    assert_class(&r, FailureClass::DnsDnssecBogus);
    let sec = r.dns.as_ref().unwrap().dnssec.as_ref().unwrap();
    assert_eq!(sec.status, DnssecStatus::Bogus);
    let reason = sec.reason.as_deref().unwrap();
    assert!(
        reason.contains("www.expired.test A") && reason.contains("expired"),
        "{reason}"
    );
    assert!(r.failure.as_ref().unwrap().message.contains("expired"));
    // The lapsed signature's own expiration (16 days ago) is the earliest, so
    // slaprobe_dns_rrsig_expiry_timestamp_seconds is in the past and
    // SlaprobeDnssecSignaturesExpiring fires ("negative: already expired").
    assert_eq!(
        sec.rrsig_expires_at.map(|t| t.as_second()),
        Some(now - 16 * 86_400),
        "{sec:?}"
    );

    // The anchor's DS matches none of the zone's keys.
    let r = run(&check("www.mismatch.test")).await;
    assert_class(&r, FailureClass::DnsDnssecBogus);
    let reason = r
        .dns
        .as_ref()
        .unwrap()
        .dnssec
        .as_ref()
        .unwrap()
        .reason
        .clone()
        .unwrap();
    assert!(
        reason.contains("no DNSKEY of mismatch.test matches the trust anchor"),
        "{reason}"
    );

    // Unsigned answer where a signed one is required.
    let r = run(&check("www.plain.test")).await;
    assert_class(&r, FailureClass::DnsDnssecInsecure);
    let sec = r.dns.as_ref().unwrap().dnssec.as_ref().unwrap();
    assert_eq!(sec.status, DnssecStatus::Insecure);
    assert!(sec.reason.as_deref().unwrap().contains("no RRSIG"));

    // Without dnssec the same expired answer is fine (and has no dnssec section).
    let spec = CheckSpec {
        name: "t".into(),
        kind: CheckKind::Dns,
        query: Some("www.expired.test".into()),
        nameservers: Some(vec![ns.clone()]),
        ..Default::default()
    };
    let plain = Check::from_spec(&spec, 0, Path::new("a.toml"), Path::new("/")).unwrap();
    let r = run(&plain).await;
    assert_ok(&r);
    assert!(r.dns.as_ref().unwrap().dnssec.is_none());
    eprintln!(
        "plain probe of www.expired.test: {:.1} ms",
        r.duration_seconds * 1000.0
    );
}

/// Denial of existence (NSEC/NSEC3) is not validated, so an answer without
/// records must never be called secure: a name that does not exist, or a
/// type the name does not have, fails on its own class with no `dnssec`
/// verdict, however validly knotd signs its denial.
#[tokio::test]
async fn denials_are_never_secure() {
    let now = Timestamp::now().as_second();
    let knot = KnotZones::start(now).await.unwrap();
    std::fs::write(knot.dir().join("anchor.ds"), knot.anchor()).unwrap();
    let ns = knot.addr().to_string();
    let nx = run(&dnssec_check(
        "nope.good.test",
        &ns,
        "anchor.ds",
        knot.dir(),
    ))
    .await;
    assert_class(&nx, FailureClass::DnsRcode);
    let mut spec = CheckSpec {
        name: "t".into(),
        kind: CheckKind::Dns,
        timeout: Some("5s".into()),
        query: Some("www.good.test".into()),
        record_type: Some("TXT".into()),
        nameservers: Some(vec![ns.clone()]),
        dnssec: Some(true),
        dnssec_trust_anchor: Some("anchor.ds".into()),
        ..Default::default()
    };
    let nodata = Check::from_spec(&spec, 0, &knot.dir().join("a.toml"), knot.dir()).unwrap();
    let nodata = run(&nodata).await;
    assert_class(&nodata, FailureClass::DnsAnswerMismatch);
    for r in [&nx, &nodata] {
        let d = r.dns.as_ref().unwrap();
        assert!(d.dnssec.is_none(), "{d:?}");
        assert!(d.servers.iter().all(|s| s.dnssec.is_none()), "{d:?}");
    }
    // The same server's positive answer is secure: the verdicts above are
    // about the denial, not a broken zone.
    spec.record_type = None;
    let yes = Check::from_spec(&spec, 0, &knot.dir().join("a.toml"), knot.dir()).unwrap();
    let r = run(&yes).await;
    assert_ok(&r);
    assert_eq!(
        r.dns.as_ref().unwrap().dnssec.as_ref().map(|s| s.status),
        Some(DnssecStatus::Secure)
    );
}

/// Each nameserver is validated on its own: a second server that serves the
/// same zone without its signatures fails the check, the first stays secure.
#[tokio::test]
async fn each_nameserver_on_its_own() {
    let now = Timestamp::now().as_second();
    let knot = KnotZones::start(now).await.unwrap();
    std::fs::write(knot.dir().join("anchor.ds"), knot.anchor()).unwrap();
    let stripper = slaprobe_tests::dns_server::DnsRelay::stripping_signatures(knot.addr())
        .await
        .unwrap();
    let spec = CheckSpec {
        name: "t".into(),
        kind: CheckKind::Dns,
        timeout: Some("5s".into()),
        query: Some("www.good.test".into()),
        nameservers: Some(vec![knot.addr().to_string(), stripper.addr().to_string()]),
        dnssec: Some(true),
        dnssec_trust_anchor: Some("anchor.ds".into()),
        ..Default::default()
    };
    let check = Check::from_spec(&spec, 0, &knot.dir().join("a.toml"), knot.dir()).unwrap();
    let r = run(&check).await;
    assert_class(&r, FailureClass::DnsDnssecInsecure);
    let d = r.dns.as_ref().unwrap();
    assert_eq!(d.nameserver, stripper.addr().to_string());
    assert_eq!(
        d.servers[0].dnssec.as_ref().unwrap().status,
        DnssecStatus::Secure
    );
    assert!(d.servers[0].success);
    assert_eq!(
        d.servers[1].dnssec.as_ref().unwrap().status,
        DnssecStatus::Insecure
    );
    let top = d.dnssec.as_ref().unwrap();
    assert_eq!(top.status, DnssecStatus::Insecure);
    assert!(
        top.reason
            .as_deref()
            .unwrap()
            .starts_with(&stripper.addr().to_string())
    );
    // The secure server's signatures still give the expiry.
    assert_eq!(
        top.rrsig_expires_at,
        d.servers[0].dnssec.as_ref().unwrap().rrsig_expires_at
    );
    assert!(top.rrsig_expires_at.is_some());
}

/// The trust anchor is checked when the config is loaded.
#[test]
fn anchor_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.ds"), "good.test. IN A 192.0.2.1\n").unwrap();
    let mut spec = CheckSpec {
        name: "t".into(),
        kind: CheckKind::Dns,
        query: Some("www.good.test".into()),
        nameservers: Some(vec!["127.0.0.1:53".into()]),
        dnssec: Some(true),
        dnssec_trust_anchor: Some("bad.ds".into()),
        ..Default::default()
    };
    let file = dir.path().join("agent.toml");
    let e = Check::from_spec(&spec, 0, &file, dir.path()).unwrap_err();
    assert_eq!(e.key, "checks[t].dnssec_trust_anchor");
    assert!(e.message.contains("only DS and DNSKEY"), "{e}");
    spec.dnssec_trust_anchor = Some("missing.ds".into());
    let e = Check::from_spec(&spec, 0, &file, dir.path()).unwrap_err();
    assert!(e.message.contains("cannot read"), "{e}");
    // An anchor without dnssec = true is a mistake worth saying.
    spec.dnssec = None;
    let e = Check::from_spec(&spec, 0, &file, dir.path()).unwrap_err();
    assert_eq!(e.key, "checks[t].dnssec_trust_anchor");
    // dnssec does not apply to other kinds.
    let spec = CheckSpec {
        name: "t".into(),
        kind: CheckKind::Tls,
        host: Some("h".into()),
        dnssec: Some(true),
        ..Default::default()
    };
    let e = Check::from_spec(&spec, 0, &file, dir.path()).unwrap_err();
    assert_eq!(e.key, "checks[t].dnssec");
    // The default anchor is the root's.
    let spec = CheckSpec {
        name: "t".into(),
        kind: CheckKind::Dns,
        query: Some("www.good.test".into()),
        dnssec: Some(true),
        ..Default::default()
    };
    let c = Check::from_spec(&spec, 0, &file, dir.path()).unwrap();
    let slaprobe_agent::config::ProbeSpec::Dns(d) = c.probe else {
        panic!()
    };
    assert_eq!(*d.dnssec.unwrap(), TrustAnchor::iana_root());
}

// ---------------------------------------------------------------------------
// The chain walk, over zones held in memory: `test.` (anchored) delegates to
// `acme.test.` with a DS. Dates are fixed: the clock is told.

/// 2027-01-15T08:00:00Z.
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

/// Records served by name and type.
struct Zones(Mutex<Vec<Record>>);

impl Fetch for Zones {
    fn fetch(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> impl Future<Output = Result<Vec<Record>, String>> + Send {
        let name = name.to_lowercase();
        let out: Vec<Record> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.name.to_lowercase() == name)
            .filter(|r| {
                r.record_type() == rtype
                    || matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype)
            })
            .cloned()
            .collect();
        async move { Ok(out) }
    }
}

struct Chain {
    parent: ZoneKey,
    child: ZoneKey,
    zones: Zones,
    answer: Vec<Record>,
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// Signs `set` with `key` valid [NOW - 1 day, NOW + `days` days] and
/// returns the set plus its RRSIG.
fn signed(key: &ZoneKey, set: Vec<Record>, days: i64) -> Vec<Record> {
    let sig = key.sign(&set, NOW - DAY, NOW + days * DAY).unwrap();
    set.into_iter().chain([sig]).collect()
}

/// A good two-level chain; `tweak` may change the parent's DS set first.
fn chain(tweak: impl FnOnce(&ZoneKey, &ZoneKey) -> Vec<Record>) -> Chain {
    let parent = ZoneKey::generate("test.").unwrap();
    let child = ZoneKey::generate("acme.test.").unwrap();
    let ds_set = tweak(&parent, &child);
    let mut records = Vec::new();
    records.extend(signed(&parent, vec![parent.dnskey_record()], 30));
    records.extend(ds_set);
    records.extend(signed(&child, vec![child.dnskey_record()], 20));
    let answer = signed(
        &child,
        vec![Record::from_rdata(
            name("www.acme.test."),
            300,
            RData::A(A::new(192, 0, 2, 10)),
        )],
        10,
    );
    Chain {
        parent,
        child,
        zones: Zones(Mutex::new(records)),
        answer,
    }
}

fn good_ds(parent: &ZoneKey, child: &ZoneKey) -> Vec<Record> {
    signed(parent, vec![child.ds_record().unwrap()], 15)
}

fn anchor_of(key: &ZoneKey) -> TrustAnchor {
    TrustAnchor::parse(&ds_line(key.zone(), &key.ds().unwrap())).unwrap()
}

#[tokio::test]
async fn chain_through_a_parent_ds() {
    let c = chain(good_ds);
    let v = validate(&c.answer, &anchor_of(&c.parent), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Secure, "{v:?}");
    // The earliest signature relied on: the answer's (10 days).
    assert_eq!(v.rrsig_expires_at.unwrap().as_second(), NOW + 10 * DAY);
    // Anchored at the child itself, the parent is not needed.
    let v = validate(
        &c.answer,
        &anchor_of(&c.child),
        &Zones(Mutex::new(signed(
            &c.child,
            vec![c.child.dnskey_record()],
            20,
        ))),
        NOW as u32,
    )
    .await;
    assert_eq!(v.status, DnssecStatus::Secure, "{v:?}");
    // A day after the answer's signature expired, the same data is bogus.
    let later = (NOW + 11 * DAY) as u32;
    let v = validate(&c.answer, &anchor_of(&c.parent), &c.zones, later).await;
    assert_eq!(v.status, DnssecStatus::Bogus);
    assert!(v.reason.unwrap().contains("expired 2027-01-25T08:00:00Z"));
    // Before the inception, not yet valid.
    let v = validate(
        &c.answer,
        &anchor_of(&c.parent),
        &c.zones,
        (NOW - 2 * DAY) as u32,
    )
    .await;
    assert_eq!(v.status, DnssecStatus::Bogus);
    assert!(v.reason.unwrap().contains("not valid before"));
}

/// A DNSKEY anchor (the zone-file form hickory writes, and the same record
/// split over lines in parentheses) pins the key: the chain is secure from
/// it, and a different key of the same zone is bogus.
#[tokio::test]
async fn a_dnskey_anchor_pins_the_key() {
    let c = chain(good_ds);
    let line = c.parent.dnskey_record().to_string();
    assert!(line.contains("DNSKEY"), "{line}");
    let anchor = TrustAnchor::parse(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let v = validate(&c.answer, &anchor, &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Secure, "{v:?}");

    // `owner ttl IN DNSKEY flags 3 alg key` as a multi-line record.
    let f: Vec<&str> = line.split_whitespace().collect();
    let key = f[7..].concat();
    let (a, b) = key.split_at(key.len() / 2);
    let multi = format!(
        "; the parent's KSK\n{} IN DNSKEY ( {} 3 {} ; flags, protocol, algorithm\n  {a}\n  {b} )\n",
        f[0], f[4], f[6]
    );
    let anchor = TrustAnchor::parse(&multi).unwrap_or_else(|e| panic!("{multi}: {e}"));
    let v = validate(&c.answer, &anchor, &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Secure, "{v:?}");

    let other = ZoneKey::generate("test.").unwrap();
    let anchor = TrustAnchor::parse(&other.dnskey_record().to_string()).unwrap();
    let v = validate(&c.answer, &anchor, &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Bogus, "{v:?}");
    assert!(
        v.reason
            .as_deref()
            .unwrap()
            .contains("matches the trust anchor"),
        "{v:?}"
    );

    for bad in [
        "test. IN DNSKEY 257 3 13 !!!notbase64",
        "test. IN DNSKEY 257 2 13 AAAA",
        "test. IN DNSKEY 257 3",
        "test. forever IN DNSKEY 257 3 13 AAAA",
    ] {
        assert!(TrustAnchor::parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn parent_ds_that_matches_no_child_key() {
    let c = chain(|parent, _child| {
        let other = ZoneKey::generate("acme.test.").unwrap();
        signed(parent, vec![other.ds_record().unwrap()], 15)
    });
    let v = validate(&c.answer, &anchor_of(&c.parent), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Bogus);
    assert!(
        v.reason
            .unwrap()
            .contains("no DNSKEY of acme.test matches its DS")
    );
}

#[tokio::test]
async fn unsigned_delegation_is_insecure() {
    let c = chain(|_, _| Vec::new());
    let v = validate(&c.answer, &anchor_of(&c.parent), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Insecure);
    assert!(v.reason.unwrap().contains("no DS for acme.test"));
}

#[tokio::test]
async fn forged_or_unknown_signatures_are_bogus() {
    // The DS set signed by a key that is not the parent's.
    let c = chain(|_parent, child| {
        let rogue = ZoneKey::generate("test.").unwrap();
        signed(&rogue, vec![child.ds_record().unwrap()], 15)
    });
    let v = validate(&c.answer, &anchor_of(&c.parent), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Bogus);
    assert!(
        v.reason
            .unwrap()
            .contains("acme.test DS: no DNSKEY of test with key tag")
    );

    // The answer altered after signing: the signature no longer verifies.
    let mut c = chain(good_ds);
    c.answer[0] = Record::from_rdata(
        name("www.acme.test."),
        300,
        RData::A(A::new(203, 0, 113, 66)),
    );
    let v = validate(&c.answer, &anchor_of(&c.parent), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Bogus);
    assert!(v.reason.unwrap().contains("does not verify"));

    // A DS with the right tag but a wrong digest in the anchor.
    let c = chain(good_ds);
    let ds = c.parent.ds().unwrap();
    let mut digest = ds.digest().to_vec();
    digest[5] ^= 1;
    let wrong = DS::new(ds.key_tag(), ds.algorithm(), DigestType::SHA256, digest);
    let anchor = TrustAnchor::parse(&ds_line(c.parent.zone(), &wrong)).unwrap();
    let v = validate(&c.answer, &anchor, &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Bogus);
    assert!(
        v.reason
            .unwrap()
            .contains("no DNSKEY of test matches the trust anchor")
    );

    // No anchor above the zone at all.
    let other = ZoneKey::generate("example.").unwrap();
    let v = validate(&c.answer, &anchor_of(&other), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Insecure);
}

#[tokio::test]
async fn every_rrset_of_the_answer_counts() {
    // A signed A plus an unsigned SOA in the same answer: insecure.
    let c = chain(good_ds);
    let mut answer = c.answer.clone();
    answer.push(Record::from_rdata(
        name("acme.test."),
        300,
        RData::SOA(SOA::new(
            name("ns1.acme.test."),
            name("h.acme.test."),
            1,
            1,
            1,
            1,
            1,
        )),
    ));
    let v = validate(&answer, &anchor_of(&c.parent), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Insecure);
    assert!(v.reason.unwrap().contains("acme.test SOA is not signed"));
}

#[tokio::test]
async fn signature_checks_are_bounded() {
    // 20 signatures by keys the zone does not have (KeyTrap-style padding):
    // only the first 8 are tried, and the verdict says so.
    let c = chain(good_ds);
    let a = c.answer[0].clone();
    let mut answer = vec![a.clone()];
    for _ in 0..20 {
        let rogue = ZoneKey::generate("acme.test.").unwrap();
        answer.push(
            rogue
                .sign(std::slice::from_ref(&a), NOW - DAY, NOW + DAY)
                .unwrap(),
        );
    }
    let v = validate(&answer, &anchor_of(&c.parent), &c.zones, NOW as u32).await;
    assert_eq!(v.status, DnssecStatus::Bogus);
    let reason = v.reason.unwrap();
    assert!(
        reason.contains("20 RRSIGs, only the first 8 tried"),
        "{reason}"
    );
    assert_eq!(
        reason
            .matches("no DNSKEY of acme.test with key tag")
            .count(),
        8
    );
}
