//! The DNS sections of a result: each nameserver's answer, DNSSEC verdicts,
//! and a domain's registration (RDAP).

use serde::{Deserialize, Serialize};

use crate::{Failure, Timestamp, is_false};

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
