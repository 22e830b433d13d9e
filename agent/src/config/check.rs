//! The validated check types the scheduler and the probes read.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::Serialize;
use slaprobe_wire::CheckKind;
use url::Url;

use super::anchor::TrustAnchor;

/// A validated check, ready to probe.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    /// Bounds the whole probe, every phase included.
    pub timeout: Duration,
    /// What is probed, for humans and the `_info` metric.
    pub target: String,
    /// Collector side: the locations that run it (None = all).
    pub locations: Option<Vec<String>>,
    pub probe: ProbeSpec,
    /// A canary (DESIGN.md §6 rule 1a): it says whether the location itself
    /// is impaired. (The `CheckSpec` a check was built from is not kept: at
    /// 10,000 checks it doubled what the agent holds.)
    pub canary: bool,
}

/// What to probe, by kind.
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    Http(HttpSpec),
    Dns(DnsSpec),
    Tls(TlsSpec),
    Page(HttpSpec),
    Domain(DomainSpec),
    Browser(BrowserSpec),
}

/// A domain registration lookup (RDAP).
#[derive(Debug, Clone)]
pub struct DomainSpec {
    /// Lowercase ASCII (IDNA applied), no trailing dot.
    pub domain: String,
    /// Expiring within this many days is flagged (`domain.expiring_soon`), not failed.
    pub warn_days: f64,
    /// The RDAP base URL to ask instead of the bootstrap's (ends with `/`).
    pub rdap_url: Option<Url>,
}

/// `consistency = true`: what the nameservers must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consistency {
    /// How far an SOA serial may trail the highest one (serial arithmetic).
    pub serial_lag: u32,
}

/// A page load in headless Chromium.
#[derive(Debug, Clone)]
pub struct BrowserSpec {
    pub url: Url,
    /// None: any 2xx/3xx document status after redirects.
    pub expect_status: Option<Vec<u16>>,
    /// A CSS selector that must match once the page has loaded.
    pub selector_present: Option<String>,
    /// An uncaught JavaScript error fails the probe.
    pub fail_on_js_error: bool,
}

/// An HTTP (or page document) request.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub url: Url,
    /// None: any 2xx/3xx after redirects.
    pub expect_status: Option<Vec<u16>>,
    pub body_contains: Option<String>,
    pub max_redirects: u32,
    pub max_body_bytes: u64,
    /// page only: most connections to one origin at once.
    pub max_connections_per_origin: usize,
    /// page only: most connections at once for the whole page.
    pub max_connections: usize,
    pub net: NetOptions,
}

/// How to reach a host: address overrides, family, trust.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Like curl --resolve: host name → address, skipping DNS. Shared by
    /// every check with the same map ([`super::Interner`]).
    pub resolve: Arc<BTreeMap<String, IpAddr>>,
    pub ip_version: Option<IpVersion>,
    /// Extra trusted roots (from `ca_file` / `ca_pem`), on top of the system
    /// roots; parsed once per distinct file or PEM and shared by every check
    /// that names it ([`super::Interner`]).
    pub extra_roots: Arc<Vec<CertificateDer<'static>>>,
    /// How the leaf's revocation is checked (`revocation`, `revocation_required`).
    pub revocation: RevocationPolicy,
}

/// `revocation`: how far the probe goes to learn whether the leaf was revoked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum RevocationMode {
    /// Never looked at.
    Off,
    /// Only a stapled OCSP response is used: no extra network traffic.
    #[default]
    Staple,
    /// The staple, else the OCSP responder named in the certificate (AIA).
    Ocsp,
    /// As `Ocsp`, then the CRL distribution point when OCSP gives no answer.
    OcspCrl,
}

impl RevocationMode {
    /// Parses a config value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "off" => Self::Off,
            "staple" => Self::Staple,
            "ocsp" => Self::Ocsp,
            "ocsp+crl" => Self::OcspCrl,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Staple => "staple",
            Self::Ocsp => "ocsp",
            Self::OcspCrl => "ocsp+crl",
        }
    }
}

/// A check's revocation settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationPolicy {
    pub mode: RevocationMode,
    /// An unknown (or unestablished) status fails the probe.
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IpVersion {
    V4,
    V6,
}

/// A DNS query sent to each nameserver.
#[derive(Debug, Clone)]
pub struct DnsSpec {
    pub query: String,
    pub record_type: RecordType,
    /// Empty: the system resolver's nameservers (from /etc/resolv.conf).
    pub nameservers: Vec<SocketAddr>,
    /// When set, the exact answer set each nameserver must return.
    pub expect_answers: Option<BTreeSet<String>>,
    /// `dnssec = true`: the anchor each answer's chain of trust must reach.
    pub dnssec: Option<Arc<TrustAnchor>>,
    /// `consistency = true` (NS and SOA checks): compare the servers.
    pub consistency: Option<Consistency>,
}

/// Record types a DNS check may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Soa,
    Caa,
}

impl RecordType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => Self::A,
            "AAAA" => Self::Aaaa,
            "CNAME" => Self::Cname,
            "MX" => Self::Mx,
            "TXT" => Self::Txt,
            "NS" => Self::Ns,
            "SOA" => Self::Soa,
            "CAA" => Self::Caa,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Ns => "NS",
            Self::Soa => "SOA",
            Self::Caa => "CAA",
        }
    }
}

/// A TLS handshake with a host.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub host: String,
    pub port: u16,
    /// Certificates expiring within this many days are flagged, not failed.
    pub warn_days: f64,
    pub net: NetOptions,
}
