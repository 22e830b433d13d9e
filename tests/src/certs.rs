//! Certificates made at test time with rcgen (ring): a test CA, an
//! intermediate, and leaves that are valid, expired, not yet valid, for the
//! wrong host, self-signed or about to expire; plus PEM writers for `ca_file`
//! and rustls server configs for the test servers.
//!
//! Validity dates are whole seconds (X.509 has no fractions), and every
//! leaf records the facts a probe should report (`not_after`, subject,
//! issuer, SANs), so tests compare against what the certificate really is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
    SigningKey,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// The names every "good" test leaf is valid for.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Now, truncated to whole seconds as a certificate stores it.
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// A certificate authority that signs test leaves (a root, or an
/// intermediate under another `TestCa`).
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// This CA's certificate.
    pub cert: CertificateDer<'static>,
    /// This CA's certificate in PEM, for `ca_pem` / `ca_file`.
    pub pem: String,
    /// Its subject as probes print it, e.g. "CN=slaprobe Test CA".
    pub subject: String,
    /// Certificates between this CA and the root, nearest first (empty for a root).
    pub chain_above: Vec<CertificateDer<'static>>,
    /// Expiry of each certificate in `chain_above` (unix seconds), same order.
    chain_not_after: Vec<i64>,
    /// Expiry of this CA's certificate (unix seconds).
    pub not_after: i64,
    /// This CA's private key in PEM (PKCS#8), for `openssl ocsp -rkey`.
    pub key_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// How to make a leaf.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// DNS names and IP literals for the SAN extension.
    pub names: Vec<String>,
    /// Common name of the subject.
    pub common_name: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The OCSP responder URL to put in the AIA extension.
    pub ocsp_url: Option<String>,
    /// The URL to put in the CRL distribution points extension.
    pub crl_url: Option<String>,
}

impl LeafSpec {
    /// Valid from a day ago for 90 days, for `names` (CN = the first name).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let names: Vec<String> = names.iter().map(|s| s.as_ref().to_string()).collect();
        let n = now();
        LeafSpec {
            common_name: names.first().cloned().unwrap_or_else(|| "test leaf".into()),
            names,
            not_before: n - time::Duration::days(1),
            not_after: n + time::Duration::days(90),
            ocsp_url: None,
            crl_url: None,
        }
    }

    /// Names `url` as the OCSP responder (AIA).
    pub fn ocsp(mut self, url: &str) -> Self {
        self.ocsp_url = Some(url.into());
        self
    }

    /// Names `url` as the CRL distribution point.
    pub fn crl(mut self, url: &str) -> Self {
        self.crl_url = Some(url.into());
        self
    }

    /// Valid from now - `before` to now + `after`.
    pub fn valid_for(mut self, before: time::Duration, after: time::Duration) -> Self {
        let n = now();
        self.not_before = n - before;
        self.not_after = n + after;
        self
    }
}

/// A server certificate with its key and the chain to send.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// Leaf first, then intermediates (never the root), as a server sends it.
    pub chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    /// "CN=…" of the leaf.
    pub subject: String,
    /// "CN=…" of whoever signed the leaf.
    pub issuer: String,
    /// SANs as probes report them (names and IPs as text).
    pub sans: Vec<String>,
    /// Leaf validity (unix seconds).
    pub not_before: i64,
    pub not_after: i64,
    /// Earliest expiry across `chain` (unix seconds).
    pub earliest_not_after: i64,
    /// The leaf in PEM (trusting it directly is one way to test `ca_file`).
    pub leaf_pem: String,
    /// The private key in PEM (PKCS#8), for `tls_key_file`.
    pub key_pem: String,
    /// The serial number's bytes (big-endian, positive), for OCSP and CRLs.
    pub serial: Vec<u8>,
}

/// A fresh serial, unique in this process: positive, 9 bytes.
fn next_serial() -> Vec<u8> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let t = OffsetDateTime::now_utc().unix_timestamp() as u32;
    let mut v = vec![0x11];
    v.extend_from_slice(&t.to_be_bytes());
    v.extend_from_slice(&n.to_be_bytes());
    v
}

/// The AIA extension content naming one OCSP responder.
fn aia_ocsp(url: &str) -> Vec<u8> {
    use crate::ocsp::der;
    // id-ad-ocsp 1.3.6.1.5.5.7.48.1
    let mut ad = der::item(der::OID, &[0x2b, 6, 1, 5, 5, 7, 0x30, 1]);
    ad.extend(der::item(0x86, url.as_bytes())); // [6] IMPLICIT IA5String
    der::item(der::SEQUENCE, &der::item(der::SEQUENCE, &ad))
}

impl TestCa {
    /// A new root CA valid from a day ago for ten years.
    pub fn new(common_name: &str) -> TestCa {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now() - time::Duration::days(1);
        params.not_after = now() + time::Duration::days(3650);
        let not_after = params.not_after.unix_timestamp();
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            pem: cert.pem(),
            subject: format!("CN={common_name}"),
            issuer: Issuer::new(params, key),
            chain_above: Vec::new(),
            chain_not_after: Vec::new(),
            not_after,
        }
    }

    /// An intermediate CA signed by this one, expiring after `days`.
    pub fn intermediate(&self, common_name: &str, days: i64) -> TestCa {
        let key = KeyPair::generate().expect("generate intermediate key");
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now() - time::Duration::days(1);
        params.not_after = now() + time::Duration::days(days);
        let not_after = params.not_after.unix_timestamp();
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign intermediate");
        let mut chain_above = vec![cert.der().clone()];
        chain_above.extend(self.chain_above.iter().cloned());
        let mut chain_not_after = vec![not_after];
        chain_not_after.extend(self.chain_not_after.iter().copied());
        TestCa {
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            pem: cert.pem(),
            subject: format!("CN={common_name}"),
            issuer: Issuer::new(params, key),
            chain_above,
            chain_not_after,
            not_after,
        }
    }

    /// A leaf signed by this CA.
    pub fn leaf(&self, spec: &LeafSpec) -> ServerCert {
        let key = KeyPair::generate().expect("generate leaf key");
        let mut params = CertificateParams::new(spec.names.clone()).expect("valid SANs");
        params.distinguished_name = dn(&spec.common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let serial = next_serial();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        if let Some(url) = &spec.ocsp_url {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    aia_ocsp(url),
                ));
        }
        if let Some(url) = &spec.crl_url {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain_above.iter().cloned());
        let not_after = spec.not_after.unix_timestamp();
        let earliest_not_after = self
            .chain_not_after
            .iter()
            .copied()
            .fold(not_after, i64::min);
        ServerCert {
            chain,
            key_der: key.serialize_der(),
            subject: format!("CN={}", spec.common_name),
            issuer: self.subject.clone(),
            sans: spec.names.clone(),
            not_before: spec.not_before.unix_timestamp(),
            not_after,
            earliest_not_after,
            leaf_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        }
    }

    /// A delegated OCSP responder certificate signed by this CA (EKU
    /// id-kp-OCSPSigning), or with `ocsp_signing = false` one without that
    /// EKU (which must not be believed).
    pub fn ocsp_responder(&self, ocsp_signing: bool) -> ServerCert {
        let key = KeyPair::generate().expect("generate responder key");
        let spec = LeafSpec::new(&["ocsp.responder.test"]);
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
        params.distinguished_name = dn("slaprobe Test OCSP responder");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if ocsp_signing {
            ExtendedKeyUsagePurpose::OcspSigning
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let serial = next_serial();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign responder cert");
        ServerCert {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
            subject: "CN=slaprobe Test OCSP responder".into(),
            issuer: self.subject.clone(),
            sans: Vec::new(),
            not_before: spec.not_before.unix_timestamp(),
            not_after: spec.not_after.unix_timestamp(),
            earliest_not_after: spec.not_after.unix_timestamp(),
            leaf_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        }
    }

    /// Signs `msg` with this CA's key (ECDSA P-256, SHA-256, ASN.1 form).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.issuer.key().sign(msg).expect("sign")
    }

    /// This CA's subjectPublicKey bits (what an OCSP CertID hashes).
    pub fn public_key_bits(&self) -> Vec<u8> {
        rcgen::PublicKeyData::der_bytes(self.issuer.key()).to_vec()
    }

    /// A CRL signed by this CA, valid from an hour ago until
    /// `next_update_in` seconds from now (negative: already stale), listing
    /// `revoked` with RFC 5280 reason codes (1 = keyCompromise, ...).
    pub fn crl(&self, revoked: &[(&ServerCert, Option<u8>)], next_update_in: i64) -> Vec<u8> {
        use rcgen::RevocationReason as R;
        let n = now();
        let next = n + time::Duration::seconds(next_update_in);
        let this_update = next.min(n) - time::Duration::hours(1);
        let reason = |c: u8| match c {
            1 => R::KeyCompromise,
            2 => R::CaCompromise,
            3 => R::AffiliationChanged,
            4 => R::Superseded,
            5 => R::CessationOfOperation,
            6 => R::CertificateHold,
            9 => R::PrivilegeWithdrawn,
            10 => R::AaCompromise,
            _ => R::Unspecified,
        };
        let params = rcgen::CertificateRevocationListParams {
            this_update,
            next_update: next,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|(c, r)| rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&c.serial),
                    revocation_time: this_update,
                    reason_code: r.map(reason),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .expect("sign CRL")
            .der()
            .to_vec()
    }

    /// A client certificate (EKU clientAuth) for mTLS, CN `name`.
    pub fn client(&self, name: &str) -> ServerCert {
        let key = KeyPair::generate().expect("generate client key");
        let spec = LeafSpec::new(&[name]);
        let mut params = CertificateParams::new(spec.names.clone()).expect("valid SANs");
        params.distinguished_name = dn(name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign client cert");
        ServerCert {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
            subject: format!("CN={name}"),
            issuer: self.subject.clone(),
            sans: spec.names.clone(),
            not_before: spec.not_before.unix_timestamp(),
            not_after: spec.not_after.unix_timestamp(),
            earliest_not_after: spec.not_after.unix_timestamp(),
            leaf_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: Vec::new(),
        }
    }

    /// A leaf for localhost, 127.0.0.1 and ::1, valid for 90 days.
    pub fn localhost(&self) -> ServerCert {
        self.leaf(&LeafSpec::new(&LOCAL_NAMES))
    }

    /// A localhost leaf that expired `days_ago` days ago (issued 30 days before).
    pub fn expired(&self, days_ago: i64) -> ServerCert {
        let spec = LeafSpec::new(&LOCAL_NAMES).valid_for(
            time::Duration::days(days_ago + 30),
            -time::Duration::days(days_ago),
        );
        self.leaf(&spec)
    }

    /// A localhost leaf that becomes valid in `days` days.
    pub fn not_yet_valid(&self, days: i64) -> ServerCert {
        let spec = LeafSpec::new(&LOCAL_NAMES)
            .valid_for(-time::Duration::days(days), time::Duration::days(days + 90));
        self.leaf(&spec)
    }

    /// A localhost leaf expiring in `days` days.
    pub fn expiring_in(&self, days: i64) -> ServerCert {
        let spec = LeafSpec::new(&LOCAL_NAMES)
            .valid_for(time::Duration::days(30), time::Duration::days(days));
        self.leaf(&spec)
    }

    /// A localhost leaf with `n` extra DNS SANs (10,000 make ~200 KB).
    pub fn many_sans(&self, n: usize) -> ServerCert {
        let mut names: Vec<String> = LOCAL_NAMES.iter().map(|s| s.to_string()).collect();
        names.extend((0..n).map(|i| format!("host-{i:05}.many-sans.example")));
        self.leaf(&LeafSpec::new(&names))
    }

    /// A valid leaf for other names only (not localhost or its addresses).
    pub fn wrong_host(&self) -> ServerCert {
        self.leaf(&LeafSpec::new(&[
            "www.elsewhere.example",
            "elsewhere.example",
        ]))
    }

    /// Writes this CA's PEM to `dir/name` and returns the path (for `ca_file`).
    pub fn write_pem(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).expect("write CA PEM");
        path
    }
}

/// A self-signed localhost leaf (no CA anyone trusts).
pub fn self_signed() -> ServerCert {
    let key = KeyPair::generate().expect("generate key");
    let spec = LeafSpec::new(&LOCAL_NAMES);
    let mut params = CertificateParams::new(spec.names.clone()).expect("valid SANs");
    params.distinguished_name = dn(&spec.common_name);
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    let cert = params.self_signed(&key).expect("self-sign");
    ServerCert {
        chain: vec![cert.der().clone()],
        key_der: key.serialize_der(),
        subject: format!("CN={}", spec.common_name),
        issuer: format!("CN={}", spec.common_name),
        sans: spec.names.clone(),
        not_before: spec.not_before.unix_timestamp(),
        not_after: spec.not_after.unix_timestamp(),
        earliest_not_after: spec.not_after.unix_timestamp(),
        leaf_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial: Vec::new(),
    }
}

impl ServerCert {
    /// Writes the leaf and its key as `dir/<name>.pem` and `dir/<name>.key`
    /// (for `tls_cert_file` / `tls_key_file`; a leaf signed by a root needs
    /// no intermediates). Returns both paths.
    pub fn write_pem_files(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.leaf_pem).expect("write cert PEM");
        std::fs::write(&key, &self.key_pem).expect("write key PEM");
        (cert, key)
    }

    /// The private key, for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// A rustls server config presenting this chain (TLS 1.2 and 1.3,
    /// ALPN http/1.1, ring provider passed explicitly).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config_versions(rustls::DEFAULT_VERSIONS)
    }

    /// Like [`ServerCert::server_config`], stapling `ocsp` (a DER OCSP
    /// response) to every handshake.
    pub fn server_config_stapling(&self, ocsp: Vec<u8>) -> Arc<rustls::ServerConfig> {
        self.server_config_stapling_versions(ocsp, rustls::DEFAULT_VERSIONS)
    }

    /// Like [`ServerCert::server_config_stapling`], limited to `versions`.
    pub fn server_config_stapling_versions(
        &self,
        ocsp: Vec<u8>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert_with_ocsp(self.chain.clone(), self.key(), ocsp)
            .expect("certificate and key match");
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    /// Like [`ServerCert::server_config`], limited to `versions`.
    pub fn server_config_versions(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key())
            .expect("certificate and key match");
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}
