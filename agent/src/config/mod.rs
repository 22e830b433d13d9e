//! Configuration: figment builds the raw structs (TOML file, then `SLAPROBE_`
//! environment with `__` for nesting); a second stage checks across fields and
//! builds the typed config the probes and scheduler use.
//!
//! Errors always name the file, the key and what is wrong; `main` turns them
//! into exit status 2.
//!
//! # Layout
//! - this file: errors, layered loading, secrets, shared helpers;
//! - `agent`: the `[agent]` section and the agent's whole file;
//! - `check`: the validated check types the probes read;
//! - `spec`: building a [`Check`] from a `[[checks]]` entry;
//! - `net`: what http, tls and page checks share (`resolve`, trust), and the
//!   [`Interner`] that holds each distinct value once for all checks.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde::de::DeserializeOwned;

mod agent;
pub mod anchor;
mod check;
mod net;
pub mod rdap;
mod spec;
#[cfg(test)]
mod tests;

pub use agent::{
    AgentConfig, AgentSettings, BrowserSettings, ByteSize, RawAgentFile, RawAgentSection,
};
pub use check::{
    BrowserSpec, Check, Consistency, DnsSpec, DomainSpec, HttpSpec, IpVersion, NetOptions,
    ProbeSpec, RecordType, RevocationMode, RevocationPolicy, TlsSpec,
};
pub use net::Interner;
pub use spec::validate_checks;

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
/// `crate::probe::dns::canonical_answer` when it compares.
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
