//! What a check asks for: its kind and its `[[checks]]` entry exactly as
//! written in a config file (raw strings; the agent validates them), also
//! served by `GET /api/v1/checks`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::is_false;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_spec_rejects_unknown_keys() {
        let err = serde_json::from_str::<CheckSpec>(r#"{"name":"a","kind":"http","bogus":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
