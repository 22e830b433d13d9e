//! The simulated vendors, each listening at every location's own loopback
//! address: HostCo (HTTP and HTTPS), CDNCo (HTTPS) and DNSCo (an
//! authoritative hickory-server for [`DNS_ZONE`]). Each HTTP answer follows
//! the fault script ([`behaviour`]) for the location the listening address
//! belongs to.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hickory_server::Server as DnsServer;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::rdata::{A, NS, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::certs::DemoPki;
use crate::world::{
    Behaviour, DNS_PORT, DNS_ZONE, HTTP_PORT, HTTPS_PORT, LOCATIONS, Net, Vendor, behaviour,
};

/// The page HostCo serves (checks look for "Demo Shop").
pub const SHOP_PAGE: &str = "<!DOCTYPE html><html><head><title>Demo Shop</title></head>\
<body><h1>Demo Shop</h1><p>A site of the slaprobe demo world, served by HostCo (demo) on loopback.</p></body></html>\n";

/// What CDNCo serves at `/assets/app.js`.
pub const CDN_ASSET: &str =
    "/* slaprobe demo: an asset served by CDNCo (demo) on loopback */\nconsole.log('demo');\n";

/// How long a "silent" connection is held open before it is dropped
/// (longer than any check's timeout).
const SILENT_HOLD: Duration = Duration::from_secs(15);

/// The A record of `shop.demo.test.` (data only: nothing connects to it).
pub fn shop_a_record(net: Net) -> Ipv4Addr {
    Ipv4Addr::new(127, net.0, 0, 10)
}

/// The running vendors; [`Vendors::stop`] ends every listener and connection.
pub struct Vendors {
    tasks: JoinSet<()>,
    dns: DnsServer<Catalog>,
    stop: CancellationToken,
}

impl Vendors {
    /// Binds every vendor at every location's address and starts serving.
    pub async fn start(net: Net, pki: &DemoPki) -> anyhow::Result<Vendors> {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let shop_tls = TlsAcceptor::from(pki.shop.server_config()?);
        let cdn_tls = TlsAcceptor::from(pki.cdn.server_config()?);
        let mut dns = DnsServer::new(catalog(net)?);
        for &loc in &LOCATIONS {
            let sites = [
                (Vendor::Hosting, HTTP_PORT, None),
                (Vendor::Hosting, HTTPS_PORT, Some(shop_tls.clone())),
                (Vendor::Cdn, HTTPS_PORT, Some(cdn_tls.clone())),
            ];
            for (vendor, port, tls) in sites {
                let addr = net.addr(vendor, loc, port);
                let listener = TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen on {addr} (is another slaprobe-demo running?)")
                })?;
                tasks.spawn(serve(listener, vendor, loc, tls, stop.clone()));
            }
            let addr = net.addr(Vendor::Dns, loc, DNS_PORT);
            let udp = UdpSocket::bind(addr)
                .await
                .with_context(|| format!("cannot listen on udp {addr}"))?;
            let tcp = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on tcp {addr}"))?;
            dns.register_socket(udp);
            dns.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        }
        Ok(Vendors { tasks, dns, stop })
    }

    /// Stops every listener and drops every connection.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Err(e) = self.dns.shutdown_gracefully().await {
            tracing::warn!("demo DNS server did not stop cleanly: {e}");
        }
    }
}

/// DNSCo's zone: SOA, NS and `shop` A.
fn catalog(net: Net) -> anyhow::Result<Catalog> {
    let origin = Name::from_str(DNS_ZONE)?;
    let n = |s: &str| -> anyhow::Result<Name> { Ok(Name::from_str(s)?.append_domain(&origin)?) };
    let serial: u32 = 2026120101;
    let mut zone = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
    );
    let soa = SOA::new(n("ns1")?, n("hostmaster")?, serial, 3600, 600, 86400, 60);
    for r in [
        Record::from_rdata(origin.clone(), 3600, RData::SOA(soa)),
        Record::from_rdata(origin.clone(), 3600, RData::NS(NS(n("ns1")?))),
        Record::from_rdata(n("shop")?, 60, RData::A(A(shop_a_record(net)))),
    ] {
        anyhow::ensure!(zone.upsert_mut(r, serial), "demo zone record refused");
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::from(&origin), vec![Arc::new(zone)]);
    Ok(catalog)
}

/// Accepts connections for one vendor at one location until `stop`.
async fn serve(
    listener: TcpListener,
    vendor: Vendor,
    location: &'static str,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) {
    // Dropping the set at the end aborts the connections still open.
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        while conns.try_join_next().is_some() {}
        match accepted {
            Ok((tcp, _)) => {
                conns.spawn(connection(tcp, vendor, location, tls.clone()));
            }
            Err(e) => {
                tracing::debug!("demo vendor accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    tcp: TcpStream,
    vendor: Vendor,
    location: &'static str,
    tls: Option<TlsAcceptor>,
) {
    let _ = tcp.set_nodelay(true);
    if behaviour(vendor, location, Timestamp::now()) == Behaviour::Silent {
        // The "network" loses everything: hold the connection, answer nothing.
        tokio::time::sleep(SILENT_HOLD).await;
        return;
    }
    match tls {
        None => http(tcp, vendor, location).await,
        Some(acceptor) => {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp)).await
            {
                http(stream, vendor, location).await;
            }
        }
    }
}

async fn http<IO>(io: IO, vendor: Vendor, location: &'static str)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| respond(req, vendor, location));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

async fn respond(
    req: Request<Incoming>,
    vendor: Vendor,
    location: &'static str,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let page = |status: u16, ctype: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(ctype),
        );
        r
    };
    let resp = match behaviour(vendor, location, Timestamp::now()) {
        Behaviour::Silent => {
            tokio::time::sleep(SILENT_HOLD).await;
            page(504, "text/plain", "lost\n".into())
        }
        Behaviour::Status { status, why } => page(
            status,
            "text/plain; charset=utf-8",
            format!("{status}: {why} (demo)\n"),
        ),
        Behaviour::Ok { delay } => {
            tokio::time::sleep(delay).await;
            match (vendor, req.uri().path()) {
                (Vendor::Cdn, "/assets/app.js") => {
                    page(200, "application/javascript", CDN_ASSET.into())
                }
                (Vendor::Cdn, _) => page(404, "text/plain", "not found\n".into()),
                _ => page(200, "text/html; charset=utf-8", SHOP_PAGE.into()),
            }
        }
    };
    Ok(resp)
}
