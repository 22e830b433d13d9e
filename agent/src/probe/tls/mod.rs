//! TLS for the probes: the trust store shared by the process, a handshake
//! that records the presented chain, and the `tls` probe kind (resolve +
//! connect + handshake).
//!
//! Verification runs in "report-only" mode: the verifier records what
//! webpki says about the chain but lets the handshake finish, so a result
//! carries version, cipher and the certificate's dates even when it is
//! expired or untrusted (the reviewer wants to see the expired date). The
//! verdict is then applied after the handshake: a probe never sends a
//! request over a connection whose certificate failed.
//!
//! # Layout
//! - `config`: the shared trust store, client configs and the recording
//!   verifier.
//! - `chain`: what the presented chain says (dates, names, SANs).
//! - `failure`: the failure each way a handshake can go wrong maps to.

mod chain;
mod config;
mod failure;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use slaprobe_wire::{Failure, FailureClass, Revocation, RevocationStatus, Timestamp, TlsDetail};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::record_tap::Tapped;
use super::{Outcome, Prober, net, revocation};
use crate::config::{NetOptions, TlsSpec};
use chain::{cipher_name, describe_chain, version_name};
use config::CAPTURE;
pub use config::{Captured, TlsShared, system_roots};
pub use failure::classify_cert_error;
use failure::{cert_failure, handshake_failure, is_too_large, oversized, revocation_failure};

/// Days before expiry that http and page probes flag as `expiring_soon`
/// (tls checks have their own `warn_days`).
pub const DEFAULT_WARN_DAYS: f64 = 14.0;

/// A verified TLS session, ready for HTTP.
#[derive(Debug)]
pub struct Session {
    pub stream: TlsStream<Tapped>,
    pub detail: TlsDetail,
    /// Handshake time (the `tls` phase).
    pub elapsed: Duration,
}

/// A handshake that failed or presented a certificate that failed.
#[derive(Debug)]
pub struct HandshakeFailed {
    pub failure: Failure,
    /// Filled whenever the server presented a certificate.
    pub detail: Option<TlsDetail>,
    pub elapsed: Duration,
}

/// How the handshake itself ended: timed out, failed (with the transport
/// back, to size an oversized message), or up.
type Connected =
    Result<Result<TlsStream<Tapped>, (std::io::Error, Tapped)>, tokio::time::error::Elapsed>;

/// Runs a TLS handshake on `tcp` for `host` (a DNS name or an IP literal,
/// brackets allowed), verifies the certificate against the system roots
/// plus `net.extra_roots`, then checks its revocation as `net.revocation`
/// says (after the `tls` phase is timed: the revocation check is not part
/// of the handshake). Running out of time is `timeout`: the connection is
/// up and the server is not answering, as with a request that hangs.
/// `request_follows`: a request will be written on the session, so a TLS
/// 1.3 Finished waits to go out with it ([`Tapped::holding_finished`]).
pub async fn handshake(
    p: &Prober,
    tcp: TcpStream,
    host: &str,
    net: &NetOptions,
    warn_days: f64,
    deadline: Instant,
    request_follows: bool,
) -> Result<Session, HandshakeFailed> {
    let t0 = Instant::now();
    let fail_early = |failure: Failure| HandshakeFailed {
        failure,
        detail: None,
        elapsed: t0.elapsed(),
    };
    let host = net::bare_host(host);
    let server_name = server_name(host).map_err(fail_early)?;
    let cfg = p
        .tls()
        .client_config(&net.extra_roots)
        .map_err(fail_early)?;
    let io = if request_follows {
        Tapped::holding_finished(tcp)
    } else {
        Tapped::new(tcp)
    };
    let (res, captured) = connect_recording(cfg, server_name.clone(), io, deadline).await;
    let elapsed = t0.elapsed();
    let Captured {
        chain,
        verify_error,
        ocsp: staple,
    } = captured;
    let now = Timestamp::now();
    let mut detail = (!chain.is_empty()).then(|| {
        let facts = p.tls().chain_facts(&chain);
        describe_chain(&facts, &server_name, verify_error.as_ref(), warn_days, now)
    });
    let fail = |failure: Failure, detail: Option<TlsDetail>| HandshakeFailed {
        failure,
        detail,
        elapsed,
    };

    let stream = match res {
        Err(_) => return Err(fail(timeout_failure(host, elapsed), detail)),
        Ok(Err((e, io))) => {
            // A certificate verdict explains the failure better than what followed it.
            let failure = match &verify_error {
                Some(ve) => cert_failure(ve, detail.as_ref(), host),
                None if is_too_large(&e) => oversized(io, host, deadline).await,
                None => handshake_failure(&e, host),
            };
            return Err(fail(failure, detail));
        }
        Ok(Ok(mut s)) => {
            s.get_mut().0.tap.done = true;
            s
        }
    };
    let d = detail.get_or_insert_with(TlsDetail::default);
    record_negotiated(d, &stream);
    if let Some(ve) = &verify_error {
        d.revocation = Some(Revocation::without_source(
            RevocationStatus::NotChecked,
            "the certificate chain did not verify",
        ));
        let failure = cert_failure(ve, detail.as_ref(), host);
        return Err(fail(failure, detail));
    }
    let verdict = check_revocation(p, net, &chain, &staple, deadline).await;
    let failure = revocation_failure(&verdict, net.revocation.required);
    d.revocation = Some(verdict);
    if let Some(failure) = failure {
        return Err(fail(failure, detail));
    }
    Ok(Session {
        stream,
        detail: detail.unwrap_or_default(),
        elapsed,
    })
}

/// `host` as a TLS server name (SNI and the name the certificate must hold).
fn server_name(host: &str) -> Result<ServerName<'static>, Failure> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        Failure::new(
            FailureClass::TlsHandshake,
            format!("{host:?} is not a valid TLS server name: {e}"),
        )
    })
}

/// Runs the handshake until `deadline` with a [`CAPTURE`] slot of its own,
/// returning how it ended and what the verifier saw.
async fn connect_recording(
    cfg: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    io: Tapped,
    deadline: Instant,
) -> (Connected, Captured) {
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let captured = Arc::new(Mutex::new(Captured::default()));
    let connect =
        tokio::time::timeout_at(deadline, connector.connect(server_name, io).into_fallible());
    let res = CAPTURE.scope(captured.clone(), connect).await;
    let mut c = captured.lock().unwrap_or_else(|e| e.into_inner());
    let seen = Captured {
        chain: std::mem::take(&mut c.chain),
        verify_error: c.verify_error.take(),
        ocsp: std::mem::take(&mut c.ocsp),
    };
    (res, seen)
}

/// The `timeout` failure of a handshake that did not finish in time.
fn timeout_failure(host: &str, elapsed: Duration) -> Failure {
    Failure::new(
        FailureClass::Timeout,
        format!(
            "TLS handshake with {host} did not finish within the timeout ({:.3}s)",
            elapsed.as_secs_f64()
        ),
    )
}

/// The version and cipher the session negotiated, into `d`.
fn record_negotiated(d: &mut TlsDetail, stream: &TlsStream<Tapped>) {
    let (_, conn) = stream.get_ref();
    d.version = conn.protocol_version().map(version_name);
    d.cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .map(cipher_name);
}

/// The revocation verdict on a verified chain, as `net.revocation` says.
async fn check_revocation(
    p: &Prober,
    net: &NetOptions,
    chain: &[CertificateDer<'static>],
    staple: &[u8],
    deadline: Instant,
) -> Revocation {
    let shared = p.tls();
    // Half the time left at most: an http or page probe still needs the
    // rest for its request when a responder black-holes the fetch.
    let now_i = Instant::now();
    let revocation_deadline = now_i + deadline.saturating_duration_since(now_i) / 2;
    revocation::check(revocation::Request {
        mode: net.revocation.mode,
        chain,
        staple,
        roots: &shared.roots,
        extra_roots: &net.extra_roots,
        resolver: p.resolver(),
        net,
        cache: &shared.revocation,
        deadline: revocation_deadline,
        now: Timestamp::now(),
    })
    .await
}

/// The `tls` probe: resolve, connect, handshake, report the certificate.
pub async fn probe(p: &Prober, spec: &TlsSpec, deadline: Instant) -> Outcome {
    let deadline = net::probe_deadline(deadline);
    let (_, connected) =
        match net::open(p.resolver(), &spec.host, spec.port, &spec.net, deadline).await {
            Ok(ok) => ok,
            Err((_, failure)) => {
                return Outcome {
                    failure: Some(failure),
                    ..Default::default()
                };
            }
        };
    match handshake(
        p,
        connected.stream,
        &spec.host,
        &spec.net,
        spec.warn_days,
        deadline,
        false,
    )
    .await
    {
        Ok(session) => Outcome {
            tls: Some(session.detail),
            ..Default::default()
        },
        Err(h) => Outcome {
            failure: Some(h.failure),
            tls: h.detail,
            ..Default::default()
        },
    }
}
