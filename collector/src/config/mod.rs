//! Collector configuration: figment builds the raw file (TOML plus
//! `SLAPROBE_` environment, unknown keys rejected), then [`CollectorConfig::from_raw`]
//! checks across sections and builds the typed config (DESIGN.md §3).
//!
//! Errors are [`ConfigError`]s that name the file, the key and what is wrong;
//! `main` prints them and exits 2.
//!
//! # Layout
//! - `raw`: the file as written (`Raw*`, deserialized by figment).
//! - `validate`: the checks of [`CollectorConfig::from_raw`], one section at a time.
//! - `summary`: what `check-config` prints.
//! - `tests`: unit tests.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use slaprobe_agent::config::{Check, load_layers, parse_duration, validate_checks};
use slaprobe_wire::CheckSpec;

pub use slaprobe_agent::config::ConfigError;

mod raw;
mod summary;
#[cfg(test)]
mod tests;
mod validate;

pub use raw::*;
// One rule for names and relative paths in both configs.
use slaprobe_agent::config::{base_dir, valid_name};

use crate::sla::{Contract, Objective, RawContract, validate_contracts};
use crate::store::StoreAddress;

/// Where the collector listens when `[collector] listen` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Oldest result accepted when `[collector] max_result_age` is not set.
pub const DEFAULT_MAX_RESULT_AGE: Duration = Duration::from_secs(45 * 24 * 3600);
/// Id of the embedded agent when `[embedded_agent] id` is not set.
pub const DEFAULT_EMBEDDED_ID: &str = "embedded";
/// Location of the embedded agent when `[embedded_agent] location` is not set.
pub const DEFAULT_EMBEDDED_LOCATION: &str = "local";

/// The validated `[collector]` section.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    pub listen: SocketAddr,
    /// Directory of the SQLite store (relative paths are taken from the config file's directory).
    pub data_dir: PathBuf,
    /// Results that started longer ago than this are refused.
    pub max_result_age: Duration,
    /// Results a second each agent may send (burst 10×); 0: no limit.
    pub max_results_per_second_per_agent: u64,
    /// HTTPS on the listener, when configured.
    pub tls: Option<TlsSettings>,
    /// HTTP connections open at once (`[collector] max_connections`).
    pub max_connections: usize,
    /// `[collector] public_read`.
    pub public_read: bool,
    /// Where results are stored: SQLite in `data_dir` (default) or the
    /// shared PostgreSQL of `database_url` (its `Debug` hides the password).
    pub store: StoreAddress,
    // Evidence at rest (issue 12).
    /// Settled results received longer ago than this are compacted.
    pub compact_after: Duration,
    /// Evidence older than this is dropped once its month is archived; `None`: kept forever.
    pub retention: Option<Duration>,
}

/// Default of `[collector] compact_after`.
pub const DEFAULT_COMPACT_AFTER: Duration = Duration::from_secs(3600);

impl CollectorSettings {
    /// Where the store is ([`CollectorSettings::store`]).
    pub fn store_address(&self) -> &StoreAddress {
        &self.store
    }
}

/// Default of `[collector] max_results_per_second_per_agent`: generous (an
/// agent replaying a long outage sends fast), there to stop a runaway one.
pub const DEFAULT_MAX_RESULTS_PER_SECOND_PER_AGENT: u64 = 5000;

/// `[collector] tls_*`: certificate files, resolved against the config's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca_file: Option<PathBuf>,
}

/// An agent allowed to talk to the collector.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    pub id: String,
    pub location: String,
    /// SHA-256 of its bearer token.
    pub token_sha256: [u8; 32],
}

/// The agent the collector runs in its own process (the quickstart).
#[derive(Debug, Clone)]
pub struct EmbeddedAgent {
    pub id: String,
    pub location: String,
    /// `rdap_bootstrap`, resolved against the config's directory (checked at load).
    pub rdap_bootstrap: Option<PathBuf>,
    /// Whether it runs the default canary [`EMBEDDED_CANARY`].
    pub canary: bool,
}

/// A check as the collector holds it: the validated check plus the spec it
/// hands to agents (with `ca_file` already read into `ca_pem`).
#[derive(Debug, Clone)]
pub struct CollectorCheck {
    pub check: Check,
    /// What `GET /api/v1/checks` serves for this check.
    pub served: CheckSpec,
}

impl CollectorCheck {
    /// Whether an agent at `location` runs this check.
    pub fn runs_at(&self, location: &str) -> bool {
        self.check
            .locations
            .as_ref()
            .is_none_or(|locs| locs.iter().any(|l| l == location))
    }
}

/// Default of `[collector] max_connections` (the accept loop's cap, [`crate::conn`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Who may call the read endpoints (enforced by [`crate::read_auth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// A `[[viewers]]` token (or its sign-in cookie) is required.
    Viewers,
    /// `public_read = true`: anyone who reaches the port.
    Public,
    /// Neither viewers nor `public_read`: read endpoints answer 401.
    Closed,
}

impl ReadMode {
    /// How `check-config` and the start-up log name the mode.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Viewers => "viewers (a [[viewers]] token or a /login cookie is required)",
            Self::Public => "public (public_read = true: anyone who reaches the port)",
            Self::Closed => {
                "closed (no [[viewers]] and no public_read: every read endpoint answers 401)"
            }
        }
    }
}

/// A configured viewer (`[[viewers]]`).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    /// SHA-256 of its bearer token.
    pub token_sha256: [u8; 32],
}

/// A validated collector config.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The file it was loaded from (for messages and relative paths).
    pub file: PathBuf,
    pub collector: CollectorSettings,
    pub agents: Vec<AgentEntry>,
    /// Who may read (`[[viewers]]`); see [`crate::read_auth`].
    pub viewers: Vec<Viewer>,
    pub checks: Vec<CollectorCheck>,
    /// Validated contracts (`sla::validate_contracts` against the checks' intervals).
    pub contracts: Vec<Contract>,
    pub embedded_agent: Option<EmbeddedAgent>,
}

impl CollectorConfig {
    /// Loads and validates a collector config file (plus `SLAPROBE_*` environment).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let raw: RawCollectorFile = load_layers(path, &[])?;
        Self::from_raw(raw, path)
    }

    /// Second stage: checks every section and across sections.
    pub fn from_raw(raw: RawCollectorFile, file: &Path) -> Result<Self, ConfigError> {
        let base = base_dir(file);
        let err = |key: &str, msg: String| ConfigError::new(file, key, msg);
        let collector = validate::collector_settings(raw.collector, file, &base)?;
        let mut hashes = HashSet::new();
        let (agents, ids) = validate::agents(raw.agents, file, &mut hashes)?;
        let viewers = validate::viewers(raw.viewers, file, &mut hashes)?;
        if collector.public_read && !viewers.is_empty() {
            return Err(err(
                "collector.public_read",
                "is true but [[viewers]] are configured: drop public_read to require their tokens, or drop the viewers".into(),
            ));
        }

        let mut raw_checks = raw.checks;
        let embedded_agent = match raw.embedded_agent {
            None => None,
            Some(e) => Some(validate::embedded_agent(
                e,
                &ids,
                &mut raw_checks,
                file,
                &base,
            )?),
        };
        let checks = validate::checks(&raw_checks, &agents, embedded_agent.as_ref(), file, &base)?;
        let contracts = validate::contracts(&raw.contracts, &checks, file)?;

        Ok(Self {
            file: file.to_path_buf(),
            collector,
            agents,
            viewers,
            checks,
            contracts,
            embedded_agent,
        })
    }

    /// Who may call the read endpoints: viewers when any is configured,
    /// anyone with `public_read = true`, nobody otherwise.
    pub fn read_mode(&self) -> ReadMode {
        if !self.viewers.is_empty() {
            ReadMode::Viewers
        } else if self.collector.public_read {
            ReadMode::Public
        } else {
            ReadMode::Closed
        }
    }

    /// Why this config deserves a warning at start-up: reads public on a
    /// listener other machines can reach, without client certificates.
    pub fn read_warning(&self) -> Option<String> {
        let c = &self.collector;
        let mtls = c.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
        (self.read_mode() == ReadMode::Public
            && !c.listen.ip().is_loopback()
            && !mtls)
            .then(|| {
                format!(
                    "public_read = true on {} without tls_client_ca_file: anyone who reaches the port reads every contract, vendor and incident; configure [[viewers]]",
                    c.listen
                )
            })
    }

    /// Each check's interval by name: what contract validation needs
    /// (a contract's slot must be at least every covered check's interval).
    pub fn check_intervals(&self) -> HashMap<String, Duration> {
        self.checks
            .iter()
            .map(|c| (c.check.name.clone(), c.check.interval))
            .collect()
    }

    /// A check by name.
    pub fn check(&self, name: &str) -> Option<&CollectorCheck> {
        self.checks.iter().find(|c| c.check.name == name)
    }
}

/// A duration as a person writes it in the config: whole days as "45d"
/// (humantime would say "1month 14days 13h 26m 24s"), else humantime.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs.is_multiple_of(86_400) && d.subsec_nanos() == 0 {
        format!("{}d", secs / 86_400)
    } else {
        humantime::format_duration(d).to_string()
    }
}
