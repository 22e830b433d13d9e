//! The `http` probe: one fresh connection per request (no pooling, so every
//! probe measures a real connect and handshake), hyper 1's connection-level
//! HTTP/1.1 client over tokio-rustls, blackbox_exporter-style phases,
//! redirects followed on new connections, a capped body read. The
//! connection's I/O runs inside the probe's own task (no task spawned per
//! connection).
//!
//! The building blocks ([`Conn::open`], [`Conn::exchange`], [`fetch`]) are
//! shared with the page probe, which reuses a [`Conn`] for several
//! resources (keep-alive) as a browser does.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use slaprobe_wire::{Failure, FailureClass, HttpDetail, Phases, TlsDetail};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use url::Url;

use super::{Outcome, Prober, net, tls};
use crate::config::{HttpSpec, NetOptions};

/// The User-Agent every request carries.
pub const USER_AGENT: &str = concat!("slaprobe/", env!("CARGO_PKG_VERSION"));

/// The future doing a connection's I/O (hyper's `Connection`), type-erased
/// over plain TCP and TLS.
type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Awaits `fut` while polling the connection's I/O in the same task, so a
/// probe needs no spawned task (and none of its cross-thread wake-ups) per
/// connection. Once the connection has ended, `fut` alone is awaited (it
/// then fails or finishes on what hyper already has).
async fn drive<F: Future>(driver: &mut Option<Driver>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    loop {
        let Some(d) = driver.as_mut() else {
            return fut.await;
        };
        tokio::select! {
            biased;
            out = &mut fut => return out,
            () = d.as_mut() => *driver = None,
        }
    }
}

/// An open HTTP/1.1 connection to one origin, with how it was set up.
pub struct Conn {
    sender: SendRequest<Empty<Bytes>>,
    /// The connection's I/O, polled only while this probe waits on the
    /// connection ([`drive`]); dropping it closes the socket. None once the
    /// connection has ended.
    driver: Option<Driver>,
    /// The address connected to.
    pub remote: SocketAddr,
    /// resolve, connect and (https) tls phases of this connection.
    pub phases: Phases,
    /// The TLS session's details (https only).
    pub tls: Option<TlsDetail>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("remote", &self.remote)
            .field("phases", &self.phases)
            .field("open", &self.driver.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a connection could not be opened, with what was learnt on the way.
#[derive(Debug)]
pub struct OpenFailed {
    pub failure: Failure,
    pub phases: Phases,
    pub tls: Option<TlsDetail>,
    pub remote: Option<SocketAddr>,
}

/// One request's response, as far as it got.
#[derive(Debug, Default)]
pub struct Exchange {
    pub status: Option<u16>,
    /// "HTTP/1.1" or "HTTP/1.0".
    pub version: Option<String>,
    /// The raw `Location` header, if any.
    pub location: Option<String>,
    /// The body's first bytes, up to the cap (only when asked to keep it).
    pub body: Vec<u8>,
    /// Body bytes received (capped).
    pub body_bytes: u64,
    /// The body was longer than the cap; reading stopped there.
    pub truncated: bool,
    /// Request sent → response head parsed (time to first byte).
    pub processing: Option<Duration>,
    /// Response head → end of body (or the cap).
    pub transfer: Option<Duration>,
    /// Set when the exchange did not complete (timeout, protocol error).
    pub failure: Option<Failure>,
}

/// The host to connect to and the port, from an http(s) URL.
fn host_port(url: &Url) -> Result<(&str, u16), Failure> {
    let host = url.host_str().filter(|h| !h.is_empty());
    let port = url.port_or_known_default();
    match (host, port) {
        (Some(h), Some(p)) => Ok((h, p)),
        _ => Err(Failure::new(
            FailureClass::Protocol,
            format!("{url} has no host or port"),
        )),
    }
}

fn secs(d: Duration) -> Option<f64> {
    Some(d.as_secs_f64())
}

impl Conn {
    /// Resolves, connects and (for https) runs the TLS handshake, each phase
    /// timed and bounded by `deadline`.
    pub async fn open(
        p: &Prober,
        url: &Url,
        net: &NetOptions,
        deadline: Instant,
    ) -> Result<Conn, Box<OpenFailed>> {
        let mut phases = Phases::default();
        let failed = |failure, phases, tls, remote| {
            Box::new(OpenFailed {
                failure,
                phases,
                tls,
                remote,
            })
        };
        let (host, port) = host_port(url).map_err(|f| failed(f, Phases::default(), None, None))?;
        let resolved = match net::resolve(p.resolver(), host, port, net, deadline).await {
            Ok(r) => r,
            Err(f) => return Err(failed(f, phases, None, None)),
        };
        phases.resolve = secs(resolved.elapsed);
        let connected = match net::connect(&resolved.addrs, deadline).await {
            Ok(c) => c,
            Err(f) => return Err(failed(f, phases, None, None)),
        };
        phases.connect = secs(connected.elapsed);
        let remote = connected.remote;
        let started = match url.scheme() {
            "https" => {
                let session = match tls::handshake(
                    p,
                    connected.stream,
                    host,
                    net,
                    tls::DEFAULT_WARN_DAYS,
                    deadline,
                    true,
                )
                .await
                {
                    Ok(s) => s,
                    Err(h) => {
                        phases.tls = secs(h.elapsed);
                        return Err(failed(h.failure, phases, h.detail, Some(remote)));
                    }
                };
                phases.tls = secs(session.elapsed);
                start_http1(session.stream, deadline)
                    .await
                    .map(|(s, d)| (s, d, Some(session.detail)))
            }
            _ => start_http1(connected.stream, deadline)
                .await
                .map(|(s, d)| (s, d, None)),
        };
        match started {
            Ok((sender, driver, tls)) => Ok(Conn {
                sender,
                driver: Some(driver),
                remote,
                phases,
                tls,
            }),
            Err(f) => Err(failed(f, phases, None, Some(remote))),
        }
    }

    /// Closes the connection: its socket is released when the driver is
    /// dropped, here, with no task left behind. Then yields once, so that
    /// a peer on the same runtime (the tests' servers) sees the EOF before
    /// the caller opens its next connection, as with the spawned task whose
    /// end the caller used to await.
    pub async fn close(self) {
        drop(self);
        tokio::task::yield_now().await;
    }

    /// True when the connection can take another request (keep-alive).
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends `GET url` on this connection and reads the response, the body
    /// capped at `cap` bytes (kept only when `keep_body`). Every wait is
    /// bounded by `deadline`; running out of time is `timeout`.
    pub async fn exchange(
        &mut self,
        url: &Url,
        cap: u64,
        keep_body: bool,
        deadline: Instant,
    ) -> Exchange {
        let mut ex = Exchange::default();
        let req = match build_request(url) {
            Ok(r) => r,
            Err(f) => {
                ex.failure = Some(f);
                return ex;
            }
        };
        let t_req = Instant::now();
        // A kept-alive connection may still be finishing the previous body.
        match drive(
            &mut self.driver,
            tokio::time::timeout_at(deadline, self.sender.ready()),
        )
        .await
        {
            Err(_) => {
                ex.failure = Some(Failure::new(
                    FailureClass::Timeout,
                    "connection not ready for a request within the timeout",
                ));
                return ex;
            }
            Ok(Err(e)) => {
                ex.failure = Some(Failure::new(
                    FailureClass::Protocol,
                    format!("connection closed: {}", hyper_error(&e)),
                ));
                return ex;
            }
            Ok(Ok(())) => {}
        }
        let sent = tokio::time::timeout_at(deadline, self.sender.send_request(req));
        let resp = match drive(&mut self.driver, sent).await {
            Err(_) => {
                ex.failure = Some(Failure::new(
                    FailureClass::Timeout,
                    format!(
                        "no response headers within the timeout (waited {:.3}s)",
                        t_req.elapsed().as_secs_f64()
                    ),
                ));
                return ex;
            }
            Ok(Err(e)) => {
                ex.failure = Some(Failure::new(
                    FailureClass::Protocol,
                    format!("no valid response: {}", hyper_error(&e)),
                ));
                return ex;
            }
            Ok(Ok(r)) => r,
        };
        let t_head = Instant::now();
        ex.processing = Some(t_head - t_req);
        ex.status = Some(resp.status().as_u16());
        ex.version = Some(format!("{:?}", resp.version()));
        ex.location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);

        // A frame loop rather than `Limited`: keep the first `cap` bytes and
        // a truncated flag instead of failing the read (NOTES-APIS §1).
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut got: usize = 0;
        let mut body = resp.into_body();
        loop {
            let next = tokio::time::timeout_at(deadline, body.frame());
            let frame = match drive(&mut self.driver, next).await {
                Err(_) => {
                    ex.failure = Some(Failure::new(
                        FailureClass::Timeout,
                        format!("body not complete within the timeout ({got} bytes received)"),
                    ));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    ex.failure = Some(Failure::new(
                        FailureClass::Protocol,
                        format!("body broken after {got} bytes: {}", hyper_error(&e)),
                    ));
                    break;
                }
                Ok(Some(Ok(f))) => f,
            };
            let Some(chunk) = frame.data_ref() else {
                continue;
            };
            let room = cap - got;
            let take = chunk.len().min(room);
            if keep_body {
                ex.body.extend_from_slice(&chunk[..take]);
            }
            got += take;
            if chunk.len() > room {
                // Dropping the body makes hyper close the connection.
                ex.truncated = true;
                break;
            }
        }
        ex.body_bytes = got as u64;
        ex.transfer = Some(t_head.elapsed());
        ex
    }
}

/// Hands `io` to hyper's HTTP/1.1 client; the connection's I/O future is
/// returned to be driven by the probe's own task.
async fn start_http1<IO>(
    io: IO,
    deadline: Instant,
) -> Result<(SendRequest<Empty<Bytes>>, Driver), Failure>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Hyper's defaults bound the response head (~400 KiB buffer, 100 headers).
    let hs =
        hyper::client::conn::http1::Builder::new().handshake::<_, Empty<Bytes>>(TokioIo::new(io));
    match tokio::time::timeout_at(deadline, hs).await {
        Err(_) => Err(Failure::new(
            FailureClass::Timeout,
            "HTTP connection setup did not finish within the timeout",
        )),
        Ok(Err(e)) => Err(Failure::new(
            FailureClass::Protocol,
            format!("HTTP connection setup: {}", hyper_error(&e)),
        )),
        Ok(Ok((sender, conn))) => {
            let driver: Driver = Box::pin(async move {
                let _ = conn.await;
            });
            Ok((sender, driver))
        }
    }
}

/// `GET` in origin-form with the headers the connection-level API does not
/// add: Host (with the port when not the scheme's default) and User-Agent.
fn build_request(url: &Url) -> Result<Request<Empty<Bytes>>, Failure> {
    let (host, _) = host_port(url)?;
    let host_hdr = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let path = if path.is_empty() { "/" } else { path };
    Request::get(path)
        .header(header::HOST, host_hdr)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*")
        .body(Empty::new())
        .map_err(|e| {
            Failure::new(
                FailureClass::Protocol,
                format!("cannot build a request for {url}: {e}"),
            )
        })
}

/// A hyper error with its causes ("connection closed before message completed").
fn hyper_error(e: &hyper::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// What fetching a URL (redirects followed) produced.
#[derive(Debug, Default)]
pub struct Fetched {
    pub http: HttpDetail,
    pub tls: Option<TlsDetail>,
    /// The final response's body, up to the cap (when asked to keep it).
    pub body: Vec<u8>,
    pub failure: Option<Failure>,
}

/// Fetches `spec.url` as the http probe does: a new connection per hop,
/// redirects followed up to `max_redirects`, then the status and content
/// checks. The phases describe the final hop.
pub async fn fetch(p: &Prober, spec: &HttpSpec, keep_body: bool, deadline: Instant) -> Fetched {
    let mut out = Fetched::default();
    let mut url = spec.url.clone();
    let keep_body = keep_body || spec.body_contains.is_some();
    loop {
        out.http.final_url = Some(url.to_string());
        out.http.phases = Phases::default();
        out.http.status = None;
        out.http.version = None;
        out.http.remote_addr = None;
        out.tls = None;
        let mut conn = match Conn::open(p, &url, &spec.net, deadline).await {
            Ok(c) => c,
            Err(f) => {
                out.http.phases = f.phases;
                out.http.remote_addr = f.remote.map(|a| a.to_string());
                out.tls = f.tls;
                out.failure = Some(f.failure);
                return out;
            }
        };
        out.http.phases = conn.phases.clone();
        out.http.remote_addr = Some(conn.remote.to_string());
        out.tls = conn.tls.take();

        let follow = spec.max_redirects > 0;
        let ex = conn
            .exchange(&url, spec.max_body_bytes, keep_body, deadline)
            .await;
        drop(conn);
        out.http.status = ex.status;
        out.http.version = ex.version.clone();
        out.http.phases.processing = ex.processing.map(|d| d.as_secs_f64());
        out.http.phases.transfer = ex.transfer.map(|d| d.as_secs_f64());
        out.http.body_bytes = ex.body_bytes;
        out.http.body_truncated = ex.truncated;
        if let Some(f) = ex.failure {
            out.failure = Some(f);
            return out;
        }
        let status = ex.status.unwrap_or(0);

        let is_redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        if is_redirect
            && follow
            && let Some(loc) = ex.location.as_deref()
        {
            if out.http.redirects >= spec.max_redirects {
                out.failure = Some(Failure::new(
                    FailureClass::TooManyRedirects,
                    format!(
                        "more than {} redirects (last: {status} to {loc})",
                        spec.max_redirects
                    ),
                ));
                return out;
            }
            let next = match url.join(loc) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
                Ok(u) => {
                    out.failure = Some(Failure::new(
                        FailureClass::Protocol,
                        format!("redirect to unsupported URL {u}"),
                    ));
                    return out;
                }
                Err(e) => {
                    out.failure = Some(Failure::new(
                        FailureClass::Protocol,
                        format!("invalid redirect Location {loc:?}: {e}"),
                    ));
                    return out;
                }
            };
            // Body figures describe the final response, like the phases.
            out.http.body_bytes = 0;
            out.http.body_truncated = false;
            out.http.redirects += 1;
            url = next;
            continue;
        }

        out.failure = check_response(spec, status, &ex.body, ex.truncated);
        out.body = ex.body;
        return out;
    }
}

/// The status and content checks on the final response.
fn check_response(spec: &HttpSpec, status: u16, body: &[u8], truncated: bool) -> Option<Failure> {
    let status_ok = match &spec.expect_status {
        Some(list) => list.contains(&status),
        None => (200..400).contains(&status),
    };
    if !status_ok {
        let expected = match &spec.expect_status {
            Some(list) => format!("one of {list:?}"),
            None => "2xx or 3xx".into(),
        };
        return Some(Failure::new(
            FailureClass::HttpStatus,
            format!("status {status}, expected {expected}"),
        ));
    }
    if let Some(needle) = &spec.body_contains
        && !contains(body, needle.as_bytes())
    {
        let note = if truncated {
            " (truncated at the read cap)"
        } else {
            ""
        };
        return Some(Failure::new(
            FailureClass::ContentMismatch,
            format!(
                "body does not contain {needle:?} ({} bytes searched{note})",
                body.len()
            ),
        ));
    }
    None
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The `http` probe.
pub async fn probe(p: &Prober, spec: &HttpSpec, deadline: Instant) -> Outcome {
    let deadline = net::probe_deadline(deadline);
    let f = fetch(p, spec, false, deadline).await;
    Outcome {
        failure: f.failure,
        http: Some(f.http),
        tls: f.tls,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_origin_form_with_host() {
        let r = build_request(&Url::parse("http://[::1]:8080/a/b?x=1#frag").unwrap()).unwrap();
        assert_eq!(r.uri().to_string(), "/a/b?x=1");
        assert_eq!(r.headers()[header::HOST], "[::1]:8080");
        let r = build_request(&Url::parse("https://Example.COM:443").unwrap()).unwrap();
        assert_eq!(r.uri().to_string(), "/");
        assert_eq!(r.headers()[header::HOST], "example.com");
        assert!(
            r.headers()[header::USER_AGENT]
                .to_str()
                .unwrap()
                .starts_with("slaprobe/")
        );
    }

    #[test]
    fn substring_search() {
        assert!(contains(b"hello Acme world", b"Acme"));
        assert!(!contains(b"hello", b"hello!"));
        assert!(!contains(b"", b"x"));
    }
}
