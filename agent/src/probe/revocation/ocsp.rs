//! OCSP (RFC 6960): the request for one certificate, and the checks a
//! response must pass before its answer is believed: a successful basic
//! response, signed by the issuer or by a responder certificate the issuer
//! delegated (EKU id-kp-OCSPSigning), naming this certificate (CertID:
//! issuer name and key hashes, serial), and fresh (thisUpdate not in the
//! future, nextUpdate not passed). One exception to freshness: a signed
//! "revoked" (other than certificateHold) is believed when stale, since a
//! revocation is never undone.

use std::time::Duration;

use jiff::Timestamp;
use x509_parser::asn1_rs::BitString;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::AlgorithmIdentifier;

use super::der::{self, DerError, Reader};
use super::{Issuer, Leaf, reason_name};

/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1), the OID's contents.
const OCSP_BASIC: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 0x30, 1, 1];
/// SHA-1 (1.3.14.3.2.26): what requests use and responders expect.
const SHA1: &[u8] = &[0x2b, 0x0e, 3, 2, 0x1a];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 1];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 2];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 3];

/// How far the agent's clock may be off the responder's.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
/// The oldest answer believed when the response has no nextUpdate.
const MAX_AGE_WITHOUT_NEXT_UPDATE: Duration = Duration::from_secs(7 * 86_400);

/// What a verified response says about the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked {
        at: Timestamp,
        /// RFC 5280 reason name (`keyCompromise`), when given.
        reason: Option<String>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// A response that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub status: CertStatus,
    pub this_update: Timestamp,
    pub next_update: Option<Timestamp>,
    /// Set when a revocation is believed although the response is outside
    /// its validity window (see [`verify`]): why it is stale.
    pub stale: Option<String>,
}

/// Why a response was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    #[error("malformed OCSP response ({0})")]
    Malformed(#[from] DerError),
    #[error("the responder answered {0}")]
    NotSuccessful(&'static str),
    #[error("the OCSP response is not a basic response")]
    NotBasic,
    #[error("the OCSP response's signature does not verify: {0}")]
    Signature(String),
    #[error("the OCSP response does not cover this certificate (serial {0})")]
    NoMatch(String),
    #[error("the OCSP response is stale: {0}")]
    Stale(String),
}

/// A DER `OCSPRequest` for `leaf`: one SHA-1 CertID, no nonce (nonces
/// defeat the responders' caches and most CAs ignore them, RFC 5019).
pub fn request(leaf: &Leaf, issuer: &Issuer) -> Vec<u8> {
    let cert_id = cert_id(leaf, issuer);
    let req = der::item(der::SEQUENCE, &cert_id);
    let list = der::item(der::SEQUENCE, &req);
    let tbs = der::item(der::SEQUENCE, &list);
    der::item(der::SEQUENCE, &tbs)
}

/// The SHA-1 CertID of `leaf`, DER; also the cache key of its answers.
pub fn cert_id(leaf: &Leaf, issuer: &Issuer) -> Vec<u8> {
    let mut alg = der::item(der::OID, SHA1);
    alg.extend(der::item(der::NULL, &[]));
    let mut id = der::item(der::SEQUENCE, &alg);
    let sha1 = &ring::digest::SHA1_FOR_LEGACY_USE_ONLY;
    der::write(
        &mut id,
        der::OCTET_STRING,
        ring::digest::digest(sha1, &leaf.issuer_name).as_ref(),
    );
    der::write(
        &mut id,
        der::OCTET_STRING,
        ring::digest::digest(sha1, &issuer.key_bits).as_ref(),
    );
    der::write(&mut id, der::INTEGER, &leaf.serial);
    der::item(der::SEQUENCE, &id)
}

fn digest_alg(oid: &[u8]) -> Option<&'static ring::digest::Algorithm> {
    Some(match oid {
        SHA1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        SHA256 => &ring::digest::SHA256,
        SHA384 => &ring::digest::SHA384,
        SHA512 => &ring::digest::SHA512,
        _ => return None,
    })
}

/// Parses `response` and checks it as the module docs say, at `now`;
/// `known` are certificates that may be a delegated responder's.
pub fn verify(
    response: &[u8],
    leaf: &Leaf,
    issuer: &Issuer,
    known: &[&[u8]],
    now: Timestamp,
) -> Result<Verified, OcspError> {
    let mut top = Reader(response);
    let resp = top.expect(der::SEQUENCE, "OCSPResponse is not a SEQUENCE")?;
    let mut r = resp.reader();
    let status = r.expect(der::ENUMERATED, "responseStatus")?;
    match status.value {
        [0] => {}
        [1] => return Err(OcspError::NotSuccessful("malformedRequest")),
        [2] => return Err(OcspError::NotSuccessful("internalError")),
        [3] => return Err(OcspError::NotSuccessful("tryLater")),
        [5] => return Err(OcspError::NotSuccessful("sigRequired")),
        [6] => return Err(OcspError::NotSuccessful("unauthorized")),
        _ => return Err(OcspError::NotSuccessful("an unknown status")),
    }
    let bytes = r.expect(der::ctx(0), "responseBytes")?;
    let mut rb = bytes
        .reader()
        .expect(der::SEQUENCE, "ResponseBytes")?
        .reader();
    let kind = rb.expect(der::OID, "responseType")?;
    if kind.value != OCSP_BASIC {
        return Err(OcspError::NotBasic);
    }
    let basic = rb.expect(der::OCTET_STRING, "response")?;

    let mut b = Reader(basic.value)
        .expect(der::SEQUENCE, "BasicOCSPResponse")?
        .reader();
    let tbs = b.expect(der::SEQUENCE, "tbsResponseData")?;
    let alg_tlv = b.expect(der::SEQUENCE, "signatureAlgorithm")?;
    let sig = b.expect(der::BIT_STRING, "signature")?;
    let certs = b.optional(der::ctx(0))?;

    let (_, alg) =
        AlgorithmIdentifier::from_der(alg_tlv.raw).map_err(|_| DerError("signatureAlgorithm"))?;
    let (&unused, sig_bits) = sig.value.split_first().ok_or(DerError("empty signature"))?;
    let sig = BitString::new(unused, sig_bits);
    check_signature(tbs.raw, &alg, &sig, certs, known, issuer, now)?;

    let mut t = tbs.reader();
    let _version = t.optional(der::ctx(0))?;
    let _responder = t.any()?; // [1] byName or [2] byKey: the signature decides.
    let _produced = t.expect(der::GENERALIZED_TIME, "producedAt")?;
    let responses = t.expect(der::SEQUENCE, "responses")?;
    let mut rs = responses.reader();
    while !rs.is_empty() {
        let single = rs.expect(der::SEQUENCE, "SingleResponse")?;
        if let Some(v) = single_response(single.reader(), leaf, issuer)? {
            return match fresh(v.clone(), now) {
                // A revocation is final (RFC 5280 §3.3; only certificateHold
                // can be lifted): a signed "revoked" for this serial stays
                // true after its nextUpdate, so a server stapling an old
                // one is still serving a revoked certificate. Stale "good"
                // and "unknown" answers prove nothing.
                Err(OcspError::Stale(why)) if revocation_is_final(&v.status) => Ok(Verified {
                    stale: Some(why),
                    ..v
                }),
                other => other,
            };
        }
    }
    Err(OcspError::NoMatch(hex_serial(&leaf.serial)))
}

/// The answer of one SingleResponse if its CertID names `leaf`.
fn single_response(
    mut s: Reader<'_>,
    leaf: &Leaf,
    issuer: &Issuer,
) -> Result<Option<Verified>, OcspError> {
    let mut id = s.expect(der::SEQUENCE, "CertID")?.reader();
    let hash_alg = id.expect(der::SEQUENCE, "hashAlgorithm")?;
    let hash_oid = hash_alg.reader().expect(der::OID, "hash OID")?;
    let name_hash = id.expect(der::OCTET_STRING, "issuerNameHash")?;
    let key_hash = id.expect(der::OCTET_STRING, "issuerKeyHash")?;
    let serial = id.expect(der::INTEGER, "serialNumber")?;
    let Some(alg) = digest_alg(hash_oid.value) else {
        return Ok(None);
    };
    let matches = der::unsigned_int(serial.value) == der::unsigned_int(&leaf.serial)
        && ring::digest::digest(alg, &leaf.issuer_name).as_ref() == name_hash.value
        && ring::digest::digest(alg, &issuer.key_bits).as_ref() == key_hash.value;
    if !matches {
        return Ok(None);
    }
    let st = s.any()?;
    let status = match st.tag {
        t if t == der::ctx_prim(0) => CertStatus::Good,
        t if t == der::ctx(1) => {
            let mut ri = st.reader();
            let at =
                der::generalized_time(ri.expect(der::GENERALIZED_TIME, "revocationTime")?.value)?;
            let reason = match ri.optional(der::ctx(0))? {
                Some(r) => {
                    let code = r.reader().expect(der::ENUMERATED, "revocationReason")?;
                    code.value.last().map(|&c| reason_name(c).to_string())
                }
                None => None,
            };
            CertStatus::Revoked { at, reason }
        }
        t if t == der::ctx_prim(2) => CertStatus::Unknown,
        _ => return Err(DerError("certStatus").into()),
    };
    let this_update = der::generalized_time(s.expect(der::GENERALIZED_TIME, "thisUpdate")?.value)?;
    let next_update = match s.optional(der::ctx(0))? {
        Some(n) => Some(der::generalized_time(
            n.reader()
                .expect(der::GENERALIZED_TIME, "nextUpdate")?
                .value,
        )?),
        None => None,
    };
    Ok(Some(Verified {
        status,
        this_update,
        next_update,
        stale: None,
    }))
}

fn revocation_is_final(s: &CertStatus) -> bool {
    matches!(s, CertStatus::Revoked { reason, .. } if reason.as_deref() != Some("certificateHold"))
}

/// Accepts `v` only within its validity window (RFC 6960 §3.2, 4.2.2.1).
fn fresh(v: Verified, now: Timestamp) -> Result<Verified, OcspError> {
    let skew = jiff::SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default();
    if v.this_update > now + skew {
        return Err(OcspError::Stale(format!(
            "thisUpdate {} is in the future",
            v.this_update
        )));
    }
    match v.next_update {
        Some(next) if next + skew < now => {
            Err(OcspError::Stale(format!("nextUpdate {next} has passed")))
        }
        None if v.this_update
            + jiff::SignedDuration::try_from(MAX_AGE_WITHOUT_NEXT_UPDATE).unwrap_or_default()
            < now =>
        {
            Err(OcspError::Stale(format!(
                "produced {} with no nextUpdate, more than 7 days ago",
                v.this_update
            )))
        }
        _ => Ok(v),
    }
}

/// The response is signed by the issuer itself, or by a certificate that
/// the issuer signed for OCSP signing and that is valid now: one the
/// response carries (`certs`), else one of `known` (the presented chain and
/// the extra roots: a responder may leave its certificate out).
fn check_signature(
    tbs: &[u8],
    alg: &AlgorithmIdentifier<'_>,
    sig: &BitString<'_>,
    certs: Option<der::Tlv<'_>>,
    known: &[&[u8]],
    issuer: &Issuer,
    now: Timestamp,
) -> Result<(), OcspError> {
    let issuer_spki = issuer.spki().map_err(OcspError::Signature)?;
    if x509_parser::verify::verify_signature(&issuer_spki, alg, sig, tbs).is_ok() {
        return Ok(());
    }
    let mut candidates: Vec<&[u8]> = Vec::new();
    if let Some(certs) = certs {
        let mut list = certs.reader().expect(der::SEQUENCE, "certs")?.reader();
        while !list.is_empty() {
            candidates.push(list.any()?.raw);
        }
    }
    let carried = candidates.len();
    candidates.extend_from_slice(known);
    let mut why = "not signed by the issuer, and no delegated responder certificate".to_string();
    for (i, der) in candidates.into_iter().enumerate() {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            continue;
        };
        match delegated(&cert, issuer, &issuer_spki, now) {
            // Only the response's own certificates explain a failure;
            // the chain's are tried on the off chance.
            Err(e) if i < carried => why = e,
            Err(_) => {}
            Ok(()) => {
                match x509_parser::verify::verify_signature(cert.public_key(), alg, sig, tbs) {
                    Ok(()) => return Ok(()),
                    Err(e) => why = format!("bad signature by responder {}: {e}", cert.subject()),
                }
            }
        }
    }
    Err(OcspError::Signature(why))
}

/// Whether `cert` may sign OCSP responses for `issuer`'s certificates.
fn delegated(
    cert: &X509Certificate<'_>,
    issuer: &Issuer,
    issuer_spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    now: Timestamp,
) -> Result<(), String> {
    let subject = cert.subject();
    if cert.issuer().as_raw() != issuer.name.as_slice() {
        return Err(format!(
            "responder {subject} is not issued by the certificate's issuer"
        ));
    }
    if cert.verify_signature(Some(issuer_spki)).is_err() {
        return Err(format!(
            "responder {subject} is not signed by the certificate's issuer"
        ));
    }
    let ocsp_signing = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
    if !ocsp_signing {
        return Err(format!("responder {subject} lacks id-kp-OCSPSigning"));
    }
    let t = now.as_second();
    let v = cert.validity();
    if v.not_before.timestamp() > t || v.not_after.timestamp() < t {
        return Err(format!("responder {subject} is not valid now"));
    }
    Ok(())
}

/// A serial as colon-separated hex (as x509-parser and openssl print it).
pub fn hex_serial(serial: &[u8]) -> String {
    der::unsigned_int(serial)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
