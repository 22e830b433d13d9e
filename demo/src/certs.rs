//! The demo CA, made with rcgen at every start, and the vendors' server
//! certificates it signs: HostCo's for 90 days, the CDN's expiring in 10
//! days (so the TLS check warns). Agents trust the CA through `ca_pem`.

use std::sync::Arc;

use anyhow::Context as _;
use jiff::{Timestamp, ToSpan as _};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA's subject, as probes report a leaf's issuer.
pub const CA_NAME: &str = "slaprobe demo CA";

/// A server certificate and what the history needs to know about it.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    pub subject: String,
    pub not_after: Timestamp,
}

impl Leaf {
    /// A rustls server config presenting this leaf (ring, HTTP/1.1).
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .context("building the demo TLS server config")?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// The demo CA and its leaves.
pub struct DemoPki {
    /// The CA certificate in PEM (what checks carry as `ca_pem`).
    pub ca_pem: String,
    pub shop: Leaf,
    pub cdn: Leaf,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The instant `days` whole days from `now`'s UTC midnight, as rcgen wants it
/// (X.509 validity has no fractions) and as a probe will report it.
fn day(now: Timestamp, days: i64) -> anyhow::Result<(time::OffsetDateTime, Timestamp)> {
    let d = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(days.days())?;
    let ts = d.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
    Ok((
        time::OffsetDateTime::from_unix_timestamp(ts.as_second())?,
        ts,
    ))
}

impl DemoPki {
    /// A fresh CA and leaves for the demo hosts.
    pub fn new(now: Timestamp) -> anyhow::Result<DemoPki> {
        let ca_key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(CA_NAME);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = day(now, -40)?.0;
        params.not_after = day(now, 3650)?.0;
        let ca_cert = params.self_signed(&ca_key)?;
        let issuer = Issuer::new(params, ca_key);
        let leaf = |host: &str, days: i64| -> anyhow::Result<Leaf> {
            let key = KeyPair::generate()?;
            let mut p = CertificateParams::new(vec![host.to_string()])?;
            p.distinguished_name = dn(host);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p.use_authority_key_identifier_extension = true;
            // Valid since before the back-filled history starts.
            p.not_before = day(now, -40)?.0;
            let (not_after, not_after_ts) = day(now, days)?;
            p.not_after = not_after;
            let cert = p.signed_by(&key, &issuer)?;
            Ok(Leaf {
                chain: vec![cert.der().clone()],
                key_der: key.serialize_der(),
                subject: format!("CN={host}"),
                not_after: not_after_ts,
            })
        };
        Ok(DemoPki {
            ca_pem: ca_cert.pem(),
            shop: leaf(crate::world::SHOP_HOST, 90)?,
            // Midnight UTC 11 days ahead: between 10 and 11 days left.
            cdn: leaf(crate::world::CDN_HOST, 11)?,
        })
    }
}
