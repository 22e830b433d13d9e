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

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::net::NetError;
use hickory_resolver::net::client::Client;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::tcp::TcpClientStream;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer};
use hickory_resolver::proto::op::{DnsRequestOptions, DnsResponse, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType as WireType};
use slaprobe_wire::{
    DnsDetail, DnsServerDetail, DnssecDetail, DnssecStatus, Failure, FailureClass, Timestamp,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Outcome;
use super::dnssec::{self, Fetch};
use crate::config::{Consistency, DnsSpec, RecordType};

/// Most servers named in a `dns_inconsistent` message (the rest are counted).
const MAX_NAMED_SERVERS: usize = 5;

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

/// Fetches the records of a chain of trust: from the nameserver under test,
/// then (when it has none) from the system resolvers.
struct ServerFetch {
    ns: SocketAddr,
    answer_by: Instant,
}

impl Fetch for ServerFetch {
    async fn fetch(&self, name: &Name, rtype: WireType) -> Result<Vec<Record>, String> {
        let has = |r: &Reply| {
            r.records
                .iter()
                .any(|x| x.record_type() == rtype && x.name.to_lowercase() == name.to_lowercase())
        };
        let first = query(self.ns, name.clone(), rtype, self.answer_by, true).await;
        if let Ok(r) = &first.result
            && has(r)
        {
            return Ok(r.records.clone());
        }
        // An authoritative server of the child only has NODATA for the
        // child's DS (and nothing for the parents): ask the resolvers.
        let resolvers = std::fs::read_to_string(RESOLV_CONF)
            .map(|t| parse_resolv_conf(&t))
            .unwrap_or_default();
        for r in resolvers {
            let a = query(r, name.clone(), rtype, self.answer_by, true).await;
            if let Ok(reply) = &a.result
                && has(reply)
            {
                return Ok(reply.records.clone());
            }
        }
        match first.result {
            Ok(r) if matches!(r.rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {
                Ok(Vec::new())
            }
            Ok(r) => Err(format!("{} answered {}", self.ns, rcode_name(r.rcode))),
            Err(e) => Err(e),
        }
    }
}

/// What one nameserver answered.
#[derive(Debug, Clone)]
struct Reply {
    rcode: ResponseCode,
    /// The answer section (RRSIGs included when DO was set).
    records: Vec<Record>,
    /// The AA bit.
    authoritative: bool,
}

impl Reply {
    fn of(r: &DnsResponse) -> Self {
        Self {
            rcode: r.response_code,
            records: r.answers.clone(),
            authoritative: r.authoritative,
        }
    }
}

/// What one nameserver said, before it is judged against the check.
#[derive(Debug, Clone)]
struct ServerAnswer {
    result: Result<Reply, String>,
    latency: Duration,
    transport: &'static str,
}

impl ServerAnswer {
    fn failed(message: String, latency: Duration) -> Self {
        Self {
            result: Err(message),
            latency,
            transport: "udp",
        }
    }
}

/// One query to one server: UDP, then TCP if the UDP answer was truncated.
/// `dnssec_ok` sets the EDNS DO bit (the server then sends RRSIGs).
async fn query(
    ns: SocketAddr,
    name: Name,
    rtype: WireType,
    answer_by: Instant,
    dnssec_ok: bool,
) -> ServerAnswer {
    let mut opts = DnsRequestOptions::default();
    opts.use_edns = true;
    opts.edns_set_dnssec_ok = dnssec_ok;
    let t0 = Instant::now();
    let budget = answer_by.saturating_duration_since(t0);
    if budget.is_zero() {
        return ServerAnswer::failed(format!("no time left to query {ns}"), Duration::ZERO);
    }
    let silent = |transport: &str| {
        format!(
            "no answer from {ns} over {transport} within {}",
            fmt_secs(budget)
        )
    };
    let provider = TokioRuntimeProvider::default();

    // max_retries(1): exactly one datagram. The stream re-sends on its own
    // otherwise (at least 333 ms apart), which would blur the latency.
    let udp = UdpClientStream::builder(ns, provider.clone())
        .with_timeout(Some(budget))
        .with_max_retries(1)
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(udp);
    let bg = tokio::spawn(bg);
    // The client has its own timer; this bound is the guarantee.
    let resp = tokio::time::timeout_at(
        answer_by,
        client
            .lookup(Query::query(name.clone(), rtype), opts)
            .first_answer(),
    )
    .await;
    bg.abort();
    let resp = match resp {
        Err(_) | Ok(Err(NetError::Timeout)) => {
            return ServerAnswer::failed(silent("udp"), t0.elapsed());
        }
        Ok(Err(e)) => {
            return ServerAnswer::failed(
                format!("query to {ns} over udp failed: {e}"),
                t0.elapsed(),
            );
        }
        Ok(Ok(r)) => r,
    };
    if !resp.truncation {
        return ServerAnswer {
            result: Ok(Reply::of(&resp)),
            latency: t0.elapsed(),
            transport: "udp",
        };
    }

    // Truncated: hickory's Client does not retry over TCP itself.
    let left = answer_by.saturating_duration_since(Instant::now());
    let tcp = async {
        let (connect, handle) = TcpClientStream::new(ns, None, Some(left), provider);
        let (client, bg) =
            Client::<TokioRuntimeProvider>::with_timeout(connect.await?, handle, left);
        let bg = tokio::spawn(bg);
        let resp = client
            .lookup(Query::query(name, rtype), opts)
            .first_answer()
            .await;
        bg.abort();
        resp
    };
    let result = match tokio::time::timeout_at(answer_by, tcp).await {
        Err(_) | Ok(Err(NetError::Timeout)) => Err(format!(
            "answer from {ns} truncated over udp; {}",
            silent("tcp")
        )),
        Ok(Err(e)) => Err(format!(
            "answer from {ns} truncated over udp; retry over tcp failed: {e}"
        )),
        Ok(Ok(r)) => Ok(Reply::of(&r)),
    };
    ServerAnswer {
        result,
        latency: t0.elapsed(),
        transport: "tcp",
    }
}

/// Judges one server's answer against the check.
fn judge(spec: &DnsSpec, name: &Name, ns: SocketAddr, a: ServerAnswer) -> DnsServerDetail {
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
            d.failure = Some(if super::net::mentions_fd_exhaustion(&message) {
                super::net::fd_exhaustion(&message)
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
fn judge_dnssec(d: &mut DnsServerDetail, v: DnssecDetail) {
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
fn overall_dnssec(servers: &[DnsServerDetail]) -> Option<DnssecDetail> {
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

/// `consistency = true`: compares the servers that answered as expected.
/// Marks the ones that differ and returns the check's failure, naming them.
fn compare_servers(
    c: Consistency,
    rtype: RecordType,
    servers: &mut [DnsServerDetail],
) -> Option<Failure> {
    if servers.iter().any(|s| !s.success) {
        // Some server failed on its own: that is the failure to report.
        return None;
    }
    let mut problems: Vec<String> = Vec::new();
    let mut differing: Vec<(usize, String)> = Vec::new();

    let not_aa: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].authoritative != Some(true))
        .collect();
    if !not_aa.is_empty() {
        problems.push(format!(
            "not authoritative (AA bit clear): {}",
            name_servers(servers, &not_aa)
        ));
        for &i in &not_aa {
            differing.push((
                i,
                format!("{} answered without the AA bit", servers[i].nameserver),
            ));
        }
    }

    match rtype {
        RecordType::Soa => {
            let serials: Vec<Option<u32>> = servers
                .iter()
                .map(|s| {
                    let only = (s.answers.len() == 1).then(|| s.answers.first())??;
                    only.split_whitespace().nth(2)?.parse().ok()
                })
                .collect();
            let known: Vec<u32> = serials.iter().flatten().copied().collect();
            // RFC 1982: the highest serial is the one no other is ahead of.
            let highest = known.iter().copied().reduce(|best, s| {
                if (s.wrapping_sub(best) as i32) > 0 {
                    s
                } else {
                    best
                }
            });
            if let Some(highest) = highest {
                let behind: Vec<usize> = (0..servers.len())
                    .filter(|&i| match serials[i] {
                        Some(s) => highest.wrapping_sub(s) > c.serial_lag,
                        None => true,
                    })
                    .collect();
                if !behind.is_empty() {
                    let holder = (0..servers.len())
                        .find(|&i| serials[i] == Some(highest))
                        .map(|i| servers[i].nameserver.clone())
                        .unwrap_or_default();
                    let listed: Vec<String> = behind
                        .iter()
                        .take(MAX_NAMED_SERVERS)
                        .map(|&i| match serials[i] {
                            Some(s) => format!("{} has {s}", servers[i].nameserver),
                            None => format!("{} has no single SOA", servers[i].nameserver),
                        })
                        .collect();
                    problems.push(format!(
                        "SOA serials differ by more than {} from {highest} (at {holder}): {}{}",
                        c.serial_lag,
                        listed.join(", "),
                        more(behind.len())
                    ));
                    for &i in &behind {
                        differing.push((
                            i,
                            format!(
                                "{} has SOA serial {}, {holder} has {highest} (serial_lag {})",
                                servers[i].nameserver,
                                serials[i].map_or("none".to_string(), |s| s.to_string()),
                                c.serial_lag
                            ),
                        ));
                    }
                }
            }
        }
        RecordType::Ns => {
            // The NS set most servers give is the reference (the first on a tie).
            let sets: Vec<BTreeSet<&String>> =
                servers.iter().map(|s| s.answers.iter().collect()).collect();
            let reference = (0..sets.len())
                .max_by_key(|&i| {
                    (
                        sets.iter().filter(|s| **s == sets[i]).count(),
                        std::cmp::Reverse(i),
                    )
                })
                .map(|i| sets[i].clone());
            if let Some(reference) = reference {
                let odd: Vec<usize> = (0..sets.len()).filter(|&i| sets[i] != reference).collect();
                if !odd.is_empty() {
                    problems.push(format!(
                        "NS sets differ from {reference:?}: {}",
                        odd.iter()
                            .take(MAX_NAMED_SERVERS)
                            .map(|&i| format!("{} has {:?}", servers[i].nameserver, sets[i]))
                            .collect::<Vec<_>>()
                            .join(", ")
                            + &more(odd.len())
                    ));
                    for &i in &odd {
                        differing.push((
                            i,
                            format!(
                                "{} answered NS {:?}, the others {reference:?}",
                                servers[i].nameserver, sets[i]
                            ),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    if problems.is_empty() {
        return None;
    }
    for (i, message) in differing {
        let s = &mut servers[i];
        s.success = false;
        if s.failure.is_none() {
            s.failure = Some(Failure::new(FailureClass::DnsInconsistent, message));
        }
    }
    Some(Failure::new(
        FailureClass::DnsInconsistent,
        format!("nameservers disagree: {}", problems.join("; ")),
    ))
}

/// The first few servers of `idx` by name, plus how many more.
fn name_servers(servers: &[DnsServerDetail], idx: &[usize]) -> String {
    idx.iter()
        .take(MAX_NAMED_SERVERS)
        .map(|&i| servers[i].nameserver.as_str())
        .collect::<Vec<_>>()
        .join(", ")
        + &more(idx.len())
}

fn more(n: usize) -> String {
    if n > MAX_NAMED_SERVERS {
        format!(" and {} more", n - MAX_NAMED_SERVERS)
    } else {
        String::new()
    }
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

/// The rcode's mnemonic as written by dig (`NOERROR`, `NXDOMAIN`, …);
/// unassigned codes as `RCODE<n>`.
pub fn rcode_name(rcode: ResponseCode) -> String {
    let s = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        ResponseCode::BADSIG => "BADSIG",
        ResponseCode::BADKEY => "BADKEY",
        ResponseCode::BADTIME => "BADTIME",
        ResponseCode::BADMODE => "BADMODE",
        ResponseCode::BADNAME => "BADNAME",
        ResponseCode::BADALG => "BADALG",
        ResponseCode::BADTRUNC => "BADTRUNC",
        ResponseCode::BADCOOKIE => "BADCOOKIE",
        other => return format!("RCODE{}", u16::from(other)),
    };
    s.to_string()
}

fn wire_type(t: RecordType) -> WireType {
    match t {
        RecordType::A => WireType::A,
        RecordType::Aaaa => WireType::AAAA,
        RecordType::Cname => WireType::CNAME,
        RecordType::Mx => WireType::MX,
        RecordType::Txt => WireType::TXT,
        RecordType::Ns => WireType::NS,
        RecordType::Soa => WireType::SOA,
        RecordType::Caa => WireType::CAA,
    }
}

/// A name lowercased, without its trailing dot (the root stays `.`).
fn display_name(name: &Name) -> String {
    let s = name.to_lowercase().to_string();
    match s.strip_suffix('.') {
        Some("") | None => s,
        Some(t) => t.to_string(),
    }
}

/// The canonical text of one record's data (see the module doc).
fn answer_text(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => display_name(&n.0),
        RData::NS(n) => display_name(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, display_name(&mx.exchange)),
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s))
            .collect::<String>()
            .trim()
            .to_string(),
        RData::SOA(s) => format!(
            "{} {} {} {} {} {} {}",
            display_name(&s.mname),
            display_name(&s.rname),
            s.serial,
            s.refresh,
            s.retry,
            s.expire,
            s.minimum
        ),
        RData::CAA(c) => format!(
            "{} {} \"{}\"",
            c.flags(),
            c.tag.to_ascii_lowercase(),
            String::from_utf8_lossy(&c.value)
        ),
        other => other.to_string(),
    }
}

/// Brings an answer written by a user (`expect_answers`) to the form the
/// probe reports for `rtype`, so the two compare equal when they mean the same
/// record. Text that does not parse as the type is kept (trimmed) and will
/// simply not match.
pub fn canonical_answer(rtype: RecordType, text: &str) -> String {
    let text = text.trim();
    let name = |s: &str| -> String {
        let s = s.to_lowercase();
        match s.strip_suffix('.') {
            Some("") | None => s,
            Some(t) => t.to_string(),
        }
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let canon = match rtype {
        RecordType::A | RecordType::Aaaa => text.parse::<IpAddr>().ok().map(|ip| ip.to_string()),
        RecordType::Cname | RecordType::Ns => (words.len() == 1).then(|| name(text)),
        RecordType::Mx => match words.as_slice() {
            [pref, exchange] => pref
                .parse::<u16>()
                .ok()
                .map(|p| format!("{p} {}", name(exchange))),
            _ => None,
        },
        RecordType::Txt => None,
        RecordType::Soa => match words.as_slice() {
            [mname, rname, serial, refresh, retry, expire, minimum] => (|| {
                Some(format!(
                    "{} {} {} {} {} {} {}",
                    name(mname),
                    name(rname),
                    serial.parse::<u32>().ok()?,
                    refresh.parse::<i32>().ok()?,
                    retry.parse::<i32>().ok()?,
                    expire.parse::<i32>().ok()?,
                    minimum.parse::<u32>().ok()?
                ))
            })(),
            _ => None,
        },
        RecordType::Caa => {
            // `flags tag value`, the value quoted or not (it may hold spaces).
            let mut parts = text.splitn(2, char::is_whitespace);
            let flags = parts.next().and_then(|f| f.parse::<u8>().ok());
            let rest = parts.next().map(str::trim_start).unwrap_or("");
            let mut parts = rest.splitn(2, char::is_whitespace);
            let tag = parts.next().unwrap_or("");
            let value = parts.next().map(str::trim).unwrap_or("");
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            match flags {
                Some(f) if !tag.is_empty() => {
                    Some(format!("{f} {} \"{value}\"", tag.to_ascii_lowercase()))
                }
                _ => None,
            }
        }
    };
    canon.unwrap_or_else(|| text.to_string())
}

fn fmt_secs(d: Duration) -> String {
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
    fn canonical_forms() {
        use RecordType::*;
        let cases = [
            (A, " 192.0.2.10 ", "192.0.2.10"),
            (Aaaa, "2001:DB8:0::10", "2001:db8::10"),
            (Cname, "WWW.Acme.Example.", "www.acme.example"),
            (Ns, "ns1.acme.example", "ns1.acme.example"),
            (Mx, "10   Mail.Acme.Example.", "10 mail.acme.example"),
            (Txt, "v=spf1 -all", "v=spf1 -all"),
            (Txt, "Ends with dot.", "Ends with dot."),
            (
                Soa,
                "NS1.x. host.x. 01 3600 600 86400 60",
                "ns1.x host.x 1 3600 600 86400 60",
            ),
            (
                Caa,
                "0 ISSUE letsencrypt.org",
                "0 issue \"letsencrypt.org\"",
            ),
            (
                Caa,
                "128 iodef \"mailto:a@b.example\"",
                "128 iodef \"mailto:a@b.example\"",
            ),
            (A, "not-an-ip", "not-an-ip"),
        ];
        for (t, input, want) in cases {
            assert_eq!(canonical_answer(t, input), want, "{t:?} {input:?}");
            // Idempotent: the probe's own answers pass through it unchanged.
            assert_eq!(canonical_answer(t, want), want);
        }
    }

    #[test]
    fn rcode_mnemonics() {
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::Unknown(3000)), "RCODE3000");
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
