//! One probe's outcome (DESIGN.md §4) and its HTTP section.

use serde::{Deserialize, Serialize};

use crate::{
    BrowserDetail, CheckKind, DnsDetail, DomainDetail, Failure, FailureClass, PageDetail,
    Timestamp, TlsDetail, is_false,
};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
