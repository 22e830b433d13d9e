//! The trust store and client configs shared by the probes: the system
//! roots, one config per distinct set of extra roots, and the verifier that
//! records the presented chain and webpki's verdict instead of enforcing it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use slaprobe_wire::{Failure, FailureClass};

use super::super::revocation;
use super::chain::{ChainFacts, chain_facts};

/// Where the system trust store is looked for when `SSL_CERT_FILE` is unset.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Trust material shared by every TLS-using probe, built once per process.
#[derive(Debug)]
pub struct TlsShared {
    /// Always ring ([`probe_provider`]), passed explicitly rather than
    /// relying on a process default (NOTES-APIS §2).
    provider: Arc<CryptoProvider>,
    /// The system roots; checks with a `ca_file` get a copy plus their roots.
    pub(super) roots: Arc<RootCertStore>,
    /// Where the roots came from, for logs.
    roots_source: String,
    /// The client config for checks without extra roots, shared by every probe.
    system_config: Arc<ClientConfig>,
    /// One client config per distinct set of extra roots (`ca_file`/`ca_pem`),
    /// so a probe neither clones the root store nor rebuilds a verifier.
    extra_configs: Mutex<HashMap<Vec<CertificateDer<'static>>, Arc<ClientConfig>>>,
    /// Verified OCSP answers and CRLs, until their nextUpdate.
    pub(super) revocation: revocation::Cache,
    /// What each distinct presented chain says, by SHA-256 of the chain.
    chain_facts: Mutex<HashMap<[u8; 32], Arc<ChainFacts>>>,
}

/// Distinct chains whose parsed facts are kept; past this it starts over.
const MAX_CHAIN_FACTS: usize = 4096;

/// Distinct extra-root sets kept in [`TlsShared`]; past this the cache starts
/// over (only checks replaced again and again could get there).
const MAX_EXTRA_CONFIGS: usize = 256;

tokio::task_local! {
    /// Where the [`RecordingVerifier`] of a shared config records the chain:
    /// set by [`handshake`](super::handshake) around the handshake it runs, so concurrent
    /// probes sharing one config each see their own chain.
    pub(super) static CAPTURE: Arc<Mutex<Captured>>;
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
        let provider = Arc::new(probe_provider());
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
            chain_facts: Mutex::new(HashMap::new()),
        })
    }

    /// The chain's facts, parsed the first time this chain is seen: x509
    /// parsing was 3 % of the agent's CPU per https probe, and a site
    /// presents the same chain for weeks.
    pub(super) fn chain_facts(&self, chain: &[CertificateDer<'_>]) -> Arc<ChainFacts> {
        let key = chain_digest(None, chain);
        let lock = || self.chain_facts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = lock().get(&key) {
            return f.clone();
        }
        let facts = Arc::new(chain_facts(chain));
        let mut cache = lock();
        if cache.len() >= MAX_CHAIN_FACTS {
            cache.clear();
        }
        cache.insert(key, facts.clone());
        facts
    }

    /// Where the system roots came from and how many there are.
    pub fn roots_source(&self) -> &str {
        &self.roots_source
    }

    /// The client config for a connection trusting the system roots plus
    /// `extra_roots`: resumption disabled (a resumed session presents no
    /// certificate), ALPN http/1.1 only, and a verifier that records the chain
    /// into the slot [`handshake`](super::handshake) sets for the running task. Built once per
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

/// ring with the cipher suites in the order Chrome and Go offer them:
/// AES-128-GCM first in each TLS version. rustls' default puts AES-256-GCM
/// (with SHA-384) first, and an OpenSSL server follows the client's order by
/// default, so every handshake ran its key schedule on SHA-384, which has no
/// CPU instruction (3.5 % of the agent's CPU per https probe in a profile);
/// the probe should also negotiate what a visitor's browser negotiates.
pub fn probe_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        let tls13 = matches!(s, rustls::SupportedCipherSuite::Tls13(_));
        let rank = match s.suite() {
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
            | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
            _ => 2,
        };
        // Stable sort: ECDSA before RSA within a rank, as ring lists them.
        (!tls13, rank)
    });
    provider
}

/// A client config whose verifier wraps `inner` and records into [`CAPTURE`].
fn build_config(
    provider: &Arc<CryptoProvider>,
    inner: Arc<WebPkiServerVerifier>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let verifier = Arc::new(RecordingVerifier {
        inner,
        verified: Mutex::new(VerifiedChains::default()),
    });
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
    /// Chains webpki has accepted, so a probe of an unchanged site does not
    /// build and check the same path again (see [`VerifiedChains`]).
    verified: Mutex<VerifiedChains>,
}

/// Chains (with the name asked for) that webpki accepted under this
/// verifier's roots, by digest, each with the span of time in which every
/// certificate of the chain is valid. Path validation is a pure function of
/// the chain, the name, the roots and the time, so within that span the
/// verdict is the same; a browser keeps such a cache too. What a probe still
/// checks on every handshake: the server's signature over the handshake
/// (possession of the key), the chain's details and revocation. Saves the
/// path building and one signature check per certificate of the path (a
/// P-384 check for a chain up to ISRG Root X2) on every probe. Only
/// accepted chains are kept: a failing chain is checked afresh each time.
#[derive(Debug, Default)]
struct VerifiedChains {
    /// SHA-256 over name and chain -> (not before, not after), Unix seconds.
    spans: HashMap<[u8; 32], (i64, i64)>,
}

/// SHA-256 over the name asked for (when given) and each certificate of
/// the chain, every part length-prefixed so no two inputs run together.
fn chain_digest<'a, 'b: 'a>(
    name: Option<&str>,
    chain: impl IntoIterator<Item = &'a CertificateDer<'b>>,
) -> [u8; 32] {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    if let Some(name) = name {
        h.update(&(name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
    }
    for der in chain {
        h.update(&(der.len() as u64).to_be_bytes());
        h.update(der.as_ref());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(h.finish().as_ref());
    key
}

/// Distinct accepted chains kept per verifier; past this it starts over.
const MAX_VERIFIED_CHAINS: usize = 4096;

impl VerifiedChains {
    fn key(
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
    ) -> [u8; 32] {
        let chain = std::iter::once(end_entity).chain(intermediates);
        chain_digest(Some(&server_name.to_str()), chain)
    }

    fn holds(&self, key: &[u8; 32], now: UnixTime) -> bool {
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        self.spans
            .get(key)
            .is_some_and(|&(from, until)| from <= now && now < until)
    }

    /// Keeps an accepted chain; a certificate that does not parse (webpki
    /// accepted it, so it should) is simply not cached.
    fn insert(
        &mut self,
        key: [u8; 32],
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) {
        let mut span = (i64::MIN, i64::MAX);
        for der in std::iter::once(end_entity).chain(intermediates) {
            let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
                return;
            };
            span.0 = span.0.max(cert.validity().not_before.timestamp());
            span.1 = span.1.min(cert.validity().not_after.timestamp());
        }
        if self.spans.len() >= MAX_VERIFIED_CHAINS {
            self.spans.clear();
        }
        self.spans.insert(key, span);
    }
}

impl RecordingVerifier {
    /// webpki's verdict, or the remembered acceptance of the same chain.
    fn verdict(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let key = VerifiedChains::key(end_entity, intermediates, server_name);
        let lock = || self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if lock().holds(&key, now) {
            return Ok(ServerCertVerified::assertion());
        }
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if verdict.is_ok() {
            lock().insert(key, end_entity, intermediates);
        }
        verdict
    }
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
        let mut verdict =
            Some(self.verdict(end_entity, intermediates, server_name, ocsp_response, now));
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn aes_128_gcm_is_offered_first_in_each_version() {
        let suites: Vec<_> = probe_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(suites[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert_eq!(suites[1], rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
        let first12 = suites
            .iter()
            .position(|s| !format!("{s:?}").starts_with("TLS13"));
        assert_eq!(
            suites[first12.unwrap()],
            rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        );
        assert_eq!(
            suites.len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
    }

    #[test]
    fn a_chain_is_parsed_once_and_another_chain_gets_its_own_facts() {
        let ca = slaprobe_tests::certs::TestCa::new("slaprobe facts CA");
        let (a, b) = (ca.localhost(), ca.wrong_host());
        let s = TlsShared::new();
        let fa = s.chain_facts(&a.chain);
        assert!(Arc::ptr_eq(&fa, &s.chain_facts(&a.chain)), "parsed once");
        let fb = s.chain_facts(&b.chain);
        assert!(!Arc::ptr_eq(&fa, &fb));
        let name = ServerName::try_from("localhost").unwrap();
        let now = jiff::Timestamp::now();
        let da = super::super::chain::describe_chain(&fa, &name, None, 30.0, now);
        let db = super::super::chain::describe_chain(&fb, &name, None, 30.0, now);
        assert_eq!(da.subject.as_deref(), Some(a.subject.as_str()));
        assert_eq!(db.subject.as_deref(), Some(b.subject.as_str()));
        assert_eq!(da.sans, a.sans);
        assert_eq!(db.sans, b.sans);
        assert_ne!(da.sans, db.sans);
        assert_eq!(da.not_after.map(|t| t.as_second()), Some(a.not_after));
    }

    /// A verifier trusting `ca` only, as a check with `ca_pem` gets.
    fn verifier_for(ca: &slaprobe_tests::certs::TestCa) -> RecordingVerifier {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.clone()).unwrap();
        let inner = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(probe_provider()),
        )
        .build()
        .unwrap();
        RecordingVerifier {
            inner,
            verified: Mutex::new(VerifiedChains::default()),
        }
    }

    fn at(secs: i64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs as u64))
    }

    #[test]
    fn a_remembered_chain_is_accepted_only_for_its_name_and_within_its_dates() {
        let ca = slaprobe_tests::certs::TestCa::new("slaprobe verify-cache CA");
        let leaf = ca.localhost();
        let v = verifier_for(&ca);
        let name = ServerName::try_from("localhost").unwrap();
        let other = ServerName::try_from("other.example").unwrap();
        let (ee, rest) = (&leaf.chain[0], &leaf.chain[1..]);
        let inside = leaf.not_before + 60;
        assert!(
            v.verify_server_cert(ee, rest, &name, &[], at(inside))
                .is_ok()
        );
        assert_eq!(
            v.verified.lock().unwrap().spans.len(),
            1,
            "accepted and kept"
        );
        assert!(
            v.verify_server_cert(ee, rest, &name, &[], at(inside + 1))
                .is_ok()
        );
        // The same chain for a name it does not carry is checked afresh.
        assert!(
            v.verify_server_cert(ee, rest, &other, &[], at(inside))
                .is_err()
        );
        // After the leaf's notAfter the remembered acceptance no longer holds.
        let after = v.verify_server_cert(ee, rest, &name, &[], at(leaf.not_after + 1));
        assert!(
            matches!(
                after,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                        | rustls::CertificateError::ExpiredContext { .. }
                ))
            ),
            "{after:?}"
        );
        // Before its notBefore neither.
        assert!(
            v.verify_server_cert(ee, rest, &name, &[], at(leaf.not_before - 10))
                .is_err()
        );
        // Another CA's verifier never learns this chain.
        let stranger = verifier_for(&slaprobe_tests::certs::TestCa::new("stranger CA"));
        assert!(
            stranger
                .verify_server_cert(ee, rest, &name, &[], at(inside))
                .is_err()
        );
    }
}
