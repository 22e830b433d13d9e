//! A one-shot DNS query for fixtures (readiness checks, reading what a test
//! server publishes): UDP, then TCP when truncated, to one server.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use hickory_server::net::client::Client;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::net::tcp::TcpClientStream;
use hickory_server::net::udp::UdpClientStream;
use hickory_server::net::xfer::{DnsHandle, FirstAnswer};
use hickory_server::proto::op::{DnsRequestOptions, DnsResponse, Query};
use hickory_server::proto::rr::{Name, RecordType};

/// Asks `server` for `name`/`rtype` (DO bit when `dnssec_ok`), 2 s budget.
pub async fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    dnssec_ok: bool,
) -> anyhow::Result<DnsResponse> {
    let name = Name::from_str(name)?;
    let to = Duration::from_secs(2);
    let provider = TokioRuntimeProvider::default();
    let mut opts = DnsRequestOptions::default();
    opts.edns_set_dnssec_ok = dnssec_ok;
    let udp = UdpClientStream::builder(server, provider.clone())
        .with_timeout(Some(to))
        .with_max_retries(1)
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(udp);
    let bg = tokio::spawn(bg);
    let resp = client
        .lookup(Query::query(name.clone(), rtype), opts)
        .first_answer()
        .await;
    bg.abort();
    let resp = resp?;
    if !resp.truncation {
        return Ok(resp);
    }
    let (connect, handle) = TcpClientStream::new(server, None, Some(to), provider);
    let (client, bg) = Client::<TokioRuntimeProvider>::with_timeout(connect.await?, handle, to);
    let bg = tokio::spawn(bg);
    let resp = client
        .lookup(Query::query(name, rtype), opts)
        .first_answer()
        .await;
    bg.abort();
    Ok(resp?)
}
