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

/// Schema migrations, applied in order; the index + 1 is the version (the
/// same numbering as SQLite's). Never edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: results kept whole, and the bookkeeping maintained with them.
    r#"
    CREATE TABLE results (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        agent       TEXT COLLATE "C" NOT NULL,
        seq         BIGINT  NOT NULL,
        check_name  TEXT COLLATE "C" NOT NULL,
        location    TEXT COLLATE "C" NOT NULL,
        kind        TEXT    NOT NULL,
        started_at  BIGINT  NOT NULL,           -- ms since the Unix epoch
        success     BOOLEAN NOT NULL,
        class       TEXT COLLATE "C",           -- failure class, NULL on success
        received_at BIGINT  NOT NULL,           -- ms since the Unix epoch
        raw         BYTEA   NOT NULL,           -- the JSON exactly as sent
        UNIQUE (agent, seq)
    );
    CREATE INDEX results_check_started ON results (check_name, started_at);

    CREATE TABLE agents (
        agent      TEXT COLLATE "C" PRIMARY KEY,
        location   TEXT COLLATE "C" NOT NULL,
        max_seq    BIGINT NOT NULL,
        results    BIGINT NOT NULL,
        duplicates BIGINT NOT NULL,
        last_seen  BIGINT NOT NULL              -- ms since the Unix epoch
    );

    -- The newest result per (check, location): rebuilds the probe metrics at start.
    CREATE TABLE latest (
        check_name TEXT COLLATE "C" NOT NULL,
        location   TEXT COLLATE "C" NOT NULL,
        agent      TEXT COLLATE "C" NOT NULL,
        seq        BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        raw        BYTEA  NOT NULL,
        PRIMARY KEY (check_name, location)
    );

    -- Results per (check, location, class); class '' counts successes.
    CREATE TABLE probe_counts (
        check_name TEXT COLLATE "C" NOT NULL,
        location   TEXT COLLATE "C" NOT NULL,
        class      TEXT COLLATE "C" NOT NULL,
        count      BIGINT NOT NULL,
        PRIMARY KEY (check_name, location, class)
    );
    "#,
    // 2: the feed (batch numbers in commit order) and the SLA ledger's rows.
    r#"
    ALTER TABLE results ADD COLUMN batch_no BIGINT;    -- NULL: stored before migration 2
    CREATE INDEX results_batch ON results (batch_no);

    CREATE TABLE feed (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        last_batch BIGINT NOT NULL
    );
    INSERT INTO feed (id, last_batch) VALUES (1, 0);

    CREATE TABLE ledger_state (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        cursor  BIGINT NOT NULL,
        version BIGINT NOT NULL
    );
    INSERT INTO ledger_state (id, cursor, version) VALUES (1, 0, 0);

    CREATE TABLE ledger (
        contract TEXT COLLATE "C" NOT NULL,
        month    TEXT COLLATE "C" NOT NULL,
        chunk    BIGINT NOT NULL,
        version  BIGINT NOT NULL,
        data     BYTEA  NOT NULL,
        PRIMARY KEY (contract, month, chunk)
    );
    CREATE INDEX ledger_version ON ledger (version);
    "#,
    // 3: compacted evidence (`super::compact`), the compacted seqs per
    // agent, `latest` carrying what it read from `results`, archived months.
    r#"
    CREATE TABLE evidence_chunks (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        check_name TEXT COLLATE "C" NOT NULL,
        agent      TEXT COLLATE "C" NOT NULL,
        location   TEXT COLLATE "C" NOT NULL,
        day        BIGINT NOT NULL,         -- UTC day of started_at: floor(started_at / 86400000)
        n          BIGINT NOT NULL,
        frames     TEXT   NOT NULL,         -- JSON [[len, n, seq_min, seq_max], ...]
        data       BYTEA  NOT NULL,         -- concatenated zstd frames
        UNIQUE (check_name, day, agent, location)
    );
    -- Already compressed: keep it out of line and uncompressed, so a
    -- frame is read with substring() without detoasting the whole value.
    ALTER TABLE evidence_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE INDEX evidence_chunks_day ON evidence_chunks (day);

    CREATE TABLE compacted_seqs (
        agent TEXT COLLATE "C" NOT NULL,
        lo    BIGINT NOT NULL,
        hi    BIGINT NOT NULL,
        PRIMARY KEY (agent, lo)
    );

    ALTER TABLE latest ADD COLUMN success BOOLEAN;
    ALTER TABLE latest ADD COLUMN class TEXT COLLATE "C";
    ALTER TABLE latest ADD COLUMN batch_no BIGINT;
    UPDATE latest l SET success = r.success, class = r.class, batch_no = r.batch_no
      FROM results r WHERE r.agent = l.agent AND r.seq = l.seq;

    CREATE TABLE archives (
        month       TEXT COLLATE "C" PRIMARY KEY,
        archived_at BIGINT NOT NULL,
        results     BIGINT NOT NULL,
        sha256      TEXT   NOT NULL,
        pruned_at   BIGINT,
        pruned      BIGINT NOT NULL DEFAULT 0
    );
    "#,
];

/// Key of the session advisory lock the SLA ledger's keeper holds ("slaledgr").
const LEDGER_LOCK: i64 = 0x736c_616c_6564_6772;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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

fn retryable(e: &::postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

fn insert_batch(
    client: &mut Client,
    agent: &str,
    location: &str,
    received_ms: i64,
    rows: &[NewResult],
) -> Result<BatchOutcome, StoreError> {
    let mut attempt = 0;
    loop {
        match try_insert_batch(client, agent, location, received_ms, rows) {
            Err(e) if attempt < TX_RETRIES && retryable(&e) => {
                attempt += 1;
                tracing::debug!(agent, attempt, error = %e, "retrying a batch after a transaction conflict");
            }
            Err(e) => return Err(e.into()),
            Ok(Err((seq, max_seq))) => return Err(StoreError::SeqConflict { seq, max_seq }),
            Ok(Ok(out)) => return Ok(out),
        }
    }
}

fn try_insert_batch(
    client: &mut Client,
    agent: &str,
    location: &str,
    received_ms: i64,
    rows: &[NewResult],
) -> Result<Result<BatchOutcome, (u64, u64)>, ::postgres::Error> {
    // Each seq once (the first occurrence stands for the batch), in seq
    // order: the unique-key locks are then taken in the same order by every
    // transaction, which rules out deadlocks between overlapping batches.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].seq); // stable: first occurrence first
    order.dedup_by_key(|i| rows[*i].seq);
    let mut first = vec![false; rows.len()];
    for &i in &order {
        first[i] = true;
    }
    let seqs: Vec<i64> = order.iter().map(|&i| to_i64(rows[i].seq)).collect();
    let checks: Vec<&str> = order.iter().map(|&i| rows[i].check.as_str()).collect();
    let locations: Vec<&str> = order.iter().map(|&i| rows[i].location.as_str()).collect();
    let kinds: Vec<&str> = order.iter().map(|&i| rows[i].kind.as_str()).collect();
    let started: Vec<i64> = order.iter().map(|&i| rows[i].started_at_ms).collect();
    let success: Vec<bool> = order.iter().map(|&i| rows[i].success).collect();
    let classes: Vec<Option<&str>> = order
        .iter()
        .map(|&i| rows[i].class.map(|c| c.as_str()))
        .collect();
    let raws: Vec<&[u8]> = order.iter().map(|&i| rows[i].raw.as_slice()).collect();

    let mut tx = client.transaction()?;
    // The batch number first: the counter row stays locked until this
    // transaction ends, so numbers follow commit order (see the feed in `super`).
    let batch_no: i64 = tx
        .query_one(
            "UPDATE feed SET last_batch = last_batch + 1 WHERE id = 1 RETURNING last_batch",
            &[],
        )?
        .try_get(0)?;
    // Seqs compacted away are stored too (see `super::compact`). Read under
    // the feed lock: compaction holds it while it moves rows.
    let compacted = compacted_ranges(&mut tx, agent)?;
    let keep: Vec<bool> = seqs
        .iter()
        .map(|&q| !super::compact::in_ranges(&compacted, u64_col(q)))
        .collect();
    fn pick<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
        v.iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect()
    }
    let (seqs, checks, locations, kinds, started, success, classes, raws) = (
        pick(&seqs, &keep),
        pick(&checks, &keep),
        pick(&locations, &keep),
        pick(&kinds, &keep),
        pick(&started, &keep),
        pick(&success, &keep),
        pick(&classes, &keep),
        pick(&raws, &keep),
    );
    let returned = tx.query(
        "INSERT INTO results (agent, seq, check_name, location, kind, started_at, success, class, received_at, raw, batch_no)
         SELECT $1, u.seq, u.check_name, u.location, u.kind, u.started_at, u.success, u.class, $2, u.raw, $11
         FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::boolean[], $9::text[], $10::bytea[])
           AS u(seq, check_name, location, kind, started_at, success, class, raw)
         ON CONFLICT (agent, seq) DO NOTHING
         RETURNING seq",
        &[&agent, &received_ms, &seqs, &checks, &locations, &kinds, &started, &success, &classes, &raws, &batch_no],
    )?;
    let mut new_seqs: HashSet<i64> = HashSet::with_capacity(returned.len());
    for r in &returned {
        new_seqs.insert(r.try_get(0)?);
    }
    let inserted: Vec<bool> = rows
        .iter()
        .zip(&first)
        .map(|(r, &first)| first && new_seqs.contains(&to_i64(r.seq)))
        .collect();
    // A duplicate must carry the stored bytes; other bytes are a reused seq:
    // refuse the whole batch (dropping `tx` rolls it back).
    let dup_seqs: Vec<i64> = rows
        .iter()
        .zip(&inserted)
        .filter(|(_, new)| !**new)
        .map(|(r, _)| to_i64(r.seq))
        .collect();
    if !dup_seqs.is_empty() {
        let stored = tx.query(
            "SELECT seq, raw FROM results WHERE agent = $1 AND seq = ANY($2)",
            &[&agent, &dup_seqs],
        )?;
        let mut by_seq: std::collections::HashMap<i64, Vec<u8>> = std::collections::HashMap::new();
        for r in &stored {
            by_seq.insert(r.try_get(0)?, r.try_get(1)?);
        }
        for (r, _) in rows.iter().zip(&inserted).filter(|(_, new)| !**new) {
            let conflict = by_seq.get(&to_i64(r.seq)).is_some_and(|s| {
                super::classify_duplicate(s, &r.raw) == super::Duplicate::Conflict
            });
            if conflict {
                let max_seq: i64 = tx
                    .query_opt("SELECT max_seq FROM agents WHERE agent = $1", &[&agent])?
                    .map(|row| row.try_get(0))
                    .transpose()?
                    .unwrap_or(0);
                return Ok(Err((r.seq, u64::try_from(max_seq).unwrap_or(0))));
            }
        }
    }

    // Aggregate the batch: one upsert per key, keys sorted (lock order).
    let super::BatchAggregate {
        counts,
        latest,
        stored,
        max_seq,
        duplicates,
    } = super::BatchAggregate::new(rows, &inserted);
    if !counts.is_empty() {
        let (c, l, k, n): (Vec<&str>, Vec<&str>, Vec<&str>, Vec<i64>) = counts.iter().fold(
            (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            |(mut c, mut l, mut k, mut n), ((check, loc, class), v)| {
                c.push(*check);
                l.push(*loc);
                k.push(*class);
                n.push(*v);
                (c, l, k, n)
            },
        );
        tx.execute(
            "INSERT INTO probe_counts (check_name, location, class, count)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
             ON CONFLICT (check_name, location, class) DO UPDATE SET count = probe_counts.count + excluded.count",
            &[&c, &l, &k, &n],
        )?;
    }
    if !latest.is_empty() {
        let checks: Vec<&str> = latest.keys().map(|k| k.0).collect();
        let locs: Vec<&str> = latest.keys().map(|k| k.1).collect();
        let seqs: Vec<i64> = latest.values().map(|r| to_i64(r.seq)).collect();
        let started: Vec<i64> = latest.values().map(|r| r.started_at_ms).collect();
        let raws: Vec<&[u8]> = latest.values().map(|r| r.raw.as_slice()).collect();
        let success: Vec<bool> = latest.values().map(|r| r.success).collect();
        let classes: Vec<Option<&str>> = latest
            .values()
            .map(|r| r.class.map(|c| c.as_str()))
            .collect();
        tx.execute(
            "INSERT INTO latest (check_name, location, agent, seq, started_at, raw, success, class, batch_no)
             SELECT u.check_name, u.location, $1, u.seq, u.started_at, u.raw, u.success, u.class, $9
             FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bytea[], $7::boolean[], $8::text[])
               AS u(check_name, location, seq, started_at, raw, success, class)
             ON CONFLICT (check_name, location) DO UPDATE
               SET agent = excluded.agent, seq = excluded.seq, started_at = excluded.started_at, raw = excluded.raw,
                   success = excluded.success, class = excluded.class, batch_no = excluded.batch_no
               WHERE excluded.started_at > latest.started_at
                  OR (excluded.started_at = latest.started_at AND excluded.seq > latest.seq)",
            &[&agent, &checks, &locs, &seqs, &started, &raws, &success, &classes, &batch_no],
        )?;
    }
    tx.execute(
        "INSERT INTO agents (agent, location, max_seq, results, duplicates, last_seen) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (agent) DO UPDATE SET
           location = excluded.location,
           max_seq = GREATEST(agents.max_seq, excluded.max_seq),
           results = agents.results + excluded.results,
           duplicates = agents.duplicates + excluded.duplicates,
           last_seen = GREATEST(agents.last_seen, excluded.last_seen)",
        &[&agent, &location, &to_i64(max_seq), &to_i64(stored), &to_i64(duplicates), &received_ms],
    )?;
    tx.commit()?;
    Ok(Ok(BatchOutcome {
        inserted,
        stored,
        duplicates,
        batch_no: u64_col(batch_no),
    }))
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

/// A read connection to the PostgreSQL store.
pub struct Reader {
    /// `RefCell`: the client needs `&mut` for every query, readers are `&`.
    client: RefCell<Client>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReader").finish_non_exhaustive()
    }
}

const RESULT_COLUMNS: &str =
    "agent, seq, check_name, location, started_at, success, class, raw, batch_no";

impl Reader {
    /// Connects and checks the schema: fails when the database has no
    /// slaprobe store or a newer one. Blocking (not from an async task).
    pub fn open(url: &str) -> Result<Reader, StoreError> {
        let mut client = connect(url)?;
        let describe = describe_url(url);
        let exists: bool = client
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
            .try_get(0)?;
        if !exists {
            return Err(StoreError::Missing(describe.into()));
        }
        let version: Option<i32> = client
            .query_one("SELECT max(version) FROM schema_version", &[])?
            .try_get(0)?;
        match version.map(i64::from) {
            None => return Err(StoreError::Missing(describe.into())),
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    path: describe.into(),
                    found: v,
                    known: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
        }
        Ok(Reader {
            client: RefCell::new(client),
        })
    }

    fn is_closed(&self) -> bool {
        self.client
            .try_borrow()
            .map(|c| c.is_closed())
            .unwrap_or(false)
    }

    fn client(&self) -> Result<std::cell::RefMut<'_, Client>, StoreError> {
        self.client
            .try_borrow_mut()
            .map_err(|_| StoreError::Task("the reader is already in use (nested read)".into()))
    }

    /// See [`super::Reader::agents`].
    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let rows = self
            .client()?
            .query("SELECT agent, location, max_seq, results, duplicates, last_seen FROM agents ORDER BY agent", &[])?;
        rows.iter()
            .map(|r| {
                Ok(AgentRow {
                    id: r.try_get(0)?,
                    location: r.try_get(1)?,
                    max_seq: u64_col(r.try_get(2)?),
                    results: u64_col(r.try_get(3)?),
                    duplicates: u64_col(r.try_get(4)?),
                    last_seen_ms: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// See [`super::Reader::latest`].
    pub fn latest(&self) -> Result<Vec<StoredResult>, StoreError> {
        let rows = self.client()?.query(
            "SELECT agent, seq, check_name, location, started_at, success, class, raw, batch_no
             FROM latest ORDER BY check_name, location",
            &[],
        )?;
        rows.iter().map(row_to_result).collect()
    }

    /// See [`super::Reader::probe_counts`].
    pub fn probe_counts(&self) -> Result<Vec<ProbeCount>, StoreError> {
        let rows = self
            .client()?
            .query("SELECT check_name, location, class, count FROM probe_counts ORDER BY check_name, location, class", &[])?;
        rows.iter()
            .map(|r| {
                let class: String = r.try_get(2)?;
                Ok(ProbeCount {
                    check: r.try_get(0)?,
                    location: r.try_get(1)?,
                    class: if class.is_empty() { None } else { Some(class) },
                    count: u64_col(r.try_get(3)?),
                })
            })
            .collect()
    }

    /// See [`super::Reader::for_each_result`]. Streams through a portal
    /// ([`FETCH_ROWS`] rows a round trip) inside one read-only REPEATABLE
    /// READ transaction, so the rows and the compacted frames (read with
    /// `substring`, one frame at a time as the merge reaches it) are one snapshot.
    pub fn for_each_result<F>(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        mut f: F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(StoredResult),
    {
        use super::compact::{FrameRef, Interner, Merge, day_of, frame_refs};
        if checks.is_empty() || from_ms >= to_ms {
            return Ok(());
        }
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .start()?;
        let mut frames = Vec::new();
        let mut names = Interner::default();
        for r in tx.query(
            "SELECT id, agent, check_name, location, frames FROM evidence_chunks
             WHERE check_name = ANY($1) AND day >= $2 AND day <= $3",
            &[&checks, &day_of(from_ms), &day_of(to_ms - 1)],
        )? {
            let (agent, check, loc): (&str, &str, &str) =
                (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            frame_refs(
                &mut frames,
                r.try_get(0)?,
                names.get(agent),
                names.get(check),
                names.get(loc),
                r.try_get(4)?,
            )?;
        }
        let mut merge = Merge::new(frames, from_ms, to_ms);
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results
             WHERE check_name = ANY($1) AND started_at >= $2 AND started_at < $3
             ORDER BY agent, seq"
        );
        let portal = tx.bind(sql.as_str(), &[&checks, &from_ms, &to_ms])?;
        let load_sql = "SELECT substring(data FROM $2 FOR $3) FROM evidence_chunks WHERE id = $1";
        loop {
            let rows = tx.query_portal(&portal, FETCH_ROWS)?;
            let mut load = |fr: &FrameRef| load_frame(&mut tx, load_sql, fr);
            for row in &rows {
                merge.push_row(row_to_result(row)?, &mut load, &mut f)?;
            }
            if rows.len() < FETCH_ROWS as usize {
                merge.finish(&mut load, &mut f)?;
                break;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// See [`super::Reader::count_results`]: compacted results included.
    pub fn count_results(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .client()?
            .query_one(
                "SELECT (SELECT count(*) FROM results) + (SELECT coalesce(sum(n), 0) FROM evidence_chunks)::bigint",
                &[],
            )?
            .try_get(0)?;
        Ok(u64_col(n))
    }

    /// See [`super::Reader::stored_seq`].
    pub fn stored_seq(
        &self,
        agent: &str,
        seq: u64,
        check: &str,
        started_at_ms: i64,
    ) -> Result<super::StoredSeq, StoreError> {
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .start()?;
        let out = stored_seq(&mut tx, agent, seq, check, started_at_ms)?;
        tx.commit()?;
        Ok(out)
    }

    /// See [`super::Reader::archives`].
    pub fn archives(&self) -> Result<Vec<super::ArchiveRecord>, StoreError> {
        let rows = self.client()?.query(
            "SELECT month, archived_at, results, sha256, pruned FROM archives ORDER BY month",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(super::ArchiveRecord {
                    month: r.try_get(0)?,
                    archived_at_ms: r.try_get(1)?,
                    results: u64_col(r.try_get(2)?),
                    sha256: r.try_get(3)?,
                    pruned: u64_col(r.try_get(4)?),
                })
            })
            .collect()
    }

    /// See [`super::Reader::feed_after`]. The head is read first (in READ
    /// COMMITTED, before the rows' statement): every batch up to it is
    /// committed, and the rows' statement sees all of them.
    pub fn feed_after<F>(&self, cursor: u64, max_batches: u64, mut f: F) -> Result<u64, StoreError>
    where
        F: FnMut(StoredResult),
    {
        let head = self.feed_head()?;
        let hi = cursor.saturating_add(max_batches.max(1));
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results WHERE batch_no > $1 AND batch_no <= $2 ORDER BY batch_no, agent, seq"
        );
        let portal = tx.bind(sql.as_str(), &[&to_i64(cursor), &to_i64(hi)])?;
        let mut seen = cursor.max(head.min(hi));
        loop {
            let rows = tx.query_portal(&portal, FETCH_ROWS)?;
            for row in &rows {
                let r = row_to_result(row)?;
                seen = seen.max(r.batch_no);
                f(r);
            }
            if rows.len() < FETCH_ROWS as usize {
                break;
            }
        }
        tx.commit()?;
        Ok(seen)
    }

    /// See [`super::Reader::feed_head`].
    pub fn feed_head(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .client()?
            .query_one("SELECT last_batch FROM feed WHERE id = 1", &[])?
            .try_get(0)?;
        Ok(u64_col(n))
    }

    /// See [`super::Reader::metrics_seed`]: one REPEATABLE READ snapshot
    /// (the reads below run on this reader's one session, inside it).
    pub fn metrics_seed(&self) -> Result<super::MetricsSeed, StoreError> {
        self.client()?
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        let out = (|| -> Result<_, StoreError> {
            Ok(super::MetricsSeed {
                head: self.feed_head()?,
                latest: self.latest()?,
                counts: self.probe_counts()?,
                agents: self.agents()?,
            })
        })();
        let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.client()?.batch_execute(end)?;
        out
    }

    /// See [`super::Reader::ledger_since`]: one REPEATABLE READ snapshot.
    pub fn ledger_since(&self, since: u64) -> Result<super::LedgerChanges, StoreError> {
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .start()?;
        let st = tx.query_one("SELECT cursor, version FROM ledger_state WHERE id = 1", &[])?;
        let state = super::LedgerState {
            cursor: u64_col(st.try_get(0)?),
            version: u64_col(st.try_get(1)?),
        };
        let rows = tx.query(
            "SELECT contract, month, chunk, data FROM ledger WHERE version > $1 ORDER BY contract, month, chunk",
            &[&to_i64(since)],
        )?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(super::LedgerRow {
                    contract: r.try_get(0)?,
                    month: r.try_get(1)?,
                    chunk: r.try_get(2)?,
                    data: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit()?;
        Ok(super::LedgerChanges { state, rows })
    }
}

/// The PostgreSQL side of [`super::LedgerConn`]: a connection of its own
/// that holds the keeper's session advisory lock while it lives.
pub struct LedgerConn {
    client: Client,
    leading: bool,
}

impl std::fmt::Debug for LedgerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLedgerConn")
            .field("leading", &self.leading)
            .finish_non_exhaustive()
    }
}

impl LedgerConn {
    /// Connects (blocking; not from an async task).
    pub fn open(url: &str) -> Result<LedgerConn, StoreError> {
        Ok(LedgerConn {
            client: connect(url)?,
            leading: false,
        })
    }

    /// See [`super::LedgerConn::try_lead`].
    pub fn try_lead(&mut self) -> Result<bool, StoreError> {
        if !self.leading {
            self.leading = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEDGER_LOCK])?
                .try_get(0)?;
        }
        Ok(self.leading)
    }

    /// See [`super::LedgerConn::write`]: one transaction, fenced on the
    /// version (`FOR UPDATE` on the state row).
    pub fn write(&mut self, w: &super::LedgerWrite) -> Result<u64, StoreError> {
        let mut tx = self.client.transaction()?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")?;
        let found: i64 = tx
            .query_one(
                "SELECT version FROM ledger_state WHERE id = 1 FOR UPDATE",
                &[],
            )?
            .try_get(0)?;
        let found = u64_col(found);
        if found != w.base {
            return Err(StoreError::LedgerConflict {
                expected: w.base,
                found,
            });
        }
        let version = to_i64(w.base + 1);
        if !w.reset_contracts.is_empty() {
            tx.execute(
                "DELETE FROM ledger WHERE contract = ANY($1)",
                &[&w.reset_contracts],
            )?;
        }
        if !w.rows.is_empty() {
            let contracts: Vec<&str> = w.rows.iter().map(|r| r.contract.as_str()).collect();
            let months: Vec<&str> = w.rows.iter().map(|r| r.month.as_str()).collect();
            let chunks: Vec<i64> = w.rows.iter().map(|r| r.chunk).collect();
            let data: Vec<&[u8]> = w.rows.iter().map(|r| r.data.as_slice()).collect();
            tx.execute(
                "INSERT INTO ledger (contract, month, chunk, version, data)
                 SELECT u.contract, u.month, u.chunk, $5, u.data
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) AS u(contract, month, chunk, data)
                 ON CONFLICT (contract, month, chunk) DO UPDATE SET version = excluded.version, data = excluded.data",
                &[&contracts, &months, &chunks, &data, &version],
            )?;
        }
        tx.execute(
            "UPDATE ledger_state SET cursor = $1, version = $2 WHERE id = 1",
            &[&to_i64(w.cursor), &version],
        )?;
        tx.commit()?;
        Ok(w.base + 1)
    }
}

/// One frame's compressed bytes (`substring` is 1-based).
fn load_frame(
    tx: &mut ::postgres::Transaction<'_>,
    sql: &str,
    fr: &super::compact::FrameRef,
) -> Result<Vec<u8>, StoreError> {
    let row = tx.query_one(
        sql,
        &[
            &fr.chunk_id,
            &(i32::try_from(fr.offset + 1).unwrap_or(i32::MAX)),
            &(i32::try_from(fr.len).unwrap_or(i32::MAX)),
        ],
    )?;
    Ok(row.try_get(0)?)
}

/// `agent`'s compacted seq ranges, sorted.
fn compacted_ranges(
    tx: &mut ::postgres::Transaction<'_>,
    agent: &str,
) -> Result<Vec<(u64, u64)>, ::postgres::Error> {
    let rows = tx.query(
        "SELECT lo, hi FROM compacted_seqs WHERE agent = $1 ORDER BY lo",
        &[&agent],
    )?;
    rows.iter()
        .map(|r| Ok((u64_col(r.try_get(0)?), u64_col(r.try_get(1)?))))
        .collect()
}

/// Whether `(agent, seq)` is stored, and with which bytes: the one place
/// that answers it for this backend (see [`super::StoredSeq`] and the
/// SQLite twin, `super::sqlite::stored_seq`).
pub(crate) fn stored_seq(
    tx: &mut ::postgres::Transaction<'_>,
    agent: &str,
    seq: u64,
    check: &str,
    started_at_ms: i64,
) -> Result<super::StoredSeq, StoreError> {
    if let Some(r) = tx.query_opt(
        "SELECT raw FROM results WHERE agent = $1 AND seq = $2",
        &[&agent, &to_i64(seq)],
    )? {
        return Ok(super::StoredSeq::Stored(r.try_get(0)?));
    }
    if !super::compact::in_ranges(&compacted_ranges(tx, agent)?, seq) {
        return Ok(super::StoredSeq::Absent);
    }
    let chunks = tx.query(
        "SELECT id, frames FROM evidence_chunks WHERE check_name = $1 AND day = $2 AND agent = $3",
        &[&check, &super::compact::day_of(started_at_ms), &agent],
    )?;
    let load_sql = "SELECT substring(data FROM $2 FOR $3) FROM evidence_chunks WHERE id = $1";
    for c in &chunks {
        let id: i64 = c.try_get(0)?;
        let mut offset = 0u64;
        for fm in super::compact::parse_frames(c.try_get(1)?)? {
            if (fm.seq_min()..=fm.seq_max()).contains(&seq) {
                let fr = super::compact::FrameRef {
                    agent: agent.into(),
                    check: check.into(),
                    location: "".into(),
                    chunk_id: id,
                    offset,
                    len: fm.len(),
                    seq_min: fm.seq_min(),
                };
                let data = load_frame(tx, load_sql, &fr)?;
                if let Some(r) = super::compact::decode_frame(&data)?
                    .into_iter()
                    .find(|r| r.seq == seq)
                {
                    return Ok(super::StoredSeq::Stored(r.raw));
                }
            }
            offset += fm.len();
        }
    }
    Ok(super::StoredSeq::StoredOtherwise)
}

/// The PostgreSQL side of [`super::Maintenance`]: a connection of its own.
/// Every compaction transaction takes the feed row's lock first, as every
/// batch does, so a batch never checks the compacted ranges while rows
/// move (it would store a seq twice) and two collectors never compact the
/// same rows.
pub struct Maintenance {
    client: Client,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresMaintenance")
            .finish_non_exhaustive()
    }
}

impl Maintenance {
    /// Connects (blocking; not from an async task) and checks the schema.
    pub fn open(url: &str) -> Result<Maintenance, StoreError> {
        drop(Reader::open(url)?);
        Ok(Maintenance {
            client: connect(url)?,
        })
    }

    /// See the SQLite twin: finished days' chunk rows as one frame each.
    pub(super) fn seal(&mut self, before_day: i64) -> Result<u64, StoreError> {
        use super::compact::{SEAL_PER_TX, frames_json, parse_frames, reseal};
        let mut sealed = 0;
        let mut after_id = 0i64;
        loop {
            let mut tx = self.client.transaction()?;
            let rows = tx.query(
                "SELECT id, frames, data FROM evidence_chunks
                 WHERE id > $1 AND day < $2 AND frames LIKE '[[%],[%'
                 ORDER BY id LIMIT $3 FOR UPDATE",
                &[&after_id, &before_day, &SEAL_PER_TX],
            )?;
            let Some(last) = rows.last().map(|r| r.try_get::<_, i64>(0)).transpose()? else {
                return Ok(sealed);
            };
            for r in &rows {
                let id: i64 = r.try_get(0)?;
                let (one, meta) = reseal(r.try_get(2)?, &parse_frames(r.try_get(1)?)?)?;
                tx.execute(
                    "UPDATE evidence_chunks SET frames = $2, data = $3 WHERE id = $1",
                    &[&id, &frames_json(&[meta]), &one],
                )?;
            }
            tx.commit()?;
            sealed += rows.len() as u64;
            after_id = last;
        }
    }

    /// See the SQLite twin: rows read and compressed outside the write
    /// transaction, which then takes the feed lock (ingest's dedup must see
    /// rows and ranges move together), deletes the rows (all of them, or it
    /// rolls back: another collector's compactor took some), stores the
    /// frames and the ranges.
    pub(super) fn compact_tx(
        &mut self,
        received_before_ms: i64,
        started_before_ms: i64,
        after_id: i64,
    ) -> Result<(u64, u64, i64), StoreError> {
        use super::compact::{Row, encode_groups, frames_json, parse_frames, seq_runs};
        let cursor: i64 = self
            .client
            .query_one("SELECT cursor FROM ledger_state WHERE id = 1", &[])?
            .try_get(0)?;
        let rows: Vec<Row> = self
            .client
            .query(
                "SELECT id, agent, seq, check_name, location, started_at, success, class, raw FROM results
                 WHERE id > $1 AND received_at < $2 AND started_at < $3
                   AND (batch_no IS NULL OR batch_no <= $4)
                 ORDER BY id LIMIT $5",
                &[
                    &after_id,
                    &received_before_ms,
                    &started_before_ms,
                    &cursor,
                    &(super::compact::ROWS_PER_TX as i64),
                ],
            )?
            .iter()
            .map(|r| {
                Ok(Row {
                    id: r.try_get(0)?,
                    agent: r.try_get(1)?,
                    seq: u64_col(r.try_get(2)?),
                    check: r.try_get(3)?,
                    location: r.try_get(4)?,
                    started_at_ms: r.try_get(5)?,
                    success: r.try_get(6)?,
                    class: r.try_get(7)?,
                    raw: r.try_get(8)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let Some(last_id) = rows.last().map(|r| r.id) else {
            return Ok((0, 0, after_id));
        };
        let frames = encode_groups(&rows)?;
        let mut tx = self.client.transaction()?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")?;
        tx.execute("SELECT last_batch FROM feed WHERE id = 1 FOR UPDATE", &[])?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        if tx.execute("DELETE FROM results WHERE id = ANY($1)", &[&ids])? != ids.len() as u64 {
            // Taken meanwhile: leave it all to the next pass (drop rolls back).
            return Ok((0, 0, after_id));
        }
        for f in &frames {
            let existing = tx.query_opt(
                "SELECT id, frames FROM evidence_chunks
                 WHERE check_name = $1 AND day = $2 AND agent = $3 AND location = $4 FOR UPDATE",
                &[&f.check, &f.day, &f.agent, &f.location],
            )?;
            match existing {
                Some(r) => {
                    let id: i64 = r.try_get(0)?;
                    let mut metas = parse_frames(r.try_get(1)?)?;
                    metas.push(f.meta);
                    tx.execute(
                        "UPDATE evidence_chunks SET n = n + $2, frames = $3, data = data || $4 WHERE id = $1",
                        &[&id, &(f.meta.n() as i64), &frames_json(&metas), &f.data],
                    )?;
                }
                None => {
                    tx.execute(
                        "INSERT INTO evidence_chunks (check_name, agent, location, day, n, frames, data)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &f.check,
                            &f.agent,
                            &f.location,
                            &f.day,
                            &(f.meta.n() as i64),
                            &frames_json(&[f.meta]),
                            &f.data,
                        ],
                    )?;
                }
            }
        }
        for (agent, runs) in seq_runs(&rows) {
            add_ranges(&mut tx, agent, &runs)?;
        }
        tx.commit()?;
        Ok((rows.len() as u64, frames.len() as u64, last_id))
    }

    /// See [`super::Maintenance::record_archive`].
    pub fn record_archive(&mut self, a: &super::ArchiveRecord) -> Result<(), StoreError> {
        self.client.execute(
            "INSERT INTO archives (month, archived_at, results, sha256) VALUES ($1, $2, $3, $4)
             ON CONFLICT (month) DO UPDATE SET archived_at = excluded.archived_at,
               results = excluded.results, sha256 = excluded.sha256",
            &[&a.month, &a.archived_at_ms, &to_i64(a.results), &a.sha256],
        )?;
        Ok(())
    }

    /// See [`super::Maintenance::prune_days`].
    pub fn prune_days(
        &mut self,
        before_day: i64,
        keep: &dyn Fn(i64) -> bool,
    ) -> Result<u64, StoreError> {
        let mut tx = self.client.transaction()?;
        let days: Vec<i64> = tx
            .query(
                "SELECT DISTINCT day FROM evidence_chunks WHERE day < $1 ORDER BY day",
                &[&before_day],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut dropped = 0i64;
        for day in days.into_iter().filter(|d| !keep(*d)) {
            let n: i64 = tx
                .query_one(
                    "WITH d AS (DELETE FROM evidence_chunks WHERE day = $1 RETURNING n)
                     SELECT coalesce(sum(n), 0)::bigint FROM d",
                    &[&day],
                )?
                .try_get(0)?;
            dropped += n;
        }
        tx.commit()?;
        Ok(u64_col(dropped))
    }

    /// See [`super::Maintenance::mark_pruned`].
    pub fn mark_pruned(&mut self, month: &str, at_ms: i64, results: u64) -> Result<(), StoreError> {
        self.client.execute(
            "UPDATE archives SET pruned_at = $2, pruned = pruned + $3 WHERE month = $1",
            &[&month, &at_ms, &to_i64(results)],
        )?;
        Ok(())
    }
}

/// Adds `runs` (sorted, disjoint from what is stored) to `agent`'s ranges,
/// merging with the neighbours they touch.
fn add_ranges(
    tx: &mut ::postgres::Transaction<'_>,
    agent: &str,
    runs: &[(u64, u64)],
) -> Result<(), StoreError> {
    for &(lo, hi) in runs {
        let (mut lo, mut hi) = (to_i64(lo), to_i64(hi));
        if let Some(r) = tx.query_opt(
            "SELECT lo, hi FROM compacted_seqs WHERE agent = $1 AND lo <= $2 ORDER BY lo DESC LIMIT 1",
            &[&agent, &lo],
        )? {
            let (llo, lhi): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            if lhi + 1 == lo {
                lo = llo;
            }
        }
        if let Some(r) = tx.query_opt(
            "DELETE FROM compacted_seqs WHERE agent = $1 AND lo = $2 RETURNING hi",
            &[&agent, &(hi + 1)],
        )? {
            hi = r.try_get(0)?;
        }
        tx.execute(
            "INSERT INTO compacted_seqs (agent, lo, hi) VALUES ($1, $2, $3)
             ON CONFLICT (agent, lo) DO UPDATE SET hi = excluded.hi",
            &[&agent, &lo, &hi],
        )?;
    }
    Ok(())
}

fn row_to_result(r: &::postgres::Row) -> Result<StoredResult, StoreError> {
    let raw: Vec<u8> = r.try_get(7)?;
    Ok(StoredResult {
        agent: r.try_get(0)?,
        seq: u64_col(r.try_get(1)?),
        check: r.try_get(2)?,
        location: r.try_get(3)?,
        started_at_ms: r.try_get(4)?,
        success: r.try_get::<_, Option<bool>>(5)?.unwrap_or(false),
        class: r.try_get(6)?,
        batch_no: u64_col(r.try_get::<_, Option<i64>>(8)?.unwrap_or(0)),
        // Stored from a &str, so valid UTF-8; lossy only guards a hand-edited row.
        raw: String::from_utf8(raw)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_described_without_password() {
        let d = describe_url("postgres://slaprobe:s3cret@db.internal:5433/probes");
        assert_eq!(d, "postgres://slaprobe@db.internal:5433/probes");
        assert!(!describe_url("postgres://u:s3cret@[bad").contains("s3cret"));
    }

    #[test]
    fn urls_are_validated_without_echo() {
        assert!(validate_url("postgres://u:p@127.0.0.1:5432/db").is_ok());
        assert!(validate_url("postgresql://u@h/db").is_ok());
        for bad in [
            "mysql://u:s3cret@h/db",
            "postgres://u:s3cret@h/db?sslmode=sometimes",
            "postgres://u:s3cret@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "postgres://u:s3cret@h/db?bogus=1",
        ] {
            let e = validate_url(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
