//! Whether the leaf certificate of a verified chain was revoked
//! (`revocation` on http, tls and page checks; `tls.revocation` in results).
//!
//! In order: the OCSP response the server stapled to the handshake (any
//! mode but "off"); then, in "ocsp" and "ocsp+crl" modes, the OCSP responder
//! the certificate names (AIA; HTTP GET when the request fits a 255-byte
//! URL, else or when GET gives no usable answer, POST); then, in
//! "ocsp+crl", the CRL at its distribution point. The first valid answer decides. A source that
//! gives no valid answer (unreachable, bad signature, stale, too big) makes
//! the status `unknown` unless a later one answers; it never fails the
//! probe by itself, except with `revocation_required`.
//!
//! Network fetches share the probe's deadline and are size-bounded;
//! verified responder answers and CRLs are cached process-wide until their
//! nextUpdate, so a check every minute asks its responder once per
//! response lifetime, not once per probe.

pub mod crl;
pub mod der;
mod fetch;
pub mod ocsp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hickory_resolver::TokioResolver;
use jiff::Timestamp;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use slaprobe_wire::{Revocation, RevocationSource, RevocationStatus};
use tokio::time::Instant;
use url::Url;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::config::{NetOptions, RevocationMode};

/// Most bytes read from an OCSP responder (answers are ~1-4 KiB).
pub const MAX_OCSP_RESPONSE_BYTES: usize = 64 * 1024;
/// Most bytes read from a CRL distribution point.
pub const MAX_CRL_BYTES: usize = 8 * 1024 * 1024;
/// Responder and CRL URLs tried per certificate, at most.
const MAX_URLS: usize = 2;
/// OCSP answers cached; past this, expired entries go, then everything.
const MAX_CACHED_ANSWERS: usize = 4096;
/// CRLs cached: a large CA's CRL holds ~10^5 serials (some MB in memory).
const MAX_CACHED_CRLS: usize = 16;

/// id-ad-ocsp (1.3.6.1.5.5.7.48.1), the access method of an OCSP responder.
const AD_OCSP: &[u8] = &[0x2b, 6, 1, 5, 5, 7, 0x30, 1];

/// What revocation checking needs of the leaf.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The serial's INTEGER contents.
    pub serial: Vec<u8>,
    /// The DER of the leaf's issuer Name.
    pub issuer_name: Vec<u8>,
    /// OCSP responders from AIA, in order.
    pub ocsp_urls: Vec<String>,
    /// CRL distribution point URLs, in order.
    pub crl_urls: Vec<String>,
}

/// The certificate (or trust anchor) that signed the leaf.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The DER of its subject Name.
    pub name: Vec<u8>,
    /// The DER of its SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// The subjectPublicKey bits (what an OCSP CertID hashes).
    pub key_bits: Vec<u8>,
}

impl Issuer {
    fn new(name: Vec<u8>, spki_der: Vec<u8>) -> Result<Self, String> {
        let key_bits = SubjectPublicKeyInfo::from_der(&spki_der)
            .map_err(|e| format!("issuer key: {e}"))?
            .1
            .subject_public_key
            .data
            .to_vec();
        Ok(Self {
            name,
            spki_der,
            key_bits,
        })
    }

    /// The parsed key, to verify signatures with.
    pub fn spki(&self) -> Result<SubjectPublicKeyInfo<'_>, String> {
        SubjectPublicKeyInfo::from_der(&self.spki_der)
            .map(|(_, k)| k)
            .map_err(|e| format!("issuer key: {e}"))
    }
}

/// RFC 5280 CRLReason names, as OCSP and CRLs carry them.
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}

/// (CRL URL, issuer key DER) → verified list.
type CrlMap = HashMap<(String, Vec<u8>), Arc<crl::Crl>>;

/// (CRL URL, issuer key DER) → the gate of its download.
type CrlGates = HashMap<(String, Vec<u8>), Arc<tokio::sync::Mutex<()>>>;

/// Verified responder answers and CRLs, shared by every probe.
#[derive(Debug, Default)]
pub struct Cache {
    /// (responder URL, CertID DER) → answer, until its nextUpdate.
    ocsp: Mutex<HashMap<(String, Vec<u8>), ocsp::Verified>>,
    /// (CRL URL, issuer key DER) → list, until its nextUpdate.
    crls: Mutex<CrlMap>,
    /// (CRL URL, issuer key DER) → held while one probe downloads that CRL,
    /// so the probes of many leaves of one CA that start together (an
    /// agent's first round) wait for one download instead of each fetching
    /// up to [`MAX_CRL_BYTES`] at once.
    crl_gates: Mutex<CrlGates>,
}

/// Download gates kept; past this, idle ones are dropped.
const MAX_CRL_GATES: usize = 64;

fn cache_get<K: std::hash::Hash + Eq, V: Clone>(
    map: &Mutex<HashMap<K, V>>,
    key: &K,
    expiry: impl Fn(&V) -> Option<Timestamp>,
    now: Timestamp,
) -> Option<V> {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    match m.get(key) {
        Some(v) if expiry(v).is_some_and(|t| t > now) => Some(v.clone()),
        Some(_) => {
            m.remove(key);
            None
        }
        None => None,
    }
}

fn cache_put<K: std::hash::Hash + Eq, V>(
    map: &Mutex<HashMap<K, V>>,
    max: usize,
    key: K,
    value: V,
    expiry: impl Fn(&V) -> Option<Timestamp>,
    now: Timestamp,
) {
    if expiry(&value).is_none_or(|t| t <= now) {
        return; // no nextUpdate: nothing says how long it holds
    }
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    if m.len() >= max {
        m.retain(|_, v| expiry(v).is_some_and(|t| t > now));
        if m.len() >= max {
            m.clear();
        }
    }
    m.insert(key, value);
}

/// Everything one check of one leaf needs.
pub struct Request<'a> {
    pub mode: RevocationMode,
    /// Leaf first, as presented.
    pub chain: &'a [CertificateDer<'static>],
    /// The stapled OCSP response (empty when none).
    pub staple: &'a [u8],
    pub roots: &'a RootCertStore,
    pub extra_roots: &'a [CertificateDer<'static>],
    pub resolver: &'a TokioResolver,
    pub net: &'a NetOptions,
    pub cache: &'a Cache,
    pub deadline: Instant,
    pub now: Timestamp,
}

/// The leaf's facts, parsed from its DER.
pub fn leaf_of(cert: &X509Certificate<'_>) -> Leaf {
    let mut ocsp_urls = Vec::new();
    let mut crl_urls = Vec::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for ad in aia.iter() {
                    if ad.access_method.as_bytes() == AD_OCSP
                        && let GeneralName::URI(u) = &ad.access_location
                    {
                        ocsp_urls.push(u.to_string());
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for p in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        for n in names {
                            if let GeneralName::URI(u) = n {
                                crl_urls.push(u.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Leaf {
        serial: cert.tbs_certificate.raw_serial().to_vec(),
        issuer_name: cert.issuer().as_raw().to_vec(),
        ocsp_urls,
        crl_urls,
    }
}

/// The leaf's issuer: a presented certificate or a trust anchor whose
/// subject is the leaf's issuer and whose key verifies the leaf.
fn find_issuer(leaf: &X509Certificate<'_>, req: &Request<'_>) -> Option<Issuer> {
    let wanted = leaf.issuer().as_raw();
    let signs_leaf = |spki_der: &[u8]| {
        SubjectPublicKeyInfo::from_der(spki_der)
            .is_ok_and(|(_, k)| leaf.verify_signature(Some(&k)).is_ok())
    };
    let certs = req.chain.iter().skip(1).chain(req.extra_roots.iter());
    for der in certs {
        let Ok((_, c)) = X509Certificate::from_der(der.as_ref()) else {
            continue;
        };
        if c.subject().as_raw() == wanted && signs_leaf(c.public_key().raw) {
            return Issuer::new(wanted.to_vec(), c.public_key().raw.to_vec()).ok();
        }
    }
    for anchor in &req.roots.roots {
        // Anchors keep the Name and SPKI without their SEQUENCE headers.
        let name = der::item(der::SEQUENCE, anchor.subject.as_ref());
        if name != wanted {
            continue;
        }
        let spki = der::item(der::SEQUENCE, anchor.subject_public_key_info.as_ref());
        if signs_leaf(&spki) {
            return Issuer::new(name, spki).ok();
        }
    }
    None
}

/// Certificates besides the response's own that may be a delegated
/// responder's: the presented intermediates and the extra roots.
fn known_certs<'a>(req: &Request<'a>) -> Vec<&'a [u8]> {
    req.chain
        .iter()
        .skip(1)
        .chain(req.extra_roots.iter())
        .map(|c| c.as_ref())
        .collect()
}

/// What the sources said so far, for an `unknown` verdict.
#[derive(Default)]
struct Notes {
    /// The last source that answered anything at all.
    source: Option<RevocationSource>,
    parts: Vec<String>,
}

impl Notes {
    fn into_revocation(self, status: RevocationStatus) -> Revocation {
        Revocation {
            status,
            source: self.source,
            reason: None,
            revoked_at: None,
            detail: Some(self.parts.join("; ")),
        }
    }
}

fn answered(source: RevocationSource, status: ocsp::CertStatus, how: String) -> Revocation {
    match status {
        ocsp::CertStatus::Good => Revocation {
            status: RevocationStatus::Good,
            source: Some(source),
            reason: None,
            revoked_at: None,
            detail: Some(how),
        },
        ocsp::CertStatus::Revoked { at, reason } => Revocation {
            status: RevocationStatus::Revoked,
            source: Some(source),
            reason,
            revoked_at: Some(at),
            detail: Some(how),
        },
        ocsp::CertStatus::Unknown => Revocation {
            status: RevocationStatus::Unknown,
            source: Some(source),
            reason: None,
            revoked_at: None,
            detail: Some(how),
        },
    }
}

/// Checks the leaf of `req.chain` as the module docs say.
pub async fn check(req: Request<'_>) -> Revocation {
    if req.mode == RevocationMode::Off {
        return Revocation::not_checked();
    }
    let Some(leaf_der) = req.chain.first() else {
        return Revocation::without_source(RevocationStatus::NotChecked, "no certificate");
    };
    let Ok((_, cert)) = X509Certificate::from_der(leaf_der.as_ref()) else {
        return Revocation::without_source(
            RevocationStatus::NotChecked,
            "the certificate could not be parsed",
        );
    };
    let leaf = leaf_of(&cert);
    let network = matches!(req.mode, RevocationMode::Ocsp | RevocationMode::OcspCrl);
    if req.staple.is_empty() && !network {
        // No staple in "staple" mode: nothing to say (most results).
        return Revocation::not_checked();
    }
    let Some(issuer) = find_issuer(&cert, &req) else {
        return Revocation::without_source(
            RevocationStatus::Unknown,
            "the issuer's certificate was not found among the presented and trusted ones",
        );
    };
    let mut notes = Notes::default();
    if !req.staple.is_empty()
        && let Some(verdict) = from_staple(&req, &leaf, &issuer, &mut notes)
    {
        return verdict;
    }
    if !network {
        return notes.into_revocation(RevocationStatus::Unknown);
    }
    if let Some(verdict) = from_responders(&req, &leaf, &issuer, &mut notes).await {
        return verdict;
    }
    let crls = req.mode == RevocationMode::OcspCrl;
    if crls && let Some(verdict) = from_crls(&req, &leaf, &issuer, &mut notes).await {
        return verdict;
    }
    // Whether any responder or CRL was asked at all.
    let tried = !leaf.ocsp_urls.is_empty() || (crls && !leaf.crl_urls.is_empty());
    if !tried && req.staple.is_empty() {
        let what = if crls {
            "the certificate names no OCSP responder and no CRL distribution point"
        } else {
            "the certificate names no OCSP responder"
        };
        return Revocation::without_source(RevocationStatus::NotChecked, what);
    }
    if !tried {
        notes.parts.push(match req.mode {
            RevocationMode::OcspCrl => "no OCSP responder or CRL distribution point named".into(),
            _ => "no OCSP responder named".into(),
        });
    }
    notes.into_revocation(RevocationStatus::Unknown)
}

/// The stapled OCSP response's verdict, when it gives a final one; else
/// notes why not.
fn from_staple(
    req: &Request<'_>,
    leaf: &Leaf,
    issuer: &Issuer,
    notes: &mut Notes,
) -> Option<Revocation> {
    notes.source = Some(RevocationSource::Staple);
    match ocsp::verify(req.staple, leaf, issuer, &known_certs(req), req.now) {
        Ok(v) if v.status != ocsp::CertStatus::Unknown => {
            let how = match &v.stale {
                Some(why) => format!("stapled OCSP response, stale ({why}) but final"),
                None => "stapled OCSP response".into(),
            };
            return Some(answered(RevocationSource::Staple, v.status, how));
        }
        Ok(_) => notes
            .parts
            .push("the stapled OCSP response says the certificate is unknown".into()),
        Err(e) => notes.parts.push(format!("stapled response rejected: {e}")),
    }
    None
}

/// The first final verdict of the leaf's OCSP responders (at most
/// [`MAX_URLS`], cached answers first), caching it; else notes what each said.
async fn from_responders(
    req: &Request<'_>,
    leaf: &Leaf,
    issuer: &Issuer,
    notes: &mut Notes,
) -> Option<Revocation> {
    let cert_id = ocsp::cert_id(leaf, issuer);
    for url in leaf.ocsp_urls.iter().take(MAX_URLS) {
        let key = (url.clone(), cert_id.clone());
        let cached = cache_get(&req.cache.ocsp, &key, |v| v.next_update, req.now);
        let verified = match cached {
            Some(v) => Ok(v),
            None => ask_responder(req, url, leaf, issuer).await,
        };
        match verified {
            Ok(v) => {
                notes.source = Some(RevocationSource::Responder);
                if v.status == ocsp::CertStatus::Unknown {
                    notes.parts.push(format!(
                        "OCSP responder {url} does not know the certificate"
                    ));
                    continue;
                }
                let status = v.status.clone();
                let how = match &v.stale {
                    Some(why) => format!("OCSP responder {url}, stale ({why}) but final"),
                    None => format!("OCSP responder {url}"),
                };
                cache_put(
                    &req.cache.ocsp,
                    MAX_CACHED_ANSWERS,
                    key,
                    v,
                    |v| v.next_update,
                    req.now,
                );
                return Some(answered(RevocationSource::Responder, status, how));
            }
            Err((answered_at_all, e)) => {
                if answered_at_all {
                    notes.source = Some(RevocationSource::Responder);
                }
                notes.parts.push(format!("OCSP responder {url}: {e}"));
            }
        }
    }
    None
}

/// The verdict of the first of the leaf's CRLs (at most [`MAX_URLS`]) that
/// could be had and verified; else notes why none could.
async fn from_crls(
    req: &Request<'_>,
    leaf: &Leaf,
    issuer: &Issuer,
    notes: &mut Notes,
) -> Option<Revocation> {
    for url in leaf.crl_urls.iter().take(MAX_URLS) {
        match crl_for(req, url, issuer).await {
            Ok(list) => {
                let status = match list.lookup(&leaf.serial) {
                    Some(e) => ocsp::CertStatus::Revoked {
                        at: e.revoked_at.unwrap_or(list.this_update),
                        reason: e.reason.clone(),
                    },
                    None => ocsp::CertStatus::Good,
                };
                return Some(answered(
                    RevocationSource::Crl,
                    status,
                    format!("CRL {url}"),
                ));
            }
            Err((answered_at_all, e)) => {
                if answered_at_all {
                    notes.source = Some(RevocationSource::Crl);
                }
                notes.parts.push(format!("CRL {url}: {e}"));
            }
        }
    }
    None
}

/// Asks the responder at `url` about the leaf and verifies the answer: by
/// GET when the request fits a URL of [`MAX_GET_URL`] bytes (RFC 5019 §5,
/// RFC 6960 appendix A.1: what browsers send and what CDN-fronted
/// responders cache), else, or when the GET answer is unusable (an error
/// status, a body that does not verify), by POST. An unreachable responder
/// is not asked twice. The error says whether anything answered (for the
/// verdict's `source`).
async fn ask_responder(
    req: &Request<'_>,
    url: &str,
    leaf: &Leaf,
    issuer: &Issuer,
) -> Result<ocsp::Verified, (bool, String)> {
    let url = Url::parse(url).map_err(|e| (false, format!("not a URL: {e}")))?;
    let body = ocsp::request(leaf, issuer);
    let verify = |bytes: &[u8]| {
        ocsp::verify(bytes, leaf, issuer, &known_certs(req), req.now).map_err(|e| e.to_string())
    };
    let mut get_failed = None;
    if let Some(get_url) = get_url(&url, &body) {
        match fetch::fetch(
            req.resolver,
            req.net,
            &get_url,
            None,
            MAX_OCSP_RESPONSE_BYTES,
            req.deadline,
        )
        .await
        {
            Ok(bytes) => match verify(&bytes) {
                Ok(v) => return Ok(v),
                Err(e) => get_failed = Some(e),
            },
            Err(e) if !e.answered => return Err((false, e.message)),
            Err(e) => get_failed = Some(e.message),
        }
    }
    // Both methods' reasons, when both were tried.
    let both = |post: String| match &get_failed {
        Some(get) => format!("GET: {get}; POST: {post}"),
        None => post,
    };
    let bytes = fetch::fetch(
        req.resolver,
        req.net,
        &url,
        Some(body),
        MAX_OCSP_RESPONSE_BYTES,
        req.deadline,
    )
    .await
    .map_err(|e| (e.answered || get_failed.is_some(), both(e.message)))?;
    verify(&bytes).map_err(|e| (true, both(e)))
}

/// Longest OCSP GET URL, scheme and host included (RFC 5019 §5: requests
/// that fit are sent by GET).
const MAX_GET_URL: usize = 255;

/// `{url}/{percent-encoded base64 of the request}` (RFC 6960 A.1), when it
/// is at most [`MAX_GET_URL`] bytes and the responder URL has no query.
fn get_url(url: &Url, request: &[u8]) -> Option<Url> {
    if url.query().is_some() {
        return None;
    }
    let mut s = url.as_str().to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    for c in der::base64(request).chars() {
        match c {
            '+' => s.push_str("%2B"),
            '/' => s.push_str("%2F"),
            '=' => s.push_str("%3D"),
            c => s.push(c),
        }
    }
    if s.len() > MAX_GET_URL {
        return None;
    }
    Url::parse(&s).ok()
}

/// The verified CRL at `url` for `issuer`, from the cache or downloaded.
async fn crl_for(
    req: &Request<'_>,
    url: &str,
    issuer: &Issuer,
) -> Result<Arc<crl::Crl>, (bool, String)> {
    let key = (url.to_string(), issuer.spki_der.clone());
    if let Some(c) = cache_get(&req.cache.crls, &key, |c| c.next_update, req.now) {
        return Ok(c);
    }
    let gate = {
        let mut gates = req
            .cache
            .crl_gates
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if gates.len() >= MAX_CRL_GATES {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        gates.entry(key.clone()).or_default().clone()
    };
    let _turn = tokio::time::timeout_at(req.deadline, gate.lock())
        .await
        .map_err(|_| {
            (
                false,
                "no time left while another probe was downloading it".to_string(),
            )
        })?;
    // The probe that held the gate may have cached it meanwhile.
    if let Some(c) = cache_get(&req.cache.crls, &key, |c| c.next_update, req.now) {
        return Ok(c);
    }
    let parsed = Url::parse(url).map_err(|e| (false, format!("not a URL: {e}")))?;
    let bytes = fetch::fetch(
        req.resolver,
        req.net,
        &parsed,
        None,
        MAX_CRL_BYTES,
        req.deadline,
    )
    .await
    .map_err(|e| (e.answered, e.message))?;
    let list = Arc::new(crl::verify(&bytes, issuer, req.now).map_err(|e| (true, e))?);
    cache_put(
        &req.cache.crls,
        MAX_CACHED_CRLS,
        key,
        list.clone(),
        |c| c.next_update,
        req.now,
    );
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_urls_are_rfc6960_shaped_and_bounded() {
        let req = [0x30, 0x03, 0xfb, 0xff, 0xbf];
        let u = get_url(&Url::parse("http://ocsp.example/").unwrap(), &req).unwrap();
        assert_eq!(u.as_str(), "http://ocsp.example/MAP7%2F78%3D");
        // A path without a trailing slash gets one before the request.
        let u = get_url(&Url::parse("http://ocsp.example/a").unwrap(), &req).unwrap();
        assert_eq!(u.as_str(), "http://ocsp.example/a/MAP7%2F78%3D");
        // A URL with a query, or one over 255 bytes, goes by POST.
        assert!(get_url(&Url::parse("http://ocsp.example/?x=1").unwrap(), &req).is_none());
        let long = Url::parse(&format!("http://ocsp.example/{}", "p".repeat(240))).unwrap();
        assert!(get_url(&long, &req).is_none());
        let fits = Url::parse(&format!("http://ocsp.example/{}", "p".repeat(200))).unwrap();
        assert!(get_url(&fits, &req).is_some_and(|u| u.as_str().len() <= MAX_GET_URL));
    }
}
