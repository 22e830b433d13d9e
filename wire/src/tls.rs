//! The TLS section of a result: the presented certificate and session, and
//! the leaf's revocation status.

use serde::{Deserialize, Serialize};

use crate::{Timestamp, is_false};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
