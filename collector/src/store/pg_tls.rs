//! TLS to PostgreSQL through rustls (ring), with libpq's `sslmode` and
//! `sslrootcert` URL parameters.
//!
//! tokio-postgres knows `sslmode=disable|prefer|require` only and refuses
//! `verify-ca`, `verify-full` and `sslrootcert`, so [`parse`] takes those two
//! parameters out of the URL, hands the rest to [`postgres::Config`], and
//! builds the connector (a small [`MakeTlsConnect`] over tokio-rustls, so the
//! collector keeps one TLS stack):
//!
//! | `sslmode` | TLS | certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | not checked (as libpq) |
//! | `require` | always | not checked; checked like `verify-ca` when `sslrootcert` is given (as libpq) |
//! | `verify-ca` | always | chain to `sslrootcert` (or the system roots) |
//! | `verify-full` | always | chain and host name (the URL's host, IP or DNS name) |
//!
//! `sslrootcert` is a PEM file of trusted CAs, or `system` for the system's
//! bundle. Channel binding is not offered (`channel_binding=prefer`, the
//! default, then uses plain SCRAM).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::postgres::Config;
use ::postgres::config::SslMode;
use ::postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL split into what tokio-postgres reads and what we do.
#[derive(Debug)]
pub struct Target {
    pub config: Config,
    pub mode: TlsMode,
    /// `sslrootcert`: a PEM file, or `None` with `system_roots` for the system's bundle.
    pub root_cert: Option<PathBuf>,
    pub system_roots: bool,
}

/// Parses `url`. Errors never contain the URL (it may hold a password).
pub fn parse(url: &str) -> Result<Target, String> {
    let url = url.trim();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut mode = TlsMode::Prefer;
    let mut root: Option<String> = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => {
                mode = match v {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                        ));
                    }
                }
            }
            "sslrootcert" => root = Some(percent_decode(v)?),
            _ => rest.push(pair),
        }
    }
    let stripped = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config = stripped.parse::<Config>().map_err(|_| {
        "is not a valid PostgreSQL URL (postgres://user[:password]@host[:port]/database)"
            .to_string()
    })?;
    config.ssl_mode(match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    if root.is_some() && mode == TlsMode::Disable {
        return Err("sslrootcert is set but sslmode=disable".into());
    }
    let (root_cert, system_roots) = match root.as_deref() {
        Some("system") => (None, true),
        Some(p) => (Some(PathBuf::from(p)), false),
        // verify-* without sslrootcert: the system's roots.
        None => (
            None,
            matches!(mode, TlsMode::VerifyCa | TlsMode::VerifyFull),
        ),
    };
    Ok(Target {
        config,
        mode,
        root_cert,
        system_roots,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or("sslrootcert: bad %-escape in the path")?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| "sslrootcert: bad %-escape in the path")?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "sslrootcert: the path is not UTF-8".to_string())
}

/// The connector for `target`, or `None` for `sslmode=disable`. Reads
/// `sslrootcert`; errors name the parameter and the file, never the URL.
pub fn connector(target: &Target) -> Result<Option<RustlsConnect>, String> {
    if target.mode == TlsMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = if target.system_roots {
        slaprobe_agent::probe::tls::system_roots().0
    } else {
        rustls::RootCertStore::empty()
    };
    if let Some(path) = &target.root_cert {
        let pem = std::fs::read(path)
            .map_err(|e| format!("sslrootcert: cannot read {}: {e}", path.display()))?;
        let mut n = 0;
        for c in CertificateDer::pem_slice_iter(&pem) {
            let c = c.map_err(|e| {
                format!(
                    "sslrootcert {}: not a PEM certificate bundle ({e})",
                    path.display()
                )
            })?;
            roots.add(c).map_err(|e| {
                format!("sslrootcert {}: unusable certificate ({e})", path.display())
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(format!(
                "sslrootcert {}: no PEM certificate found",
                path.display()
            ));
        }
    }
    let check = match target.mode {
        TlsMode::VerifyFull => Check::Full,
        TlsMode::VerifyCa => Check::ChainOnly,
        TlsMode::Require if target.root_cert.is_some() => Check::ChainOnly,
        _ => Check::Nothing,
    };
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build();
    let verifier: Arc<dyn ServerCertVerifier> = match (check, webpki) {
        (Check::Full, Ok(v)) => v,
        (Check::ChainOnly, Ok(v)) => Arc::new(ChainOnly(v)),
        (Check::Nothing, _) => Arc::new(Unchecked(provider.clone())),
        (_, Err(e)) => {
            return Err(format!(
                "sslmode={}: no usable trusted certificate ({e}); set sslrootcert",
                if check == Check::Full {
                    "verify-full"
                } else {
                    "verify-ca"
                }
            ));
        }
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // PostgreSQL 17 checks the ALPN a client offers; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(RustlsConnect {
        config: Arc::new(config),
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    ChainOnly,
    Full,
}

/// `verify-ca`: the chain must verify; the host name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // webpki checks the name last, after the chain verified.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`: encrypted, certificate not
/// checked (libpq's behaviour). The handshake signature still is.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// tokio-postgres' [`MakeTlsConnect`] over tokio-rustls.
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnectOne;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnectOne, Self::Error> {
        Ok(RustlsConnectOne {
            config: self.config.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

/// One connection's handshake.
pub struct RustlsConnectOne {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnectOne
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(tls))
        })
    }
}

/// A TLS stream to the database.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url() {
        let t = parse("postgres://u:pw@db:5433/x?sslmode=verify-full&sslrootcert=/etc/ca%20x.pem&connect_timeout=3").unwrap();
        assert_eq!(t.mode, TlsMode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/etc/ca x.pem")));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        let t = parse("postgres://u@db/x").unwrap();
        assert_eq!(t.mode, TlsMode::Prefer);
        assert!(!t.system_roots);
        let t = parse("postgres://u@db/x?sslmode=verify-ca").unwrap();
        assert!(t.system_roots && t.root_cert.is_none());
        let t = parse("postgres://u@db/x?sslmode=require&sslrootcert=system").unwrap();
        assert!(t.system_roots);
        for bad in [
            "postgres://u:secret@db/x?sslmode=sometimes",
            "postgres://u:secret@db/x?sslmode=disable&sslrootcert=/ca.pem",
            "postgres://u:secret@db/x?sslrootcert=%zz",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
