//! Domain registration probe: asks the registry's RDAP server (RFC 9082,
//! 9083) about a domain and reports its expiry, registrar and status.
//!
//! # Which server
//! The check's `rdap_url` when set; otherwise the RDAP base URL the IANA
//! bootstrap (RFC 9224) lists for the domain's longest matching suffix
//! (its TLD, usually). The agent ships a snapshot subset of the bootstrap
//! ([`BUILTIN_BOOTSTRAP`]); `[agent] rdap_bootstrap` points at a newer,
//! complete file (IANA's `dns.json`).
//!
//! # Verdicts
//! - `domain_held`: a status of `client hold`, `server hold` or `pending
//!   delete` (RFC 8056's spaced lowercase forms, or EPP's `clientHold`,
//!   `serverHold`, `pendingDelete`): the registry has taken the domain off
//!   the air (or is about to).
//! - `domain_expired`: the `expiration` event lies in the past.
//! - `domain_lookup`: no usable answer: no RDAP server known, transport
//!   failure, a non-2xx status (404: the registry does not know the
//!   domain), more than [`MAX_RDAP_BYTES`], or not an RDAP domain object.
//! - Expiring within `warn_days` is **not** a failure: the domain still
//!   works, so it is no downtime for the contract. It is surfaced as
//!   `domain.expiring_soon` and through the expiry metric and its alerts.
//!   No `expiration` event (some registries publish none) is not a failure
//!   either: `expires_at` is then absent.
//!
//! # Hostile answers
//! The body is read up to [`MAX_RDAP_BYTES`] and parsed by serde_json (its
//! recursion limit stops deep nesting); strings taken from it are cut.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use slaprobe_wire::{DomainDetail, FailureClass, Timestamp};
use tokio::time::Instant;
use url::Url;

use super::{Outcome, bound};
use crate::config::DomainSpec;
pub use crate::config::rdap::{BUILTIN_BOOTSTRAP, MAX_BOOTSTRAP_BYTES, RdapBootstrap};

/// Largest RDAP answer read. Real domain answers are 2-20 KB.
pub const MAX_RDAP_BYTES: usize = 1024 * 1024;

/// Most status values kept in the result.
const MAX_STATUSES: usize = 20;

/// Statuses that take a domain off the air, normalised (see [`normalize_status`]).
const HELD: [&str; 3] = ["clienthold", "serverhold", "pendingdelete"];

/// `Client Hold`, `client hold`, `clientHold`, `client_hold` → `clienthold`.
pub fn normalize_status(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What an RDAP domain object says, as far as this probe cares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Registration {
    pub expires_at: Option<Timestamp>,
    pub registrar: Option<String>,
    pub statuses: Vec<String>,
}

/// Reads an RDAP domain answer (RFC 9083 §5.3).
pub fn parse_domain(body: &[u8]) -> Result<Registration, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let mut m = format!("not JSON ({e})");
        bound::cut(&mut m, 200);
        m
    })?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    match obj.get("objectClassName").and_then(Value::as_str) {
        Some(c) if c.eq_ignore_ascii_case("domain") => {}
        Some(c) => {
            let mut c = c.to_string();
            bound::cut(&mut c, 64);
            return Err(format!("objectClassName is {c:?}, not \"domain\""));
        }
        None => return Err("no objectClassName (not an RDAP domain object)".into()),
    }
    let mut reg = Registration::default();
    if let Some(events) = obj.get("events").and_then(Value::as_array) {
        for e in events {
            let action = e.get("eventAction").and_then(Value::as_str);
            if action.is_some_and(|a| a.eq_ignore_ascii_case("expiration")) {
                let date = e.get("eventDate").and_then(Value::as_str).unwrap_or("");
                let ts = parse_date(date).ok_or_else(|| {
                    let mut d = date.to_string();
                    bound::cut(&mut d, 64);
                    format!("expiration eventDate {d:?} is not an RFC 3339 date")
                })?;
                // Several expiration events: the earliest is the one that bites.
                reg.expires_at = Some(reg.expires_at.map_or(ts, |t| t.min(ts)));
            }
        }
    }
    if let Some(status) = obj.get("status").and_then(Value::as_array) {
        reg.statuses = status
            .iter()
            .filter_map(Value::as_str)
            .take(MAX_STATUSES)
            .map(|s| {
                let mut s = s.to_string();
                bound::cut(&mut s, 64);
                s
            })
            .collect();
    }
    reg.registrar = obj
        .get("entities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| {
            e.get("roles")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|r| r.as_str() == Some("registrar")))
        })
        .and_then(|e| vcard_fn(e).or_else(|| e.get("handle")?.as_str().map(str::to_string)))
        .map(|mut s| {
            bound::cut(&mut s, 256);
            s
        });
    Ok(reg)
}

/// The `fn` (formatted name) of an entity's jCard (RFC 7095).
fn vcard_fn(entity: &Value) -> Option<String> {
    let card = entity.get("vcardArray")?.as_array()?;
    card.get(1)?.as_array()?.iter().find_map(|prop| {
        let p = prop.as_array()?;
        (p.first()?.as_str()? == "fn").then(|| p.get(3)?.as_str().map(str::to_string))?
    })
}

/// RFC 3339 (`2026-12-01T00:00:00Z`, with or without fraction or offset).
fn parse_date(s: &str) -> Option<Timestamp> {
    s.trim().parse::<Timestamp>().ok()
}

/// Probes `spec`, finishing before `deadline`.
pub async fn probe(
    client: &reqwest::Client,
    bootstrap: &RdapBootstrap,
    spec: &DomainSpec,
    deadline: Instant,
    now: Timestamp,
) -> Outcome {
    let mut detail = DomainDetail {
        domain: spec.domain.clone(),
        ..Default::default()
    };
    let base = match spec
        .rdap_url
        .as_ref()
        .or_else(|| bootstrap.base_for(&spec.domain))
    {
        Some(b) => b.clone(),
        None => {
            return failed(
                detail,
                FailureClass::DomainLookup,
                format!(
                    "no RDAP server known for {} (set the check's rdap_url, or [agent] rdap_bootstrap to a current IANA dns.json)",
                    spec.domain
                ),
            );
        }
    };
    let url = match base.join(&format!("domain/{}", spec.domain)) {
        Ok(u) => u,
        Err(e) => {
            return failed(
                detail,
                FailureClass::DomainLookup,
                format!("cannot build the RDAP URL from {base}: {e}"),
            );
        }
    };
    detail.rdap_url = Some(url.to_string());
    // Finish a little before the deadline to say what was slow.
    let margin =
        (deadline.saturating_duration_since(Instant::now()) / 20).min(Duration::from_millis(50));
    let answer_by = deadline.checked_sub(margin).unwrap_or(deadline);
    let fetched = tokio::time::timeout_at(answer_by, fetch(client, &url)).await;
    let (status, body) = match fetched {
        Err(_) => {
            return failed(
                detail,
                FailureClass::DomainLookup,
                format!("no complete RDAP answer from {url} before the timeout"),
            );
        }
        Ok(Err(m)) => return failed(detail, FailureClass::DomainLookup, m),
        Ok(Ok(r)) => r,
    };
    detail.http_status = Some(status);
    if status == 404 {
        return failed(
            detail,
            FailureClass::DomainLookup,
            format!(
                "the registry's RDAP server does not know {} (404 from {url}): unregistered or deleted?",
                spec.domain
            ),
        );
    }
    if !(200..300).contains(&status) {
        return failed(
            detail,
            FailureClass::DomainLookup,
            format!("RDAP server answered HTTP {status} for {url}"),
        );
    }
    let reg = match parse_domain(&body) {
        Ok(r) => r,
        Err(m) => {
            return failed(
                detail,
                FailureClass::DomainLookup,
                format!("RDAP answer from {url}: {m}"),
            );
        }
    };
    detail.expires_at = reg.expires_at;
    detail.registrar = reg.registrar;
    detail.statuses = reg.statuses;
    if let Some(exp) = detail.expires_at {
        let days = (exp.as_second() - now.as_second()) as f64 / 86_400.0;
        detail.days_left = Some((days * 100.0).round() / 100.0);
        detail.expiring_soon = days < spec.warn_days;
    }
    let held: Vec<&String> = detail
        .statuses
        .iter()
        .filter(|s| HELD.contains(&normalize_status(s).as_str()))
        .collect();
    if !held.is_empty() {
        let message = format!(
            "{} is on hold at the registry (status {held:?}): it does not resolve",
            spec.domain
        );
        return failed(detail, FailureClass::DomainHeld, message);
    }
    if let (Some(exp), Some(days)) = (detail.expires_at, detail.days_left)
        && days < 0.0
    {
        let message = format!("{} expired {exp}", spec.domain);
        return failed(detail, FailureClass::DomainExpired, message);
    }
    Outcome {
        domain: Some(detail),
        ..Default::default()
    }
}

/// GET `url`, the body read up to [`MAX_RDAP_BYTES`].
async fn fetch(client: &reqwest::Client, url: &Url) -> Result<(u16, Vec<u8>), String> {
    let mut resp = client
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "application/rdap+json, application/json;q=0.9",
        )
        .send()
        .await
        .map_err(|e| format!("RDAP request to {url} failed: {}", error_chain(&e)))?;
    let status = resp.status().as_u16();
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RDAP_BYTES as u64)
    {
        return Err(format!(
            "RDAP answer from {url} announces {} bytes, more than the {MAX_RDAP_BYTES}-byte limit",
            resp.content_length().unwrap_or(0)
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("RDAP answer from {url} broke off: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_RDAP_BYTES {
            return Err(format!(
                "RDAP answer from {url} is larger than the {MAX_RDAP_BYTES}-byte limit"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// An error with its causes (reqwest's Display alone says "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn failed(detail: DomainDetail, class: FailureClass, message: String) -> Outcome {
    Outcome {
        domain: Some(detail),
        ..Outcome::failed(class, message)
    }
}

/// The shared RDAP client: rustls with ring and the system roots, a few
/// redirects (RDAP servers redirect to the authoritative one), no pooling
/// beyond reqwest's defaults.
pub fn rdap_client() -> Result<reqwest::Client, String> {
    let (roots, _source) = super::tls::system_roots();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("slaprobe-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_bootstrap_finds_servers() {
        let b = RdapBootstrap::builtin();
        assert_eq!(
            b.base_for("acme.com").map(Url::as_str),
            Some("https://rdap.verisign.com/com/v1/")
        );
        assert!(b.base_for("acme.example").is_none());
    }

    #[test]
    fn bootstrap_longest_suffix_and_https_first() {
        let b = RdapBootstrap::parse(
            br#"{"services":[[["example"],["http://a.test/rdap","https://a.test/rdap"]],[["co.example"],["https://b.test/"]]]}"#,
        )
        .unwrap();
        assert_eq!(
            b.base_for("acme.example").unwrap().as_str(),
            "https://a.test/rdap/"
        );
        assert_eq!(
            b.base_for("shop.co.example").unwrap().as_str(),
            "https://b.test/"
        );
        assert!(RdapBootstrap::parse(b"[]").is_err());
        assert!(RdapBootstrap::parse(b"{\"services\": 1}").is_err());
        assert!(RdapBootstrap::parse(b"garbage").is_err());
    }

    #[test]
    fn statuses_normalise() {
        for s in ["client hold", "clientHold", "Client Hold", "client_hold"] {
            assert_eq!(normalize_status(s), "clienthold");
        }
        assert_eq!(normalize_status("pending delete"), "pendingdelete");
    }

    #[test]
    fn hostile_bodies_are_errors() {
        let deep = "[".repeat(100_000);
        assert!(parse_domain(deep.as_bytes()).is_err());
        assert!(parse_domain(b"\xff\xfe garbage").is_err());
        assert!(parse_domain(br#"{"objectClassName":"entity"}"#).is_err());
        let bad_date = br#"{"objectClassName":"domain","events":[{"eventAction":"expiration","eventDate":"soon"}]}"#;
        assert!(parse_domain(bad_date).unwrap_err().contains("soon"));
    }
}
