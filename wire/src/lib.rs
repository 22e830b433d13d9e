//! The types agents and the collector exchange: probe results, batches, acks
//! and the check definitions the collector hands out.
//!
//! # Layout
//! - [`ProbeResult`] and its per-kind sections ([`HttpDetail`], [`TlsDetail`],
//!   [`DnsDetail`] with [`DnssecDetail`], [`PageDetail`], [`DomainDetail`]):
//!   one probe's outcome, DESIGN.md §4.
//! - [`FailureClass`]: the stable, snake_case vocabulary of what went wrong.
//! - [`Batch`] / [`Ack`]: the body of `POST /api/v1/results` and its answer, §5.
//! - [`CheckSpec`]: one `[[checks]]` entry exactly as written in a config file
//!   (raw strings; the agent validates it), also served by `GET /api/v1/checks`.
//!
//! This crate holds data only (serde); behaviour lives in the agent and collector.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use jiff::Timestamp;

/// What kind of probe produced a result (and what a check asks for).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    #[default]
    Http,
    Dns,
    Tls,
    Page,
    /// Domain registration (RDAP): expiry, registrar, hold status.
    Domain,
    /// Headless Chromium over the DevTools protocol: Web Vitals, requests, JS errors.
    Browser,
}

impl CheckKind {
    pub const ALL: [CheckKind; 6] = [
        Self::Http,
        Self::Dns,
        Self::Tls,
        Self::Page,
        Self::Domain,
        Self::Browser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Page => "page",
            Self::Domain => "domain",
            Self::Browser => "browser",
        }
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed. The names are stable: dashboards, alerts and reports
/// key on them. New classes may be added, so the enum is non-exhaustive and a
/// class this build does not know deserializes as [`FailureClass::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureClass {
    DnsError,
    DnsRcode,
    DnsAnswerMismatch,
    ConnectRefused,
    ConnectTimeout,
    TlsHandshake,
    TlsCertExpired,
    TlsCertUntrusted,
    TlsHostnameMismatch,
    HttpStatus,
    ContentMismatch,
    TooManyRedirects,
    Timeout,
    PageResourceFailed,
    Protocol,
    /// The agent's own fault (a probe that panicked, file descriptors
    /// exhausted...), not the target's: excluded from SLA downtime as no data.
    AgentError,
    /// The certificate was revoked by its CA (a stapled OCSP response, the
    /// OCSP responder or the CRL said so); the message gives reason and time.
    TlsCertRevoked,
    /// DNSSEC validation failed: a bad or expired signature, no DNSKEY for a
    /// DS (or the trust anchor), a DS that matches no key.
    DnsDnssecBogus,
    /// DNSSEC was required (`dnssec = true`) but the answer is unsigned.
    DnsDnssecInsecure,
    /// The nameservers of a `consistency = true` check disagree (SOA serial,
    /// NS set) or one of them does not answer authoritatively.
    DnsInconsistent,
    /// The registry reports the domain on hold or pending delete
    /// (`clientHold`, `serverHold`, `pendingDelete`): it is off the air.
    DomainHeld,
    /// The domain's registration has expired.
    DomainExpired,
    /// No usable registration data: RDAP server unreachable, an error
    /// status, or a response that is not RDAP.
    DomainLookup,
    /// browser: the page threw an uncaught JavaScript error (only with
    /// `fail_on_js_error = true`).
    PageJsError,
    /// A class from a newer agent that this build does not know.
    #[serde(other)]
    Other,
}

impl FailureClass {
    /// Every known class. New classes go at the end: the collector's
    /// compact class codes and tiebreaks follow this order.
    pub const ALL: [FailureClass; 24] = [
        Self::DnsError,
        Self::DnsRcode,
        Self::DnsAnswerMismatch,
        Self::ConnectRefused,
        Self::ConnectTimeout,
        Self::TlsHandshake,
        Self::TlsCertExpired,
        Self::TlsCertUntrusted,
        Self::TlsHostnameMismatch,
        Self::HttpStatus,
        Self::ContentMismatch,
        Self::TooManyRedirects,
        Self::Timeout,
        Self::PageResourceFailed,
        Self::Protocol,
        Self::AgentError,
        Self::TlsCertRevoked,
        Self::DnsDnssecBogus,
        Self::DnsDnssecInsecure,
        Self::DnsInconsistent,
        Self::DomainHeld,
        Self::DomainExpired,
        Self::DomainLookup,
        Self::PageJsError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DnsError => "dns_error",
            Self::DnsRcode => "dns_rcode",
            Self::DnsAnswerMismatch => "dns_answer_mismatch",
            Self::ConnectRefused => "connect_refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::TlsHandshake => "tls_handshake",
            Self::TlsCertExpired => "tls_cert_expired",
            Self::TlsCertUntrusted => "tls_cert_untrusted",
            Self::TlsHostnameMismatch => "tls_hostname_mismatch",
            Self::HttpStatus => "http_status",
            Self::ContentMismatch => "content_mismatch",
            Self::TooManyRedirects => "too_many_redirects",
            Self::Timeout => "timeout",
            Self::PageResourceFailed => "page_resource_failed",
            Self::Protocol => "protocol",
            Self::AgentError => "agent_error",
            Self::TlsCertRevoked => "tls_cert_revoked",
            Self::DnsDnssecBogus => "dns_dnssec_bogus",
            Self::DnsDnssecInsecure => "dns_dnssec_insecure",
            Self::DnsInconsistent => "dns_inconsistent",
            Self::DomainHeld => "domain_held",
            Self::DomainExpired => "domain_expired",
            Self::DomainLookup => "domain_lookup",
            Self::PageJsError => "page_js_error",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong: a stable class plus a human message (never used as a label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
}

/// One probe's outcome (DESIGN.md §4). Only the section of the probe's kind is
/// present (an https probe also carries `tls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The agent's own sequence number: 1 for its first result ever, +1 each.
    pub seq: u64,
    pub agent: String,
    pub location: String,
    pub check: String,
    pub kind: CheckKind,
    /// What was probed (URL, host:port or query), for humans and `_info` metrics.
    pub target: String,
    pub started_at: Timestamp,
    pub duration_seconds: f64,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserDetail>,
}

impl ProbeResult {
    /// The failure class, if the probe failed.
    pub fn class(&self) -> Option<FailureClass> {
        self.failure.as_ref().map(|f| f.class)
    }
}

/// HTTP exchange details. Phases describe the final request (after redirects);
/// `duration_seconds` of the result covers every hop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub redirects: u32,
    #[serde(default)]
    pub body_bytes: u64,
    /// The body was longer than the read cap; only the first bytes were read.
    #[serde(default, skip_serializing_if = "is_false")]
    pub body_truncated: bool,
    /// The URL that answered last (differs from the target after redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    /// The address connected to, as `ip:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    #[serde(default)]
    pub phases: Phases,
}

/// Seconds spent in each phase; a phase not reached is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<f64>,
    /// Time to first byte after the request was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<f64>,
}

impl Phases {
    /// A phase by its DESIGN.md name (`resolve`, `connect`, `tls`, `processing`, `transfer`).
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "resolve" => self.resolve,
            "connect" => self.connect,
            "tls" => self.tls,
            "processing" => self.processing,
            "transfer" => self.transfer,
            _ => None,
        }
    }

    pub const NAMES: [&'static str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];
}

/// The certificate and session a TLS handshake presented.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    /// Leaf certificate expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Timestamp>,
    /// Earliest expiry of any certificate in the presented chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_not_after: Option<Timestamp>,
    /// Days until the earliest expiry in the chain (negative once expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The first SANs of the leaf (at most 100, and a few KiB).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// How many SANs the leaf has (more than `sans` lists when it was cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sans_total: Option<u32>,
    #[serde(default)]
    pub chain_valid: bool,
    #[serde(default)]
    pub hostname_valid: bool,
    /// Number of certificates the server presented.
    #[serde(default)]
    pub chain_length: u32,
    /// `days_left` is below the check's `warn_days` (a warning, not a failure).
    #[serde(default, skip_serializing_if = "is_false")]
    pub expiring_soon: bool,
    /// Whether the leaf was revoked, and who said so (absent in results of
    /// agents that predate revocation checking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
}

/// The leaf certificate's revocation status (`tls.revocation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub status: RevocationStatus,
    /// Where the status came from; `null` when nothing answered.
    #[serde(default)]
    pub source: Option<RevocationSource>,
    /// The CRL reason of a revocation (`keyCompromise`, ...), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the certificate was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// Why the status is `unknown` or `not_checked`, or what was consulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Revocation {
    /// `not_checked` with nothing to add: the usual case (revocation off, or
    /// no staple in "staple" mode), kept short since most https results
    /// carry it.
    pub fn not_checked() -> Self {
        Self {
            status: RevocationStatus::NotChecked,
            source: None,
            reason: None,
            revoked_at: None,
            detail: None,
        }
    }

    /// A status with no source (`not_checked`, or `unknown` when nothing answered).
    pub fn without_source(status: RevocationStatus, detail: impl Into<String>) -> Self {
        Self {
            status,
            source: None,
            reason: None,
            revoked_at: None,
            detail: Some(detail.into()),
        }
    }
}

/// What revocation checking found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStatus {
    /// A valid, fresh answer said the certificate is not revoked.
    Good,
    /// A valid, fresh answer said the certificate is revoked.
    Revoked,
    /// A check was made but gave no valid answer (responder unreachable,
    /// bad signature, stale response, the responder does not know it).
    Unknown,
    /// No check was made (revocation off, no staple in `staple` mode, no
    /// responder named, or the chain itself did not verify).
    NotChecked,
}

/// Who answered a revocation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationSource {
    /// An OCSP response stapled to the TLS handshake.
    Staple,
    /// The OCSP responder named in the certificate's AIA extension.
    Responder,
    /// The CRL at the certificate's CRL distribution point.
    Crl,
}

/// DNS answers. With several nameservers the top-level fields describe the
/// first failing one (else the first) and `servers` lists each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsDetail {
    pub nameserver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// The first answers (at most 100, and a few KiB).
    #[serde(default)]
    pub answers: Vec<String>,
    /// How many answers there were (more than `answers` lists when it was cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers_total: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<DnsServerDetail>,
    /// `dnssec = true` checks: the worst verdict among the servers (bogus,
    /// then insecure, then secure), with the earliest RRSIG expiry of all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecDetail>,
}

/// A DNSSEC verdict on an answer (RFC 4035 §4.3 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnssecStatus {
    /// Signed, and the chain from the trust anchor verifies.
    Secure,
    /// Not signed (or not provably signed): no RRSIG, no DS for the zone.
    Insecure,
    /// Signed but the signatures or the chain do not verify.
    Bogus,
}

impl DnssecStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secure => "secure",
            Self::Insecure => "insecure",
            Self::Bogus => "bogus",
        }
    }
}

/// The DNSSEC validation of one answer (or of the check, in `dns.dnssec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnssecDetail {
    pub status: DnssecStatus,
    /// Why it is not secure (absent when secure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The earliest expiration of the RRSIGs the verdict relied on (answer,
    /// DNSKEY and DS sets): when re-signing must have happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrsig_expires_at: Option<Timestamp>,
}

/// A domain's registration, as its registry's RDAP server reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainDetail {
    /// The domain asked about (lowercase, no trailing dot).
    pub domain: String,
    /// The RDAP URL asked (the domain lookup itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdap_url: Option<String>,
    /// HTTP status of the RDAP answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The `expiration` event's date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Days until `expires_at` (negative once expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<f64>,
    /// The registrar entity's name (vCard `fn`), else its handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// The RDAP status values as served (at most 20), e.g. `client transfer prohibited`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
    /// `days_left` is below the check's `warn_days` (a warning, not a failure).
    #[serde(default, skip_serializing_if = "is_false")]
    pub expiring_soon: bool,
}

/// One nameserver's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsServerDetail {
    pub nameserver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// The first answers (at most 100, and a few KiB).
    #[serde(default)]
    pub answers: Vec<String>,
    /// How many answers there were (more than `answers` lists when it was cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers_total: Option<u32>,
    #[serde(default)]
    pub latency_seconds: f64,
    /// `udp`, or `tcp` after a truncated UDP answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The answer's AA bit (the server answered authoritatively).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authoritative: Option<bool>,
    /// `dnssec = true` checks: this server's answer validated on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecDetail>,
    #[serde(default)]
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// A page load: the document plus the resources it references.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageDetail {
    pub document_bytes: u64,
    /// Document plus every resource received.
    pub total_bytes: u64,
    /// Resources referenced and requested (the document not counted).
    pub resources: u32,
    pub failed_resources: u32,
    /// Time from the start until the document and every resource had arrived.
    pub load_seconds: f64,
    /// The first failed resources (at most 20, and a few KiB), for the
    /// report's "sample error"; `failed_resources` counts them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ResourceFailure>,
}

/// One resource of a page that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceFailure {
    pub url: String,
    pub message: String,
}

/// A page load in headless Chromium (the `browser` check kind). Times are
/// seconds from the start of the navigation (the page's time origin); a
/// point the page never reached is `null`. `cls` is unitless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrowserDetail {
    /// Time to first byte of the document (`responseStart`).
    pub ttfb: Option<f64>,
    /// First Contentful Paint.
    pub fcp: Option<f64>,
    /// Largest Contentful Paint (the last candidate before the probe ended).
    pub lcp: Option<f64>,
    /// Cumulative Layout Shift: the largest session window (web-vitals).
    pub cls: Option<f64>,
    /// Total Blocking Time: long tasks' time over 50 ms after FCP.
    pub tbt: Option<f64>,
    /// `DOMContentLoaded` fired (`domContentLoadedEventStart`).
    pub dom_content_loaded: Option<f64>,
    /// `load` fired (`loadEventStart`).
    pub load: Option<f64>,
    /// HTTP status of the document (after redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Requests the page made, the document included.
    pub requests: u32,
    /// Requests that failed (network error, or status 400 and above).
    pub failed_requests: u32,
    /// The first failed requests (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RequestFailure>,
    /// Bytes received over the network (encoded, headers included).
    pub transfer_bytes: u64,
    /// Uncaught JavaScript exceptions.
    pub js_errors: u32,
    /// The first uncaught exceptions' messages (at most 5, each at most 1 KiB).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub js_error_messages: Vec<String>,
    /// The document's URL after redirects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    /// Failed probes only: a PNG of the viewport, base64, at most 200 KB decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<String>,
    /// Why there is no screenshot on a failed probe (too big, capture failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot_note: Option<String>,
}

impl BrowserDetail {
    /// The Web Vitals a contract objective may name.
    pub const VITALS: [&'static str; 5] = ["lcp", "cls", "fcp", "ttfb", "tbt"];

    /// A Web Vital or timing by its name (`lcp`, `cls`, `fcp`, `ttfb`, `tbt`,
    /// `dom_content_loaded`, `load`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "lcp" => self.lcp,
            "cls" => self.cls,
            "fcp" => self.fcp,
            "ttfb" => self.ttfb,
            "tbt" => self.tbt,
            "dom_content_loaded" => self.dom_content_loaded,
            "load" => self.load,
            _ => None,
        }
    }
}

/// One request of a browser probe that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFailure {
    pub url: String,
    /// The HTTP status, when one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Chromium's network error (`net::ERR_…`), when no status arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Body of `POST /api/v1/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub agent: String,
    pub results: Vec<ProbeResult>,
}

/// Answer to a batch: every seq of this agent up to `acked` is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub acked: u64,
}

/// Answer of `GET /api/v1/checks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedChecks {
    pub checks: Vec<CheckSpec>,
}

/// One `[[checks]]` entry as written in a config file (DESIGN.md §3). Values
/// are kept raw (durations as humantime strings); the agent's config module
/// validates them across fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    pub kind: CheckKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Collector only: which locations run it (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<String>>,
    /// A canary (DESIGN.md §6 rule 1a): a target independent of the vendors
    /// under contract, whose failing says the location itself is impaired.
    /// It belongs to no contract.
    #[serde(default, skip_serializing_if = "is_false")]
    pub canary: bool,

    // http, page
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u32>,
    /// Body read cap in bytes (default 10 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// page: most connections to one origin at once (default 6, as browsers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_origin: Option<u32>,
    /// page: most connections at once for the whole page (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Restrict to one address family: 4 or 6 (default: whichever resolves first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,

    // http, tls, page
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// PEM of an extra trusted root, inline. The collector fills it from
    /// `ca_file` when handing a check to agents, which may not have the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<BTreeMap<String, String>>,

    // dns
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameservers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_answers: Option<Vec<String>>,
    /// Validate each answer's DNSSEC chain of trust (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<bool>,
    /// File of DS or DNSKEY records to trust (default: the IANA root KSK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec_trust_anchor: Option<String>,
    /// The trust anchor's records, inline (zone file text). The collector
    /// fills it from `dnssec_trust_anchor` when handing a check to agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec_trust_anchor_records: Option<String>,
    /// NS or SOA checks: compare what every nameserver says (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<bool>,
    /// With `consistency`: how far SOA serials may trail the highest (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_lag: Option<u32>,

    // domain
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The RDAP base URL to ask (default: from the IANA bootstrap for the TLD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdap_url: Option<String>,

    // tls (and warn_days: domain)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_days: Option<f64>,

    // http, tls, page (https)
    /// How far to check the leaf's revocation: "off", "staple" (default),
    /// "ocsp" or "ocsp+crl".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<String>,
    /// Fail the probe when the revocation status cannot be established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_required: Option<bool>,

    // browser
    /// browser: a CSS selector that must match an element once the page loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector_present: Option<String>,
    /// browser: an uncaught JavaScript error fails the probe (`page_js_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_js_error: Option<bool>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_class_names_round_trip() {
        for class in FailureClass::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            let back: FailureClass = serde_json::from_str(&json).unwrap();
            assert_eq!(back, class);
        }
        let unknown: FailureClass = serde_json::from_str("\"quantum_flux\"").unwrap();
        assert_eq!(unknown, FailureClass::Other);
    }

    #[test]
    fn design_example_parses() {
        let json = r#"{"seq": 17, "agent": "ams-1", "location": "ams", "check": "acme-www", "kind": "http",
 "target": "https://www.acme.example/", "started_at": "2026-11-22T15:00:00.123Z",
 "duration_seconds": 0.183, "success": false,
 "failure": {"class": "tls_cert_expired", "message": "certificate expired 2026-11-20T00:00:00Z"},
 "http":  {"status": 200, "version": "HTTP/1.1", "redirects": 0, "body_bytes": 27019,
           "phases": {"resolve": 0.001, "connect": 0.002, "tls": 0.011, "processing": 0.090, "transfer": 0.004}},
 "tls":   {"version": "TLSv1.3", "cipher": "x", "not_after": "2027-01-01T00:00:00Z", "days_left": 61.2,
           "issuer": "x", "subject": "x", "sans": ["x"], "chain_valid": true, "hostname_valid": true},
 "dns":   {"nameserver": "127.0.0.1:5353", "rcode": "NOERROR", "answers": ["192.0.2.10"]},
 "page":  {"document_bytes": 27019, "total_bytes": 412000, "resources": 23,
           "failed_resources": 0, "load_seconds": 0.84}}"#;
        let r: ProbeResult = serde_json::from_str(json).unwrap();
        assert_eq!(r.seq, 17);
        assert_eq!(r.class(), Some(FailureClass::TlsCertExpired));
        assert_eq!(
            r.http.as_ref().unwrap().phases.get("processing"),
            Some(0.090)
        );
        assert_eq!(r.started_at.to_string(), "2026-11-22T15:00:00.123Z");
        let again: ProbeResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn revocation_reads_as_documented() {
        let none = Revocation::without_source(RevocationStatus::Unknown, "responder unreachable");
        let v = serde_json::to_value(&none).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "unknown", "source": null, "detail": "responder unreachable"})
        );
        let json = r#"{"status":"revoked","source":"crl","reason":"keyCompromise","revoked_at":"2026-11-30T10:00:00Z"}"#;
        let r: Revocation = serde_json::from_str(json).unwrap();
        assert_eq!(r.status, RevocationStatus::Revoked);
        assert_eq!(r.source, Some(RevocationSource::Crl));
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        let nc: Revocation = serde_json::from_str(r#"{"status":"not_checked"}"#).unwrap();
        assert_eq!(nc.source, None);
        // Results of older agents have no revocation at all.
        let t: TlsDetail = serde_json::from_str(r#"{"chain_valid":true}"#).unwrap();
        assert!(t.revocation.is_none());
    }

    #[test]
    fn check_spec_rejects_unknown_keys() {
        let err = serde_json::from_str::<CheckSpec>(r#"{"name":"a","kind":"http","bogus":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
