//! One plain-HTTP exchange with an OCSP responder (GET or POST) or a CRL
//! distribution point (GET): the probe's resolution and connect rules
//! (`resolve` overrides, `ip_version`), a deadline, and a size bound on
//! the answer. CAs publish both over http:// (RFC 5280 §4.2.1.13, RFC
//! 6960 appendix A): the answers are signed, and fetching them over TLS
//! would need a revocation check of its own.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use url::Url;

use crate::config::NetOptions;
use crate::probe::{http::USER_AGENT, net};
use hickory_resolver::TokioResolver;

/// Why a fetch gave no bytes.
#[derive(Debug)]
pub struct FetchError {
    /// The server answered (with an error status, too much data, ...), as
    /// opposed to being unreachable.
    pub answered: bool,
    pub message: String,
}

fn unreachable(message: String) -> FetchError {
    FetchError {
        answered: false,
        message,
    }
}

fn bad_answer(message: String) -> FetchError {
    FetchError {
        answered: true,
        message,
    }
}

/// Sends `POST url` with `body` (an OCSP request) or `GET url` (a CRL, or
/// an OCSP request in the URL), and returns
/// a 200 answer's body when it is at most `max` bytes.
pub async fn fetch(
    resolver: &TokioResolver,
    opts: &NetOptions,
    url: &Url,
    body: Option<Vec<u8>>,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, FetchError> {
    if url.scheme() != "http" {
        return Err(unreachable(format!("{url}: only http:// URLs are fetched")));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| unreachable(format!("{url} has no host")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let (_, connected) = net::open(resolver, host, port, opts, deadline)
        .await
        .map_err(|(_, f)| unreachable(f.message))?;
    let hs =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(connected.stream));
    let (mut sender, conn) = match tokio::time::timeout_at(deadline, hs).await {
        Err(_) => return Err(unreachable("no time left".into())),
        Ok(Err(e)) => return Err(unreachable(format!("HTTP setup: {e}"))),
        Ok(Ok(pair)) => pair,
    };
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let _abort = scopeguard(driver);

    let host_hdr = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let path = if path.is_empty() { "/" } else { path };
    let builder = Request::builder()
        .uri(path)
        .header(header::HOST, host_hdr)
        .header(header::USER_AGENT, USER_AGENT);
    let request = match body {
        Some(b) => builder
            .method("POST")
            .header(header::CONTENT_TYPE, "application/ocsp-request")
            .header(header::ACCEPT, "application/ocsp-response")
            .body(Full::new(Bytes::from(b))),
        None => builder.method("GET").body(Full::new(Bytes::new())),
    }
    .map_err(|e| unreachable(format!("cannot build the request: {e}")))?;

    let resp = match tokio::time::timeout_at(deadline, sender.send_request(request)).await {
        Err(_) => {
            return Err(unreachable(
                "no answer within the time allowed (half the check's remaining timeout)".into(),
            ));
        }
        Ok(Err(e)) => return Err(unreachable(format!("HTTP: {e}"))),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if status != hyper::StatusCode::OK {
        return Err(bad_answer(format!("HTTP status {}", status.as_u16())));
    }
    let declared = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > max as u64
    {
        return Err(bad_answer(format!(
            "answer of {n} bytes exceeds the {max}-byte limit"
        )));
    }
    let mut body = resp.into_body();
    let mut out = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(bad_answer(
                    "answer not complete within the time allowed".into(),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(bad_answer(format!("reading the answer: {e}"))),
            Ok(Some(Ok(f))) => f,
        };
        if let Some(chunk) = frame.data_ref() {
            if out.len() + chunk.len() > max {
                return Err(bad_answer(format!("answer exceeds the {max}-byte limit")));
            }
            out.extend_from_slice(chunk);
        }
    }
    Ok(out)
}

/// Aborts the connection task when the fetch ends, however it ends.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn scopeguard(h: tokio::task::JoinHandle<()>) -> Abort {
    Abort(h)
}
