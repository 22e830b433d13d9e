//! The collector's connections: the accept loop, a cap on open connections,
//! the timeouts hyper needs a timer for, and a lingering close.
//!
//! axum's `serve` runs hyper without a timer, so nothing bounds a client that
//! sends half a request line and waits. Here every connection (plain or TLS)
//! is served by hyper's HTTP/1 builder with [`tokio`]'s timer:
//! - the request head must arrive within [`ConnLimits::header_read_timeout`]
//!   (hyper starts that clock whenever it waits for a head, so it is also the
//!   idle keep-alive timeout between two requests);
//! - a request body must arrive within [`ConnLimits::body_read_timeout`]
//!   ([`TimedBody`]; the handler sees an error it maps to 408);
//! - at most [`ConnLimits::max_connections`] are open at once; beyond it a new
//!   connection is answered `503` and closed at once (counted), because holding
//!   it would let a flood of idle sockets grow without bound;
//! - when hyper is done with a connection whose request body was not read (a
//!   401/403/413/429 answered early), the socket is not closed at once: the
//!   write side is shut and what the client still sends is read and dropped,
//!   bounded in bytes and time ([`ConnLimits::linger_bytes`],
//!   [`ConnLimits::linger_time`]). Closing with unread data makes the kernel
//!   send a reset, which destroys the response before a client that writes its
//!   whole body first ever reads it (nginx's `lingering_close`).

use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use slaprobe_exposition::{Exposition, Family, Kind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::metrics::MetricFamilies;

/// Per-connection bounds; [`ConnLimits::default`] is what the collector runs with.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections open at once (TLS handshakes and lingering closes included).
    pub max_connections: usize,
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Longest wait for a complete request head, and for the next request on
    /// an idle keep-alive connection.
    pub header_read_timeout: Duration,
    /// Longest a whole request body may take to arrive, from its head.
    pub body_read_timeout: Duration,
    /// Longest a lingering close reads what a client still sends.
    pub linger_time: Duration,
    /// A lingering close gives up after this long without a byte.
    pub linger_idle: Duration,
    /// A lingering close reads and drops at most this much.
    pub linger_bytes: u64,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: crate::tls::HANDSHAKE_TIMEOUT,
            header_read_timeout: Duration::from_secs(10),
            // 16 MiB (the body cap) in 60 s is ~280 KB/s: any agent link.
            body_read_timeout: Duration::from_secs(60),
            linger_time: Duration::from_secs(30),
            linger_idle: Duration::from_secs(5),
            // The largest body ingest accepts, and some.
            linger_bytes: 17 << 20,
        }
    }
}

/// Connection counters, exported as `slaprobe_collector_connection*` metrics.
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    handshake_timeouts: AtomicU64,
    header_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
}

impl ConnStats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }
    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    /// Connections refused because `max_connections` were open.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
    /// Connections closed for a slow handshake, head or body: (handshake, header, body).
    pub fn timeouts(&self) -> (u64, u64, u64) {
        (
            self.handshake_timeouts.load(Ordering::Relaxed),
            self.header_timeouts.load(Ordering::Relaxed),
            self.body_timeouts.load(Ordering::Relaxed),
        )
    }
}

/// Decrements the open gauge when a connection's task ends, however it ends.
struct OpenGuard(Arc<ConnStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection refused for `max_connections` gets before it is closed.
const FULL_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 38\r\n\r\ntoo many connections (max_connections)\n";

/// Accepts on `listener` until `stop`, serving `app` on every connection
/// (over TLS when `tls` is set) within `limits`. Returns once accepting has
/// stopped and every connection has finished; the caller bounds that wait.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnLimits,
    stats: Arc<ConnStats>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let mut logged_full = false;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause, as axum does.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            if !logged_full {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached; refusing new connections (counted in slaprobe_collector_connections_refused_total, logged once)"
                );
                logged_full = true;
            }
            if acceptor.is_none() {
                // Best effort and never blocking: the accept loop must not wait.
                let _ = tcp.try_write(FULL_RESPONSE);
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let guard = OpenGuard(stats.clone());
        let (app, stats, stop, acceptor) =
            (app.clone(), stats.clone(), stop.clone(), acceptor.clone());
        tracker.spawn(async move {
            let _permit = permit;
            let _guard = guard;
            match acceptor {
                None => serve_connection(tcp, peer, app, limits, &stats, &stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => {
                            serve_connection(tls, peer, app, limits, &stats, &stop).await
                        }
                        // Expected from scanners, clients without a certificate
                        // in mTLS mode and plain HTTP on the TLS port.
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => {
                            stats.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
    // Stop accepting (release the port) before waiting for the connections.
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Serves one connection: HTTP/1 with timeouts, graceful on `stop`, then a
/// lingering close.
async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    stats: &Arc<ConnStats>,
    stop: &CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let body_stats = stats.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        let stats = body_stats.clone();
        let req = req.map(|b| Body::new(TimedBody::new(b, limits.body_read_timeout, stats)));
        Box::pin(async move {
            let resp = app.oneshot(req).await.unwrap_or_else(|e| match e {});
            Ok::<Response<Body>, Infallible>(resp)
        })
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut conn = builder.serve_connection(TokioIo::new(io), service);
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let mut shutting_down = false;
    let done = poll_fn(|cx: &mut Context<'_>| {
        if !shutting_down && stopped.as_mut().poll(cx).is_ready() {
            // Finish the request in flight, then close instead of keeping alive.
            Pin::new(&mut conn).graceful_shutdown();
            shutting_down = true;
        }
        conn.poll_without_shutdown(cx)
    })
    .await;
    match done {
        Ok(()) => {
            let parts = conn.into_parts();
            // At shutdown nobody waits for a slow client's leftovers.
            tokio::select! {
                _ = linger(parts.io.into_inner(), limits) => {}
                _ = stop.cancelled() => {}
            }
        }
        Err(e) if e.is_timeout() => {
            stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "closed: no complete request head in {:?}", limits.header_read_timeout);
        }
        Err(e) => tracing::debug!(%peer, "connection ended: {e}"),
    }
}

/// Shuts the write side (the client sees the end of the response), then
/// reads and drops what the client still sends until it closes, within the
/// bounds of `limits`, so closing does not reset the connection under a
/// response the client has not read yet.
async fn linger<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, limits: ConnLimits) {
    if tokio::time::timeout(limits.linger_idle, io.shutdown())
        .await
        .map_or(true, |r| r.is_err())
    {
        return;
    }
    let deadline = tokio::time::Instant::now() + limits.linger_time;
    let mut buf = vec![0u8; 16 * 1024];
    let mut drained: u64 = 0;
    while drained < limits.linger_bytes {
        let idle = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(limits.linger_idle);
        if idle.is_zero() {
            break;
        }
        match tokio::time::timeout(idle, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n as u64,
            _ => break,
        }
    }
}

/// The error a request body yields when it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// Whether `e` (or what caused it) is a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A request body that fails with [`BodyTimeout`] once `limit` has passed
/// since the request head, whatever the pace of its frames (a client that
/// drips a byte every few seconds is cut off too).
pub struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    stats: Arc<ConnStats>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration, stats: Arc<ConnStats>) -> Self {
        Self {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            stats,
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `slaprobe_collector_connections_open`.
pub const CONNECTIONS_OPEN: Family = Family {
    name: "slaprobe_collector_connections_open",
    kind: Kind::Gauge,
    help: "HTTP connections open now.",
    labels: &[],
};
/// `slaprobe_collector_connections_accepted_total`.
pub const CONNECTIONS_ACCEPTED: Family = Family {
    name: "slaprobe_collector_connections_accepted_total",
    kind: Kind::Counter,
    help: "HTTP connections accepted.",
    labels: &[],
};
/// `slaprobe_collector_connections_refused_total`.
pub const CONNECTIONS_REFUSED: Family = Family {
    name: "slaprobe_collector_connections_refused_total",
    kind: Kind::Counter,
    help: "HTTP connections refused because [collector] max_connections were open.",
    labels: &[],
};
/// `slaprobe_collector_connection_timeouts_total`.
pub const CONNECTION_TIMEOUTS: Family = Family {
    name: "slaprobe_collector_connection_timeouts_total",
    kind: Kind::Counter,
    help: "HTTP connections closed because a TLS handshake, request head or request body was too slow.",
    labels: &["phase"],
};

/// The `slaprobe_collector_connection*` families, read at every scrape.
impl MetricFamilies for ConnStats {
    fn write_families(&self, out: &mut Exposition) {
        out.family(&CONNECTIONS_OPEN, |s| s.add(&[], self.open() as f64));
        out.family(&CONNECTIONS_ACCEPTED, |s| {
            s.add(&[], self.accepted() as f64)
        });
        out.family(&CONNECTIONS_REFUSED, |s| s.add(&[], self.refused() as f64));
        let (handshake, header, body) = self.timeouts();
        out.family(&CONNECTION_TIMEOUTS, |s| {
            // Sorted by label value, as every family's series are.
            s.add(&["body"], body as f64);
            s.add(&["handshake"], handshake as f64);
            s.add(&["header"], header as f64);
        });
    }
}
