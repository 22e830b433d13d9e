//! The RDAP bootstrap (RFC 9224): which server answers for which domain
//! suffix, as `[agent] rdap_bootstrap` names it or as shipped. Parsed with
//! the config; the domain probe ([`crate::probe::domain`]) looks servers up in it.

use std::collections::HashMap;

use serde_json::Value;
use url::Url;

/// The bootstrap shipped in the binary (a snapshot subset of IANA's file).
pub const BUILTIN_BOOTSTRAP: &str = include_str!("../../data/rdap-dns.json");

/// Largest bootstrap file accepted (IANA's is about 40 KB).
pub const MAX_BOOTSTRAP_BYTES: usize = 4 * 1024 * 1024;

/// Which RDAP server serves which domain suffix (RFC 9224 `services`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RdapBootstrap {
    /// Suffix (lowercase, no dots at the ends) → base URL (ends with `/`).
    servers: HashMap<String, Url>,
    /// `publication` of the file, for logs.
    pub publication: Option<String>,
}

impl RdapBootstrap {
    /// The shipped snapshot.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_BOOTSTRAP.as_bytes()).expect("the shipped RDAP bootstrap parses")
    }

    /// Parses an RFC 9224 bootstrap file (IANA's `dns.json`). Per service,
    /// an https URL is preferred over http.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_BOOTSTRAP_BYTES {
            return Err(format!(
                "{} bytes: larger than the {MAX_BOOTSTRAP_BYTES}-byte limit",
                bytes.len()
            ));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
        let services = v
            .get("services")
            .and_then(Value::as_array)
            .ok_or("no `services` array (not an RFC 9224 bootstrap file)")?;
        let mut servers = HashMap::new();
        for (i, s) in services.iter().enumerate() {
            let bad = || format!("services[{i}] is not [[suffixes], [urls]]");
            let pair = s.as_array().filter(|p| p.len() >= 2).ok_or_else(bad)?;
            let (Some(suffixes), Some(urls)) = (pair[0].as_array(), pair[1].as_array()) else {
                return Err(bad());
            };
            let urls: Vec<Url> = urls
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|u| Url::parse(u).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(with_slash)
                .collect();
            let Some(url) = urls.iter().find(|u| u.scheme() == "https").or(urls.first()) else {
                continue;
            };
            for suffix in suffixes.iter().filter_map(Value::as_str) {
                let suffix = suffix.trim_matches('.').to_ascii_lowercase();
                if !suffix.is_empty() {
                    servers.insert(suffix, url.clone());
                }
            }
        }
        if servers.is_empty() {
            return Err("no usable service (suffix with an http(s) URL)".into());
        }
        Ok(Self {
            servers,
            publication: v
                .get("publication")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// The base URL for `domain` (lowercase ASCII): the longest suffix listed.
    pub fn base_for(&self, domain: &str) -> Option<&Url> {
        let mut rest = domain;
        loop {
            if let Some(u) = self.servers.get(rest) {
                return Some(u);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// How many suffixes it lists.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether it lists none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

fn with_slash(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}
