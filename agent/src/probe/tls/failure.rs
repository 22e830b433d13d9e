//! The failures a handshake can end in: certificate verdicts, revocation,
//! handshake errors and an oversized certificate message.

use std::time::Duration;

use rustls::CertificateError;
use slaprobe_wire::{
    Failure, FailureClass, Revocation, RevocationSource, RevocationStatus, Timestamp, TlsDetail,
};
use tokio::time::Instant;

use super::super::record_tap::{MAX_HANDSHAKE_MESSAGE, Tapped};
use super::chain::unix_to_ts;

/// The failure a revocation verdict calls for: `tls_cert_revoked` when
/// revoked; with `required`, `tls_cert_untrusted` when the status could
/// not be established (the chain cannot be trusted without it).
pub(super) fn revocation_failure(v: &Revocation, required: bool) -> Option<Failure> {
    let source = match v.source {
        Some(RevocationSource::Staple) => "the stapled OCSP response",
        Some(RevocationSource::Responder) => "the OCSP responder",
        Some(RevocationSource::Crl) => "the CRL",
        None => "nothing",
    };
    match v.status {
        RevocationStatus::Revoked => {
            let at = v
                .revoked_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "at an unknown time".into());
            let reason = v.reason.as_deref().unwrap_or("no reason given");
            Some(Failure::new(
                FailureClass::TlsCertRevoked,
                format!("certificate revoked {at} (reason: {reason}), per {source}"),
            ))
        }
        RevocationStatus::Good => None,
        RevocationStatus::Unknown | RevocationStatus::NotChecked if required => {
            // Without a detail: "staple" mode and no staple came.
            let detail = v
                .detail
                .as_deref()
                .unwrap_or("the server stapled no OCSP response (revocation = \"staple\")");
            Some(Failure::new(
                FailureClass::TlsCertUntrusted,
                format!(
                    "revocation status could not be established and revocation_required is set: {detail}"
                ),
            ))
        }
        RevocationStatus::Unknown | RevocationStatus::NotChecked => None,
    }
}

/// The class of a certificate verdict (NOTES-APIS §2).
pub fn classify_cert_error(err: &rustls::Error) -> FailureClass {
    match err {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => FailureClass::TlsCertExpired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                FailureClass::TlsHostnameMismatch
            }
            // Unknown issuer (incl. self-signed), bad signature, wrong purpose,
            // bad encoding, revoked...: the chain cannot be trusted.
            _ => FailureClass::TlsCertUntrusted,
        },
        _ => FailureClass::TlsHandshake,
    }
}

pub(super) fn cert_failure(err: &rustls::Error, detail: Option<&TlsDetail>, host: &str) -> Failure {
    let class = classify_cert_error(err);
    let fmt_ts = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
    let message = match (class, err) {
        (
            FailureClass::TlsCertExpired,
            rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
                not_before,
                ..
            }),
        ) => {
            format!(
                "certificate not valid before {}",
                fmt_ts(unix_to_ts(not_before.as_secs()))
            )
        }
        (
            FailureClass::TlsCertExpired,
            rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
                not_after, ..
            }),
        ) => {
            format!(
                "certificate expired {}",
                fmt_ts(unix_to_ts(not_after.as_secs()))
            )
        }
        (FailureClass::TlsHostnameMismatch, _) => {
            let sans = detail.map(|d| d.sans.join(", ")).unwrap_or_default();
            format!("certificate is not valid for {host} (names: {sans})")
        }
        (
            FailureClass::TlsCertUntrusted,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        ) => {
            let issuer = detail
                .and_then(|d| d.issuer.clone())
                .unwrap_or_else(|| "?".into());
            format!("certificate not trusted: unknown issuer {issuer}")
        }
        _ => format!("certificate rejected: {err}"),
    };
    Failure::new(class, message)
}

/// rustls refused a handshake message over its 64 KiB cap.
pub(super) fn is_too_large(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::HandshakePayloadTooLarge
        ))
    )
}

/// Most bytes read after the refusal to size a TLS 1.3 server's flight.
const DRAIN_LIMIT: u64 = 4 * 1024 * 1024;
/// A pause this long ends the flight.
const DRAIN_QUIET: Duration = Duration::from_millis(200);

/// The `tls_handshake` failure for a certificate message over rustls' cap,
/// with its size: exact from the plaintext header (TLS 1.2); in TLS 1.3
/// the message is encrypted, so the rest of the server's flight is read
/// (bounded in bytes and time) and its encrypted size reported instead.
pub(super) async fn oversized(mut io: Tapped, host: &str, deadline: Instant) -> Failure {
    use tokio::io::AsyncReadExt;
    let limit = MAX_HANDSHAKE_MESSAGE + 1;
    if let Some(n) = io
        .tap
        .certificate_len
        .filter(|&n| n > MAX_HANDSHAKE_MESSAGE)
    {
        return Failure::new(
            FailureClass::TlsHandshake,
            format!(
                "TLS handshake with {host} failed: server certificate message of {n} bytes exceeds the 64 KiB limit ({limit} bytes)"
            ),
        );
    }
    if !io.tap.encrypted() {
        // Plaintext, and not the Certificate: another message is too big.
        return Failure::new(
            FailureClass::TlsHandshake,
            format!(
                "TLS handshake with {host} failed: a server handshake message exceeds the 64 KiB limit ({limit} bytes)"
            ),
        );
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut read = 0u64;
    while read < DRAIN_LIMIT {
        let until = deadline.min(Instant::now() + DRAIN_QUIET);
        match tokio::time::timeout_at(until, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => read += n as u64,
            _ => break,
        }
    }
    let flight = io.tap.encrypted_bytes;
    let size = if flight > limit as u64 {
        format!(" (the server's encrypted handshake messages came to {flight} bytes)")
    } else {
        String::new()
    };
    Failure::new(
        FailureClass::TlsHandshake,
        format!(
            "TLS handshake with {host} failed: server certificate message exceeds the 64 KiB limit ({limit} bytes){size}"
        ),
    )
}

/// Classifies a failed handshake with no certificate verdict: alerts,
/// version or cipher mismatch, a peer that closes or speaks something else.
pub(super) fn handshake_failure(e: &std::io::Error, host: &str) -> Failure {
    if let Some(re) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        let class = classify_cert_error(re);
        return Failure::new(class, format!("TLS handshake with {host} failed: {re}"));
    }
    let what = match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "server closed the connection".to_string(),
        _ => e.to_string(),
    };
    Failure::new(
        FailureClass::TlsHandshake,
        format!("TLS handshake with {host} failed: {what}"),
    )
}
