//! Building a [`Check`] from a `[[checks]]` entry: the shared keys checked
//! here, each kind by its own builder; errors name `checks[NAME].key`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use slaprobe_wire::{CheckKind, CheckSpec};
use url::Url;

use super::anchor::TrustAnchor;
use super::*;

/// Validates a list of checks: each on its own, then names unique.
pub fn validate_checks(
    specs: &[CheckSpec],
    file: &Path,
    base: &Path,
) -> Result<Vec<Check>, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(specs.len());
    let mut shared = Interner::default();
    for (i, spec) in specs.iter().enumerate() {
        let check = Check::from_spec_in(spec, i, file, base, &mut shared)?;
        if !seen.insert(check.name.clone()) {
            return Err(ConfigError::new(
                file,
                format!("checks[{}].name", check.name),
                "duplicate check name; names must be unique",
            ));
        }
        out.push(check);
    }
    Ok(out)
}

impl Check {
    /// Validates one `[[checks]]` entry (index `i` in its file, for messages).
    /// Relative `ca_file` paths are taken from `base`. The shared parts
    /// (name, interval, timeout, which keys apply, locations) are checked
    /// here; each kind has its own builder.
    pub fn from_spec(
        spec: &CheckSpec,
        i: usize,
        file: &Path,
        base: &Path,
    ) -> Result<Check, ConfigError> {
        Self::from_spec_in(spec, i, file, base, &mut Interner::default())
    }

    /// [`Check::from_spec`], sharing trust sets and `resolve` maps with the
    /// checks built before it through `shared`.
    pub fn from_spec_in(
        spec: &CheckSpec,
        i: usize,
        file: &Path,
        base: &Path,
        shared: &mut Interner,
    ) -> Result<Check, ConfigError> {
        let cx = SpecCx::new(spec, i, file, base);
        if !valid_name(&spec.name) {
            return Err(cx.err(
                "name",
                format!(
                    "{:?} is not a valid check name (1-128 of letters, digits, - _ . : /)",
                    spec.name
                ),
            ));
        }
        let (interval, timeout) = cx.schedule()?;
        cx.only_keys_of_the_kind()?;
        let (probe, target) = match spec.kind {
            CheckKind::Http => {
                let h = cx.http(shared)?;
                let t = h.url.to_string();
                (ProbeSpec::Http(h), t)
            }
            CheckKind::Page => {
                let h = cx.http(shared)?;
                let t = h.url.to_string();
                (ProbeSpec::Page(h), t)
            }
            CheckKind::Browser => {
                let b = cx.browser(shared)?;
                let t = b.url.to_string();
                (ProbeSpec::Browser(b), t)
            }
            CheckKind::Dns => {
                let d = cx.dns()?;
                let t = format!("{} {}", d.query, d.record_type.as_str());
                (ProbeSpec::Dns(d), t)
            }
            CheckKind::Domain => {
                let d = cx.domain()?;
                let t = d.domain.clone();
                (ProbeSpec::Domain(d), t)
            }
            CheckKind::Tls => {
                let t = cx.tls(shared)?;
                let target = if t.host.contains(':') {
                    format!("[{}]:{}", t.host, t.port)
                } else {
                    format!("{}:{}", t.host, t.port)
                };
                (ProbeSpec::Tls(t), target)
            }
        };
        cx.locations()?;
        Ok(Check {
            name: spec.name.clone(),
            kind: spec.kind,
            interval,
            timeout,
            target,
            locations: spec.locations.clone(),
            probe,
            canary: spec.canary,
        })
    }
}

/// One `[[checks]]` entry being validated, and where it is (for messages).
pub(super) struct SpecCx<'a> {
    pub(super) spec: &'a CheckSpec,
    file: &'a Path,
    pub(super) base: &'a Path,
    /// `checks[<name>]`, or `checks[<index>]` while the name is unusable.
    label: String,
}

/// Which keys each kind takes (besides name, kind, interval, timeout, locations).
fn keys_of(kind: CheckKind) -> &'static [&'static str] {
    const NET: [&str; 6] = [
        "ip_version",
        "ca_file",
        "ca_pem",
        "resolve",
        "revocation",
        "revocation_required",
    ];
    match kind {
        CheckKind::Http => &[
            "url",
            "expect_status",
            "body_contains",
            "max_redirects",
            "max_body_bytes",
            NET[0],
            NET[1],
            NET[2],
            NET[3],
            NET[4],
            NET[5],
        ],
        CheckKind::Page => &[
            "url",
            "expect_status",
            "body_contains",
            "max_redirects",
            "max_body_bytes",
            "max_connections_per_origin",
            "max_connections",
            NET[0],
            NET[1],
            NET[2],
            NET[3],
            NET[4],
            NET[5],
        ],
        CheckKind::Dns => &[
            "query",
            "record_type",
            "nameservers",
            "expect_answers",
            "dnssec",
            "dnssec_trust_anchor",
            "dnssec_trust_anchor_records",
            "consistency",
            "serial_lag",
        ],
        CheckKind::Domain => &["domain", "warn_days", "rdap_url"],
        CheckKind::Tls => &[
            "host",
            "port",
            "warn_days",
            NET[0],
            NET[1],
            NET[2],
            NET[3],
            NET[4],
            NET[5],
        ],
        CheckKind::Browser => &[
            "url",
            "expect_status",
            "selector_present",
            "fail_on_js_error",
        ],
    }
}

impl<'a> SpecCx<'a> {
    fn new(spec: &'a CheckSpec, i: usize, file: &'a Path, base: &'a Path) -> Self {
        let label = if spec.name.is_empty() {
            format!("checks[{i}]")
        } else {
            format!("checks[{}]", spec.name)
        };
        Self {
            spec,
            file,
            base,
            label,
        }
    }

    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.label)
    }

    /// A bad value at key `k` of this check.
    pub(super) fn err(&self, k: &str, msg: String) -> ConfigError {
        ConfigError::new(self.file, self.key(k), msg)
    }

    /// A required key `k` of this check is not set.
    fn missing(&self, k: &str, msg: &str) -> ConfigError {
        ConfigError::missing(self.file, self.key(k), format!("missing: {msg}"))
    }

    /// `interval` (at least 1s) and `timeout` (more than 0, at most the interval).
    fn schedule(&self) -> Result<(Duration, Duration), ConfigError> {
        let spec = self.spec;
        let interval = match &spec.interval {
            Some(s) => parse_duration(self.file, &self.key("interval"), s)?,
            None => DEFAULT_INTERVAL,
        };
        if interval < Duration::from_secs(1) {
            return Err(self.err("interval", "must be at least 1s".into()));
        }
        let timeout = match &spec.timeout {
            Some(s) => {
                let t = parse_duration(self.file, &self.key("timeout"), s)?;
                if t.is_zero() {
                    return Err(self.err("timeout", "must be more than 0s".into()));
                }
                if t > interval {
                    return Err(self.err(
                        "timeout",
                        format!(
                            "{s} is longer than the interval ({}); probes would overlap",
                            humantime::format_duration(interval)
                        ),
                    ));
                }
                t
            }
            None => DEFAULT_TIMEOUT.min(interval),
        };
        Ok((interval, timeout))
    }

    /// Keys that do not apply to the kind are mistakes worth reporting.
    fn only_keys_of_the_kind(&self) -> Result<(), ConfigError> {
        let spec = self.spec;
        let set: [(&str, bool); 29] = [
            ("url", spec.url.is_some()),
            ("expect_status", spec.expect_status.is_some()),
            ("body_contains", spec.body_contains.is_some()),
            ("max_redirects", spec.max_redirects.is_some()),
            ("max_body_bytes", spec.max_body_bytes.is_some()),
            (
                "max_connections_per_origin",
                spec.max_connections_per_origin.is_some(),
            ),
            ("max_connections", spec.max_connections.is_some()),
            ("ip_version", spec.ip_version.is_some()),
            ("ca_file", spec.ca_file.is_some()),
            ("ca_pem", spec.ca_pem.is_some()),
            ("resolve", spec.resolve.is_some()),
            ("query", spec.query.is_some()),
            ("record_type", spec.record_type.is_some()),
            ("nameservers", spec.nameservers.is_some()),
            ("expect_answers", spec.expect_answers.is_some()),
            ("host", spec.host.is_some()),
            ("port", spec.port.is_some()),
            ("warn_days", spec.warn_days.is_some()),
            ("revocation", spec.revocation.is_some()),
            ("revocation_required", spec.revocation_required.is_some()),
            ("dnssec", spec.dnssec.is_some()),
            ("dnssec_trust_anchor", spec.dnssec_trust_anchor.is_some()),
            (
                "dnssec_trust_anchor_records",
                spec.dnssec_trust_anchor_records.is_some(),
            ),
            ("consistency", spec.consistency.is_some()),
            ("serial_lag", spec.serial_lag.is_some()),
            ("domain", spec.domain.is_some()),
            ("rdap_url", spec.rdap_url.is_some()),
            ("selector_present", spec.selector_present.is_some()),
            ("fail_on_js_error", spec.fail_on_js_error.is_some()),
        ];
        let allowed = keys_of(spec.kind);
        match set
            .iter()
            .find(|(k, is_set)| *is_set && !allowed.contains(k))
        {
            Some((k, _)) => Err(ConfigError::unknown_key(
                self.file,
                self.key(k),
                format!("does not apply to a {} check", spec.kind),
            )),
            None => Ok(()),
        }
    }

    /// `locations`: omitted, or a non-empty list of valid names.
    fn locations(&self) -> Result<(), ConfigError> {
        let Some(locs) = &self.spec.locations else {
            return Ok(());
        };
        if locs.is_empty() {
            return Err(self.err(
                "locations",
                "empty list; omit it to run the check everywhere".into(),
            ));
        }
        if let Some(bad) = locs.iter().find(|l| !valid_name(l)) {
            return Err(self.err("locations", format!("{bad:?} is not a valid location")));
        }
        Ok(())
    }

    /// An http or page check.
    fn http(&self, shared: &mut Interner) -> Result<HttpSpec, ConfigError> {
        let spec = self.spec;
        let raw = spec
            .url
            .as_deref()
            .ok_or_else(|| self.missing("url", &format!("a {} check needs a URL", spec.kind)))?;
        let url =
            Url::parse(raw).map_err(|e| self.err("url", format!("invalid URL {raw:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self.err(
                "url",
                format!("{raw:?}: only http:// and https:// are supported"),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(self.err("url", format!("{raw:?} has no host")));
        }
        if let Some(codes) = &spec.expect_status {
            if codes.is_empty() {
                return Err(self.err(
                    "expect_status",
                    "empty list; omit it to accept any 2xx/3xx".into(),
                ));
            }
            if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
                return Err(self.err(
                    "expect_status",
                    format!("{bad} is not an HTTP status code (100-599)"),
                ));
            }
        }
        if spec.body_contains.as_deref() == Some("") {
            return Err(self.err(
                "body_contains",
                "empty string; omit it to skip the content check".into(),
            ));
        }
        let max_body_bytes = spec.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(self.err("max_body_bytes", "must be at least 1".into()));
        }
        let conns = |k: &str, v: Option<u32>, default: usize| match v {
            None => Ok(default),
            Some(n @ 1..=1024) => Ok(n as usize),
            Some(n) => Err(self.err(k, format!("{n} must be between 1 and 1024"))),
        };
        Ok(HttpSpec {
            url,
            expect_status: spec.expect_status.clone(),
            body_contains: spec.body_contains.clone(),
            max_redirects: spec.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
            max_body_bytes,
            max_connections_per_origin: conns(
                "max_connections_per_origin",
                spec.max_connections_per_origin,
                DEFAULT_PAGE_CONNECTIONS_PER_ORIGIN,
            )?,
            max_connections: conns(
                "max_connections",
                spec.max_connections,
                DEFAULT_PAGE_CONNECTIONS,
            )?,
            net: self.net(shared)?,
        })
    }

    /// A browser check: the URL and status rules of an http check, plus
    /// the browser's own assertions.
    fn browser(&self, shared: &mut Interner) -> Result<BrowserSpec, ConfigError> {
        let spec = self.spec;
        let h = self.http(shared)?;
        if let Some(sel) = &spec.selector_present
            && (sel.trim().is_empty() || sel.len() > 1024)
        {
            return Err(self.err(
                "selector_present",
                "must be a CSS selector of 1 to 1024 characters".into(),
            ));
        }
        Ok(BrowserSpec {
            url: h.url,
            expect_status: h.expect_status,
            selector_present: spec.selector_present.clone(),
            fail_on_js_error: spec.fail_on_js_error.unwrap_or(false),
        })
    }

    /// A dns check.
    fn dns(&self) -> Result<DnsSpec, ConfigError> {
        let spec = self.spec;
        let query = spec
            .query
            .clone()
            .ok_or_else(|| self.missing("query", "the name to look up"))?;
        if query.is_empty() || query.len() > 253 {
            return Err(self.err("query", format!("{query:?} is not a valid domain name")));
        }
        let rt = spec.record_type.as_deref().unwrap_or("A");
        let record_type = RecordType::parse(rt).ok_or_else(|| {
            self.err(
                "record_type",
                format!("{rt:?} is not one of A AAAA CNAME MX TXT NS SOA CAA"),
            )
        })?;
        let mut nameservers = Vec::new();
        for ns in spec.nameservers.iter().flatten() {
            nameservers.push(parse_nameserver(ns).ok_or_else(|| {
                self.err("nameservers", format!("{ns:?} is not ip or ip:port (e.g. \"192.0.2.53\", \"127.0.0.1:5353\", \"[::1]:53\")"))
            })?);
        }
        let expect_answers = spec
            .expect_answers
            .as_ref()
            .map(|v| v.iter().map(|a| trim_answer(a)).collect());
        let dnssec = self.dnssec()?;
        let consistency = self.consistency(record_type, nameservers.len())?;
        Ok(DnsSpec {
            query,
            record_type,
            nameservers,
            expect_answers,
            dnssec,
            consistency,
        })
    }

    /// `dnssec`, `dnssec_trust_anchor` (a file, relative to the config's
    /// directory) and `dnssec_trust_anchor_records` (inline).
    fn dnssec(&self) -> Result<Option<Arc<TrustAnchor>>, ConfigError> {
        let spec = self.spec;
        let on = spec.dnssec.unwrap_or(false);
        let anchor_key = if spec.dnssec_trust_anchor.is_some() {
            Some("dnssec_trust_anchor")
        } else if spec.dnssec_trust_anchor_records.is_some() {
            Some("dnssec_trust_anchor_records")
        } else {
            None
        };
        if !on {
            return match anchor_key {
                Some(k) => Err(self.err(
                    k,
                    "applies only with dnssec = true (the answers are not validated otherwise)"
                        .into(),
                )),
                None => Ok(None),
            };
        }
        let mut text = String::new();
        if let Some(path) = &spec.dnssec_trust_anchor {
            let path = self.base.join(path);
            text = std::fs::read_to_string(&path).map_err(|e| {
                self.err(
                    "dnssec_trust_anchor",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            TrustAnchor::parse(&text)
                .map_err(|m| self.err("dnssec_trust_anchor", format!("{}: {m}", path.display())))?;
        }
        if let Some(inline) = &spec.dnssec_trust_anchor_records {
            TrustAnchor::parse(inline).map_err(|m| self.err("dnssec_trust_anchor_records", m))?;
            text.push('\n');
            text.push_str(inline);
        }
        let anchor = if text.trim().is_empty() {
            TrustAnchor::iana_root()
        } else {
            TrustAnchor::parse(&text).map_err(|m| self.err("dnssec_trust_anchor", m))?
        };
        Ok(Some(Arc::new(anchor)))
    }

    /// `consistency` and `serial_lag`.
    fn consistency(
        &self,
        record_type: RecordType,
        nameservers: usize,
    ) -> Result<Option<Consistency>, ConfigError> {
        let spec = self.spec;
        if spec.consistency != Some(true) {
            if spec.serial_lag.is_some() {
                return Err(self.err("serial_lag", "applies only with consistency = true".into()));
            }
            return Ok(None);
        }
        if !matches!(record_type, RecordType::Ns | RecordType::Soa) {
            return Err(self.err(
                "consistency",
                format!("applies to NS and SOA checks, not {}", record_type.as_str()),
            ));
        }
        if nameservers == 0 {
            return Err(self.err(
                "consistency",
                "needs `nameservers`: the zone's authoritative servers to compare".into(),
            ));
        }
        if spec.serial_lag.is_some() && record_type != RecordType::Soa {
            return Err(self.err(
                "serial_lag",
                "applies to SOA checks (NS answers carry no serial)".into(),
            ));
        }
        Ok(Some(Consistency {
            serial_lag: spec.serial_lag.unwrap_or(0),
        }))
    }

    /// A domain check.
    fn domain(&self) -> Result<DomainSpec, ConfigError> {
        let spec = self.spec;
        let raw = spec.domain.as_deref().ok_or_else(|| {
            self.missing("domain", "the registered domain, e.g. \"acme.example\"")
        })?;
        let trimmed = raw.trim().trim_end_matches('.');
        let domain = match url::Host::parse(trimmed) {
            Ok(url::Host::Domain(d)) if d.contains('.') && d.len() <= 253 => d.to_string(),
            _ => {
                return Err(self.err(
                    "domain",
                    format!("{raw:?} is not a registered domain name (e.g. \"acme.example\")"),
                ));
            }
        };
        let warn_days = spec.warn_days.unwrap_or(30.0);
        if !warn_days.is_finite() || warn_days < 0.0 {
            return Err(self.err(
                "warn_days",
                format!("{warn_days} must be a number of days >= 0"),
            ));
        }
        let rdap_url = match &spec.rdap_url {
            None => None,
            Some(s) => {
                let mut url = Url::parse(s)
                    .map_err(|e| self.err("rdap_url", format!("invalid URL {s:?}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(self.err(
                        "rdap_url",
                        format!("{s:?} must be an http:// or https:// URL with a host"),
                    ));
                }
                if !url.path().ends_with('/') {
                    let p = format!("{}/", url.path());
                    url.set_path(&p);
                }
                Some(url)
            }
        };
        Ok(DomainSpec {
            domain,
            warn_days,
            rdap_url,
        })
    }

    /// A tls check.
    fn tls(&self, shared: &mut Interner) -> Result<TlsSpec, ConfigError> {
        let spec = self.spec;
        let host = spec
            .host
            .clone()
            .ok_or_else(|| self.missing("host", "the host whose certificate to check"))?;
        if host.is_empty() {
            return Err(self.err("host", "empty host".into()));
        }
        let port = spec.port.unwrap_or(443);
        if port == 0 {
            return Err(self.err("port", "0 is not a port".into()));
        }
        let warn_days = spec.warn_days.unwrap_or(14.0);
        if !warn_days.is_finite() || warn_days < 0.0 {
            return Err(self.err(
                "warn_days",
                format!("{warn_days} must be a number of days >= 0"),
            ));
        }
        Ok(TlsSpec {
            host,
            port,
            warn_days,
            net: self.net(shared)?,
        })
    }
}
