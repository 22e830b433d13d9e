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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use slaprobe_wire::{
    Failure, FailureClass, Revocation, RevocationSource, RevocationStatus, Timestamp, TlsDetail,
};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::record_tap::{MAX_HANDSHAKE_MESSAGE, Tapped};
use super::{Outcome, Prober, net, revocation};
use crate::config::{NetOptions, TlsSpec};

/// Days before expiry that http and page probes flag as `expiring_soon`
/// (tls checks have their own `warn_days`).
pub const DEFAULT_WARN_DAYS: f64 = 14.0;

/// Where the system trust store is looked for when `SSL_CERT_FILE` is unset.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Trust material shared by every TLS-using probe, built once per process.
#[derive(Debug)]
pub struct TlsShared {
    /// Always ring, passed explicitly: both ring and aws-lc-rs are compiled
    /// in, so rustls cannot pick a process default (NOTES-APIS §2).
    provider: Arc<CryptoProvider>,
    /// The system roots; checks with a `ca_file` get a copy plus their roots.
    roots: Arc<RootCertStore>,
    /// Where the roots came from, for logs.
    roots_source: String,
    /// The client config for checks without extra roots, shared by every probe.
    system_config: Arc<ClientConfig>,
    /// One client config per distinct set of extra roots (`ca_file`/`ca_pem`),
    /// so a probe neither clones the root store nor rebuilds a verifier.
    extra_configs: Mutex<HashMap<Vec<CertificateDer<'static>>, Arc<ClientConfig>>>,
    /// Verified OCSP answers and CRLs, until their nextUpdate.
    revocation: revocation::Cache,
}

/// Distinct extra-root sets kept in [`TlsShared`]; past this the cache starts
/// over (only checks replaced again and again could get there).
const MAX_EXTRA_CONFIGS: usize = 256;

tokio::task_local! {
    /// Where the [`RecordingVerifier`] of a shared config records the chain:
    /// set by [`handshake`] around the handshake it runs, so concurrent
    /// probes sharing one config each see their own chain.
    static CAPTURE: Arc<Mutex<Captured>>;
}

/// The system trust store: `SSL_CERT_FILE` if set, else the Debian/Alpine
/// bundle if present, else the compiled-in Mozilla roots (webpki-roots);
/// a bundle without a usable root is skipped. Returns the roots and where
/// they came from (for logs). Shared by the probes and the agent's client
/// for the collector.
pub fn system_roots() -> (RootCertStore, String) {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("SSL_CERT_FILE") {
        candidates.push(std::path::PathBuf::from(p));
    }
    candidates.push(SYSTEM_BUNDLE.into());
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let mut store = RootCertStore::empty();
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        let (added, _ignored) = store.add_parsable_certificates(certs);
        if added > 0 {
            return (store, format!("{} ({added} roots)", path.display()));
        }
        tracing::warn!(path = %path.display(), "no usable root certificate in bundle; trying the next source");
    }
    let store = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let n = store.len();
    (store, format!("webpki-roots ({n} roots)"))
}

impl Default for TlsShared {
    fn default() -> Self {
        Self::new()
    }
}

impl TlsShared {
    /// Trusts the system roots (see [`system_roots`]).
    pub fn new() -> Self {
        let (store, source) = system_roots();
        Self::from_roots(store, source).expect("the system roots hold at least one anchor")
    }

    /// Uses exactly `roots` as the system trust store (tests, special
    /// setups). Fails when `roots` holds no usable anchor.
    pub fn from_roots(
        roots: RootCertStore,
        source: impl Into<String>,
    ) -> Result<Self, rustls::client::VerifierBuilderError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let system_verifier =
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        // Only an inconsistent provider fails here, and ring's default is not one.
        let system_config = build_config(&provider, system_verifier)
            .expect("ring supports the default TLS versions");
        Ok(Self {
            provider,
            roots,
            roots_source: source.into(),
            system_config,
            extra_configs: Mutex::new(HashMap::new()),
            revocation: revocation::Cache::default(),
        })
    }

    /// Where the system roots came from and how many there are.
    pub fn roots_source(&self) -> &str {
        &self.roots_source
    }

    /// The client config for a connection trusting the system roots plus
    /// `extra_roots`: resumption disabled (a resumed session presents no
    /// certificate), ALPN http/1.1 only, and a verifier that records the chain
    /// into the slot [`handshake`] sets for the running task. Built once per
    /// distinct trust set and shared.
    pub fn client_config(
        &self,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<Arc<ClientConfig>, Failure> {
        if extra_roots.is_empty() {
            return Ok(self.system_config.clone());
        }
        let mut cache = self.extra_configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cfg) = cache.get(extra_roots) {
            return Ok(cfg.clone());
        }
        let setup = |e: &dyn std::fmt::Display| {
            Failure::new(FailureClass::TlsHandshake, format!("TLS client setup: {e}"))
        };
        let mut roots = (*self.roots).clone();
        roots.add_parsable_certificates(extra_roots.iter().cloned());
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| setup(&e))?;
        let cfg = build_config(&self.provider, inner).map_err(|e| setup(&e))?;
        if cache.len() >= MAX_EXTRA_CONFIGS {
            cache.clear();
        }
        cache.insert(extra_roots.to_vec(), cfg.clone());
        Ok(cfg)
    }
}

/// A client config whose verifier wraps `inner` and records into [`CAPTURE`].
fn build_config(
    provider: &Arc<CryptoProvider>,
    inner: Arc<WebPkiServerVerifier>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let verifier = Arc::new(RecordingVerifier { inner });
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What the verifier saw during one handshake.
#[derive(Debug, Default)]
pub struct Captured {
    /// Leaf first, then the intermediates as presented.
    pub chain: Vec<CertificateDer<'static>>,
    /// webpki's verdict (one error only: expired > untrusted > name).
    pub verify_error: Option<rustls::Error>,
    /// The OCSP response the server stapled (empty when none).
    pub ocsp: Vec<u8>,
}

/// Wraps webpki: records the chain and its verdict into the running task's
/// [`CAPTURE`] slot, then lets the handshake go on (signatures are still
/// checked) so the details can be reported. Outside a slot (never in the
/// probes) the verdict is enforced as is.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut verdict = Some(self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ));
        let _ = CAPTURE.try_with(|captured| {
            let mut c = captured.lock().unwrap_or_else(|e| e.into_inner());
            c.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|d| d.clone().into_owned())
                .collect();
            c.verify_error = verdict.take().and_then(Result::err);
            c.ocsp = ocsp_response.to_vec();
        });
        verdict.unwrap_or(Ok(ServerCertVerified::assertion()))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

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

/// Runs a TLS handshake on `tcp` for `host` (a DNS name or an IP literal,
/// brackets allowed), verifies the certificate against the system roots
/// plus `net.extra_roots`, then checks its revocation as `net.revocation`
/// says (after the `tls` phase is timed: the revocation check is not part
/// of the handshake). Running out of time is `timeout`: the connection is
/// up and the server is not answering, as with a request that hangs.
pub async fn handshake(
    p: &Prober,
    tcp: TcpStream,
    host: &str,
    net: &NetOptions,
    warn_days: f64,
    deadline: Instant,
) -> Result<Session, HandshakeFailed> {
    let shared = p.tls();
    let extra_roots: &[CertificateDer<'static>] = &net.extra_roots;
    let t0 = Instant::now();
    let fail = |failure: Failure, detail: Option<TlsDetail>| HandshakeFailed {
        failure,
        detail,
        elapsed: t0.elapsed(),
    };
    let host = net::bare_host(host);
    let server_name = match ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(e) => {
            return Err(fail(
                Failure::new(
                    FailureClass::TlsHandshake,
                    format!("{host:?} is not a valid TLS server name: {e}"),
                ),
                None,
            ));
        }
    };
    let cfg = shared
        .client_config(extra_roots)
        .map_err(|f| fail(f, None))?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let captured = Arc::new(Mutex::new(Captured::default()));
    let connect = tokio::time::timeout_at(
        deadline,
        connector
            .connect(server_name.clone(), Tapped::new(tcp))
            .into_fallible(),
    );
    let res = CAPTURE.scope(captured.clone(), connect).await;
    let elapsed = t0.elapsed();
    let (chain, verify_error, staple) = {
        let mut c = captured.lock().unwrap_or_else(|e| e.into_inner());
        (
            std::mem::take(&mut c.chain),
            c.verify_error.take(),
            std::mem::take(&mut c.ocsp),
        )
    };
    let now = Timestamp::now();
    let mut detail = (!chain.is_empty())
        .then(|| describe_chain(&chain, &server_name, verify_error.as_ref(), warn_days, now));

    let stream = match res {
        Err(_) => {
            let f = Failure::new(
                FailureClass::Timeout,
                format!(
                    "TLS handshake with {host} did not finish within the timeout ({:.3}s)",
                    elapsed.as_secs_f64()
                ),
            );
            return Err(HandshakeFailed {
                failure: f,
                detail,
                elapsed,
            });
        }
        Ok(Err((e, io))) => {
            // A certificate verdict explains the failure better than what followed it.
            let failure = match &verify_error {
                Some(ve) => cert_failure(ve, detail.as_ref(), host),
                None if is_too_large(&e) => oversized(io, host, deadline).await,
                None => handshake_failure(&e, host),
            };
            return Err(HandshakeFailed {
                failure,
                detail,
                elapsed,
            });
        }
        Ok(Ok(mut s)) => {
            s.get_mut().0.tap.done = true;
            s
        }
    };
    let (_, conn) = stream.get_ref();
    let d = detail.get_or_insert_with(TlsDetail::default);
    d.version = conn.protocol_version().map(version_name);
    d.cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .map(cipher_name);
    if let Some(ve) = &verify_error {
        d.revocation = Some(Revocation::without_source(
            RevocationStatus::NotChecked,
            "the certificate chain did not verify",
        ));
        let failure = cert_failure(ve, detail.as_ref(), host);
        return Err(HandshakeFailed {
            failure,
            detail,
            elapsed,
        });
    }
    let policy = net.revocation;
    // Half the time left at most: an http or page probe still needs the
    // rest for its request when a responder black-holes the fetch.
    let now_i = Instant::now();
    let revocation_deadline = now_i + deadline.saturating_duration_since(now_i) / 2;
    let verdict = revocation::check(revocation::Request {
        mode: policy.mode,
        chain: &chain,
        staple: &staple,
        roots: &shared.roots,
        extra_roots,
        resolver: p.resolver(),
        net,
        cache: &shared.revocation,
        deadline: revocation_deadline,
        now: Timestamp::now(),
    })
    .await;
    let failure = revocation_failure(&verdict, policy.required);
    d.revocation = Some(verdict);
    if let Some(failure) = failure {
        return Err(HandshakeFailed {
            failure,
            detail,
            elapsed,
        });
    }
    Ok(Session {
        stream,
        detail: detail.unwrap_or_default(),
        elapsed,
    })
}

/// The failure a revocation verdict calls for: `tls_cert_revoked` when
/// revoked; with `required`, `tls_cert_untrusted` when the status could
/// not be established (the chain cannot be trusted without it).
fn revocation_failure(v: &Revocation, required: bool) -> Option<Failure> {
    let source = match v.source {
        Some(RevocationSource::Staple) => "the stapled OCSP response",
        Some(RevocationSource::Responder) => "the OCSP responder",
        Some(RevocationSource::Crl) => "the CRL",
        None => "nothing",
    };
    match v.status {
        RevocationStatus::Revoked => {
            let at = v
                .revoked_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "at an unknown time".into());
            let reason = v.reason.as_deref().unwrap_or("no reason given");
            Some(Failure::new(
                FailureClass::TlsCertRevoked,
                format!("certificate revoked {at} (reason: {reason}), per {source}"),
            ))
        }
        RevocationStatus::Good => None,
        RevocationStatus::Unknown | RevocationStatus::NotChecked if required => {
            // Without a detail: "staple" mode and no staple came.
            let detail = v
                .detail
                .as_deref()
                .unwrap_or("the server stapled no OCSP response (revocation = \"staple\")");
            Some(Failure::new(
                FailureClass::TlsCertUntrusted,
                format!(
                    "revocation status could not be established and revocation_required is set: {detail}"
                ),
            ))
        }
        RevocationStatus::Unknown | RevocationStatus::NotChecked => None,
    }
}

/// "TLSv1_3" (rustls) → "TLSv1.3" (what openssl and humans write).
fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => other
            .as_str()
            .map(|s| s.replace('_', "."))
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

/// rustls names TLS 1.3 suites "TLS13_…"; the IANA name is "TLS_…".
fn cipher_name(s: &str) -> String {
    match s.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => s.to_string(),
    }
}

/// The class of a certificate verdict (NOTES-APIS §2).
pub fn classify_cert_error(err: &rustls::Error) -> FailureClass {
    match err {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => FailureClass::TlsCertExpired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                FailureClass::TlsHostnameMismatch
            }
            // Unknown issuer (incl. self-signed), bad signature, wrong purpose,
            // bad encoding, revoked...: the chain cannot be trusted.
            _ => FailureClass::TlsCertUntrusted,
        },
        _ => FailureClass::TlsHandshake,
    }
}

fn cert_failure(err: &rustls::Error, detail: Option<&TlsDetail>, host: &str) -> Failure {
    let class = classify_cert_error(err);
    let fmt_ts = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
    let message = match (class, err) {
        (
            FailureClass::TlsCertExpired,
            rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
                not_before,
                ..
            }),
        ) => {
            format!(
                "certificate not valid before {}",
                fmt_ts(unix_to_ts(not_before.as_secs()))
            )
        }
        (
            FailureClass::TlsCertExpired,
            rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
                not_after, ..
            }),
        ) => {
            format!(
                "certificate expired {}",
                fmt_ts(unix_to_ts(not_after.as_secs()))
            )
        }
        (FailureClass::TlsHostnameMismatch, _) => {
            let sans = detail.map(|d| d.sans.join(", ")).unwrap_or_default();
            format!("certificate is not valid for {host} (names: {sans})")
        }
        (
            FailureClass::TlsCertUntrusted,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ) => {
            let issuer = detail
                .and_then(|d| d.issuer.clone())
                .unwrap_or_else(|| "?".into());
            format!("certificate not trusted: unknown issuer {issuer}")
        }
        _ => format!("certificate rejected: {err}"),
    };
    Failure::new(class, message)
}

/// rustls refused a handshake message over its 64 KiB cap.
fn is_too_large(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::HandshakePayloadTooLarge
        ))
    )
}

/// Most bytes read after the refusal to size a TLS 1.3 server's flight.
const DRAIN_LIMIT: u64 = 4 * 1024 * 1024;
/// A pause this long ends the flight.
const DRAIN_QUIET: Duration = Duration::from_millis(200);

/// The `tls_handshake` failure for a certificate message over rustls' cap,
/// with its size: exact from the plaintext header (TLS 1.2); in TLS 1.3
/// the message is encrypted, so the rest of the server's flight is read
/// (bounded in bytes and time) and its encrypted size reported instead.
async fn oversized(mut io: Tapped, host: &str, deadline: Instant) -> Failure {
    use tokio::io::AsyncReadExt;
    let limit = MAX_HANDSHAKE_MESSAGE + 1;
    if let Some(n) = io
        .tap
        .certificate_len
        .filter(|&n| n > MAX_HANDSHAKE_MESSAGE)
    {
        return Failure::new(
            FailureClass::TlsHandshake,
            format!(
                "TLS handshake with {host} failed: server certificate message of {n} bytes exceeds the 64 KiB limit ({limit} bytes)"
            ),
        );
    }
    if !io.tap.encrypted() {
        // Plaintext, and not the Certificate: another message is too big.
        return Failure::new(
            FailureClass::TlsHandshake,
            format!(
                "TLS handshake with {host} failed: a server handshake message exceeds the 64 KiB limit ({limit} bytes)"
            ),
        );
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut read = 0u64;
    while read < DRAIN_LIMIT {
        let until = deadline.min(Instant::now() + DRAIN_QUIET);
        match tokio::time::timeout_at(until, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => read += n as u64,
            _ => break,
        }
    }
    let flight = io.tap.encrypted_bytes;
    let size = if flight > limit as u64 {
        format!(" (the server's encrypted handshake messages came to {flight} bytes)")
    } else {
        String::new()
    };
    Failure::new(
        FailureClass::TlsHandshake,
        format!(
            "TLS handshake with {host} failed: server certificate message exceeds the 64 KiB limit ({limit} bytes){size}"
        ),
    )
}

/// Classifies a failed handshake with no certificate verdict: alerts,
/// version or cipher mismatch, a peer that closes or speaks something else.
fn handshake_failure(e: &std::io::Error, host: &str) -> Failure {
    if let Some(re) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        let class = classify_cert_error(re);
        return Failure::new(class, format!("TLS handshake with {host} failed: {re}"));
    }
    let what = match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "server closed the connection".to_string(),
        _ => e.to_string(),
    };
    Failure::new(
        FailureClass::TlsHandshake,
        format!("TLS handshake with {host} failed: {what}"),
    )
}

fn unix_to_ts(secs: u64) -> Option<Timestamp> {
    Timestamp::from_second(i64::try_from(secs).ok()?).ok()
}

/// Everything a reviewer wants from the presented chain, computed by us as
/// well as by webpki, because webpki reports only its first objection.
fn describe_chain(
    chain: &[CertificateDer<'static>],
    server_name: &ServerName<'_>,
    verify_error: Option<&rustls::Error>,
    warn_days: f64,
    now: Timestamp,
) -> TlsDetail {
    let mut d = TlsDetail {
        chain_length: u32::try_from(chain.len()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    let mut earliest: Option<Timestamp> = None;
    for (i, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            continue;
        };
        let not_after = Timestamp::from_second(cert.validity().not_after.timestamp()).ok();
        if let Some(na) = not_after {
            earliest = Some(earliest.map_or(na, |e| e.min(na)));
        }
        if i == 0 {
            d.not_after = not_after;
            d.subject = Some(cert.subject().to_string());
            d.issuer = Some(cert.issuer().to_string());
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for gn in &san.value.general_names {
                    match gn {
                        x509_parser::extensions::GeneralName::DNSName(n) => {
                            d.sans.push(n.to_string())
                        }
                        x509_parser::extensions::GeneralName::IPAddress(b) => {
                            if let Some(ip) = ip_from_bytes(b) {
                                d.sans.push(ip.to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    d.earliest_not_after = earliest;
    if let Some(e) = earliest {
        let secs = e.as_second() - now.as_second();
        let nanos = i64::from(e.subsec_nanosecond()) - i64::from(now.subsec_nanosecond());
        let days = (secs as f64 + nanos as f64 / 1e9) / 86_400.0;
        d.days_left = Some(days);
        d.expiring_soon = days < warn_days;
    }
    let name_error = matches!(
        verify_error,
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ))
    );
    // webpki checks the name only once the chain verifies.
    d.chain_valid = verify_error.is_none() || name_error;
    d.hostname_valid = match verify_error {
        None => true,
        Some(_) if name_error => false,
        Some(_) => name_matches(&d.sans, server_name),
    };
    d
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// RFC 6125 matching on SANs (no CN fallback, like webpki): exact names
/// case-insensitively, `*.` wildcards for exactly one leftmost label, IPs
/// by value.
fn name_matches(sans: &[String], server_name: &ServerName<'_>) -> bool {
    match server_name {
        ServerName::IpAddress(ip) => {
            let ip = std::net::IpAddr::from(*ip);
            sans.iter()
                .any(|s| s.parse::<std::net::IpAddr>().is_ok_and(|s| s == ip))
        }
        ServerName::DnsName(name) => {
            let host = name.as_ref().trim_end_matches('.').to_ascii_lowercase();
            sans.iter().any(|san| {
                let san = san.trim_end_matches('.').to_ascii_lowercase();
                match san.strip_prefix("*.") {
                    Some(suffix) => host
                        .split_once('.')
                        .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
                    None => san == host,
                }
            })
        }
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let sans = vec![
            "*.acme.example".to_string(),
            "acme.example".to_string(),
            "127.0.0.1".to_string(),
        ];
        let dns = |s: &str| ServerName::try_from(s.to_string()).unwrap();
        assert!(name_matches(&sans, &dns("www.acme.example")));
        assert!(name_matches(&sans, &dns("ACME.example")));
        assert!(!name_matches(&sans, &dns("a.b.acme.example")));
        assert!(!name_matches(&sans, &dns("other.example")));
        assert!(name_matches(&sans, &dns("127.0.0.1")));
        assert!(!name_matches(&sans, &dns("::1")));
    }

    #[test]
    fn names_read_like_openssl() {
        assert_eq!(version_name(rustls::ProtocolVersion::TLSv1_3), "TLSv1.3");
        assert_eq!(
            cipher_name("TLS13_AES_256_GCM_SHA384"),
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            cipher_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }

    #[test]
    fn shared_roots_load() {
        let s = TlsShared::new();
        assert!(!s.roots.is_empty(), "{}", s.roots_source());
        let cfg = s.client_config(&[]).unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(
            Arc::ptr_eq(&cfg, &s.client_config(&[]).unwrap()),
            "one config for the system roots"
        );
    }
}
