//! Configuration: figment builds the raw structs (TOML file, then `SLAPROBE_`
//! environment with `__` for nesting); a second stage checks across fields and
//! builds the typed config the probes and scheduler use.
//!
//! Errors always name the file, the key and what is wrong; `main` turns them
//! into exit status 2.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use slaprobe_wire::{CheckKind, CheckSpec};
use url::Url;

use crate::probe::dnssec::TrustAnchor;
use crate::probe::domain::RdapBootstrap;

/// Default probe interval when a check sets none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default probe timeout when a check sets none (capped at the interval).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on the response body an HTTP probe reads.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of redirects an HTTP probe follows.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
/// Default connections a page probe opens to one origin at once (as browsers).
pub const DEFAULT_PAGE_CONNECTIONS_PER_ORIGIN: usize = 6;
/// Default connections a page probe opens at once in all.
pub const DEFAULT_PAGE_CONNECTIONS: usize = 32;
/// Default spool bound.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// Default number of browser probes at once (each is a Chromium tab).
pub const DEFAULT_BROWSER_CONCURRENCY: usize = 2;
/// Default memory (PSS of the whole process tree) over which Chromium is restarted.
pub const DEFAULT_BROWSER_MAX_RSS: u64 = 1024 * 1024 * 1024;

/// What kind of configuration problem it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A key that does not exist (or does not apply where it is set).
    UnknownKey,
    /// A key that is set to something it cannot be.
    BadValue,
    /// A required key that is not set.
    MissingKey,
    /// The file itself: missing, unreadable, not TOML.
    BadFile,
}

/// A configuration problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The config file (or `-` when there is none).
    pub file: PathBuf,
    /// Dotted key, e.g. `checks[acme-www].url`; empty for the whole file.
    pub key: String,
    /// Where the bad value came from when not the file, e.g. `env SLAPROBE_AGENT__ID`.
    pub origin: Option<String>,
    /// What kind of problem, next to where ([`ConfigError::key`]).
    pub kind: ConfigErrorKind,
    pub message: String,
}

impl ConfigError {
    /// A bad value at `key`.
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::with_kind(ConfigErrorKind::BadValue, file, key, message)
    }

    /// A required `key` that is not set.
    pub fn missing(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::with_kind(ConfigErrorKind::MissingKey, file, key, message)
    }

    /// A `key` that does not exist or does not apply there.
    pub fn unknown_key(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::with_kind(ConfigErrorKind::UnknownKey, file, key, message)
    }

    pub fn with_kind(
        kind: ConfigErrorKind,
        file: &Path,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            key: key.into(),
            origin: None,
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config error in {}", self.file.display())?;
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads `path` (TOML, must exist) overlaid with `SLAPROBE_*` environment
/// variables into `T`. Variables in `ignore_env` (lowercase, prefix stripped)
/// are not treated as config keys.
pub fn load_layers<T: DeserializeOwned>(
    path: &Path,
    ignore_env: &[&str],
) -> Result<T, ConfigError> {
    let mut ignored: Vec<&str> = vec!["log", "log_format"];
    ignored.extend_from_slice(ignore_env);
    let figment = Figment::new()
        .merge(Toml::file_exact(path))
        // Every config key lives in a section (`agent.id`, `collector.listen`),
        // so only variables with a `__` are config: SLAPROBE_LOG and other
        // non-config variables never make a config invalid, while a typo in
        // a nested key (SLAPROBE_AGENT__IDD) is still an unknown-key error.
        .merge(
            Env::prefixed("SLAPROBE_")
                .filter(|k| k.as_str().contains("__"))
                .split("__")
                .ignore(&ignored),
        );
    figment.extract::<T>().map_err(|err| {
        // Extraction stops at the first problem; report it precisely.
        let e = err
            .into_iter()
            .next()
            .expect("a figment error holds at least one error");
        let key = e.path.join(".");
        let origin = e.metadata.as_ref().and_then(|md| {
            if md.source.as_ref().and_then(|s| s.file_path()).is_some() {
                None
            } else if md.name.contains("nvironment") {
                Some(format!("env SLAPROBE_{}", e.path.join("__").to_uppercase()))
            } else {
                Some(md.name.to_string())
            }
        });
        let message = e.kind.to_string().trim().replace('\n', " ");
        use figment::error::Kind;
        let kind = match &e.kind {
            Kind::UnknownField(..) | Kind::UnknownVariant(..) => ConfigErrorKind::UnknownKey,
            Kind::MissingField(..) => ConfigErrorKind::MissingKey,
            // No key: the file could not be read or parsed at all.
            Kind::Message(_) if e.path.is_empty() => ConfigErrorKind::BadFile,
            _ => ConfigErrorKind::BadValue,
        };
        ConfigError {
            file: path.to_path_buf(),
            key,
            origin,
            kind,
            message,
        }
    })
}

/// A secret read from the config (agent token). Never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[agent]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentSection {
    pub id: Option<String>,
    pub location: Option<String>,
    pub collector: Option<String>,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub spool_dir: Option<PathBuf>,
    /// Most probes in flight at once (default 256).
    pub concurrency: Option<usize>,
    /// Ship a batch when this many results wait (default 500).
    pub batch_max: Option<usize>,
    /// Ship at least this often when results wait (default "1s").
    pub batch_interval: Option<String>,
    /// How often to pull checks from the collector (default "60s").
    pub checks_refresh: Option<String>,
    /// Extra root to trust for an https collector.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for a collector that requires mTLS.
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Self-metrics listener, e.g. "127.0.0.1:9465" (optional).
    pub metrics_listen: Option<String>,
    /// Spool bound in bytes (default 512 MiB).
    pub spool_max_bytes: Option<u64>,
    /// How often the spool is fsynced (default "1s"; "0s" = every append).
    pub spool_fsync: Option<String>,
    /// Refuse a plain `http://` collector that is not on loopback (default
    /// false: such a collector only gets a warning).
    pub require_tls: Option<bool>,
    /// An RDAP bootstrap file (IANA's `dns.json`) newer than the shipped one.
    pub rdap_bootstrap: Option<PathBuf>,
    /// browser checks: the Chromium binary (default: `chromium` on PATH).
    pub chromium_path: Option<PathBuf>,
    /// browser checks: most probes at once (default 2).
    pub browser_concurrency: Option<usize>,
    /// browser checks: restart Chromium above this memory, bytes or "1GiB" (default 1 GiB).
    pub browser_max_rss: Option<ByteSize>,
}

/// A size in bytes: a number, or a string with a unit ("512MiB", "1GiB", "800MB").
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    /// The size in bytes, or what is wrong with it.
    pub fn bytes(&self) -> Result<u64, String> {
        let s = match self {
            Self::Bytes(n) => return Ok(*n),
            Self::Text(s) => s.trim(),
        };
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "g" | "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            u => return Err(format!("{s:?}: unknown unit {u:?} (use B, KiB, MiB, GiB)")),
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size (e.g. \"1GiB\", \"512MiB\")"))?;
        Ok((n * mult as f64) as u64)
    }
}

/// How the agent runs Chromium for browser checks.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// The binary; a bare name is looked up on PATH.
    pub chromium_path: PathBuf,
    /// Most browser probes at once.
    pub concurrency: usize,
    /// Memory of the browser's process tree over which it is restarted.
    pub max_rss: u64,
}

impl Default for BrowserSettings {
    fn default() -> Self {
        Self {
            chromium_path: PathBuf::from("chromium"),
            concurrency: DEFAULT_BROWSER_CONCURRENCY,
            max_rss: DEFAULT_BROWSER_MAX_RSS,
        }
    }
}

/// An agent config file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentFile {
    #[serde(default)]
    pub agent: RawAgentSection,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
}

/// The validated `[agent]` section.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub id: String,
    pub location: String,
    pub collector: Option<Url>,
    pub token: Option<Secret>,
    pub spool_dir: Option<PathBuf>,
    pub concurrency: usize,
    pub batch_max: usize,
    pub batch_interval: Duration,
    pub checks_refresh: Duration,
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key for mTLS to the collector (both or neither).
    pub tls_client: Option<(PathBuf, PathBuf)>,
    pub metrics_listen: Option<SocketAddr>,
    pub spool_max_bytes: u64,
    pub spool_fsync: Duration,
    /// A plain-http collector off loopback is an error, not a warning.
    pub require_tls: bool,
    /// `rdap_bootstrap`, read and parsed (None: the shipped snapshot).
    pub rdap_bootstrap: Option<Arc<RdapBootstrap>>,
    /// Chromium for browser checks.
    pub browser: BrowserSettings,
}

impl AgentSettings {
    /// The warning for a collector reached in clear text over the network:
    /// the bearer token (and every result) would cross it readable by anyone
    /// on the path. `None` for https or a loopback collector.
    pub fn cleartext_collector_risk(&self) -> Option<String> {
        let url = self.collector.as_ref()?;
        cleartext_risk(url)
    }
}

/// See [`AgentSettings::cleartext_collector_risk`].
fn cleartext_risk(url: &Url) -> Option<String> {
    if url.scheme() != "http" {
        return None;
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    };
    (!loopback).then(|| {
        format!(
            "agent.collector {url} is plain http to a non-loopback host: the agent's token and every result cross the network unencrypted, readable and replayable by anyone on the path; use https:// (set agent.require_tls = true to refuse this)"
        )
    })
}

/// A validated agent config: settings plus local checks.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub file: PathBuf,
    pub agent: AgentSettings,
    pub checks: Vec<Check>,
}

impl AgentConfig {
    /// Loads and validates an agent config file (plus environment).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw: RawAgentFile = load_layers(path, &[])?;
        Self::from_raw(raw, path)
    }

    pub fn from_raw(raw: RawAgentFile, file: &Path) -> Result<Self, ConfigError> {
        let base = base_dir(file);
        let agent = AgentSettings::from_raw(raw.agent, file, &base)?;
        let checks = validate_checks(&raw.checks, file, &base)?;
        Ok(Self {
            file: file.to_path_buf(),
            agent,
            checks,
        })
    }

    /// Problems that only matter for `run` (probing once needs none of these).
    pub fn require_for_run(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: &str| Err(ConfigError::missing(&self.file, key, msg));
        if self.agent.collector.is_none() {
            return err(
                "agent.collector",
                "missing: `run` streams results to a collector, e.g. \"http://127.0.0.1:9464\"",
            );
        }
        if self.agent.token.is_none() {
            return err(
                "agent.token",
                "missing: set `token` or `token_file` (the collector knows its SHA-256)",
            );
        }
        if self.agent.spool_dir.is_none() {
            return err(
                "agent.spool_dir",
                "missing: `run` keeps its sequence number and unacked results there",
            );
        }
        Ok(())
    }
}

/// The directory relative paths in `file` are resolved from (its own; `.`
/// for a bare file name). The same rule for the agent's and the collector's
/// config.
pub fn base_dir(file: &Path) -> PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Parses a humantime duration ("30s", "5m"), naming the key on error.
pub fn parse_duration(file: &Path, key: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        ConfigError::new(
            file,
            key,
            format!("invalid duration {value:?} ({e}); write e.g. \"30s\", \"5m\", \"1h\""),
        )
    })
}

/// The rule for agent ids, locations and check names, in the agent's and
/// the collector's config: 1-128 of ASCII letters, digits and `- _ . : /`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
}

impl AgentSettings {
    fn from_raw(raw: RawAgentSection, file: &Path, base: &Path) -> Result<Self, ConfigError> {
        let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
        let missing = |key: &str, msg: String| ConfigError::missing(file, key, msg);
        let id = raw.id.ok_or_else(|| {
            missing(
                "agent.id",
                "missing: every agent needs a unique id, e.g. \"ams-1\"".into(),
            )
        })?;
        if !valid_name(&id) {
            return Err(err(
                "agent.id",
                format!("{id:?} is not a valid id (letters, digits, - _ . : / only)"),
            ));
        }
        let location = raw.location.ok_or_else(|| {
            missing(
                "agent.location",
                "missing: the vantage point this agent probes from, e.g. \"ams\"".into(),
            )
        })?;
        if !valid_name(&location) {
            return Err(err(
                "agent.location",
                format!("{location:?} is not a valid location (letters, digits, - _ . : / only)"),
            ));
        }
        let collector = match raw.collector {
            None => None,
            Some(s) => {
                let url = Url::parse(&s)
                    .map_err(|e| err("agent.collector", format!("invalid URL {s:?}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(err(
                        "agent.collector",
                        format!("{s:?} must be an http:// or https:// URL with a host"),
                    ));
                }
                if raw.require_tls == Some(true)
                    && let Some(risk) = cleartext_risk(&url)
                {
                    return Err(err(
                        "agent.collector",
                        format!("require_tls is set: {risk}"),
                    ));
                }
                Some(url)
            }
        };
        let token = match (raw.token, raw.token_file) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "agent.token_file",
                    "set either `token` or `token_file`, not both".into(),
                ));
            }
            (Some(t), None) => Some(t),
            (None, Some(p)) => {
                let p = base.join(p);
                let s = std::fs::read_to_string(&p).map_err(|e| {
                    err(
                        "agent.token_file",
                        format!("cannot read {}: {e}", p.display()),
                    )
                })?;
                Some(Secret::new(s.trim()))
            }
            (None, None) => None,
        };
        if let Some(t) = &token
            && t.expose().is_empty()
        {
            return Err(err("agent.token", "empty token".into()));
        }
        let concurrency = raw.concurrency.unwrap_or(256);
        if concurrency == 0 {
            return Err(err("agent.concurrency", "must be at least 1".into()));
        }
        let batch_max = raw.batch_max.unwrap_or(500);
        if !(1..=10_000).contains(&batch_max) {
            return Err(err(
                "agent.batch_max",
                format!("{batch_max} is out of range 1..=10000"),
            ));
        }
        let dur =
            |key: &str, v: Option<String>, default: Duration| -> Result<Duration, ConfigError> {
                v.map_or(Ok(default), |s| parse_duration(file, key, &s))
            };
        let batch_interval = dur(
            "agent.batch_interval",
            raw.batch_interval,
            Duration::from_secs(1),
        )?;
        if batch_interval.is_zero() {
            return Err(err("agent.batch_interval", "must be more than 0s".into()));
        }
        let checks_refresh = dur(
            "agent.checks_refresh",
            raw.checks_refresh,
            Duration::from_secs(60),
        )?;
        if checks_refresh < Duration::from_secs(1) {
            return Err(err("agent.checks_refresh", "must be at least 1s".into()));
        }
        let spool_fsync = dur("agent.spool_fsync", raw.spool_fsync, Duration::from_secs(1))?;
        let metrics_listen = match raw.metrics_listen {
            None => None,
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|e| {
                err(
                    "agent.metrics_listen",
                    format!("{s:?} is not an ip:port address ({e})"),
                )
            })?),
        };
        let tls_client = match (raw.tls_cert_file, raw.tls_key_file) {
            (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    "agent.tls_key_file",
                    "is required with tls_cert_file".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "agent.tls_cert_file",
                    "is required with tls_key_file".into(),
                ));
            }
        };
        let rdap_bootstrap = match raw.rdap_bootstrap {
            None => None,
            Some(p) => {
                let p = base.join(p);
                let bytes = std::fs::read(&p).map_err(|e| {
                    err(
                        "agent.rdap_bootstrap",
                        format!("cannot read {}: {e}", p.display()),
                    )
                })?;
                let b = RdapBootstrap::parse(&bytes).map_err(|m| {
                    err(
                        "agent.rdap_bootstrap",
                        format!("{}: {m} (expected IANA's dns.json, RFC 9224)", p.display()),
                    )
                })?;
                Some(Arc::new(b))
            }
        };
        let spool_max_bytes = raw.spool_max_bytes.unwrap_or(DEFAULT_SPOOL_MAX_BYTES);
        if spool_max_bytes < 1024 * 1024 {
            return Err(err(
                "agent.spool_max_bytes",
                "must be at least 1 MiB (1048576)".into(),
            ));
        }
        let browser_concurrency = raw
            .browser_concurrency
            .unwrap_or(DEFAULT_BROWSER_CONCURRENCY);
        if !(1..=64).contains(&browser_concurrency) {
            return Err(err(
                "agent.browser_concurrency",
                format!("{browser_concurrency} is out of range 1..=64"),
            ));
        }
        let max_rss = match &raw.browser_max_rss {
            None => DEFAULT_BROWSER_MAX_RSS,
            Some(b) => b.bytes().map_err(|m| err("agent.browser_max_rss", m))?,
        };
        if max_rss < 64 * 1024 * 1024 {
            return Err(err(
                "agent.browser_max_rss",
                format!("{max_rss} bytes is less than 64 MiB; Chromium needs more to load a page"),
            ));
        }
        let browser = BrowserSettings {
            chromium_path: raw
                .chromium_path
                .map(|p| {
                    if p.components().count() > 1 {
                        base.join(p)
                    } else {
                        p
                    }
                })
                .unwrap_or_else(|| PathBuf::from("chromium")),
            concurrency: browser_concurrency,
            max_rss,
        };
        Ok(Self {
            id,
            location,
            collector,
            token,
            spool_dir: raw.spool_dir.map(|p| base.join(p)),
            concurrency,
            batch_max,
            batch_interval,
            checks_refresh,
            ca_file: raw.ca_file.map(|p| base.join(p)),
            tls_client,
            metrics_listen,
            spool_max_bytes,
            spool_fsync,
            require_tls: raw.require_tls.unwrap_or(false),
            rdap_bootstrap,
            browser,
        })
    }
}

/// A validated check, ready to probe.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    /// Bounds the whole probe, every phase included.
    pub timeout: Duration,
    /// What is probed, for humans and the `_info` metric.
    pub target: String,
    /// Collector side: the locations that run it (None = all).
    pub locations: Option<Vec<String>>,
    pub probe: ProbeSpec,
    /// The spec it was built from (what the collector hands to agents).
    pub spec: CheckSpec,
}

/// What to probe, by kind.
#[derive(Debug, Clone)]
pub enum ProbeSpec {
    Http(HttpSpec),
    Dns(DnsSpec),
    Tls(TlsSpec),
    Page(HttpSpec),
    Domain(DomainSpec),
    Browser(BrowserSpec),
}

/// A domain registration lookup (RDAP).
#[derive(Debug, Clone)]
pub struct DomainSpec {
    /// Lowercase ASCII (IDNA applied), no trailing dot.
    pub domain: String,
    /// Expiring within this many days is flagged (`domain.expiring_soon`), not failed.
    pub warn_days: f64,
    /// The RDAP base URL to ask instead of the bootstrap's (ends with `/`).
    pub rdap_url: Option<Url>,
}

/// `consistency = true`: what the nameservers must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consistency {
    /// How far an SOA serial may trail the highest one (serial arithmetic).
    pub serial_lag: u32,
}

/// A page load in headless Chromium.
#[derive(Debug, Clone)]
pub struct BrowserSpec {
    pub url: Url,
    /// None: any 2xx/3xx document status after redirects.
    pub expect_status: Option<Vec<u16>>,
    /// A CSS selector that must match once the page has loaded.
    pub selector_present: Option<String>,
    /// An uncaught JavaScript error fails the probe.
    pub fail_on_js_error: bool,
}

/// An HTTP (or page document) request.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub url: Url,
    /// None: any 2xx/3xx after redirects.
    pub expect_status: Option<Vec<u16>>,
    pub body_contains: Option<String>,
    pub max_redirects: u32,
    pub max_body_bytes: u64,
    /// page only: most connections to one origin at once.
    pub max_connections_per_origin: usize,
    /// page only: most connections at once for the whole page.
    pub max_connections: usize,
    pub net: NetOptions,
}

/// How to reach a host: address overrides, family, trust.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Like curl --resolve: host name → address, skipping DNS.
    pub resolve: BTreeMap<String, IpAddr>,
    pub ip_version: Option<IpVersion>,
    /// Extra trusted roots (from `ca_file` / `ca_pem`), on top of the system roots.
    pub extra_roots: Arc<Vec<CertificateDer<'static>>>,
    /// How the leaf's revocation is checked (`revocation`, `revocation_required`).
    pub revocation: RevocationPolicy,
}

/// `revocation`: how far the probe goes to learn whether the leaf was revoked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum RevocationMode {
    /// Never looked at.
    Off,
    /// Only a stapled OCSP response is used: no extra network traffic.
    #[default]
    Staple,
    /// The staple, else the OCSP responder named in the certificate (AIA).
    Ocsp,
    /// As `Ocsp`, then the CRL distribution point when OCSP gives no answer.
    OcspCrl,
}

impl RevocationMode {
    /// Parses a config value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "off" => Self::Off,
            "staple" => Self::Staple,
            "ocsp" => Self::Ocsp,
            "ocsp+crl" => Self::OcspCrl,
            _ => return None,
        })
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Staple => "staple",
            Self::Ocsp => "ocsp",
            Self::OcspCrl => "ocsp+crl",
        }
    }
}

/// A check's revocation settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationPolicy {
    pub mode: RevocationMode,
    /// An unknown (or unestablished) status fails the probe.
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IpVersion {
    V4,
    V6,
}

/// A DNS query sent to each nameserver.
#[derive(Debug, Clone)]
pub struct DnsSpec {
    pub query: String,
    pub record_type: RecordType,
    /// Empty: the system resolver's nameservers (from /etc/resolv.conf).
    pub nameservers: Vec<SocketAddr>,
    /// When set, the exact answer set each nameserver must return.
    pub expect_answers: Option<BTreeSet<String>>,
    /// `dnssec = true`: the anchor each answer's chain of trust must reach.
    pub dnssec: Option<Arc<TrustAnchor>>,
    /// `consistency = true` (NS and SOA checks): compare the servers.
    pub consistency: Option<Consistency>,
}

/// Record types a DNS check may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Soa,
    Caa,
}

impl RecordType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => Self::A,
            "AAAA" => Self::Aaaa,
            "CNAME" => Self::Cname,
            "MX" => Self::Mx,
            "TXT" => Self::Txt,
            "NS" => Self::Ns,
            "SOA" => Self::Soa,
            "CAA" => Self::Caa,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Ns => "NS",
            Self::Soa => "SOA",
            Self::Caa => "CAA",
        }
    }
}

/// A TLS handshake with a host.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    pub host: String,
    pub port: u16,
    /// Certificates expiring within this many days are flagged, not failed.
    pub warn_days: f64,
    pub net: NetOptions,
}

/// Validates a list of checks: each on its own, then names unique.
pub fn validate_checks(
    specs: &[CheckSpec],
    file: &Path,
    base: &Path,
) -> Result<Vec<Check>, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let check = Check::from_spec(spec, i, file, base)?;
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
                let h = cx.http()?;
                let t = h.url.to_string();
                (ProbeSpec::Http(h), t)
            }
            CheckKind::Page => {
                let h = cx.http()?;
                let t = h.url.to_string();
                (ProbeSpec::Page(h), t)
            }
            CheckKind::Browser => {
                let b = cx.browser()?;
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
                let t = cx.tls()?;
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
            spec: spec.clone(),
        })
    }
}

/// One `[[checks]]` entry being validated, and where it is (for messages).
struct SpecCx<'a> {
    spec: &'a CheckSpec,
    file: &'a Path,
    base: &'a Path,
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
    fn err(&self, k: &str, msg: String) -> ConfigError {
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

    /// What http, tls and page checks share: `resolve`, `ip_version`, and
    /// the extra roots of `ca_file` (relative to the config's directory) and
    /// `ca_pem`.
    fn net(&self) -> Result<NetOptions, ConfigError> {
        let spec = self.spec;
        let mut resolve = BTreeMap::new();
        for (host, addr) in spec.resolve.iter().flatten() {
            let ip = addr
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| {
                    self.err("resolve", format!("{host:?} = {addr:?}: not an IP address"))
                })?;
            resolve.insert(host.to_ascii_lowercase(), ip);
        }
        let ip_version = match spec.ip_version {
            None => None,
            Some(4) => Some(IpVersion::V4),
            Some(6) => Some(IpVersion::V6),
            Some(v) => return Err(self.err("ip_version", format!("{v} is neither 4 nor 6"))),
        };
        let mut roots = Vec::new();
        if let Some(path) = &spec.ca_file {
            let path = self.base.join(path);
            let pem = std::fs::read(&path)
                .map_err(|e| self.err("ca_file", format!("cannot read {}: {e}", path.display())))?;
            roots.extend(
                parse_pem_certs(&pem)
                    .map_err(|m| self.err("ca_file", format!("{}: {m}", path.display())))?,
            );
        }
        if let Some(pem) = &spec.ca_pem {
            roots.extend(parse_pem_certs(pem.as_bytes()).map_err(|m| self.err("ca_pem", m))?);
        }
        Ok(NetOptions {
            resolve,
            ip_version,
            extra_roots: Arc::new(roots),
            revocation: self.revocation()?,
        })
    }

    /// `revocation` (default "staple") and `revocation_required` (default false).
    fn revocation(&self) -> Result<RevocationPolicy, ConfigError> {
        let spec = self.spec;
        let mode = match spec.revocation.as_deref() {
            None => RevocationMode::default(),
            Some(s) => RevocationMode::parse(s).ok_or_else(|| {
                self.err(
                    "revocation",
                    format!("{s:?} is not one of \"off\", \"staple\", \"ocsp\", \"ocsp+crl\""),
                )
            })?,
        };
        let required = spec.revocation_required.unwrap_or(false);
        if required && mode == RevocationMode::Off {
            return Err(self.err(
                "revocation_required",
                "is true but revocation = \"off\": nothing would be checked".into(),
            ));
        }
        Ok(RevocationPolicy { mode, required })
    }

    /// An http or page check.
    fn http(&self) -> Result<HttpSpec, ConfigError> {
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
            net: self.net()?,
        })
    }

    /// A browser check: the URL and status rules of an http check, plus
    /// the browser's own assertions.
    fn browser(&self) -> Result<BrowserSpec, ConfigError> {
        let spec = self.spec;
        let h = self.http()?;
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
    fn tls(&self) -> Result<TlsSpec, ConfigError> {
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
            net: self.net()?,
        })
    }
}

/// Parses "ip", "ip:port" or "[v6]:port" (port 53 by default).
pub fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    let ip = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()?;
    Some(SocketAddr::new(ip, 53))
}

/// An `expect_answers` entry as kept in the typed config: trimmed only. The
/// form depends on the record type (a trailing dot is part of a TXT string but
/// not of a name), so the DNS probe canonicalises both sides with
/// [`crate::probe::dns::canonical_answer`] when it compares.
pub fn trim_answer(a: &str) -> String {
    a.trim().to_string()
}

/// Parses every certificate in a PEM bundle.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate bundle ({e})"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: CheckKind) -> CheckSpec {
        CheckSpec {
            name: "c".into(),
            kind,
            ..Default::default()
        }
    }

    fn check(s: &CheckSpec) -> Result<Check, ConfigError> {
        Check::from_spec(s, 0, Path::new("a.toml"), Path::new("."))
    }

    #[test]
    fn http_defaults() {
        let mut s = spec(CheckKind::Http);
        s.url = Some("https://www.acme.example/".into());
        let c = check(&s).unwrap();
        assert_eq!(c.interval, DEFAULT_INTERVAL);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        let ProbeSpec::Http(h) = c.probe else {
            panic!()
        };
        assert_eq!(h.max_redirects, 10);
        assert!(h.expect_status.is_none());
    }

    #[test]
    fn any_kind_can_be_a_canary() {
        let mut s = spec(CheckKind::Dns);
        s.query = Some(".".into());
        s.canary = true;
        let c = check(&s).unwrap();
        assert!(c.spec.canary);
        assert!(crate::cli::describe_checks(&[c]).contains("(canary)"));
        // Only a canary carries the key on the wire (assignments stay as they were).
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"canary\":true"), "{json}");
        s.canary = false;
        assert!(!serde_json::to_string(&s).unwrap().contains("canary"));
    }

    #[test]
    fn errors_name_the_key() {
        let mut s = spec(CheckKind::Http);
        let e = check(&s).unwrap_err();
        assert_eq!(e.key, "checks[c].url");
        s.url = Some("ftp://x/".into());
        assert!(check(&s).unwrap_err().message.contains("only http"));
        s.url = Some("http://x/".into());
        s.query = Some("x".into());
        let e = check(&s).unwrap_err();
        assert_eq!(e.key, "checks[c].query");
        s.query = None;
        s.timeout = Some("2m".into());
        assert!(
            check(&s)
                .unwrap_err()
                .message
                .contains("longer than the interval")
        );
        s.timeout = Some("soon".into());
        assert_eq!(check(&s).unwrap_err().key, "checks[c].timeout");
    }

    #[test]
    fn errors_carry_a_kind() {
        let mut s = spec(CheckKind::Http);
        assert_eq!(check(&s).unwrap_err().kind(), ConfigErrorKind::MissingKey);
        s.url = Some("ftp://x/".into());
        assert_eq!(check(&s).unwrap_err().kind(), ConfigErrorKind::BadValue);
        s.url = Some("http://x/".into());
        s.warn_days = Some(3.0);
        let e = check(&s).unwrap_err();
        assert_eq!(
            (e.kind(), e.key.as_str()),
            (ConfigErrorKind::UnknownKey, "checks[c].warn_days")
        );
        s.warn_days = None;
        s.max_connections = Some(8);
        assert_eq!(
            check(&s).unwrap_err().kind(),
            ConfigErrorKind::UnknownKey,
            "page only"
        );
        s.kind = CheckKind::Page;
        assert!(check(&s).is_ok());
        s.max_connections = Some(0);
        assert_eq!(check(&s).unwrap_err().key, "checks[c].max_connections");

        // From the file: unknown key, missing key, bad value, bad file.
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let p = dir.path().join("a.toml");
            std::fs::write(&p, text).unwrap();
            AgentConfig::load(&p).unwrap_err()
        };
        let e = load("[agent]\nid = \"a\"\nlocation = \"b\"\nbogus = 1\n");
        assert_eq!(
            (e.kind(), e.key.as_str()),
            (ConfigErrorKind::UnknownKey, "agent.bogus")
        );
        assert_eq!(
            load("[agent]\nid = \"a\"\n").kind(),
            ConfigErrorKind::MissingKey
        );
        let e = load("[agent]\nid = \"a\"\nlocation = \"b\"\nconcurrency = \"x\"\n");
        assert_eq!(
            (e.kind(), e.key.as_str()),
            (ConfigErrorKind::BadValue, "agent.concurrency")
        );
        assert_eq!(load("[agent\n").kind(), ConfigErrorKind::BadFile);
        let e = AgentConfig::load(&dir.path().join("none.toml")).unwrap_err();
        assert_eq!(e.kind(), ConfigErrorKind::BadFile);
    }

    #[test]
    fn timeout_default_capped_by_interval() {
        let mut s = spec(CheckKind::Tls);
        s.host = Some("h".into());
        s.interval = Some("5s".into());
        assert_eq!(check(&s).unwrap().timeout, Duration::from_secs(5));
    }

    #[test]
    fn dns_nameservers_and_types() {
        let mut s = spec(CheckKind::Dns);
        s.query = Some("www.acme.example".into());
        s.nameservers = Some(vec![
            "127.0.0.1:5353".into(),
            "192.0.2.1".into(),
            "[::1]:53".into(),
        ]);
        s.record_type = Some("mx".into());
        let c = check(&s).unwrap();
        let ProbeSpec::Dns(d) = c.probe else { panic!() };
        assert_eq!(d.record_type, RecordType::Mx);
        assert_eq!(d.nameservers[1].port(), 53);
        s.record_type = Some("PTR".into());
        assert_eq!(check(&s).unwrap_err().key, "checks[c].record_type");
    }

    #[test]
    fn secret_is_not_printed() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
