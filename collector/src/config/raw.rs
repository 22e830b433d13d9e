//! The config file as written: what figment deserializes (unknown keys
//! rejected) before [`super::CollectorConfig::from_raw`] checks it.

use super::*;

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
pub(super) fn embedded_canary(e: &RawEmbeddedAgent, location: &str) -> CheckSpec {
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
