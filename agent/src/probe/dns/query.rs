//! Asking one nameserver: one UDP datagram (no re-sends), then TCP when the
//! answer came back truncated, bounded by the probe's answer time; and the
//! records a DNSSEC chain of trust needs, from that server or the system
//! resolvers.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::net::NetError;
use hickory_resolver::net::client::Client;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::tcp::TcpClientStream;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer};
use hickory_resolver::proto::op::{DnsRequestOptions, DnsResponse, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, Record, RecordType as WireType};
use tokio::time::Instant;

use super::answer::rcode_name;
use super::{RESOLV_CONF, fmt_secs, parse_resolv_conf};
use crate::probe::dnssec::Fetch;

/// Fetches the records of a chain of trust: from the nameserver under test,
/// then (when it has none) from the system resolvers.
pub(super) struct ServerFetch {
    pub(super) ns: SocketAddr,
    pub(super) answer_by: Instant,
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
pub(super) struct Reply {
    pub(super) rcode: ResponseCode,
    /// The answer section (RRSIGs included when DO was set).
    pub(super) records: Vec<Record>,
    /// The AA bit.
    pub(super) authoritative: bool,
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
pub(super) struct ServerAnswer {
    pub(super) result: Result<Reply, String>,
    pub(super) latency: Duration,
    pub(super) transport: &'static str,
}

impl ServerAnswer {
    pub(super) fn failed(message: String, latency: Duration) -> Self {
        Self {
            result: Err(message),
            latency,
            transport: "udp",
        }
    }
}

/// One query to one server: UDP, then TCP if the UDP answer was truncated.
/// `dnssec_ok` sets the EDNS DO bit (the server then sends RRSIGs).
pub(super) async fn query(
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
