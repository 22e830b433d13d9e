//! In-process HTTP/1.1 and HTTPS test servers, well-behaved and hostile.
//!
//! A small hand-written responder rather than hyper's server: the hostile
//! behaviours (headers trickled a byte a second, an endless body, garbage
//! instead of a status line, a connection closed before answering) need
//! byte-level control, and the well-behaved routes need little more than
//! a status, headers, a body and a delay. Keep-alive is supported, so the
//! page probe's connection reuse can be observed.
//!
//! Raw-TCP fixtures cover what needs no HTTP at all: [`refused_addr`], a
//! [`SilentServer`] that accepts and never answers, a [`BacklogFull`]
//! listener whose connects hang. Everything stops when dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::certs::ServerCert;

/// Largest request head the servers accept (then they close).
const MAX_HEAD: usize = 64 * 1024;

/// What a route does with a request.
#[derive(Debug, Clone)]
enum Action {
    /// A normal response.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Send the status line and headers one byte per second, forever.
    TrickleHeaders,
    /// 200 with a chunked body that never ends.
    EndlessBody,
    /// A status line, then header lines as fast as the client reads, forever.
    EndlessHeaders,
    /// Close the connection without a byte.
    Close,
    /// Answer with something that is not HTTP, then close.
    Garbage,
}

/// A configured answer for one path.
#[derive(Debug, Clone)]
pub struct Route {
    action: Action,
    /// Pause before the response head (server "think time": the probe's processing phase).
    delay: Duration,
    /// Pause between the head and the body (the probe's transfer phase).
    body_delay: Duration,
}

impl Route {
    fn new(action: Action) -> Route {
        Route {
            action,
            delay: Duration::ZERO,
            body_delay: Duration::ZERO,
        }
    }

    /// 200 with `body` (Content-Type text/html).
    pub fn ok(body: impl Into<Vec<u8>>) -> Route {
        Route::status(200, body).header("Content-Type", "text/html; charset=utf-8")
    }

    /// `status` with `body`.
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Route {
        Route::new(Action::Respond {
            status,
            headers: Vec::new(),
            body: body.into(),
        })
    }

    /// A redirect (301, 302, 303, 307 or 308) to `location`.
    pub fn redirect(status: u16, location: &str) -> Route {
        Route::status(status, "").header("Location", location)
    }

    /// Accepts the request and never answers.
    pub fn hang() -> Route {
        Route::new(Action::Hang)
    }

    /// Trickles a response head one byte per second, never finishing it.
    pub fn trickle_headers() -> Route {
        Route::new(Action::TrickleHeaders)
    }

    /// 200 with a body that never ends.
    pub fn endless_body() -> Route {
        Route::new(Action::EndlessBody)
    }

    /// Sends header lines without end (the client's head-size limit must stop it).
    pub fn endless_headers() -> Route {
        Route::new(Action::EndlessHeaders)
    }

    /// Closes the connection without answering.
    pub fn close() -> Route {
        Route::new(Action::Close)
    }

    /// Answers with bytes that are not HTTP.
    pub fn garbage() -> Route {
        Route::new(Action::Garbage)
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Route {
        if let Action::Respond { headers, .. } = &mut self.action {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// Waits `d` before sending the response head.
    pub fn delay(mut self, d: Duration) -> Route {
        self.delay = d;
        self
    }

    /// Waits `d` between the response head and the body.
    pub fn body_delay(mut self, d: Duration) -> Route {
        self.body_delay = d;
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// The request target as sent (origin-form expected: "/a?b").
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// Which accepted connection (0, 1, …) carried it.
    pub connection: usize,
    /// When its head had been read (ground truth for browser timings).
    pub received: std::time::Instant,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Counters a test can assert on.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// Connections open right now.
    pub open: AtomicUsize,
    /// Most connections open at once.
    pub max_open: AtomicUsize,
    requests: Mutex<Vec<SeenRequest>>,
}

impl Stats {
    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Most connections that were open at the same time.
    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }
}

/// Routes by path (the query is ignored); unknown paths get 404.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    map: HashMap<String, Route>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Adds (or replaces) the route for `path`.
    pub fn route(mut self, path: &str, route: Route) -> Routes {
        self.map.insert(path.to_string(), route);
        self
    }

    fn get(&self, target: &str) -> Route {
        let path = target.split(['?', '#']).next().unwrap_or(target);
        self.map
            .get(path)
            .cloned()
            .unwrap_or_else(|| Route::status(404, "not found"))
    }
}

/// A running HTTP or HTTPS server on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    tls: bool,
    stats: Arc<Stats>,
    _accept: AbortOnDrop,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestServer {
    /// Plain HTTP on 127.0.0.1.
    pub async fn http(routes: Routes) -> TestServer {
        Self::start(local(), routes, None).await
    }

    /// HTTPS on 127.0.0.1 presenting `cert`.
    pub async fn https(routes: Routes, cert: &ServerCert) -> TestServer {
        Self::start(local(), routes, Some(cert.server_config())).await
    }

    /// On `bind` (e.g. "[::1]:0"), HTTPS when `tls` is given.
    pub async fn start(
        bind: SocketAddr,
        routes: Routes,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> TestServer {
        let listener = TcpListener::bind(bind).await.expect("bind test server");
        let addr = listener.local_addr().expect("local addr");
        let stats = Arc::new(Stats::default());
        let is_tls = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let st = stats.clone();
        let routes = Arc::new(routes);
        let accept = tokio::spawn(async move {
            // Connection tasks live in this set: aborting the accept task
            // drops the set, which aborts every connection.
            let mut conns = JoinSet::new();
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                    Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                };
                let _ = tcp.set_nodelay(true);
                let id = st.connections.fetch_add(1, Ordering::SeqCst);
                let open = st.open.fetch_add(1, Ordering::SeqCst) + 1;
                st.max_open.fetch_max(open, Ordering::SeqCst);
                let (st, routes, acceptor) = (st.clone(), routes.clone(), acceptor.clone());
                conns.spawn(async move {
                    match acceptor {
                        Some(acc) => {
                            if let Ok(Ok(tls)) =
                                tokio::time::timeout(Duration::from_secs(10), acc.accept(tcp)).await
                            {
                                serve(tls, id, &routes, &st).await;
                            }
                        }
                        None => serve(tcp, id, &routes, &st).await,
                    }
                    st.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        TestServer {
            addr,
            tls: is_tls,
            stats,
            _accept: AbortOnDrop(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on this server by IP ("http://127.0.0.1:PORT/path").
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The URL of `path` with `host` instead of the IP (pair with `resolve`).
    pub fn url_for_host(&self, host: &str, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.addr.port())
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Serves requests on one connection until the client closes or a route ends it.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    conn_id: usize,
    routes: &Routes,
    stats: &Stats,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let Some(head) = read_head(&mut io, &mut buf).await else {
            return;
        };
        let Some(req) = parse_head(&head, conn_id) else {
            let _ = io
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        };
        let client_closes = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let route = routes.get(&req.target);
        stats
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req);
        pause(route.delay).await;
        match route.action {
            Action::Respond {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n",
                    reason(status),
                    body.len()
                );
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if client_closes {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                if io.write_all(head.as_bytes()).await.is_err() || io.flush().await.is_err() {
                    return;
                }
                pause(route.body_delay).await;
                if io.write_all(&body).await.is_err() || io.flush().await.is_err() || client_closes
                {
                    let _ = io.shutdown().await;
                    return;
                }
            }
            Action::Hang => std::future::pending::<()>().await,
            Action::TrickleHeaders => {
                let head = b"HTTP/1.1 200 OK\r\nX-Slow: ";
                for b in head.iter().chain(std::iter::repeat(&b'a')) {
                    if io.write_all(&[*b]).await.is_err() || io.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Action::EndlessBody => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if io.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = [b'x'; 16 * 1024];
                loop {
                    let ok = io
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await
                        .is_ok()
                        && io.write_all(&chunk).await.is_ok()
                        && io.write_all(b"\r\n").await.is_ok();
                    if !ok {
                        return;
                    }
                }
            }
            Action::EndlessHeaders => {
                if io.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                    return;
                }
                let line = format!("X-Filler: {}\r\n", "f".repeat(1000));
                while io.write_all(line.as_bytes()).await.is_ok() {}
                return;
            }
            Action::Close => return,
            Action::Garbage => {
                let _ = io
                    .write_all(b"SSH-2.0-OpenSSH_9.6 definitely not http\r\n\r\n")
                    .await;
                let _ = io.shutdown().await;
                return;
            }
        }
    }
}

/// Sleeps, unless `d` is zero (a zero sleep still waits for the next timer tick, ~1 ms).
async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// Reads one request head (up to the blank line) out of `buf` + the stream.
async fn read_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buf[..end].to_vec();
            buf.drain(..end + 4);
            return Some(head);
        }
        // Not a request line (e.g. a TLS ClientHello on the plain port):
        // answer 400 at once, as real servers do, instead of waiting.
        if buf.first().is_some_and(|b| !b.is_ascii_uppercase()) {
            return Some(Vec::new());
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse_head(head: &[u8], connection: usize) -> Option<SeenRequest> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    if !first.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(SeenRequest {
        method,
        target,
        headers,
        connection,
        received: std::time::Instant::now(),
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// An address nothing listens on (bound, then released): connects are refused.
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr")
}

/// Accepts TCP connections and never sends or reads a byte; holds them
/// until dropped. An https probe against it hangs in the TLS handshake.
#[derive(Debug)]
pub struct SilentServer {
    addr: SocketAddr,
    _task: AbortOnDrop,
}

impl SilentServer {
    pub async fn start() -> SilentServer {
        let listener = TcpListener::bind(local()).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let mut held: Vec<TcpStream> = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        SilentServer {
            addr,
            _task: AbortOnDrop(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Writes `banner` to every connection as soon as it is accepted, then
/// closes it (an empty banner: closes at once). Stands in for a server that
/// speaks another protocol on the port, or drops the connection.
#[derive(Debug)]
pub struct BannerServer {
    addr: SocketAddr,
    _task: AbortOnDrop,
}

impl BannerServer {
    pub async fn start(banner: &[u8]) -> BannerServer {
        let listener = TcpListener::bind(local()).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let banner = banner.to_vec();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(&banner).await;
                let _ = s.shutdown().await;
            }
        });
        BannerServer {
            addr,
            _task: AbortOnDrop(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A listener with a zero backlog that never accepts, its queue already
/// filled by one connection: further SYNs are dropped, so connects hang
/// until the client gives up (a connect timeout without leaving loopback).
#[derive(Debug)]
pub struct BacklogFull {
    addr: SocketAddr,
    _listener: TcpListener,
    _filler: TcpStream,
}

impl BacklogFull {
    pub async fn start() -> BacklogFull {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind(local()).expect("bind");
        let addr = socket.local_addr().expect("local addr");
        let listener = socket.listen(0).expect("listen");
        let filler = TcpStream::connect(addr).await.expect("filler connect");
        BacklogFull {
            addr,
            _listener: listener,
            _filler: filler,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// An HTML page referencing `n` resources (`/r/0.js`, `/r/1.css`, `/r/2.png`, …
/// rotating script, stylesheet and image) plus the routes serving each with
/// `size` bytes after `delay`.
pub fn page_with_resources(n: usize, size: usize, delay: Duration) -> (String, Routes) {
    let mut html = String::from("<!doctype html><html><head><title>t</title>\n");
    let mut routes = Routes::new();
    for i in 0..n {
        let (tag, path) = match i % 3 {
            0 => (
                format!("<script src=\"/r/{i}.js\"></script>"),
                format!("/r/{i}.js"),
            ),
            1 => (
                format!("<link rel=\"stylesheet\" href=\"r/{i}.css\">"),
                format!("/r/{i}.css"),
            ),
            _ => (
                format!("<img src=\"/r/{i}.png\" alt=\"\">"),
                format!("/r/{i}.png"),
            ),
        };
        html.push_str(&tag);
        html.push('\n');
        routes = routes.route(&path, Route::status(200, vec![b'.'; size]).delay(delay));
    }
    html.push_str("</head><body>hello</body></html>\n");
    (html, routes)
}
