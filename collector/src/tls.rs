//! HTTPS on the collector's listener (`[collector] tls_cert_file`,
//! `tls_key_file`, optional `tls_client_ca_file` for mTLS): the rustls server
//! config (ring, passed explicitly).
//!
//! Handshakes run on each connection's own task ([`crate::conn`]), bounded by
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and sends nothing cannot
//! stall everyone else's accepts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSettings;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rustls server config for `settings`: the certificate chain and key,
/// HTTP/1.1 by ALPN, and client certificates required (and verified against
/// `client_ca_file`) when that is set. Errors name the file and key.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs(&settings.cert_file, "collector.tls_cert_file")?;
    let key_pem = std::fs::read(&settings.key_file).with_context(|| {
        format!(
            "collector.tls_key_file: cannot read {}",
            settings.key_file.display()
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow::anyhow!(
            "collector.tls_key_file {}: no usable PEM private key ({e})",
            settings.key_file.display()
        )
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca, "collector.tls_client_ca_file")? {
                roots.add(c).with_context(|| {
                    format!(
                        "collector.tls_client_ca_file {}: unusable certificate",
                        ca.display()
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .with_context(|| format!("collector.tls_client_ca_file {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "collector.tls_cert_file {} and tls_key_file do not make a usable pair",
            settings.cert_file.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("{key}: cannot read {}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            anyhow::anyhow!(
                "{key} {}: not a PEM certificate bundle ({e})",
                path.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!("{key} {}: no PEM certificate found", path.display());
    }
    Ok(certs)
}
