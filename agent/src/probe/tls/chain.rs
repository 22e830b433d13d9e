//! Reading the presented chain: the certificate details a result carries,
//! RFC 6125 name matching, and the negotiated version and cipher as openssl
//! names them.

use rustls::CertificateError;
use rustls::pki_types::{CertificateDer, ServerName};
use slaprobe_wire::{Timestamp, TlsDetail};

/// "TLSv1_3" (rustls) → "TLSv1.3" (what openssl and humans write).
pub(super) fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => other
            .as_str()
            .map(|s| s.replace('_', "."))
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

/// rustls names TLS 1.3 suites "TLS13_…"; the IANA name is "TLS_…".
pub(super) fn cipher_name(s: &str) -> String {
    match s.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => s.to_string(),
    }
}

pub(super) fn unix_to_ts(secs: u64) -> Option<Timestamp> {
    Timestamp::from_second(i64::try_from(secs).ok()?).ok()
}

/// What the presented chain says, parsed once per distinct chain
/// ([`TlsShared::chain_facts`](super::TlsShared::chain_facts)): the same
/// certificates give the same facts on every probe.
#[derive(Debug, Default)]
pub(super) struct ChainFacts {
    chain_length: u32,
    not_after: Option<Timestamp>,
    earliest_not_after: Option<Timestamp>,
    subject: Option<String>,
    issuer: Option<String>,
    sans: Vec<String>,
}

/// Parses `chain` (leaf first); a certificate that does not parse adds nothing.
pub(super) fn chain_facts(chain: &[CertificateDer<'_>]) -> ChainFacts {
    let mut f = ChainFacts {
        chain_length: u32::try_from(chain.len()).unwrap_or(u32::MAX),
        ..Default::default()
    };
    for (i, der) in chain.iter().enumerate() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            continue;
        };
        let not_after = Timestamp::from_second(cert.validity().not_after.timestamp()).ok();
        if let Some(na) = not_after {
            f.earliest_not_after = Some(f.earliest_not_after.map_or(na, |e| e.min(na)));
        }
        if i == 0 {
            f.not_after = not_after;
            f.subject = Some(cert.subject().to_string());
            f.issuer = Some(cert.issuer().to_string());
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for gn in &san.value.general_names {
                    match gn {
                        x509_parser::extensions::GeneralName::DNSName(n) => {
                            f.sans.push(n.to_string())
                        }
                        x509_parser::extensions::GeneralName::IPAddress(b) => {
                            if let Some(ip) = ip_from_bytes(b) {
                                f.sans.push(ip.to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    f
}

/// Everything a reviewer wants from the presented chain, computed by us as
/// well as by webpki, because webpki reports only its first objection.
pub(super) fn describe_chain(
    facts: &ChainFacts,
    server_name: &ServerName<'_>,
    verify_error: Option<&rustls::Error>,
    warn_days: f64,
    now: Timestamp,
) -> TlsDetail {
    let mut d = TlsDetail {
        chain_length: facts.chain_length,
        not_after: facts.not_after,
        subject: facts.subject.clone(),
        issuer: facts.issuer.clone(),
        sans: facts.sans.clone(),
        ..Default::default()
    };
    let earliest = facts.earliest_not_after;
    d.earliest_not_after = earliest;
    if let Some(e) = earliest {
        let secs = e.as_second() - now.as_second();
        let nanos = i64::from(e.subsec_nanosecond()) - i64::from(now.subsec_nanosecond());
        let days = (secs as f64 + nanos as f64 / 1e9) / 86_400.0;
        d.days_left = Some(days);
        d.expiring_soon = days < warn_days;
    }
    let name_error = matches!(
        verify_error,
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ))
    );
    // webpki checks the name only once the chain verifies.
    d.chain_valid = verify_error.is_none() || name_error;
    d.hostname_valid = match verify_error {
        None => true,
        Some(_) if name_error => false,
        Some(_) => name_matches(&d.sans, server_name),
    };
    d
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// RFC 6125 matching on SANs (no CN fallback, like webpki): exact names
/// case-insensitively, `*.` wildcards for exactly one leftmost label, IPs
/// by value.
fn name_matches(sans: &[String], server_name: &ServerName<'_>) -> bool {
    match server_name {
        ServerName::IpAddress(ip) => {
            let ip = std::net::IpAddr::from(*ip);
            sans.iter()
                .any(|s| s.parse::<std::net::IpAddr>().is_ok_and(|s| s == ip))
        }
        ServerName::DnsName(name) => {
            let host = name.as_ref().trim_end_matches('.').to_ascii_lowercase();
            sans.iter().any(|san| {
                let san = san.trim_end_matches('.').to_ascii_lowercase();
                match san.strip_prefix("*.") {
                    Some(suffix) => host
                        .split_once('.')
                        .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
                    None => san == host,
                }
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let sans = vec![
            "*.acme.example".to_string(),
            "acme.example".to_string(),
            "127.0.0.1".to_string(),
        ];
        let dns = |s: &str| ServerName::try_from(s.to_string()).unwrap();
        assert!(name_matches(&sans, &dns("www.acme.example")));
        assert!(name_matches(&sans, &dns("ACME.example")));
        assert!(!name_matches(&sans, &dns("a.b.acme.example")));
        assert!(!name_matches(&sans, &dns("other.example")));
        assert!(name_matches(&sans, &dns("127.0.0.1")));
        assert!(!name_matches(&sans, &dns("::1")));
    }

    #[test]
    fn names_read_like_openssl() {
        assert_eq!(version_name(rustls::ProtocolVersion::TLSv1_3), "TLSv1.3");
        assert_eq!(
            cipher_name("TLS13_AES_256_GCM_SHA384"),
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            cipher_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }
}
