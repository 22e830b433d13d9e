//! Collector configuration: figment builds the raw file (TOML plus
//! `SLAPROBE_` environment, unknown keys rejected), then [`CollectorConfig::from_raw`]
//! checks across sections and builds the typed config (DESIGN.md §3).
//!
//! Errors are [`ConfigError`]s that name the file, the key and what is wrong;
//! `main` prints them and exits 2.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use slaprobe_agent::config::{Check, load_layers, parse_duration, validate_checks};
use slaprobe_wire::CheckSpec;

pub use slaprobe_agent::config::ConfigError;
// One rule for names and relative paths in both configs.
use slaprobe_agent::config::{base_dir, valid_name};

use crate::sla::{Contract, Objective, RawContract, validate_contracts};
use crate::store::Location;

/// Where the collector listens when `[collector] listen` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Oldest result accepted when `[collector] max_result_age` is not set.
pub const DEFAULT_MAX_RESULT_AGE: Duration = Duration::from_secs(45 * 24 * 3600);
/// Id of the embedded agent when `[embedded_agent] id` is not set.
pub const DEFAULT_EMBEDDED_ID: &str = "embedded";
/// Location of the embedded agent when `[embedded_agent] location` is not set.
pub const DEFAULT_EMBEDDED_LOCATION: &str = "local";

/// `[collector]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollectorSection {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_result_age: Option<String>,
    /// Results a second each agent may send (token bucket, burst 10×); 0: no limit.
    pub max_results_per_second_per_agent: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mTLS.
    pub tls_client_ca_file: Option<PathBuf>,
    /// HTTP connections open at once; beyond it new ones get 503 and are closed.
    pub max_connections: Option<usize>,
    /// Serve the read endpoints to anyone (no `[[viewers]]`): today's behaviour, explicitly.
    pub public_read: Option<bool>,
    /// Shared PostgreSQL store (DESIGN.md §9) instead of SQLite in `data_dir`:
    /// `postgres://user[:password]@host[:port]/database`.
    pub database_url: Option<String>,
    // Evidence at rest (issue 12): compaction and retention.
    /// Compact results received longer ago than this (default 1h).
    pub compact_after: Option<String>,
    /// Drop evidence older than this, once its month is archived (default: keep forever).
    pub retention: Option<String>,
}

/// One `[[agents]]` entry as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentEntry {
    pub id: String,
    pub location: String,
    /// Hex SHA-256 of the agent's bearer token (never the token itself).
    pub token_sha256: String,
}

/// One `[[viewers]]` entry as written: a person or tool allowed to read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawViewerEntry {
    pub name: String,
    /// Hex SHA-256 of the viewer's bearer token.
    pub token_sha256: String,
}

/// `[embedded_agent]` as written: its presence turns the embedded agent on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmbeddedAgent {
    pub id: Option<String>,
    pub location: Option<String>,
    /// A newer RDAP bootstrap file for the embedded agent's domain checks.
    pub rdap_bootstrap: Option<PathBuf>,
    /// Run the default canary (rule 1a) from the embedded agent (default true).
    pub canary: Option<bool>,
    /// The canary's DNS name (default `.`, the root: any recursive resolver answers it).
    pub canary_query: Option<String>,
    /// The canary's record type (default `NS`).
    pub canary_record_type: Option<String>,
    /// Nameservers the canary asks (default: none = the system resolver, `/etc/resolv.conf`).
    pub canary_nameservers: Option<Vec<String>>,
}

/// Name of the embedded agent's default canary check.
pub const EMBEDDED_CANARY: &str = "embedded-canary";

/// The embedded agent's default canary: a DNS query to the system resolver
/// (or `canary_nameservers`). Not the collector's own `/healthz`: over
/// loopback that proves nothing about the network the checks cross; the
/// resolver is what every check needs first and is independent of every
/// vendor under contract.
fn embedded_canary(e: &RawEmbeddedAgent, location: &str) -> CheckSpec {
    CheckSpec {
        name: EMBEDDED_CANARY.to_string(),
        kind: slaprobe_wire::CheckKind::Dns,
        interval: Some("30s".into()),
        timeout: Some("5s".into()),
        locations: Some(vec![location.to_string()]),
        canary: true,
        query: Some(e.canary_query.clone().unwrap_or_else(|| ".".into())),
        record_type: Some(e.canary_record_type.clone().unwrap_or_else(|| "NS".into())),
        nameservers: e.canary_nameservers.clone(),
        ..CheckSpec::default()
    }
}

/// A collector config file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollectorFile {
    #[serde(default)]
    pub collector: RawCollectorSection,
    #[serde(default)]
    pub agents: Vec<RawAgentEntry>,
    #[serde(default)]
    pub viewers: Vec<RawViewerEntry>,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    #[serde(default)]
    pub contracts: Vec<RawContract>,
    #[serde(default)]
    pub embedded_agent: Option<RawEmbeddedAgent>,
}

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
    pub store: Location,
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
    pub fn store_location(&self) -> &Location {
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

/// A validated collector config.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The file it was loaded from (for messages and relative paths).
    pub file: PathBuf,
    pub collector: CollectorSettings,
    pub agents: Vec<AgentEntry>,
    /// Who may read (`[[viewers]]`); see [`crate::read_auth`].
    pub viewers: Vec<crate::read_auth::Viewer>,
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

        let c = raw.collector;
        if let Some(url) = &c.database_url {
            // Never echo the URL: it may hold a password.
            crate::store::postgres::validate_url(url)
                .map_err(|m| err("collector.database_url", m))?;
        }
        let listen_raw = c.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_raw.parse::<SocketAddr>().map_err(|e| {
            err(
                "collector.listen",
                format!("{listen_raw:?} is not an ip:port address ({e}), e.g. \"127.0.0.1:9464\""),
            )
        })?;
        let data_dir = base.join(c.data_dir.unwrap_or_else(|| PathBuf::from("data")));
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(err(
                "collector.data_dir",
                format!("{} exists and is not a directory", data_dir.display()),
            ));
        }
        let max_result_age = match c.max_result_age {
            Some(s) => parse_duration(file, "collector.max_result_age", &s)?,
            None => DEFAULT_MAX_RESULT_AGE,
        };
        if max_result_age < Duration::from_secs(60) {
            return Err(err(
                "collector.max_result_age",
                "must be at least 1m (results in flight would be refused)".into(),
            ));
        }
        let max_results_per_second_per_agent = c
            .max_results_per_second_per_agent
            .unwrap_or(DEFAULT_MAX_RESULTS_PER_SECOND_PER_AGENT);
        let tls = match (c.tls_cert_file, c.tls_key_file) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert_file: base.join(cert),
                key_file: base.join(key),
                client_ca_file: c.tls_client_ca_file.map(|p| base.join(p)),
            }),
            (None, None) if c.tls_client_ca_file.is_some() => {
                return Err(err(
                    "collector.tls_client_ca_file",
                    "needs tls_cert_file and tls_key_file (client certificates are a TLS feature)"
                        .into(),
                ));
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    "collector.tls_key_file",
                    "is required with tls_cert_file".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "collector.tls_cert_file",
                    "is required with tls_key_file".into(),
                ));
            }
        };
        let max_connections = c
            .max_connections
            .unwrap_or(crate::conn::DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(err(
                "collector.max_connections",
                "must be at least 1 (it caps open HTTP connections)".into(),
            ));
        }
        let store = match c.database_url {
            Some(url) => Location::Postgres(url.trim().to_string()),
            None => Location::Sqlite(data_dir.clone()),
        };
        let compact_after = match c.compact_after {
            Some(s) => parse_duration(file, "collector.compact_after", &s)?,
            None => DEFAULT_COMPACT_AFTER,
        };
        let retention = match c.retention {
            Some(s) => Some(parse_duration(file, "collector.retention", &s)?),
            None => None,
        };
        if retention.is_some_and(|r| r < max_result_age + compact_after) {
            return Err(err(
                "collector.retention",
                "must be longer than max_result_age + compact_after (results still accepted would be dropped)"
                    .into(),
            ));
        }
        let collector = CollectorSettings {
            listen,
            data_dir,
            max_result_age,
            max_results_per_second_per_agent,
            tls,
            max_connections,
            public_read: c.public_read.unwrap_or(false),
            store,
            compact_after,
            retention,
        };

        let mut agents = Vec::with_capacity(raw.agents.len());
        let mut ids = HashSet::new();
        let mut hashes = HashSet::new();
        for (i, a) in raw.agents.into_iter().enumerate() {
            let label = if valid_name(&a.id) {
                format!("agents[{}]", a.id)
            } else {
                format!("agents[{i}]")
            };
            if !valid_name(&a.id) {
                return Err(err(
                    &format!("{label}.id"),
                    format!(
                        "{:?} is not a valid id (1-128 of letters, digits, - _ . : /)",
                        a.id
                    ),
                ));
            }
            if !ids.insert(a.id.clone()) {
                return Err(err(
                    &format!("{label}.id"),
                    "duplicate agent id; ids must be unique".into(),
                ));
            }
            if !valid_name(&a.location) {
                return Err(err(
                    &format!("{label}.location"),
                    format!(
                        "{:?} is not a valid location (1-128 of letters, digits, - _ . : /)",
                        a.location
                    ),
                ));
            }
            let token_sha256 = parse_sha256(&a.token_sha256).ok_or_else(|| {
                err(
                    &format!("{label}.token_sha256"),
                    "must be 64 hex characters, the SHA-256 of the token (e.g. `printf %s \"$TOKEN\" | sha256sum`)".into(),
                )
            })?;
            if !hashes.insert(token_sha256) {
                return Err(err(
                    &format!("{label}.token_sha256"),
                    "the same token as another agent; every agent needs its own".into(),
                ));
            }
            agents.push(AgentEntry {
                id: a.id,
                location: a.location,
                token_sha256,
            });
        }

        let mut viewers = Vec::with_capacity(raw.viewers.len());
        let mut names = HashSet::new();
        for (i, v) in raw.viewers.into_iter().enumerate() {
            let label = if valid_name(&v.name) {
                format!("viewers[{}]", v.name)
            } else {
                format!("viewers[{i}]")
            };
            if !valid_name(&v.name) {
                return Err(err(
                    &format!("{label}.name"),
                    format!(
                        "{:?} is not a valid name (1-128 of letters, digits, - _ . : /)",
                        v.name
                    ),
                ));
            }
            if !names.insert(v.name.clone()) {
                return Err(err(
                    &format!("{label}.name"),
                    "duplicate viewer name; names must be unique".into(),
                ));
            }
            let token_sha256 = parse_sha256(&v.token_sha256).ok_or_else(|| {
                err(
                    &format!("{label}.token_sha256"),
                    "must be 64 hex characters, the SHA-256 of the token (e.g. `printf %s \"$TOKEN\" | sha256sum`)".into(),
                )
            })?;
            if !hashes.insert(token_sha256) {
                return Err(err(
                    &format!("{label}.token_sha256"),
                    "the same token as an agent or another viewer; every viewer needs its own"
                        .into(),
                ));
            }
            viewers.push(crate::read_auth::Viewer {
                name: v.name,
                token_sha256,
            });
        }
        if collector.public_read && !viewers.is_empty() {
            return Err(err(
                "collector.public_read",
                "is true but [[viewers]] are configured: drop public_read to require their tokens, or drop the viewers".into(),
            ));
        }

        let mut raw_checks = raw.checks;
        let embedded_agent = match raw.embedded_agent {
            None => None,
            Some(e) => {
                let id =
                    e.id.clone()
                        .unwrap_or_else(|| DEFAULT_EMBEDDED_ID.to_string());
                let location = e
                    .location
                    .clone()
                    .unwrap_or_else(|| DEFAULT_EMBEDDED_LOCATION.to_string());
                if !valid_name(&id) {
                    return Err(err(
                        "embedded_agent.id",
                        format!("{id:?} is not a valid id"),
                    ));
                }
                if ids.contains(&id) {
                    return Err(err(
                        "embedded_agent.id",
                        format!("{id:?} is also an [[agents]] id; pick another"),
                    ));
                }
                if !valid_name(&location) {
                    return Err(err(
                        "embedded_agent.location",
                        format!("{location:?} is not a valid location"),
                    ));
                }
                let canary = e.canary.unwrap_or(true);
                if canary {
                    if raw_checks.iter().any(|c| c.name == EMBEDDED_CANARY) {
                        return Err(err(
                            "embedded_agent.canary",
                            format!(
                                "a [[checks]] entry is named {EMBEDDED_CANARY:?}, the embedded agent's default canary: rename it, or set canary = false"
                            ),
                        ));
                    }
                    raw_checks.push(embedded_canary(&e, &location));
                } else if e.canary_query.is_some()
                    || e.canary_record_type.is_some()
                    || e.canary_nameservers.is_some()
                {
                    return Err(err(
                        "embedded_agent.canary",
                        "is false but canary_query / canary_record_type / canary_nameservers are set".into(),
                    ));
                }
                let rdap_bootstrap = match e.rdap_bootstrap {
                    None => None,
                    Some(p) => {
                        let p = base.join(p);
                        let bytes = std::fs::read(&p).map_err(|e| {
                            err(
                                "embedded_agent.rdap_bootstrap",
                                format!("cannot read {}: {e}", p.display()),
                            )
                        })?;
                        slaprobe_agent::probe::domain::RdapBootstrap::parse(&bytes).map_err(
                            |m| {
                                err(
                                    "embedded_agent.rdap_bootstrap",
                                    format!(
                                        "{}: {m} (expected IANA's dns.json, RFC 9224)",
                                        p.display()
                                    ),
                                )
                            },
                        )?;
                        Some(p)
                    }
                };
                Some(EmbeddedAgent {
                    id,
                    location,
                    rdap_bootstrap,
                    canary,
                })
            }
        };

        let validated = validate_checks(&raw_checks, file, &base)?;
        let known_locations: BTreeSet<&str> = agents
            .iter()
            .map(|a| a.location.as_str())
            .chain(embedded_agent.iter().map(|e| e.location.as_str()))
            .collect();
        let mut checks = Vec::with_capacity(validated.len());
        for (check, spec) in validated.into_iter().zip(&raw_checks) {
            if let Some(locs) = &check.locations
                && let Some(bad) = locs.iter().find(|l| !known_locations.contains(l.as_str()))
            {
                let known: Vec<&str> = known_locations.iter().copied().collect();
                return Err(err(
                    &format!("checks[{}].locations", check.name),
                    format!(
                        "no agent is at location {bad:?} (known: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            let served = served_spec(&check, spec, file, &base)?;
            checks.push(CollectorCheck { check, served });
        }

        let mut contract_names = HashSet::new();
        for (i, c) in raw.contracts.iter().enumerate() {
            if !contract_names.insert(c.name.as_str()) {
                return Err(err(
                    &format!("contracts[{i}].name"),
                    format!("duplicate contract name {:?}", c.name),
                ));
            }
        }
        // Unknown checks, slots shorter than an interval, bad zones, tiers:
        // errors name `contracts[NAME].key`.
        let intervals: HashMap<String, Duration> = checks
            .iter()
            .map(|c| (c.check.name.clone(), c.check.interval))
            .collect();
        let mut contracts = validate_contracts(&raw.contracts, &intervals, file)?;
        // Rule 1a: canaries belong to no contract, and every contract reads them.
        let mut canaries: Vec<String> = checks
            .iter()
            .filter(|c| c.check.canary)
            .map(|c| c.check.name.clone())
            .collect();
        canaries.sort();
        for k in &mut contracts {
            if let Some(c) = k.checks.iter().find(|c| canaries.contains(c)) {
                return Err(err(
                    &format!("contracts[{}].checks", k.name),
                    format!(
                        "check {c:?} is a canary (canary = true): canaries tell when a location itself is impaired and belong to no contract; list a check of the vendor instead"
                    ),
                ));
            }
            k.canaries = canaries.clone();
        }

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
    pub fn read_mode(&self) -> crate::read_auth::ReadMode {
        use crate::read_auth::ReadMode;
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
        (self.read_mode() == crate::read_auth::ReadMode::Public
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

    /// The human summary `check-config` prints.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.collector;
        let _ = writeln!(s, "config OK: {}", self.file.display());
        let _ = writeln!(
            s,
            "collector: listen {}, {}, max_result_age {}",
            c.listen,
            match &c.store {
                Location::Sqlite(dir) => format!("data_dir {}", dir.display()),
                pg @ Location::Postgres(_) => format!("database_url {}", pg.describe()),
            },
            format_duration(c.max_result_age)
        );
        let _ = writeln!(s, "reads: {}", self.read_mode().describe());
        if let Some(w) = self.read_warning() {
            let _ = writeln!(s, "warning: {w}");
        }
        let _ = writeln!(
            s,
            "evidence: compact_after {}, retention {}",
            format_duration(c.compact_after),
            c.retention
                .map_or_else(|| "forever".to_string(), format_duration)
        );
        let _ = writeln!(s, "agents ({}):", self.agents.len());
        for a in &self.agents {
            let _ = writeln!(s, "  {}  location {}", a.id, a.location);
        }
        if !self.viewers.is_empty() {
            let names: Vec<&str> = self.viewers.iter().map(|v| v.name.as_str()).collect();
            let _ = writeln!(s, "viewers ({}): {}", names.len(), names.join(", "));
        }
        match &self.embedded_agent {
            Some(e) => {
                let _ = writeln!(s, "embedded agent: id {}, location {}", e.id, e.location);
            }
            None => {
                let _ = writeln!(s, "embedded agent: off");
            }
        }
        let _ = writeln!(s, "checks ({}):", self.checks.len());
        for cc in &self.checks {
            let ch = &cc.check;
            let locs = ch
                .locations
                .as_ref()
                .map_or_else(|| "all".to_string(), |l| l.join(", "));
            let _ = writeln!(
                s,
                "  {}  {}  every {}  {}  locations: {}{}",
                ch.name,
                ch.kind,
                format_duration(ch.interval),
                ch.target,
                locs,
                if ch.canary { "  (canary)" } else { "" }
            );
        }
        let _ = writeln!(s, "contracts ({}):", self.contracts.len());
        for k in &self.contracts {
            let objectives: Vec<String> = k.objectives.iter().map(describe_objective).collect();
            let _ = writeln!(
                s,
                "  {}  vendor {}  checks: {}  zone {}  slot {}  quorum {}  objectives: {}",
                k.name,
                k.vendor,
                k.checks.join(", "),
                k.timezone,
                format_duration(k.slot),
                k.quorum,
                if objectives.is_empty() {
                    "none".to_string()
                } else {
                    objectives.join(", ")
                }
            );
            for m in &k.maintenance {
                let _ = writeln!(
                    s,
                    "    maintenance {} for {}",
                    m.describe(),
                    format_duration(m.duration())
                );
            }
            if !k.credits.is_empty() {
                let tiers: Vec<String> = k
                    .credits
                    .iter()
                    .map(|t| format!("below {}% -> {}%", t.below, t.percent))
                    .collect();
                let _ = writeln!(s, "    credits: {}", tiers.join(", "));
            }
        }
        s
    }
}

/// An objective as `check-config` prints it: `availability >= 99.9%`,
/// `processing p95 <= 800ms`.
fn describe_objective(o: &Objective) -> String {
    match o {
        Objective::Availability { target } => format!("availability >= {target}%"),
        Objective::Latency {
            phase,
            percentile,
            max,
        } => format!("{phase} p{percentile} <= {}", format_duration(*max)),
        Objective::WebVital {
            metric,
            percentile,
            max,
        } => match metric {
            crate::sla::Phase::Cls => format!("web vital {metric} p{percentile} <= {max}"),
            _ => format!(
                "web vital {metric} p{percentile} <= {}",
                format_duration(Duration::from_secs_f64(*max))
            ),
        },
    }
}

/// The spec handed to agents: `ca_file` replaced by its PEM and
/// `dnssec_trust_anchor` by its records (agents do not have the collector's
/// files), everything else as written.
fn served_spec(
    check: &Check,
    spec: &CheckSpec,
    file: &Path,
    base: &Path,
) -> Result<CheckSpec, ConfigError> {
    let mut spec = spec.clone();
    if let Some(ca_file) = spec.ca_file.take() {
        let path = base.join(&ca_file);
        let pem = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                file,
                format!("checks[{}].ca_file", check.name),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        spec.ca_pem = Some(match spec.ca_pem.take() {
            Some(inline) => format!("{}\n{}", inline.trim_end(), pem),
            None => pem,
        });
    }
    // The trust anchor likewise travels as its records.
    if let Some(anchor_file) = spec.dnssec_trust_anchor.take() {
        let path = base.join(&anchor_file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                file,
                format!("checks[{}].dnssec_trust_anchor", check.name),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        spec.dnssec_trust_anchor_records = Some(match spec.dnssec_trust_anchor_records.take() {
            Some(inline) => format!("{}\n{}", inline.trim_end(), text),
            None => text,
        });
    }
    Ok(spec)
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

fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn parse(toml: &str) -> Result<CollectorConfig, ConfigError> {
        let dir = std::env::temp_dir();
        let raw: RawCollectorFile = figment::Figment::new()
            .merge(<figment::providers::Toml as figment::providers::Format>::string(toml))
            .extract()
            .map_err(|e| {
                ConfigError::new(Path::new("t.toml"), e.path.join("."), e.kind.to_string())
            })?;
        CollectorConfig::from_raw(raw, &dir.join("t.toml"))
    }

    #[test]
    fn defaults_and_embedded() {
        let c = parse("[embedded_agent]\n").unwrap();
        assert_eq!(c.collector.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.collector.max_result_age, DEFAULT_MAX_RESULT_AGE);
        let e = c.embedded_agent.unwrap();
        assert_eq!((e.id.as_str(), e.location.as_str()), ("embedded", "local"));
        assert_eq!(e.rdap_bootstrap, None);
    }

    #[test]
    fn embedded_rdap_bootstrap_is_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("dns.json");
        std::fs::write(
            &boot,
            r#"{"services":[[["example"],["https://rdap.test/"]]]}"#,
        )
        .unwrap();
        let c = parse(&format!(
            "[embedded_agent]\nrdap_bootstrap = \"{}\"\n",
            boot.display()
        ))
        .unwrap();
        assert_eq!(c.embedded_agent.unwrap().rdap_bootstrap, Some(boot.clone()));
        std::fs::write(&boot, "not json").unwrap();
        let e = parse(&format!(
            "[embedded_agent]\nrdap_bootstrap = \"{}\"\n",
            boot.display()
        ))
        .unwrap_err();
        assert_eq!(e.key, "embedded_agent.rdap_bootstrap");
        assert!(e.message.contains("not JSON"), "{e}");
    }

    #[test]
    fn agents_validated() {
        let dup = format!(
            "[[agents]]\nid=\"a\"\nlocation=\"x\"\ntoken_sha256=\"{HASH}\"\n[[agents]]\nid=\"a\"\nlocation=\"y\"\ntoken_sha256=\"{}\"\n",
            HASH.replace('9', "8")
        );
        assert_eq!(parse(&dup).unwrap_err().key, "agents[a].id");
        let short = "[[agents]]\nid=\"a\"\nlocation=\"x\"\ntoken_sha256=\"abc\"\n";
        assert_eq!(parse(short).unwrap_err().key, "agents[a].token_sha256");
        let same = format!(
            "[[agents]]\nid=\"a\"\nlocation=\"x\"\ntoken_sha256=\"{HASH}\"\n[[agents]]\nid=\"b\"\nlocation=\"y\"\ntoken_sha256=\"{HASH}\"\n"
        );
        assert!(parse(&same).unwrap_err().message.contains("same token"));
    }

    #[test]
    fn database_url_selects_postgres_and_is_never_echoed() {
        let c = parse("[collector]\ndatabase_url = \"postgres://u:secret@db:5433/x\"\n").unwrap();
        assert_eq!(
            c.collector.store,
            Location::Postgres("postgres://u:secret@db:5433/x".into())
        );
        assert!(!format!("{:?}", c.collector).contains("secret"));
        assert!(
            c.summary().contains("database_url postgres://u@db:5433/x"),
            "{}",
            c.summary()
        );
        assert!(matches!(
            parse("").unwrap().collector.store,
            Location::Sqlite(_)
        ));
        for bad in [
            "mysql://u:secret@db/x",
            "postgres://u:secret@db/x?sslmode=sometimes",
        ] {
            let e = parse(&format!("[collector]\ndatabase_url = \"{bad}\"\n")).unwrap_err();
            assert_eq!(e.key, "collector.database_url");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }

    #[test]
    fn contracts_validated_and_summarised() {
        let base = format!(
            "[[agents]]\nid=\"a\"\nlocation=\"ams\"\ntoken_sha256=\"{HASH}\"\n[[checks]]\nname=\"w\"\nkind=\"http\"\nurl=\"http://x/\"\ninterval=\"5m\"\n"
        );
        let contract = "[[contracts]]\nname=\"c\"\nvendor=\"V\"\nchecks=[\"w\"]\ntimezone=\"Europe/Amsterdam\"\nslot=\"5m\"\nquorum=1\nobjectives=[{kind=\"availability\",target=99.9},{kind=\"latency\",phase=\"processing\",percentile=95,max=\"800ms\"}]\n";
        let ok = parse(&format!("{base}{contract}")).unwrap();
        assert_eq!(ok.contracts[0].name, "c");
        assert_eq!(ok.contracts[0].slot, Duration::from_secs(300));
        let s = ok.summary();
        assert!(
            s.contains("c  vendor V  checks: w  zone Europe/Amsterdam  slot 5m  quorum 1  objectives: availability >= 99.9%, processing p95 <= 800ms"),
            "{s}"
        );
        let unknown = parse(&format!(
            "{base}{}",
            contract.replace("[\"w\"]", "[\"nope\"]")
        ))
        .unwrap_err();
        assert!(unknown.key.starts_with("contracts[c]"), "{unknown}");
        let short = parse(&format!(
            "{base}{}",
            contract.replace("slot=\"5m\"", "slot=\"1m\"")
        ))
        .unwrap_err();
        assert_eq!(short.key, "contracts[c].slot", "{short}");
        let zone = parse(&format!(
            "{base}{}",
            contract.replace("Europe/Amsterdam", "Mars/Olympus")
        ))
        .unwrap_err();
        assert_eq!(zone.key, "contracts[c].timezone", "{zone}");
    }

    #[test]
    fn canaries_belong_to_no_contract() {
        let base = format!(
            "[[agents]]\nid=\"a\"\nlocation=\"ams\"\ntoken_sha256=\"{HASH}\"\n[[checks]]\nname=\"w\"\nkind=\"http\"\nurl=\"http://x/\"\n[[checks]]\nname=\"cn\"\nkind=\"dns\"\nquery=\".\"\ncanary=true\n"
        );
        let ok = parse(&format!(
            "{base}[[contracts]]\nname=\"c\"\nchecks=[\"w\"]\n"
        ))
        .unwrap();
        assert_eq!(ok.contracts[0].canaries, ["cn"]);
        assert_eq!(ok.contracts[0].evidence_checks(), ["w", "cn"]);
        assert!(ok.summary().contains("(canary)"), "{}", ok.summary());
        let e = parse(&format!(
            "{base}[[contracts]]\nname=\"c\"\nchecks=[\"w\", \"cn\"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "contracts[c].checks");
        assert!(e.message.contains("canary"), "{e}");
    }

    #[test]
    fn embedded_agent_gets_a_dns_canary_by_default() {
        let c = parse("[embedded_agent]\n").unwrap();
        let cn = c.check(EMBEDDED_CANARY).expect("default canary");
        assert!(cn.check.canary && cn.runs_at("local") && !cn.runs_at("ams"));
        assert_eq!(cn.check.kind, slaprobe_wire::CheckKind::Dns);
        assert_eq!(cn.served.query.as_deref(), Some("."));
        assert_eq!(cn.served.nameservers, None, "the system resolver");
        assert!(c.embedded_agent.unwrap().canary);
        let moved = parse(
            "[embedded_agent]\ncanary_query = \"acme.test\"\ncanary_nameservers = [\"127.0.0.1:5353\"]\n",
        )
        .unwrap();
        let cn = moved.check(EMBEDDED_CANARY).unwrap();
        assert_eq!(
            cn.served.nameservers.as_deref(),
            Some(&["127.0.0.1:5353".to_string()][..])
        );
        let off = parse("[embedded_agent]\ncanary = false\n").unwrap();
        assert!(off.check(EMBEDDED_CANARY).is_none());
        let e = parse("[embedded_agent]\ncanary = false\ncanary_query = \"x\"\n").unwrap_err();
        assert_eq!(e.key, "embedded_agent.canary");
    }

    #[test]
    fn check_locations_must_exist() {
        let t = format!(
            "[[agents]]\nid=\"a\"\nlocation=\"ams\"\ntoken_sha256=\"{HASH}\"\n[[checks]]\nname=\"w\"\nkind=\"http\"\nurl=\"http://x/\"\nlocations=[\"nyc\"]\n"
        );
        let e = parse(&t).unwrap_err();
        assert_eq!(e.key, "checks[w].locations");
        assert!(e.message.contains("nyc"), "{e}");
        let ok = parse(&t.replace("\"nyc\"", "\"ams\"")).unwrap();
        assert!(ok.checks[0].runs_at("ams"));
        assert!(!ok.checks[0].runs_at("nyc"));
    }
}
