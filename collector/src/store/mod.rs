//! The durable store of probe results: every result kept whole (the raw JSON
//! the agent sent, because monthly evidence is computed from it), plus small
//! tables kept in the same transaction (per agent, latest per check and
//! location, probe counts) so that a restart rebuilds its state cheaply.
//!
//! # Layout
//! - [`sqlite`]: the embedded SQLite implementation (the only one so far). One
//!   writer thread owns the write connection; reads use their own connections.
//!
//! The types here are what callers see; a future PostgreSQL store
//! (DESIGN.md §9) would produce the same ones.

pub mod sqlite;

use std::path::PathBuf;

use slaprobe_wire::{CheckKind, FailureClass};

pub use sqlite::{Reader, Store};

/// A store problem. Bad input never gets here: ingest validates first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("no store at {0} (run the collector once to create it)")]
    Missing(PathBuf),
    #[error("the store at {path} has schema version {found}, newer than this build knows ({known}); upgrade slaprobe")]
    NewerSchema { path: PathBuf, found: i64, known: i64 },
    /// The writer's queue is full: the caller should answer 503 with Retry-After.
    #[error("store writer is busy")]
    Overloaded,
    #[error("store is closed")]
    Closed,
    #[error("store task failed: {0}")]
    Task(String),
}

/// One validated result to store.
#[derive(Debug, Clone)]
pub struct NewResult {
    pub seq: u64,
    pub check: String,
    pub location: String,
    pub kind: CheckKind,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    pub success: bool,
    pub class: Option<FailureClass>,
    /// The result's JSON exactly as the agent sent it.
    pub raw: Vec<u8>,
}

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Per input row: stored now (true) or already stored before (false: a duplicate).
    pub inserted: Vec<bool>,
    pub stored: u64,
    pub duplicates: u64,
}

/// Per-agent bookkeeping kept by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub id: String,
    pub location: String,
    /// Highest seq ever stored.
    pub max_seq: u64,
    /// Results stored (each seq once).
    pub results: u64,
    /// Results received again after they were stored.
    pub duplicates: u64,
    /// When the collector last stored a batch from it (ms since the epoch).
    pub last_seen_ms: i64,
}

impl AgentRow {
    /// Seqs up to `max_seq` never received. Seqs start at 1 and each is stored
    /// once, so this is exact.
    pub fn missing(&self) -> u64 {
        self.max_seq.saturating_sub(self.results)
    }
}

/// A stored result with its raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub agent: String,
    pub seq: u64,
    pub check: String,
    pub location: String,
    pub started_at_ms: i64,
    pub success: bool,
    /// Failure class as stored (snake_case), `None` for a success.
    pub class: Option<String>,
    /// The JSON exactly as the agent sent it.
    pub raw: String,
}

/// How many results a (check, location) has, by failure class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCount {
    pub check: String,
    pub location: String,
    /// `None` counts successes.
    pub class: Option<String>,
    pub count: u64,
}
