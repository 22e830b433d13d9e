//! What went wrong: the stable, snake_case vocabulary of failure classes and
//! a failure (class plus message).

use std::fmt;

use serde::{Deserialize, Serialize};

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
}
