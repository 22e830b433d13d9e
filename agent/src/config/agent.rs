//! The `[agent]` section and the agent's config file (settings plus local checks).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use slaprobe_wire::CheckSpec;
use url::Url;

use super::rdap::RdapBootstrap;
use super::{
    Check, ConfigError, DEFAULT_BROWSER_CONCURRENCY, DEFAULT_BROWSER_MAX_RSS,
    DEFAULT_SPOOL_MAX_BYTES, Secret, base_dir, load_layers, parse_duration, valid_name,
    validate_checks,
};

/// Threads that run the probes by default: one sustained 2,000 https and
/// 4,000 http probes a second (`bench/run.sh` item 7, README), and one thread
/// spends less CPU per probe than several (no work stealing, no parking
/// and waking each other).
pub const DEFAULT_PROBE_THREADS: usize = 1;
/// Most `probe_threads`.
pub const MAX_PROBE_THREADS: usize = 64;

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
    /// Threads that run the probes (default 1).
    pub probe_threads: Option<usize>,
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
    /// Threads of the probes' own runtime (see `run::spawn_scheduler`).
    pub probe_threads: usize,
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

impl AgentSettings {
    /// Validates `[agent]` section by section, in the order the keys are
    /// documented (so the first error reported stays the same).
    fn from_raw(raw: RawAgentSection, file: &Path, base: &Path) -> Result<Self, ConfigError> {
        let k = Keys { file, base };
        let (id, location) = k.identity(raw.id, raw.location)?;
        let collector = k.collector(raw.collector, raw.require_tls)?;
        let token = k.token(raw.token, raw.token_file)?;
        let (concurrency, batch_max) = k.limits(raw.concurrency, raw.batch_max)?;
        let probe_threads = k.probe_threads(raw.probe_threads)?;
        let (batch_interval, checks_refresh, spool_fsync) =
            k.intervals(raw.batch_interval, raw.checks_refresh, raw.spool_fsync)?;
        let metrics_listen = k.metrics_listen(raw.metrics_listen)?;
        let tls_client = k.tls_client(raw.tls_cert_file, raw.tls_key_file)?;
        let rdap_bootstrap = k.rdap_bootstrap(raw.rdap_bootstrap)?;
        let spool_max_bytes = k.spool_max_bytes(raw.spool_max_bytes)?;
        let browser = k.browser(
            raw.chromium_path,
            raw.browser_concurrency,
            raw.browser_max_rss,
        )?;
        Ok(Self {
            id,
            location,
            collector,
            token,
            spool_dir: raw.spool_dir.map(|p| base.join(p)),
            concurrency,
            probe_threads,
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

/// The file being validated and the directory its relative paths start
/// from; one method per concern of `[agent]`.
struct Keys<'a> {
    file: &'a Path,
    base: &'a Path,
}

impl Keys<'_> {
    fn err(&self, key: &str, msg: String) -> ConfigError {
        ConfigError::new(self.file, key, msg)
    }

    fn missing(&self, key: &str, msg: String) -> ConfigError {
        ConfigError::missing(self.file, key, msg)
    }

    /// A duration key, `default` when unset.
    fn dur(
        &self,
        key: &str,
        v: Option<String>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        v.map_or(Ok(default), |s| parse_duration(self.file, key, &s))
    }

    /// `id` and `location`: both required, both names.
    fn identity(
        &self,
        id: Option<String>,
        location: Option<String>,
    ) -> Result<(String, String), ConfigError> {
        let id = id.ok_or_else(|| {
            self.missing(
                "agent.id",
                "missing: every agent needs a unique id, e.g. \"ams-1\"".into(),
            )
        })?;
        if !valid_name(&id) {
            return Err(self.err(
                "agent.id",
                format!("{id:?} is not a valid id (letters, digits, - _ . : / only)"),
            ));
        }
        let location = location.ok_or_else(|| {
            self.missing(
                "agent.location",
                "missing: the vantage point this agent probes from, e.g. \"ams\"".into(),
            )
        })?;
        if !valid_name(&location) {
            return Err(self.err(
                "agent.location",
                format!("{location:?} is not a valid location (letters, digits, - _ . : / only)"),
            ));
        }
        Ok((id, location))
    }

    /// `collector`: an http(s) URL with a host, and not cleartext when
    /// `require_tls` is set.
    fn collector(
        &self,
        collector: Option<String>,
        require_tls: Option<bool>,
    ) -> Result<Option<Url>, ConfigError> {
        let Some(s) = collector else {
            return Ok(None);
        };
        let url = Url::parse(&s)
            .map_err(|e| self.err("agent.collector", format!("invalid URL {s:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(self.err(
                "agent.collector",
                format!("{s:?} must be an http:// or https:// URL with a host"),
            ));
        }
        if require_tls == Some(true)
            && let Some(risk) = cleartext_risk(&url)
        {
            return Err(self.err("agent.collector", format!("require_tls is set: {risk}")));
        }
        Ok(Some(url))
    }

    /// `token` or `token_file` (read and trimmed), never both, never empty.
    fn token(
        &self,
        token: Option<Secret>,
        token_file: Option<PathBuf>,
    ) -> Result<Option<Secret>, ConfigError> {
        let token = match (token, token_file) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "agent.token_file",
                    "set either `token` or `token_file`, not both".into(),
                ));
            }
            (Some(t), None) => Some(t),
            (None, Some(p)) => {
                let p = self.base.join(p);
                let s = std::fs::read_to_string(&p).map_err(|e| {
                    self.err(
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
            return Err(self.err("agent.token", "empty token".into()));
        }
        Ok(token)
    }

    /// `concurrency` and `batch_max`.
    fn limits(
        &self,
        concurrency: Option<usize>,
        batch_max: Option<usize>,
    ) -> Result<(usize, usize), ConfigError> {
        let concurrency = concurrency.unwrap_or(256);
        if concurrency == 0 {
            return Err(self.err("agent.concurrency", "must be at least 1".into()));
        }
        let batch_max = batch_max.unwrap_or(500);
        if !(1..=10_000).contains(&batch_max) {
            return Err(self.err(
                "agent.batch_max",
                format!("{batch_max} is out of range 1..=10000"),
            ));
        }
        Ok((concurrency, batch_max))
    }

    /// `probe_threads`: 1 unless a box needs more than one core of probing.
    fn probe_threads(&self, n: Option<usize>) -> Result<usize, ConfigError> {
        let n = n.unwrap_or(DEFAULT_PROBE_THREADS);
        if !(1..=MAX_PROBE_THREADS).contains(&n) {
            return Err(self.err(
                "agent.probe_threads",
                format!("{n} is out of range 1..={MAX_PROBE_THREADS}"),
            ));
        }
        Ok(n)
    }

    /// `batch_interval`, `checks_refresh` and `spool_fsync`.
    fn intervals(
        &self,
        batch_interval: Option<String>,
        checks_refresh: Option<String>,
        spool_fsync: Option<String>,
    ) -> Result<(Duration, Duration, Duration), ConfigError> {
        let batch_interval = self.dur(
            "agent.batch_interval",
            batch_interval,
            Duration::from_secs(1),
        )?;
        if batch_interval.is_zero() {
            return Err(self.err("agent.batch_interval", "must be more than 0s".into()));
        }
        let checks_refresh = self.dur(
            "agent.checks_refresh",
            checks_refresh,
            Duration::from_secs(60),
        )?;
        if checks_refresh < Duration::from_secs(1) {
            return Err(self.err("agent.checks_refresh", "must be at least 1s".into()));
        }
        let spool_fsync = self.dur("agent.spool_fsync", spool_fsync, Duration::from_secs(1))?;
        Ok((batch_interval, checks_refresh, spool_fsync))
    }

    /// `metrics_listen`: an ip:port.
    fn metrics_listen(&self, s: Option<String>) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(s) = s else { return Ok(None) };
        s.parse::<SocketAddr>().map(Some).map_err(|e| {
            self.err(
                "agent.metrics_listen",
                format!("{s:?} is not an ip:port address ({e})"),
            )
        })
    }

    /// `tls_cert_file` and `tls_key_file`: both or neither.
    fn tls_client(
        &self,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
        match (cert, key) {
            (Some(c), Some(k)) => Ok(Some((self.base.join(c), self.base.join(k)))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(self.err(
                "agent.tls_key_file",
                "is required with tls_cert_file".into(),
            )),
            (None, Some(_)) => Err(self.err(
                "agent.tls_cert_file",
                "is required with tls_key_file".into(),
            )),
        }
    }

    /// `rdap_bootstrap`: IANA's dns.json, read and parsed now.
    fn rdap_bootstrap(
        &self,
        p: Option<PathBuf>,
    ) -> Result<Option<Arc<RdapBootstrap>>, ConfigError> {
        let Some(p) = p else { return Ok(None) };
        let p = self.base.join(p);
        let bytes = std::fs::read(&p).map_err(|e| {
            self.err(
                "agent.rdap_bootstrap",
                format!("cannot read {}: {e}", p.display()),
            )
        })?;
        let b = RdapBootstrap::parse(&bytes).map_err(|m| {
            self.err(
                "agent.rdap_bootstrap",
                format!("{}: {m} (expected IANA's dns.json, RFC 9224)", p.display()),
            )
        })?;
        Ok(Some(Arc::new(b)))
    }

    /// `spool_max_bytes`: at least 1 MiB.
    fn spool_max_bytes(&self, v: Option<u64>) -> Result<u64, ConfigError> {
        let spool_max_bytes = v.unwrap_or(DEFAULT_SPOOL_MAX_BYTES);
        if spool_max_bytes < 1024 * 1024 {
            return Err(self.err(
                "agent.spool_max_bytes",
                "must be at least 1 MiB (1048576)".into(),
            ));
        }
        Ok(spool_max_bytes)
    }

    /// `chromium_path`, `browser_concurrency` and `browser_max_rss`.
    fn browser(
        &self,
        chromium_path: Option<PathBuf>,
        concurrency: Option<usize>,
        max_rss: Option<ByteSize>,
    ) -> Result<BrowserSettings, ConfigError> {
        let browser_concurrency = concurrency.unwrap_or(DEFAULT_BROWSER_CONCURRENCY);
        if !(1..=64).contains(&browser_concurrency) {
            return Err(self.err(
                "agent.browser_concurrency",
                format!("{browser_concurrency} is out of range 1..=64"),
            ));
        }
        let max_rss = match &max_rss {
            None => DEFAULT_BROWSER_MAX_RSS,
            Some(b) => b
                .bytes()
                .map_err(|m| self.err("agent.browser_max_rss", m))?,
        };
        if max_rss < 64 * 1024 * 1024 {
            return Err(self.err(
                "agent.browser_max_rss",
                format!("{max_rss} bytes is less than 64 MiB; Chromium needs more to load a page"),
            ));
        }
        Ok(BrowserSettings {
            chromium_path: chromium_path
                .map(|p| {
                    if p.components().count() > 1 {
                        self.base.join(p)
                    } else {
                        p
                    }
                })
                .unwrap_or_else(|| PathBuf::from("chromium")),
            concurrency: browser_concurrency,
            max_rss,
        })
    }
}
