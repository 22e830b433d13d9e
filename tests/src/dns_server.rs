//! DNS servers for probe tests: an authoritative hickory-server with a test
//! zone (UDP and TCP on one port), a fake server that answers every query with
//! a fixed rcode (e.g. SERVFAIL), and a silent UDP port that never answers.
//!
//! Every fixture binds `127.0.0.1:0` and stops when dropped.
//!
//! For nameserver-consistency tests, [`DnsServer::start_variant`] serves the
//! same zone with another SOA serial and/or an extra NS record, and
//! [`DnsRelay`] relays to a server with the AA bit cleared (or, for DNSSEC
//! tests, with the signatures stripped).
//!
//! The test zone is [`ZONE`] (`acme.test.`):
//!
//! | name                 | type  | data                                                       |
//! |----------------------|-------|------------------------------------------------------------|
//! | `acme.test.`         | SOA   | `ns1.acme.test. hostmaster.acme.test. 2026112201 3600 600 86400 60` |
//! | `acme.test.`         | NS    | `ns1.acme.test.`, `ns2.acme.test.`                         |
//! | `acme.test.`         | MX    | `10 mail.acme.test.`, `20 mail2.acme.test.`                |
//! | `acme.test.`         | TXT   | `v=spf1 -all`; `"hello " "world"` (two strings)            |
//! | `acme.test.`         | CAA   | `0 issue "letsencrypt.org"`                                |
//! | `www.acme.test.`     | A     | `192.0.2.10`, `192.0.2.11`                                 |
//! | `www.acme.test.`     | AAAA  | `2001:db8::10`                                             |
//! | `alias.acme.test.`   | CNAME | `www.acme.test.`                                           |
//! | `big.acme.test.`     | TXT   | [`BIG_TXT_COUNT`] records, [`big_txt`]`(i)`: too big for UDP |

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::rdata::caa::CAA;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// Origin of the test zone served by [`DnsServer`].
pub const ZONE: &str = "acme.test.";
/// Serial of the test zone's SOA.
pub const SERIAL: u32 = 2026112201;
/// How many TXT records `big.acme.test.` holds (about 2.4 KB: more than a UDP
/// answer may carry, so the server sets TC and a client must retry over TCP).
pub const BIG_TXT_COUNT: usize = 40;

/// The `i`-th TXT record of `big.acme.test.` (`0 <= i < BIG_TXT_COUNT`).
pub fn big_txt(i: usize) -> String {
    format!("record-{i:02}-padding-to-make-the-answer-too-large-for-udp")
}

/// An authoritative DNS server for [`ZONE`], UDP and TCP on the same port (the
/// same `SocketAddr`, so a client's TC→TCP retry reaches it).
pub struct DnsServer {
    addr: SocketAddr,
    // Dropping the server drops its JoinSet, which aborts the listeners:
    // holding it is what keeps the fixture serving.
    _server: Server<Catalog>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Starts the server on `127.0.0.1` with the test zone loaded.
    pub async fn start() -> anyhow::Result<Self> {
        let catalog = test_catalog()?;
        let (tcp, udp) = bind_same_port().await?;
        let addr = tcp.local_addr()?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        Ok(Self {
            addr,
            _server: server,
        })
    }

    /// Like [`DnsServer::start`], plus `many.acme.test.` with
    /// [`MANY_TXT_COUNT`] TXT records ([`many_txt`]`(i)`): a hostile answer
    /// that only fits a TCP message (about 36 KB).
    pub async fn start_hostile() -> anyhow::Result<Self> {
        let catalog = test_catalog_with(MANY_TXT_COUNT)?;
        let (tcp, udp) = bind_same_port().await?;
        let addr = tcp.local_addr()?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        Ok(Self {
            addr,
            _server: server,
        })
    }

    /// The test zone with SOA serial `serial` and, when set, one more NS
    /// record (`extra_ns`, relative to the zone, e.g. `"ns3"`).
    pub async fn start_variant(serial: u32, extra_ns: Option<&str>) -> anyhow::Result<Self> {
        let catalog = catalog_of(serial, 0, extra_ns)?;
        let (tcp, udp) = bind_same_port().await?;
        let addr = tcp.local_addr()?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        Ok(Self {
            addr,
            _server: server,
        })
    }

    /// Where it listens (UDP and TCP), e.g. `127.0.0.1:40123`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A UDP relay to another DNS server that alters every answer on the way:
/// [`DnsRelay::clearing_aa`] (a server that answers, but not authoritatively,
/// like a resolver or a lame delegation) or [`DnsRelay::stripping_signatures`].
/// Stops when dropped.
#[derive(Debug)]
pub struct DnsRelay {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DnsRelay {
    /// Relays to `upstream` with the AA bit cleared.
    pub async fn clearing_aa(upstream: SocketAddr) -> anyhow::Result<Self> {
        Self::relay(upstream, |msg| msg.metadata.authoritative = false).await
    }

    /// Relays to `upstream`, AA bit kept, with every RRSIG removed from the
    /// answers: a server that serves the zone unsigned (a stale secondary).
    pub async fn stripping_signatures(upstream: SocketAddr) -> anyhow::Result<Self> {
        Self::relay(upstream, |msg| {
            msg.answers
                .retain(|r| r.record_type() != hickory_server::proto::rr::RecordType::RRSIG);
        })
        .await
    }

    async fn relay(upstream: SocketAddr, edit: fn(&mut Message)) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(up) = UdpSocket::bind("127.0.0.1:0").await else {
                    continue;
                };
                if up.send_to(&buf[..len], upstream).await.is_err() {
                    continue;
                }
                let mut reply = vec![0u8; 65_535];
                let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(2), up.recv(&mut reply)).await
                else {
                    continue;
                };
                let Ok(mut msg) = Message::from_vec(&reply[..n]) else {
                    continue;
                };
                edit(&mut msg);
                if let Ok(bytes) = msg.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        Ok(Self { addr, task })
    }

    /// Where it listens (UDP only).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds a TCP listener on an ephemeral port, then UDP on the same port. The
/// UDP port may be taken by someone else; then try another.
async fn bind_same_port() -> anyhow::Result<(TcpListener, UdpSocket)> {
    let mut last_err = None;
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        match UdpSocket::bind(tcp.local_addr()?).await {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last_err = Some(e),
        }
    }
    Err(anyhow::anyhow!(
        "no port free for both UDP and TCP: {last_err:?}"
    ))
}

/// How many TXT records `many.acme.test.` holds in [`DnsServer::start_hostile`].
pub const MANY_TXT_COUNT: usize = 2000;

/// The `i`-th TXT record of `many.acme.test.`.
pub fn many_txt(i: usize) -> String {
    format!("m{i:04}")
}

fn test_catalog() -> anyhow::Result<Catalog> {
    test_catalog_with(0)
}

/// The test zone, plus `many` TXT records at `many.acme.test.`.
fn test_catalog_with(many: usize) -> anyhow::Result<Catalog> {
    catalog_of(SERIAL, many, None)
}

/// The test zone with SOA `serial`, `many` TXT records at `many.acme.test.`
/// and, when set, an extra NS record.
fn catalog_of(serial: u32, many: usize, extra_ns: Option<&str>) -> anyhow::Result<Catalog> {
    let origin = Name::from_str(ZONE)?;
    let n = |s: &str| -> anyhow::Result<Name> { Ok(Name::from_str(s)?.append_domain(&origin)?) };
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(n("ns1")?, n("hostmaster")?, serial, 3600, 600, 86400, 60);
    let mut records = vec![
        Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)),
        Record::from_rdata(origin.clone(), 3600, RData::NS(NS(n("ns1")?))),
        Record::from_rdata(origin.clone(), 3600, RData::NS(NS(n("ns2")?))),
        Record::from_rdata(origin.clone(), 60, RData::MX(MX::new(10, n("mail")?))),
        Record::from_rdata(origin.clone(), 60, RData::MX(MX::new(20, n("mail2")?))),
        Record::from_rdata(
            origin.clone(),
            60,
            RData::TXT(TXT::new(vec!["v=spf1 -all".into()])),
        ),
        Record::from_rdata(
            origin.clone(),
            60,
            RData::TXT(TXT::new(vec!["hello ".into(), "world".into()])),
        ),
        Record::from_rdata(
            origin.clone(),
            60,
            RData::CAA(CAA::new_issue(
                false,
                Some(Name::from_str("letsencrypt.org")?),
                vec![],
            )),
        ),
        Record::from_rdata(n("www")?, 60, RData::A(A(Ipv4Addr::new(192, 0, 2, 10)))),
        Record::from_rdata(n("www")?, 60, RData::A(A(Ipv4Addr::new(192, 0, 2, 11)))),
        Record::from_rdata(
            n("www")?,
            60,
            RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10))),
        ),
        Record::from_rdata(n("alias")?, 60, RData::CNAME(CNAME(n("www")?))),
    ];
    for i in 0..BIG_TXT_COUNT {
        records.push(Record::from_rdata(
            n("big")?,
            60,
            RData::TXT(TXT::new(vec![big_txt(i)])),
        ));
    }
    if let Some(extra) = extra_ns {
        records.push(Record::from_rdata(
            origin.clone(),
            3600,
            RData::NS(NS(n(extra)?)),
        ));
    }
    for i in 0..many {
        records.push(Record::from_rdata(
            n("many")?,
            60,
            RData::TXT(TXT::new(vec![many_txt(i)])),
        ));
    }
    for record in records {
        let what = format!("{record}");
        anyhow::ensure!(zone.upsert_mut(record, serial), "test zone refused {what}");
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::from(&origin), vec![Arc::new(zone)]);
    Ok(catalog)
}

/// A fake UDP DNS server that answers every query with one rcode and no
/// records (hickory's `RequestHandler` would need `async_trait`; this is
/// simpler). Stops when dropped.
#[derive(Debug)]
pub struct RcodeServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RcodeServer {
    /// Answers SERVFAIL to everything.
    pub async fn servfail() -> anyhow::Result<Self> {
        Self::start(ResponseCode::ServFail).await
    }

    /// Answers `rcode` to everything.
    pub async fn start(rcode: ResponseCode) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .context("binding fake DNS server")?;
        let addr = socket.local_addr()?;
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                // Garbage is ignored, as a real server would.
                let Ok(req) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let mut resp = Message::error_msg(req.metadata.id, req.metadata.op_code, rcode);
                resp.add_queries(req.queries);
                if let Ok(bytes) = resp.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        Ok(Self { addr, task })
    }

    /// Where it listens (UDP only).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for RcodeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A bound UDP port that never reads nor answers: queries to it time out
/// (being bound, it also provokes no ICMP port-unreachable).
#[derive(Debug)]
pub struct SilentUdp {
    addr: SocketAddr,
    _socket: std::net::UdpSocket,
}

impl SilentUdp {
    /// Binds `127.0.0.1:0`.
    pub fn bind() -> anyhow::Result<Self> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").context("binding silent UDP port")?;
        Ok(Self {
            addr: socket.local_addr()?,
            _socket: socket,
        })
    }

    /// The silent address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
