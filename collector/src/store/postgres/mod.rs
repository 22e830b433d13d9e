//! The shared PostgreSQL store (`[collector] database_url`, DESIGN.md §9):
//! several collectors behind a load balancer write to and read from one
//! database, so any collector can take any batch and every one answers the
//! same.
//!
//! Same schema as [`super::sqlite`], translated: integers are `BIGINT`, the
//! raw JSON is `BYTEA` (never `jsonb`, which reorders keys and would change
//! the evidence digest), and every text column that is sorted on is
//! `COLLATE "C"`, so `ORDER BY agent, seq` is bytewise exactly like SQLite's
//! default collation whatever the database's locale.
//!
//! # Concurrency
//! Ingest is idempotent in the database itself: `UNIQUE (agent, seq)` and
//! `INSERT ... ON CONFLICT DO NOTHING RETURNING seq` tell which rows this
//! transaction stored. A batch sent to two collectors at once is stored once:
//! the second insert waits on the first one's uncommitted key, then skips it.
//! The per-agent row and the per-(check, location) tables are upserts that
//! read the row's latest committed version (`count = count + n`,
//! `GREATEST(..)`, a `WHERE` on `latest`), so concurrent batches for the same
//! agent never lose an update. Keys are written in sorted order (seqs, then
//! count keys, then latest keys, then the agent), so two transactions lock in
//! the same order and cannot deadlock each other; a deadlock or
//! serialization failure raised anyway is retried.
//!
//! # Threads
//! The `postgres` client is synchronous and owns a small tokio runtime, which
//! must never be entered or dropped from an async task. So every connection
//! lives on a dedicated thread: a pool of writer threads takes batches from
//! one bounded queue (full: [`StoreError::Overloaded`], as with SQLite) and a
//! pool of reader threads runs read closures. A broken connection is
//! re-opened before the next job.
//!
//! # TLS and durability
//! TLS follows the URL's `sslmode` (`disable`, `prefer`, `require`,
//! `verify-ca`, `verify-full`) and `sslrootcert`, through rustls
//! ([`super::pg_tls`]). Writer sessions `SET synchronous_commit = on`:
//! "acked means durable" must not depend on the server's default.
//!
//! # Layout
//! - `schema`: the migrations.
//! - `write`: the batch transaction (in seq order, retried) and the dedup lookups.
//! - `read`: [`Reader`].
//! - `ledger`: [`LedgerConn`].
//! - `maintenance`: [`Maintenance`] (compaction, archive records, retention).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::{Client, NoTls};
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

/// Threads (and connections) that store batches.
const WRITERS: usize = 4;

/// Threads (and connections) that serve reads (reports, `/api/v1/agents`).
const READERS: usize = 4;

/// Batches that may wait for a writer before ingest answers 503.
const WRITE_QUEUE: usize = 64;

/// Reads that may wait for a reader thread (callers then wait, not fail).
const READ_QUEUE: usize = 256;

/// Rows fetched per round trip when streaming results.
const FETCH_ROWS: i32 = 2000;

/// How often a batch is retried after a deadlock or serialization failure.
const TX_RETRIES: usize = 5;

/// Key of the advisory lock that serialises migrations across collectors
/// starting at once ("slaprobe" in ASCII).
const MIGRATION_LOCK: i64 = 0x736c_6170_726f_6265;

/// Key of the session advisory lock the SLA ledger's keeper holds ("slaledgr").
const LEDGER_LOCK: i64 = 0x736c_616c_6564_6772;

/// `url` without its password: `postgres://user@host:port/db`.
pub fn describe_url(url: &str) -> String {
    let Ok(target) = super::pg_tls::parse(url) else {
        return "postgres://(unparsable URL)".to_string();
    };
    let cfg = target.config;
    let user = cfg.get_user().unwrap_or("");
    let host = match cfg.get_hosts().first() {
        Some(::postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(::postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg.get_dbname().unwrap_or(user);
    let at = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    format!("postgres://{at}{host}:{port}/{db}")
}

/// Checks `url` without connecting: parses it (with `sslmode` and
/// `sslrootcert`, see [`super::pg_tls`]) and reads `sslrootcert`. The message
/// never contains the URL (it may hold a password).
pub fn validate_url(url: &str) -> Result<(), String> {
    let trimmed = url.trim();
    if !(trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://")) {
        return Err(
            "must be a PostgreSQL URL: postgres://user[:password]@host[:port]/database".into(),
        );
    }
    let target = super::pg_tls::parse(trimmed)?;
    if target.config.get_hosts().is_empty() {
        return Err("names no host (postgres://user@host:port/database)".into());
    }
    super::pg_tls::connector(&target)?;
    Ok(())
}

/// A connection for readers and migrations: TLS as the URL's `sslmode` asks.
fn connect(url: &str) -> Result<Client, StoreError> {
    let target = super::pg_tls::parse(url).map_err(StoreError::Config)?;
    let tls = super::pg_tls::connector(&target).map_err(StoreError::Config)?;
    let mut cfg = target.config;
    cfg.application_name("slaprobe-collector");
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(Duration::from_secs(10));
    }
    Ok(match tls {
        Some(tls) => cfg.connect(tls)?,
        None => cfg.connect(NoTls)?,
    })
}

/// A connection for a writer thread: [`connect`], then `synchronous_commit =
/// on` for the session, so a commit (and so an ack) waits for the WAL flush
/// whatever the server's or the role's default says.
pub fn writer_connection(url: &str) -> Result<Client, StoreError> {
    let mut client = connect(url)?;
    client.batch_execute("SET synchronous_commit = on")?;
    Ok(client)
}

/// A read closure, handed the thread's reader (or why there is none).
type ReadJob = Box<dyn FnOnce(Result<&super::Reader, StoreError>) + Send>;

/// Handle to the PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The URL without its password (for logs and errors).
    describe: String,
    writer: mpsc::Sender<WriteJob>,
    reader: mpsc::Sender<ReadJob>,
    /// Writer threads, joined by [`Store::close`].
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// The compactor thread, stopped by [`Store::close`].
    background: super::Background,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("db", &self.inner.describe)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, runs the migrations (serialised across collectors by an
    /// advisory lock) and starts the writer and reader threads. Blocking:
    /// call it from `spawn_blocking` or a plain thread.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let describe = describe_url(url);
        let mut client = writer_connection(url)?;
        migrate(&mut client, &describe)?;

        let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
        let wrx = Arc::new(Mutex::new(wrx));
        let mut writers = Vec::with_capacity(WRITERS);
        let mut first = Some(client);
        for i in 0..WRITERS {
            // Open every connection now: a bad URL or a full server fails start-up, not the first batch.
            let client = match first.take() {
                Some(c) => c,
                None => writer_connection(url)?,
            };
            let (rx, url) = (wrx.clone(), url.to_string());
            let h = std::thread::Builder::new()
                .name(format!("slaprobe-pg-writer-{i}"))
                .spawn(move || writer_loop(url, client, rx))
                .map_err(|e| StoreError::Task(format!("cannot start a writer thread: {e}")))?;
            writers.push(h);
        }

        let (rtx, rrx) = mpsc::channel::<ReadJob>(READ_QUEUE);
        let rrx = Arc::new(Mutex::new(rrx));
        for i in 0..READERS {
            let reader = Reader::open(url)?;
            let (rx, url) = (rrx.clone(), url.to_string());
            std::thread::Builder::new()
                .name(format!("slaprobe-pg-reader-{i}"))
                .spawn(move || reader_loop(url, reader, rx))
                .map_err(|e| StoreError::Task(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(Store {
            inner: Arc::new(Inner {
                describe,
                writer: wtx,
                reader: rtx,
                writers: Mutex::new(writers),
                background: super::Background::default(),
            }),
        })
    }

    /// The database URL without its password.
    pub fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    pub(crate) fn background(&self) -> &super::Background {
        &self.inner.background
    }

    /// False once the writers have stopped: nothing more can be stored.
    pub fn is_writable(&self) -> bool {
        !self.inner.writer.is_closed()
    }

    /// See [`super::Store::insert_batch`].
    pub async fn insert_batch(
        &self,
        agent: &str,
        location: &str,
        received_ms: i64,
        rows: Vec<NewResult>,
    ) -> Result<BatchOutcome, StoreError> {
        super::submit_insert(&self.inner.writer, agent, location, received_ms, rows).await
    }

    fn read_job<T, F>(f: F) -> (ReadJob, oneshot::Receiver<Result<T, StoreError>>)
    where
        T: Send + 'static,
        F: FnOnce(&super::Reader) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |reader| {
            let _ = tx.send(reader.and_then(f));
        });
        (job, rx)
    }

    /// Runs `f` on a reader thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&super::Reader) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, rx) = Self::read_job(f);
        self.inner
            .reader
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await
            .map_err(|_| StoreError::Task("a reader thread stopped".into()))?
    }

    /// Runs `f` on a reader thread, blocking this (non-async) thread until done.
    pub fn read_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&super::Reader) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, rx) = Self::read_job(f);
        self.inner
            .reader
            .blocking_send(job)
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv()
            .map_err(|_| StoreError::Task("a reader thread stopped".into()))?
    }

    /// Finishes the batches already taken, refuses the queued ones, stops
    /// and joins the writer threads. Reads keep working.
    pub async fn close(&self) {
        self.inner.background.stop().await;
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(WriteJob::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let handles =
            std::mem::take(&mut *self.inner.writers.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await;
    }
}

/// Takes the next job; `None` when the store is closing or gone. The lock
/// makes the threads take turns at the shared queue.
fn next_job<J>(rx: &Mutex<mpsc::Receiver<J>>) -> Option<J> {
    rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv()
}

fn writer_loop(url: String, client: Client, rx: Arc<Mutex<mpsc::Receiver<WriteJob>>>) {
    let mut client = Some(client);
    loop {
        let job = {
            let mut guard = rx.lock().unwrap_or_else(|e| e.into_inner());
            match guard.blocking_recv() {
                None => return,
                Some(WriteJob::Close(reply)) => {
                    // No new batches; refuse the queued ones. The other writers
                    // finish what they hold, then find the queue closed.
                    guard.close();
                    while let Ok(job) = guard.try_recv() {
                        match job {
                            WriteJob::Insert { reply, .. } => {
                                let _ = reply.send(Err(StoreError::Closed));
                            }
                            WriteJob::Close(r) => {
                                let _ = r.send(());
                            }
                        }
                    }
                    let _ = reply.send(());
                    return;
                }
                Some(job) => job,
            }
        };
        let WriteJob::Insert {
            agent,
            location,
            received_ms,
            rows,
            reply,
        } = job
        else {
            continue;
        };
        let result = usable(&mut client, &url)
            .and_then(|c| insert_batch(c, &agent, &location, received_ms, &rows));
        if let Err(e) = &result {
            tracing::error!(agent, error = %e, "storing a batch failed");
        }
        let _ = reply.send(result);
    }
}

/// The writer thread's connection, re-opened if it broke (database restart, network).
fn usable<'c>(client: &'c mut Option<Client>, url: &str) -> Result<&'c mut Client, StoreError> {
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = None;
        *client = Some(writer_connection(url)?);
    }
    client.as_mut().ok_or(StoreError::Closed)
}

fn reader_loop(url: String, reader: Reader, rx: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
    let mut reader = Some(super::Reader::Postgres(reader));
    while let Some(job) = next_job(&rx) {
        let broken = matches!(&reader, Some(super::Reader::Postgres(r)) if r.is_closed())
            || reader.is_none();
        if broken {
            reader = None;
            match Reader::open(&url) {
                Ok(r) => reader = Some(super::Reader::Postgres(r)),
                Err(e) => {
                    job(Err(e));
                    continue;
                }
            }
        }
        match &reader {
            Some(r) => job(Ok(r)),
            None => job(Err(StoreError::Closed)),
        }
    }
}

fn migrate(client: &mut Client, describe: &str) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    // Two collectors starting on a new database must not both migrate; the
    // lock is released with the transaction.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])?
        .try_get(0)?;
    let current = i64::from(current);
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: describe.into(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(version as i32)],
        )?;
        tracing::info!(version, db = describe, "store schema migrated");
    }
    tx.commit()?;
    Ok(())
}
