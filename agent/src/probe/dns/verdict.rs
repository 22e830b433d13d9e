//! Judging what each nameserver said against the check: rcode, answer set
//! (canonical forms), DNSSEC; and the check's DNSSEC verdict over all of them.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::Name;
use slaprobe_wire::{DnsServerDetail, DnssecDetail, DnssecStatus, Failure, FailureClass};

use super::answer::{answer_text, canonical_answer, display_name, rcode_name, wire_type};
use super::query::ServerAnswer;
use crate::config::DnsSpec;

/// Judges one server's answer against the check.
pub(super) fn judge(
    spec: &DnsSpec,
    name: &Name,
    ns: SocketAddr,
    a: ServerAnswer,
) -> DnsServerDetail {
    let mut d = DnsServerDetail {
        nameserver: ns.to_string(),
        latency_seconds: a.latency.as_secs_f64(),
        transport: Some(a.transport.to_string()),
        ..Default::default()
    };
    let (rcode, records) = match a.result {
        Ok(r) => {
            d.authoritative = Some(r.authoritative);
            (r.rcode, r.records)
        }
        Err(message) => {
            // Out of descriptors is the agent's fault, not the nameserver's.
            d.failure = Some(if crate::probe::net::mentions_fd_exhaustion(&message) {
                crate::probe::net::fd_exhaustion(&message)
            } else {
                Failure::new(FailureClass::DnsError, message)
            });
            return d;
        }
    };
    d.rcode = Some(rcode_name(rcode));
    let rtype = wire_type(spec.record_type);
    let got: BTreeSet<String> = records
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| answer_text(&r.data))
        .collect();
    d.answers = got.iter().cloned().collect();
    let query = display_name(name);
    let failure = if rcode != ResponseCode::NoError {
        Some(Failure::new(
            FailureClass::DnsRcode,
            format!(
                "{ns} answered {} for {query} {}",
                rcode_name(rcode),
                spec.record_type.as_str()
            ),
        ))
    } else if let Some(expected) = &spec.expect_answers {
        let expected: BTreeSet<String> = expected
            .iter()
            .map(|e| canonical_answer(spec.record_type, e))
            .collect();
        (got != expected).then(|| {
            let missing: Vec<_> = expected.difference(&got).collect();
            let unexpected: Vec<_> = got.difference(&expected).collect();
            Failure::new(
                FailureClass::DnsAnswerMismatch,
                format!(
                    "{ns} answered {:?} for {query} {}, expected {:?} (missing {missing:?}, unexpected {unexpected:?})",
                    d.answers,
                    spec.record_type.as_str(),
                    expected
                ),
            )
        })
    } else if got.is_empty() {
        Some(Failure::new(
            FailureClass::DnsAnswerMismatch,
            format!(
                "no {} records for {query} from {ns}",
                spec.record_type.as_str()
            ),
        ))
    } else {
        None
    };
    d.success = failure.is_none();
    d.failure = failure;
    d
}

/// Adds a server's DNSSEC verdict; a server that passed otherwise fails
/// when its answer is not secure.
pub(super) fn judge_dnssec(d: &mut DnsServerDetail, v: DnssecDetail) {
    if d.success && v.status != DnssecStatus::Secure {
        let (class, what) = match v.status {
            DnssecStatus::Bogus => (FailureClass::DnsDnssecBogus, "bogus"),
            _ => (FailureClass::DnsDnssecInsecure, "insecure"),
        };
        d.success = false;
        d.failure = Some(Failure::new(
            class,
            format!(
                "DNSSEC {what} at {}: {}",
                d.nameserver,
                v.reason.as_deref().unwrap_or("(no reason)")
            ),
        ));
    }
    d.dnssec = Some(v);
}

/// The check's DNSSEC verdict: the worst server's, with the earliest expiry.
pub(super) fn overall_dnssec(servers: &[DnsServerDetail]) -> Option<DnssecDetail> {
    let worst = servers
        .iter()
        .filter_map(|s| s.dnssec.as_ref().map(|d| (s, d)))
        .max_by_key(|(_, d)| d.status)?;
    let earliest = servers
        .iter()
        .filter_map(|s| s.dnssec.as_ref()?.rrsig_expires_at)
        .min();
    Some(DnssecDetail {
        status: worst.1.status,
        reason: worst
            .1
            .reason
            .as_ref()
            .map(|r| format!("{}: {r}", worst.0.nameserver)),
        rrsig_expires_at: earliest,
    })
}
