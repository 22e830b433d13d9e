//! DNS probe: asks each nameserver of a check directly (no cache, no search
//! list, no CNAME chasing of its own) and compares what each one answers.
//!
//! # How a probe runs
//! - Every listed nameserver is queried concurrently with hickory's low-level
//!   `Client`: one UDP datagram (no re-sends), then the same query over TCP
//!   when the UDP answer came back truncated (`TC=1`). `transport` says which
//!   answer was used.
//! - `nameservers` empty: the `nameserver` lines of `/etc/resolv.conf` (at
//!   most 3, as glibc; link-local IPv6 with a `%zone` is skipped), port 53.
//!   None there is a `dns_error`.
//! - The query name is made absolute (`www.acme.example` → `www.acme.example.`).
//! - Each server gets the whole remaining budget, minus a small margin (1/20
//!   of it, at most 50 ms) so that the probe reports before the check's
//!   deadline rather than being cut off by it.
//!
//! # Classes (per nameserver; the check fails if any one fails)
//! - `dns_error`: no usable answer: transport failure, or no answer before the
//!   budget ran out. **Rule:** a silent server is always `dns_error` (never
//!   `timeout`), also when it is the whole probe's deadline that ran out:
//!   the probe finishes just before the deadline to say which server was silent.
//! - `dns_rcode`: an answer whose rcode is not NOERROR (NXDOMAIN, SERVFAIL, REFUSED, …).
//! - `dns_answer_mismatch`: `expect_answers` is set and the answer set differs
//!   (compared as sets: order and duplicates ignored); or `expect_answers` is
//!   not set and the NOERROR answer holds no record of the asked type.
//!
//! # Answer text (what `answers` holds and how to write `expect_answers`)
//! Only records of the asked type count: an A query for an alias reports the
//! addresses, not the CNAME the server also returned. Names are lowercased and
//! lose their trailing dot; surrounding whitespace is never significant.
//!
//! | type  | form                                               | example                                     |
//! |-------|----------------------------------------------------|---------------------------------------------|
//! | A     | the address                                        | `192.0.2.10`                                |
//! | AAAA  | the address, RFC 5952 form                         | `2001:db8::10`                              |
//! | CNAME | the target name                                    | `www.acme.example`                          |
//! | NS    | the server name                                    | `ns1.acme.example`                          |
//! | MX    | `preference exchange`                              | `10 mail.acme.example`                      |
//! | TXT   | the character-strings concatenated, no quotes      | `v=spf1 -all`                               |
//! | SOA   | `mname rname serial refresh retry expire minimum`  | `ns1.acme.example hostmaster.acme.example 2026112201 3600 600 86400 60` |
//! | CAA   | `flags tag "value"`                                | `0 issue "letsencrypt.org"`                 |
//!
//! Expectations are brought to the same form with [`canonical_answer`] before
//! comparing (so `2001:DB8:0::10`, `WWW.Acme.Example.` or
//! `0 issue letsencrypt.org` match), TXT data is compared exactly.
//!
//! - `dns_dnssec_bogus` / `dns_dnssec_insecure` (`dnssec = true`): the
//!   server's answer, validated on its own from the trust anchor (see
//!   [`super::dnssec`]), is bogus, or unsigned where a signed one is required.
//!   The query then carries the DO bit.
//! - `dns_inconsistent` (`consistency = true`, NS and SOA checks): every
//!   server answered, but not all authoritatively (AA bit), or their SOA
//!   serials differ by more than `serial_lag`, or their NS sets differ. The
//!   message names the servers that differ (the first few, bounded).
//!
//! # Result
//! `dns.servers` lists every nameserver in the configured order; the
//! top-level `nameserver`, `rcode` and `answers` describe the first failing
//! one, else the first (DESIGN.md §4). `dns.dnssec` is the worst DNSSEC
//! verdict of the servers (bogus, insecure, secure) with the earliest RRSIG
//! expiry among them.
//!
//! # Layout
//! - this module: [`probe`] (every server at once, then the verdict), the
//!   system's nameservers, the outcome;
//! - `query`: asking one server (UDP, TCP after truncation) and the DNSSEC fetches;
//! - `verdict`: judging each server's answer, DNSSEC included;
//! - `consistency`: whether the servers agree (`consistency = true`);
//! - `answer`: rcode mnemonics and the answers' canonical text.

mod answer;
mod consistency;
mod query;
mod verdict;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::Name;
use slaprobe_wire::{DnsDetail, DnsServerDetail, DnssecDetail, Failure, FailureClass, Timestamp};
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::answer::wire_type;
pub use self::answer::{canonical_answer, rcode_name};
use self::consistency::compare_servers;
use self::query::{ServerAnswer, ServerFetch, query};
use self::verdict::{judge, judge_dnssec, overall_dnssec};
use super::Outcome;
use super::dnssec;
use crate::config::DnsSpec;

/// Where the system's nameservers are listed.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// glibc's MAXNS: later `nameserver` lines are ignored by the system resolver.
const MAX_SYSTEM_NAMESERVERS: usize = 3;

/// The largest slice of the budget kept back to report before the deadline.
const MAX_MARGIN: Duration = Duration::from_millis(50);

/// Probes `spec`, finishing before `deadline`.
pub async fn probe(spec: &DnsSpec, deadline: Instant) -> Outcome {
    let nameservers = if spec.nameservers.is_empty() {
        match std::fs::read_to_string(RESOLV_CONF) {
            Ok(text) => parse_resolv_conf(&text),
            Err(e) => {
                return no_server(format!(
                    "no nameservers configured and cannot read {RESOLV_CONF}: {e}"
                ));
            }
        }
    } else {
        spec.nameservers.clone()
    };
    if nameservers.is_empty() {
        return no_server(format!(
            "no nameservers configured and {RESOLV_CONF} lists none"
        ));
    }
    let name = match query_name(&spec.query) {
        Ok(n) => n,
        Err(e) => return no_server(format!("{:?} is not a valid domain name: {e}", spec.query)),
    };

    let now = Instant::now();
    let margin = (deadline.saturating_duration_since(now) / 20).min(MAX_MARGIN);
    let answer_by = deadline.checked_sub(margin).unwrap_or(deadline);
    let rtype = wire_type(spec.record_type);

    // A JoinSet aborts the queries if the probe itself is dropped.
    let mut set = JoinSet::new();
    for (i, ns) in nameservers.iter().copied().enumerate() {
        let name = name.clone();
        let anchor = spec.dnssec.clone();
        set.spawn(async move {
            let a = query(ns, name, rtype, answer_by, anchor.is_some()).await;
            let validated = match (&anchor, &a.result) {
                (Some(anchor), Ok(r))
                    if r.rcode == ResponseCode::NoError && !r.records.is_empty() =>
                {
                    let fetch = ServerFetch { ns, answer_by };
                    Some(dnssec::validate(&r.records, anchor, &fetch, unix_now()).await)
                }
                _ => None,
            };
            (i, a, validated)
        });
    }
    let mut answers: Vec<Option<(ServerAnswer, Option<DnssecDetail>)>> =
        vec![None; nameservers.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, a, v)) = joined {
            answers[i] = Some((a, v));
        }
    }

    let mut servers: Vec<DnsServerDetail> = nameservers
        .iter()
        .zip(answers)
        .map(|(ns, a)| {
            // A query task only ends without an answer if it panicked.
            let (a, v) = a.unwrap_or_else(|| {
                (
                    ServerAnswer::failed("query task failed".into(), Duration::ZERO),
                    None,
                )
            });
            let mut d = judge(spec, &name, *ns, a);
            if let Some(v) = v {
                judge_dnssec(&mut d, v);
            }
            d
        })
        .collect();
    let inconsistent = spec
        .consistency
        .and_then(|c| compare_servers(c, spec.record_type, &mut servers));
    summarize(servers, inconsistent)
}

/// Seconds since the epoch, as RRSIG times count them.
fn unix_now() -> u32 {
    // Truncation is RFC 4034's serial arithmetic: it wraps in 2106.
    Timestamp::now().as_second() as u32
}

/// Builds the outcome: the first failing server (else the first) on top;
/// a consistency failure is the check's own message.
fn summarize(servers: Vec<DnsServerDetail>, inconsistent: Option<Failure>) -> Outcome {
    let failing = servers.iter().filter(|s| !s.success).count();
    let top = servers.iter().find(|s| !s.success).or(servers.first());
    let (nameserver, rcode, answers, failure) = match top {
        Some(t) => (
            t.nameserver.clone(),
            t.rcode.clone(),
            t.answers.clone(),
            t.failure.clone(),
        ),
        None => (String::new(), None, Vec::new(), None),
    };
    let dnssec = overall_dnssec(&servers);
    let failure = inconsistent.or(failure).map(|mut f| {
        if servers.len() > 1 && f.class != FailureClass::DnsInconsistent {
            f.message = format!(
                "{} ({failing} of {} nameservers failed)",
                f.message,
                servers.len()
            );
        }
        f
    });
    Outcome {
        failure,
        dns: Some(DnsDetail {
            nameserver,
            rcode,
            answers,
            answers_total: None,
            servers,
            dnssec,
        }),
        ..Default::default()
    }
}

/// A probe that could not query anyone.
fn no_server(message: String) -> Outcome {
    Outcome {
        dns: Some(DnsDetail::default()),
        ..Outcome::failed(FailureClass::DnsError, message)
    }
}

/// Parses `text` as an absolute domain name (IDNA applied).
fn query_name(text: &str) -> Result<Name, String> {
    let text = text.trim();
    let absolute = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    let name = Name::from_utf8(&absolute).map_err(|e| e.to_string())?;
    Ok(name)
}

/// The `nameserver` addresses of a resolv.conf, port 53, in order, at most 3.
/// Entries that are not plain IP addresses (e.g. `fe80::1%eth0`) are skipped.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            words.next()?.parse::<IpAddr>().ok()
        })
        .take(MAX_SYSTEM_NAMESERVERS)
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

pub(super) fn fmt_secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_lines() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.1\nnameserver  ::1 \nnameserver fe80::1%eth0\n\
                    nameserver bogus\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n";
        let got = parse_resolv_conf(text);
        let want: Vec<SocketAddr> = vec![
            "10.0.0.1:53".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
            "10.0.0.2:53".parse().unwrap(),
        ];
        assert_eq!(got, want);
        assert!(parse_resolv_conf("domain x\n").is_empty());
    }

    #[test]
    fn query_names_are_absolute() {
        assert_eq!(
            query_name("www.acme.test").unwrap().to_string(),
            "www.acme.test."
        );
        assert_eq!(
            query_name("www.acme.test.").unwrap().to_string(),
            "www.acme.test."
        );
        assert!(query_name("a..b").is_err());
    }
}
