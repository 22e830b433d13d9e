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
//! # Result
//! `dns.servers` lists every nameserver in the configured order; the
//! top-level `nameserver`, `rcode` and `answers` describe the first failing
//! one, else the first (DESIGN.md §4).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::net::NetError;
use hickory_resolver::net::client::{Client, ClientHandle};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::tcp::TcpClientStream;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{DNSClass, Name, RData, Record, RecordType as WireType};
use slaprobe_wire::{DnsDetail, DnsServerDetail, Failure, FailureClass};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Outcome;
use crate::config::{DnsSpec, RecordType};

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
        set.spawn(async move { (i, query(ns, name, rtype, answer_by).await) });
    }
    let mut answers: Vec<Option<ServerAnswer>> = vec![None; nameservers.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, a)) = joined {
            answers[i] = Some(a);
        }
    }

    let servers: Vec<DnsServerDetail> = nameservers
        .iter()
        .zip(answers)
        .map(|(ns, a)| {
            // A query task only ends without an answer if it panicked.
            let a = a.unwrap_or_else(|| {
                ServerAnswer::failed("query task failed".into(), Duration::ZERO)
            });
            judge(spec, &name, *ns, a)
        })
        .collect();
    summarize(servers)
}

/// What one nameserver said, before it is judged against the check.
#[derive(Debug, Clone)]
struct ServerAnswer {
    result: Result<(ResponseCode, Vec<Record>), String>,
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
async fn query(ns: SocketAddr, name: Name, rtype: WireType, answer_by: Instant) -> ServerAnswer {
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
    let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(udp);
    let bg = tokio::spawn(bg);
    // The client has its own timer; this bound is the guarantee.
    let resp =
        tokio::time::timeout_at(answer_by, client.query(name.clone(), DNSClass::IN, rtype)).await;
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
            result: Ok((resp.response_code, resp.answers.clone())),
            latency: t0.elapsed(),
            transport: "udp",
        };
    }

    // Truncated: hickory's Client does not retry over TCP itself.
    let left = answer_by.saturating_duration_since(Instant::now());
    let tcp = async {
        let (connect, handle) = TcpClientStream::new(ns, None, Some(left), provider);
        let (mut client, bg) =
            Client::<TokioRuntimeProvider>::with_timeout(connect.await?, handle, left);
        let bg = tokio::spawn(bg);
        let resp = client.query(name, DNSClass::IN, rtype).await;
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
        Ok(Ok(r)) => Ok((r.response_code, r.answers.clone())),
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
        Ok(r) => r,
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

/// Builds the outcome: the first failing server (else the first) on top.
fn summarize(servers: Vec<DnsServerDetail>) -> Outcome {
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
    let failure = failure.map(|mut f| {
        if servers.len() > 1 {
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
