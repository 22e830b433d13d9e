//! The embedded SQLite store (the default): `slaprobe.db` in `data_dir`, WAL
//! journal, versioned migrations, one transaction per batch. Callers use it
//! through [`super::Store`] and [`super::Reader`].
//!
//! # Layout
//! - `schema`: the migrations.
//! - `write`: the batch transaction and the dedup lookups.
//! - `read`: [`Reader`].
//! - `ledger`: [`LedgerConn`].
//! - `maintenance`: [`Maintenance`] (compaction, archive records, retention).
//! - `tests`: the backend's own unit tests (the conformance suite is
//!   `tests/store_conformance.rs`).
//!
//! SQLite calls block, so one dedicated writer thread owns the write
//! connection and takes batches from a bounded queue (a full queue is
//! [`StoreError::Overloaded`], which ingest turns into 503 + Retry-After).
//! Reads run on `spawn_blocking` with connections of their own, which WAL
//! lets proceed while the writer commits.
//!
//! Durability: `synchronous = FULL`. In WAL mode `NORMAL` syncs only at
//! checkpoints, so a commit acknowledged to an agent could vanish on power
//! loss; the agent would already have dropped it from its spool. `FULL` syncs
//! the WAL at every commit, which is what "acked means durable" needs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::WriteJob;
use super::int::{to_i64, u64_col};
use super::{AgentRow, BatchOutcome, NewResult, ProbeCount, StoreError, StoredResult};

mod ledger;
mod maintenance;
mod read;
mod schema;
#[cfg(test)]
mod tests;
mod write;

pub use ledger::LedgerConn;
pub use maintenance::Maintenance;
pub use read::Reader;
use schema::MIGRATIONS;
pub use schema::SCHEMA_VERSION;
pub(crate) use write::stored_seq;
use write::*;

/// File name of the database inside `data_dir`.
pub const DB_FILE: &str = "slaprobe.db";

/// Batches that may wait for the writer before ingest answers 503.
const WRITE_QUEUE: usize = 64;

/// How long a connection waits on a lock held by another (e.g. a checkpoint).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    writer: mpsc::Sender<WriteJob>,
    /// Idle read connections, reused so each read does not reopen the file.
    readers: Mutex<Vec<super::Reader>>,
    /// The compactor thread, stopped by [`Store::close`].
    background: super::Background,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, runs the
    /// migrations and starts the writer thread. Blocking: call it from
    /// `spawn_blocking` inside a runtime.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Only takes effect on a new (empty) file: compaction then gives
        // freed pages back to the file system (`PRAGMA incremental_vacuum`
        // after each pass). An older store keeps its mode until a VACUUM (README).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        // journal_mode answers with a row, so it cannot go through pragma_update.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite refused WAL mode; readers will block the writer");
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints run on their own thread (`checkpointer`), not inside
        // the writer's COMMIT: a batch of 1,000 results writes ~250 pages, and
        // the default (every 1,000 pages) made one commit in four copy the hot
        // index and aggregate pages and fsync the database before its ack
        // (22% of the writer's CPU under load, and the p99 of the ack). The
        // writer's own auto-checkpoint stays as the bound (~40 MB) for a load
        // the checkpointer cannot catch up with: it completes because nothing
        // writes while it runs, so the WAL starts over after it.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.set_prepared_statement_cache_capacity(32);
        migrate(&mut conn, &path)?;

        let mut ckpt_conn = Connection::open(&path)?;
        ckpt_conn.busy_timeout(BUSY_TIMEOUT)?;
        // Dropped when the writer thread ends: the checkpointer stops with it.
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("slaprobe-store-ckpt".into())
            .spawn(move || checkpointer(&mut ckpt_conn, &stop_rx))
            .map_err(|e| StoreError::Task(format!("cannot start the checkpoint thread: {e}")))?;
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("slaprobe-store-writer".into())
            .spawn(move || {
                writer_loop(conn, rx);
                drop(stop_tx);
            })
            .map_err(|e| StoreError::Task(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                dir: data_dir.to_path_buf(),
                writer: tx,
                readers: Mutex::new(Vec::new()),
                background: super::Background::default(),
            }),
        })
    }

    /// False once the writer has stopped (closed, or died): nothing more can be stored.
    pub fn is_writable(&self) -> bool {
        !self.inner.writer.is_closed()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn background(&self) -> &super::Background {
        &self.inner.background
    }

    /// Stores one agent's batch in one transaction and updates the agent's
    /// row, the latest results and the counts with it. Returns once committed
    /// (durable). Rows whose (agent, seq) is already stored are duplicates.
    pub async fn insert_batch(
        &self,
        agent: &str,
        location: &str,
        received_ms: i64,
        rows: Vec<NewResult>,
    ) -> Result<BatchOutcome, StoreError> {
        super::submit_insert(&self.inner.writer, agent, location, received_ms, rows).await
    }

    /// Runs `f` with a read connection on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&super::Reader) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` with a read connection on this (blocking) thread.
    pub fn read_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&super::Reader) -> Result<T, StoreError>,
    {
        let inner = &self.inner;
        let pooled = inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let reader = match pooled {
            Some(r) => r,
            None => super::Reader::Sqlite(Reader::open(&inner.dir)?),
        };
        let out = f(&reader);
        let mut pool = inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 8 {
            pool.push(reader);
        }
        out
    }

    /// Finishes the queued batches, checkpoints the WAL and stops the writer.
    /// Batches sent afterwards fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        self.inner.background.stop().await;
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(WriteJob::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteJob>) {
    while let Some(job) = rx.blocking_recv() {
        match job {
            WriteJob::Insert {
                agent,
                location,
                received_ms,
                rows,
                reply,
            } => {
                let result = insert_batch(&mut conn, &agent, &location, received_ms, &rows);
                if let Err(e) = &result {
                    tracing::error!(agent, error = %e, "storing a batch failed");
                }
                let _ = reply.send(result);
            }
            WriteJob::Close(reply) => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint at close failed");
                }
                rx.close();
                // Refuse whatever was queued behind the close.
                while let Ok(job) = rx.try_recv() {
                    if let WriteJob::Insert { reply, .. } = job {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                }
                let _ = reply.send(());
                return;
            }
        }
    }
}

/// How often the checkpointer copies committed WAL frames into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL pages at which the writer checkpoints itself (~40 MB at 4 KiB pages).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Checkpoints the WAL from its own connection until the writer stops.
/// PASSIVE never blocks the writer; the WAL starts over from its beginning
/// at the next commit after a checkpoint that caught up.
fn checkpointer(conn: &mut Connection, stop: &std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // IMMEDIATE: two processes opening a new store at once must not both migrate.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = tx.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
        tracing::info!(version, path = %path.display(), "store schema migrated");
    }
    tx.commit()?;
    Ok(())
}

/// A write connection of its own to the existing store in `data_dir`
/// (durable commits, waiting out the other writers' locks).
fn open_writer(data_dir: &Path) -> Result<Connection, StoreError> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Missing(path));
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}
