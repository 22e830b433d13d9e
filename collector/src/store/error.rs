//! [`StoreError`]: what can go wrong in the store.

use std::path::PathBuf;

/// A store problem. Bad input never gets here: ingest validates first.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No store there yet; for PostgreSQL the "path" is the URL without its password.
    #[error("no store at {0} (run the collector once to create it)")]
    Missing(PathBuf),
    #[error(
        "the store at {path} has schema version {found}, newer than this build knows ({known}); upgrade slaprobe"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// The writer's queue is full: the caller should answer 503 with Retry-After.
    #[error("store writer is busy")]
    Overloaded,
    #[error("store is closed")]
    Closed,
    /// A row's (agent, seq) is already stored with other bytes: the agent
    /// reused a seq. Nothing of the batch was stored. `max_seq` is the highest
    /// seq stored for the agent, so it can move past it.
    #[error("seq {seq} is already stored with other content (highest stored seq: {max_seq})")]
    SeqConflict { seq: u64, max_seq: u64 },
    #[error("store task failed: {0}")]
    Task(String),
    /// The ledger moved on under this writer (another collector leads now).
    #[error(
        "the SLA ledger was written by another collector (expected version {expected}, found {found})"
    )]
    LedgerConflict { expected: u64, found: u64 },
    /// A database URL this build cannot use (TLS settings, `sslrootcert`); never holds the URL.
    #[error("database_url: {0}")]
    Config(String),
    /// Compacted evidence that does not decode (a damaged or hand-edited store).
    #[error("compacted evidence is damaged: {0}")]
    Corrupt(String),
}
