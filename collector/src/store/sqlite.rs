//! The embedded SQLite store (the default): `slaprobe.db` in `data_dir`, WAL
//! journal, versioned migrations, one transaction per batch. Callers use it
//! through [`super::Store`] and [`super::Reader`].
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

/// File name of the database inside `data_dir`.
pub const DB_FILE: &str = "slaprobe.db";

/// Batches that may wait for the writer before ingest answers 503.
const WRITE_QUEUE: usize = 64;

/// How long a connection waits on a lock held by another (e.g. a checkpoint).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Schema migrations, applied in order; the index + 1 is the version. Never
/// edit one that has shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: results kept whole, and the bookkeeping maintained with them.
    r#"
    CREATE TABLE results (
        id          INTEGER PRIMARY KEY,
        agent       TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        check_name  TEXT    NOT NULL,
        location    TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        started_at  INTEGER NOT NULL,           -- ms since the Unix epoch
        success     INTEGER NOT NULL,
        class       TEXT,                       -- failure class, NULL on success
        received_at INTEGER NOT NULL,           -- ms since the Unix epoch
        raw         BLOB    NOT NULL,           -- the JSON exactly as sent
        UNIQUE (agent, seq)
    );
    CREATE INDEX results_check_started ON results (check_name, started_at);

    CREATE TABLE agents (
        agent      TEXT PRIMARY KEY,
        location   TEXT    NOT NULL,
        max_seq    INTEGER NOT NULL,
        results    INTEGER NOT NULL,
        duplicates INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL             -- ms since the Unix epoch
    );

    -- The newest result per (check, location): rebuilds the probe metrics at start.
    CREATE TABLE latest (
        check_name TEXT    NOT NULL,
        location   TEXT    NOT NULL,
        agent      TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        raw        BLOB    NOT NULL,
        PRIMARY KEY (check_name, location)
    );

    -- Results per (check, location, class); class '' counts successes.
    -- Keeps slaprobe_probes_total and _failures_total monotonic across restarts.
    CREATE TABLE probe_counts (
        check_name TEXT    NOT NULL,
        location   TEXT    NOT NULL,
        class      TEXT    NOT NULL,
        count      INTEGER NOT NULL,
        PRIMARY KEY (check_name, location, class)
    );
    "#,
    // 2: the feed (batch numbers in commit order) and the SLA ledger's rows.
    r#"
    ALTER TABLE results ADD COLUMN batch_no INTEGER;   -- NULL: stored before migration 2
    CREATE INDEX results_batch ON results (batch_no);

    -- The last batch number handed out; every batch transaction takes the next.
    CREATE TABLE feed (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        last_batch INTEGER NOT NULL
    );
    INSERT INTO feed (id, last_batch) VALUES (1, 0);

    -- The SLA ledger: the feed cursor its rows reflect and its write version.
    CREATE TABLE ledger_state (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        cursor  INTEGER NOT NULL,
        version INTEGER NOT NULL
    );
    INSERT INTO ledger_state (id, cursor, version) VALUES (1, 0, 0);

    -- Its rows, opaque to the store: (contract, '', -1) per contract,
    -- (contract, month, -1) per month, (contract, month, chunk) per slot chunk.
    CREATE TABLE ledger (
        contract TEXT    NOT NULL,
        month    TEXT    NOT NULL,
        chunk    INTEGER NOT NULL,
        version  INTEGER NOT NULL,
        data     BLOB    NOT NULL,
        PRIMARY KEY (contract, month, chunk)
    );
    CREATE INDEX ledger_version ON ledger (version);
    "#,
    // 3: compacted evidence (see `super::compact` for the format), the seqs
    // compacted per agent (dedup after the rows are gone), `latest` carrying
    // what it read from `results`, and the archived months.
    r#"
    CREATE TABLE evidence_chunks (
        id         INTEGER PRIMARY KEY,
        check_name TEXT    NOT NULL,
        agent      TEXT    NOT NULL,
        location   TEXT    NOT NULL,
        day        INTEGER NOT NULL,        -- UTC day of started_at: floor(started_at / 86400000)
        n          INTEGER NOT NULL,        -- results in data
        frames     TEXT    NOT NULL,        -- JSON [[len, n, seq_min, seq_max], ...]
        data       BLOB    NOT NULL,        -- concatenated zstd frames
        UNIQUE (check_name, day, agent, location)
    );
    CREATE INDEX evidence_chunks_day ON evidence_chunks (day);

    CREATE TABLE compacted_seqs (
        agent TEXT    NOT NULL,
        lo    INTEGER NOT NULL,
        hi    INTEGER NOT NULL,             -- inclusive
        PRIMARY KEY (agent, lo)
    ) WITHOUT ROWID;

    ALTER TABLE latest ADD COLUMN success INTEGER;
    ALTER TABLE latest ADD COLUMN class TEXT;
    ALTER TABLE latest ADD COLUMN batch_no INTEGER;
    UPDATE latest SET
        success  = (SELECT r.success  FROM results r WHERE r.agent = latest.agent AND r.seq = latest.seq),
        class    = (SELECT r.class    FROM results r WHERE r.agent = latest.agent AND r.seq = latest.seq),
        batch_no = (SELECT r.batch_no FROM results r WHERE r.agent = latest.agent AND r.seq = latest.seq);

    CREATE TABLE archives (
        month       TEXT    PRIMARY KEY,    -- YYYY-MM
        archived_at INTEGER NOT NULL,       -- ms since the Unix epoch
        results     INTEGER NOT NULL,       -- results in the bundle
        sha256      TEXT    NOT NULL,       -- of the bundle's results.jsonl
        pruned_at   INTEGER,                -- when its evidence was dropped (retention)
        pruned      INTEGER NOT NULL DEFAULT 0
    );
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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

fn insert_batch(
    conn: &mut Connection,
    agent: &str,
    location: &str,
    received_ms: i64,
    rows: &[NewResult],
) -> Result<BatchOutcome, StoreError> {
    let tx = conn.transaction()?;
    // The batch number first (see the feed in `super`).
    let batch_no: i64 = tx
        .prepare_cached(
            "UPDATE feed SET last_batch = last_batch + 1 WHERE id = 1 RETURNING last_batch",
        )?
        .query_row([], |r| r.get(0))?;
    let mut inserted = Vec::with_capacity(rows.len());
    // Seqs compacted away are stored too (see `super::compact`).
    let compacted = compacted_ranges(&tx, agent)?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO results (agent, seq, check_name, location, kind, started_at, success, class, received_at, raw, batch_no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (agent, seq) DO NOTHING",
        )?;
        for r in rows {
            if super::compact::in_ranges(&compacted, r.seq) {
                inserted.push(false);
                continue;
            }
            let n = ins.execute(params![
                agent,
                to_i64(r.seq),
                r.check,
                r.location,
                r.kind.as_str(),
                r.started_at_ms,
                r.success,
                r.class.map(|c| c.as_str()),
                received_ms,
                r.raw,
                batch_no,
            ])?;
            inserted.push(n == 1);
        }
    }
    // A duplicate must carry the stored bytes; other bytes are a reused seq:
    // refuse the whole batch (the transaction rolls back on return).
    if inserted.iter().any(|new| !new) {
        let mut get = tx.prepare_cached("SELECT raw FROM results WHERE agent = ?1 AND seq = ?2")?;
        for (r, _) in rows.iter().zip(&inserted).filter(|(_, new)| !**new) {
            // A compacted duplicate is not compared (as on PostgreSQL): the
            // seqs an agent could reuse after a crash are its latest, still raw.
            let stored: Option<Vec<u8>> = get
                .query_row(params![agent, to_i64(r.seq)], |row| row.get(0))
                .optional()?;
            if stored.is_some_and(|stored| {
                super::classify_duplicate(&stored, &r.raw) == super::Duplicate::Conflict
            }) {
                // Committed before this batch (the batch's rows roll back).
                let max_seq: i64 = tx
                    .query_row(
                        "SELECT max_seq FROM agents WHERE agent = ?1",
                        params![agent],
                        |row| row.get(0),
                    )
                    .optional()?
                    .unwrap_or(0);
                return Err(StoreError::SeqConflict {
                    seq: r.seq,
                    max_seq: u64::try_from(max_seq).unwrap_or(0),
                });
            }
        }
    }

    // Aggregate the batch first: one upsert per key instead of per row.
    let super::BatchAggregate {
        counts,
        latest,
        stored,
        max_seq,
        duplicates,
    } = super::BatchAggregate::new(rows, &inserted);
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO probe_counts (check_name, location, class, count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (check_name, location, class) DO UPDATE SET count = count + excluded.count",
        )?;
        for ((check, loc, class), n) in &counts {
            up.execute(params![check, loc, class, n])?;
        }
        let mut up = tx.prepare_cached(
            "INSERT INTO latest (check_name, location, agent, seq, started_at, raw, success, class, batch_no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (check_name, location) DO UPDATE
               SET agent = excluded.agent, seq = excluded.seq, started_at = excluded.started_at, raw = excluded.raw,
                   success = excluded.success, class = excluded.class, batch_no = excluded.batch_no
               WHERE excluded.started_at > latest.started_at
                  OR (excluded.started_at = latest.started_at AND excluded.seq > latest.seq)",
        )?;
        for ((check, loc), r) in &latest {
            up.execute(params![
                check,
                loc,
                agent,
                to_i64(r.seq),
                r.started_at_ms,
                r.raw,
                r.success,
                r.class.map(|c| c.as_str()),
                batch_no,
            ])?;
        }
        let mut up = tx.prepare_cached(
            "INSERT INTO agents (agent, location, max_seq, results, duplicates, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (agent) DO UPDATE SET
               location = excluded.location,
               max_seq = max(max_seq, excluded.max_seq),
               results = results + excluded.results,
               duplicates = duplicates + excluded.duplicates,
               last_seen = max(last_seen, excluded.last_seen)",
        )?;
        up.execute(params![
            agent,
            location,
            to_i64(max_seq),
            to_i64(stored),
            to_i64(duplicates),
            received_ms
        ])?;
    }
    tx.commit()?;
    Ok(BatchOutcome {
        inserted,
        stored,
        duplicates,
        batch_no: u64_col(batch_no),
    })
}

/// `agent`'s compacted seq ranges, sorted.
fn compacted_ranges(conn: &Connection, agent: &str) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT lo, hi FROM compacted_seqs WHERE agent = ?1 ORDER BY lo")?;
    let rows = st.query_map([agent], |r| Ok((u64_col(r.get(0)?), u64_col(r.get(1)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `(agent, seq)` is stored, and with which bytes: the one place
/// that answers it, for `results` rows and compacted ones alike (see
/// [`super::StoredSeq`]). A compacted result is looked up under `check`
/// and the UTC day of `started_at_ms`: the same bytes carry the same check
/// and start, so a result not found there was stored with other bytes.
pub(crate) fn stored_seq(
    conn: &Connection,
    agent: &str,
    seq: u64,
    check: &str,
    started_at_ms: i64,
) -> Result<super::StoredSeq, StoreError> {
    let raw: Option<Vec<u8>> = conn
        .prepare_cached("SELECT raw FROM results WHERE agent = ?1 AND seq = ?2")?
        .query_row(params![agent, to_i64(seq)], |r| r.get(0))
        .optional()?;
    if let Some(raw) = raw {
        return Ok(super::StoredSeq::Stored(raw));
    }
    if !super::compact::in_ranges(&compacted_ranges(conn, agent)?, seq) {
        return Ok(super::StoredSeq::Absent);
    }
    let mut st = conn.prepare_cached(
        "SELECT id, frames FROM evidence_chunks WHERE check_name = ?1 AND day = ?2 AND agent = ?3",
    )?;
    let chunks = st
        .query_map(
            params![check, super::compact::day_of(started_at_ms), agent],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for (id, frames) in chunks {
        let mut offset = 0u64;
        for fm in super::compact::parse_frames(&frames)? {
            if (fm.seq_min()..=fm.seq_max()).contains(&seq) {
                let data = read_blob(conn, id, offset, fm.len())?;
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

/// `len` bytes at `offset` of chunk `id`'s data (incremental blob I/O: the
/// other frames of the row are not copied).
fn read_blob(conn: &Connection, id: i64, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
    let blob = conn.blob_open(rusqlite::MAIN_DB, c"evidence_chunks", c"data", id, true)?;
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    blob.read_at_exact(&mut buf, usize::try_from(offset).unwrap_or(usize::MAX))?;
    Ok(buf)
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

/// A read connection. Also usable on its own, without a running collector
/// (offline reports): [`Reader::open`].
pub struct Reader {
    conn: Connection,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Reader {
    /// Opens the existing store in `data_dir` for reading. Fails when there is
    /// none or its schema is newer than this build.
    pub fn open(data_dir: &Path) -> Result<Reader, StoreError> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Missing(path));
        }
        // Read-write open (without CREATE) so WAL's shared-memory file can be made;
        // `query_only` then forbids writes on this connection.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        let version: Option<i64> = conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(|_| StoreError::Missing(path.clone()))?
            .flatten();
        match version {
            None => return Err(StoreError::Missing(path)),
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    path,
                    found: v,
                    known: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
        }
        Ok(Reader { conn })
    }

    /// Every agent the store has seen.
    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT agent, location, max_seq, results, duplicates, last_seen FROM agents ORDER BY agent")?;
        let rows = st.query_map([], |r| {
            Ok(AgentRow {
                id: r.get(0)?,
                location: r.get(1)?,
                max_seq: u64_col(r.get(2)?),
                results: u64_col(r.get(3)?),
                duplicates: u64_col(r.get(4)?),
                last_seen_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest result per (check, location), raw JSON.
    pub fn latest(&self) -> Result<Vec<StoredResult>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT agent, seq, check_name, location, started_at, success, class, raw, batch_no
             FROM latest ORDER BY check_name, location",
        )?;
        let rows = st.query_map([], row_to_result)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Result counts per (check, location, class).
    pub fn probe_counts(&self) -> Result<Vec<ProbeCount>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT check_name, location, class, count FROM probe_counts ORDER BY check_name, location, class",
        )?;
        let rows = st.query_map([], |r| {
            let class: String = r.get(2)?;
            Ok(ProbeCount {
                check: r.get(0)?,
                location: r.get(1)?,
                class: if class.is_empty() { None } else { Some(class) },
                count: u64_col(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Calls `f` for every result of `checks` started in `[from_ms, to_ms)`,
    /// compacted or not, in (agent, seq) order — the canonical order
    /// evidence digests use. One read transaction (one snapshot); streams
    /// the rows and opens compacted frames only as the merge reaches them.
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
        if checks.is_empty() || from_ms >= to_ms {
            return Ok(());
        }
        self.conn.execute_batch("BEGIN")?;
        let out = self.for_each_result_in_tx(checks, from_ms, to_ms, &mut f);
        let end = self.conn.execute_batch("COMMIT");
        out?;
        Ok(end?)
    }

    fn for_each_result_in_tx<F>(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        f: &mut F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(StoredResult),
    {
        use super::compact::{Interner, Merge, day_of, frame_refs};
        let placeholders = vec!["?"; checks.len()].join(", ");
        let mut values: Vec<rusqlite::types::Value> = checks
            .iter()
            .map(|c| rusqlite::types::Value::Text(c.clone()))
            .collect();

        let mut frames = Vec::new();
        {
            let sql = format!(
                "SELECT id, agent, check_name, location, frames FROM evidence_chunks
                 WHERE check_name IN ({placeholders}) AND day >= ? AND day <= ?"
            );
            let mut st = self.conn.prepare(&sql)?;
            let mut v = values.clone();
            v.push(rusqlite::types::Value::Integer(day_of(from_ms)));
            v.push(rusqlite::types::Value::Integer(day_of(to_ms - 1)));
            let mut rows = st.query(rusqlite::params_from_iter(v))?;
            let mut names = Interner::default();
            while let Some(r) = rows.next()? {
                let (agent, check, loc): (String, String, String) =
                    (r.get(1)?, r.get(2)?, r.get(3)?);
                frame_refs(
                    &mut frames,
                    r.get(0)?,
                    names.get(&agent),
                    names.get(&check),
                    names.get(&loc),
                    &r.get::<_, String>(4)?,
                )?;
            }
        }
        let conn = &self.conn;
        let mut load =
            |fr: &super::compact::FrameRef| read_blob(conn, fr.chunk_id, fr.offset, fr.len);
        let mut merge = Merge::new(frames, from_ms, to_ms);

        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results
             WHERE check_name IN ({placeholders}) AND started_at >= ? AND started_at < ?
             ORDER BY agent, seq"
        );
        let mut st = self.conn.prepare(&sql)?;
        values.push(rusqlite::types::Value::Integer(from_ms));
        values.push(rusqlite::types::Value::Integer(to_ms));
        let mut rows = st.query(rusqlite::params_from_iter(values))?;
        while let Some(row) = rows.next()? {
            merge.push_row(row_to_result(row)?, &mut load, f)?;
        }
        merge.finish(&mut load, f)
    }

    /// How many results are stored in all (compacted ones included; not
    /// those dropped by retention).
    pub fn count_results(&self) -> Result<u64, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let n = self.conn.query_row(
            "SELECT (SELECT count(*) FROM results) + (SELECT coalesce(sum(n), 0) FROM evidence_chunks)",
            [],
            |r| r.get::<_, i64>(0),
        );
        self.conn.execute_batch("COMMIT")?;
        Ok(u64_col(n?))
    }

    /// See [`super::Reader::stored_seq`].
    pub fn stored_seq(
        &self,
        agent: &str,
        seq: u64,
        check: &str,
        started_at_ms: i64,
    ) -> Result<super::StoredSeq, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let out = stored_seq(&self.conn, agent, seq, check, started_at_ms);
        self.conn.execute_batch("COMMIT")?;
        out
    }

    /// See [`super::Reader::archives`].
    pub fn archives(&self) -> Result<Vec<super::ArchiveRecord>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT month, archived_at, results, sha256, pruned FROM archives ORDER BY month",
        )?;
        let rows = st.query_map([], |r| {
            Ok(super::ArchiveRecord {
                month: r.get(0)?,
                archived_at_ms: r.get(1)?,
                results: u64_col(r.get(2)?),
                sha256: r.get(3)?,
                pruned: u64_col(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// See [`super::Reader::feed_after`].
    pub fn feed_after<F>(&self, cursor: u64, max_batches: u64, mut f: F) -> Result<u64, StoreError>
    where
        F: FnMut(StoredResult),
    {
        // Read before the rows: every batch up to it is committed, so the
        // rows below show all of them (batches without new rows included).
        let head = self.feed_head()?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS} FROM results WHERE batch_no > ?1 AND batch_no <= ?2 ORDER BY batch_no, agent, seq"
        ))?;
        let hi = cursor.saturating_add(max_batches.max(1));
        let mut rows = st.query(params![to_i64(cursor), to_i64(hi)])?;
        let mut seen = cursor.max(head.min(hi));
        while let Some(row) = rows.next()? {
            let r = row_to_result(row)?;
            seen = seen.max(r.batch_no);
            f(r);
        }
        Ok(seen)
    }

    /// See [`super::Reader::feed_head`].
    pub fn feed_head(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT last_batch FROM feed WHERE id = 1", [], |r| r.get(0))?;
        Ok(u64_col(n))
    }

    /// See [`super::Reader::metrics_seed`]: one read transaction.
    pub fn metrics_seed(&self) -> Result<super::MetricsSeed, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let out = (|| -> Result<_, StoreError> {
            Ok(super::MetricsSeed {
                head: self.feed_head()?,
                latest: self.latest()?,
                counts: self.probe_counts()?,
                agents: self.agents()?,
            })
        })();
        self.conn.execute_batch("COMMIT")?;
        out
    }

    /// See [`super::Reader::ledger_since`]: state and rows in one read transaction.
    pub fn ledger_since(&self, since: u64) -> Result<super::LedgerChanges, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let out = ledger_rows(&self.conn, since);
        self.conn.execute_batch("COMMIT")?;
        let (state, rows) = out?;
        Ok(super::LedgerChanges { state, rows })
    }
}

fn row_to_result(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResult> {
    let raw: Vec<u8> = r.get(7)?;
    Ok(StoredResult {
        agent: r.get(0)?,
        seq: u64_col(r.get(1)?),
        check: r.get(2)?,
        location: r.get(3)?,
        started_at_ms: r.get(4)?,
        success: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
        class: r.get(6)?,
        // Stored from a &str, so valid UTF-8; lossy only guards a hand-edited file.
        raw: String::from_utf8(raw)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        batch_no: u64_col(r.get::<_, Option<i64>>(8)?.unwrap_or(0)),
    })
}

/// The columns [`row_to_result`] reads, in its order.
const RESULT_COLUMNS: &str =
    "agent, seq, check_name, location, started_at, success, class, raw, batch_no";

fn ledger_rows(
    conn: &Connection,
    since: u64,
) -> Result<(super::LedgerState, Vec<super::LedgerRow>), StoreError> {
    let state = conn.query_row(
        "SELECT cursor, version FROM ledger_state WHERE id = 1",
        [],
        |r| {
            Ok(super::LedgerState {
                cursor: u64_col(r.get(0)?),
                version: u64_col(r.get(1)?),
            })
        },
    )?;
    let mut st = conn.prepare_cached(
        "SELECT contract, month, chunk, data FROM ledger WHERE version > ?1 ORDER BY contract, month, chunk",
    )?;
    let rows = st.query_map([to_i64(since)], |r| {
        Ok(super::LedgerRow {
            contract: r.get(0)?,
            month: r.get(1)?,
            chunk: r.get(2)?,
            data: r.get(3)?,
        })
    })?;
    Ok((state, rows.collect::<Result<_, _>>()?))
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

/// The SQLite side of [`super::LedgerConn`]: a write connection of its own
/// (WAL lets it take turns with the batch writer; each ledger write is small).
pub struct LedgerConn {
    conn: Connection,
}

impl std::fmt::Debug for LedgerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedgerConn").finish_non_exhaustive()
    }
}

impl LedgerConn {
    /// Opens a write connection to the existing store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<LedgerConn, StoreError> {
        Ok(LedgerConn {
            conn: open_writer(data_dir)?,
        })
    }

    /// See [`super::LedgerConn::write`].
    pub fn write(&mut self, w: &super::LedgerWrite) -> Result<u64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 =
            tx.query_row("SELECT version FROM ledger_state WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        let found = u64_col(found);
        if found != w.base {
            return Err(StoreError::LedgerConflict {
                expected: w.base,
                found,
            });
        }
        let version = to_i64(w.base + 1);
        {
            let mut del = tx.prepare_cached("DELETE FROM ledger WHERE contract = ?1")?;
            for c in &w.reset_contracts {
                del.execute([c])?;
            }
            let mut up = tx.prepare_cached(
                "INSERT INTO ledger (contract, month, chunk, version, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (contract, month, chunk) DO UPDATE SET version = excluded.version, data = excluded.data",
            )?;
            for r in &w.rows {
                up.execute(params![r.contract, r.month, r.chunk, version, r.data])?;
            }
        }
        tx.execute(
            "UPDATE ledger_state SET cursor = ?1, version = ?2 WHERE id = 1",
            params![to_i64(w.cursor), version],
        )?;
        tx.commit()?;
        Ok(w.base + 1)
    }
}

/// The SQLite side of [`super::Maintenance`]: a write connection of its own
/// for compaction, archive records and retention (WAL lets it take turns
/// with the batch writer; each transaction is bounded).
pub struct Maintenance {
    conn: Connection,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteMaintenance").finish_non_exhaustive()
    }
}

impl Maintenance {
    /// Opens a write connection to the existing store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Maintenance, StoreError> {
        let conn = open_writer(data_dir)?;
        let version: i64 =
            conn.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: data_dir.join(DB_FILE),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        Ok(Maintenance { conn })
    }

    /// Re-encodes the chunk rows of days before `before_day` that hold more
    /// than one frame as one frame ([`super::compact::reseal`]), a few rows a transaction.
    pub(super) fn seal(&mut self, before_day: i64) -> Result<u64, StoreError> {
        use super::compact::{SEAL_PER_TX, frames_json, parse_frames, reseal};
        let mut sealed = 0;
        let mut after_id = 0i64;
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: Vec<(i64, String, Vec<u8>)> = tx
                .prepare_cached(
                    "SELECT id, frames, data FROM evidence_chunks
                     WHERE id > ?1 AND day < ?2 AND frames LIKE '[[%],[%'
                     ORDER BY id LIMIT ?3",
                )?
                .query_map(params![after_id, before_day, SEAL_PER_TX], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let Some(last) = rows.last().map(|r| r.0) else {
                return Ok(sealed);
            };
            {
                let mut up = tx.prepare_cached(
                    "UPDATE evidence_chunks SET frames = ?2, data = ?3 WHERE id = ?1",
                )?;
                for (id, frames, data) in &rows {
                    let (one, meta) = reseal(data, &parse_frames(frames)?)?;
                    up.execute(params![id, frames_json(&[meta]), one])?;
                }
            }
            tx.commit()?;
            sealed += rows.len() as u64;
            after_id = last;
        }
    }

    /// Returns free pages to the file system (a no-op on a store created
    /// before `auto_vacuum = INCREMENTAL`; see the README).
    pub(super) fn vacuum(&mut self) -> Result<(), StoreError> {
        // Stepped to the end: each step of the pragma frees one page.
        let mut st = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
        Ok(())
    }

    /// One step: up to [`super::compact::ROWS_PER_TX`] eligible rows (by
    /// id, after `after_id`) are read and compressed outside any write
    /// transaction; then one short transaction deletes them, stores their
    /// frames and joins their seqs to the agent's ranges. Should a row be gone
    /// by then (another compactor took it), the transaction is rolled back and
    /// the step moves nothing. Returns (rows moved, frames, last id seen).
    pub(super) fn compact_tx(
        &mut self,
        received_before_ms: i64,
        started_before_ms: i64,
        after_id: i64,
    ) -> Result<(u64, u64, i64), StoreError> {
        use super::compact::{Row, encode_groups, frames_json, parse_frames, seq_runs};
        let cursor: i64 =
            self.conn
                .query_row("SELECT cursor FROM ledger_state WHERE id = 1", [], |r| {
                    r.get(0)
                })?;
        let rows: Vec<Row> = {
            let mut st = self.conn.prepare_cached(
                "SELECT id, agent, seq, check_name, location, started_at, success, class, raw FROM results
                 WHERE id > ?1 AND received_at < ?2 AND started_at < ?3
                   AND (batch_no IS NULL OR batch_no <= ?4)
                 ORDER BY id LIMIT ?5",
            )?;
            st.query_map(
                params![
                    after_id,
                    received_before_ms,
                    started_before_ms,
                    cursor,
                    super::compact::ROWS_PER_TX as i64
                ],
                |r| {
                    Ok(Row {
                        id: r.get(0)?,
                        agent: r.get(1)?,
                        seq: u64_col(r.get(2)?),
                        check: r.get(3)?,
                        location: r.get(4)?,
                        started_at_ms: r.get(5)?,
                        success: r.get(6)?,
                        class: r.get(7)?,
                        raw: r.get(8)?,
                    })
                },
            )?
            .collect::<Result<_, _>>()?
        };
        let Some(last_id) = rows.last().map(|r| r.id) else {
            return Ok((0, 0, after_id));
        };
        let frames = encode_groups(&rows)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut del = tx.prepare_cached("DELETE FROM results WHERE id = ?1")?;
            for r in &rows {
                if del.execute([r.id])? != 1 {
                    // Taken meanwhile: leave it all to the next pass (drop rolls back).
                    return Ok((0, 0, after_id));
                }
            }
            let mut find = tx.prepare_cached(
                "SELECT id, frames, data FROM evidence_chunks WHERE check_name = ?1 AND day = ?2 AND agent = ?3 AND location = ?4",
            )?;
            // Concatenated here: SQLite's `||` makes TEXT of two BLOBs.
            let mut append = tx.prepare_cached(
                "UPDATE evidence_chunks SET n = n + ?2, frames = ?3, data = ?4 WHERE id = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO evidence_chunks (check_name, agent, location, day, n, frames, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for f in &frames {
                let existing: Option<(i64, String, Vec<u8>)> = find
                    .query_row(params![f.check, f.day, f.agent, f.location], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                match existing {
                    Some((id, metas, mut all)) => {
                        let mut metas = parse_frames(&metas)?;
                        metas.push(f.meta);
                        all.extend_from_slice(&f.data);
                        append.execute(params![id, f.meta.n() as i64, frames_json(&metas), all])?;
                    }
                    None => {
                        insert.execute(params![
                            f.check,
                            f.agent,
                            f.location,
                            f.day,
                            f.meta.n() as i64,
                            frames_json(&[f.meta]),
                            f.data
                        ])?;
                    }
                }
            }
        }
        for (agent, runs) in seq_runs(&rows) {
            add_ranges(&tx, agent, &runs)?;
        }
        tx.commit()?;
        Ok((rows.len() as u64, frames.len() as u64, last_id))
    }

    /// See [`super::Maintenance::record_archive`].
    pub fn record_archive(&mut self, a: &super::ArchiveRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO archives (month, archived_at, results, sha256) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (month) DO UPDATE SET archived_at = excluded.archived_at,
               results = excluded.results, sha256 = excluded.sha256",
            params![a.month, a.archived_at_ms, to_i64(a.results), a.sha256],
        )?;
        Ok(())
    }

    /// See [`super::Maintenance::prune_days`].
    pub fn prune_days(
        &mut self,
        before_day: i64,
        keep: &dyn Fn(i64) -> bool,
    ) -> Result<u64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let days: Vec<i64> = tx
            .prepare("SELECT DISTINCT day FROM evidence_chunks WHERE day < ?1 ORDER BY day")?
            .query_map([before_day], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut dropped = 0i64;
        for day in days.into_iter().filter(|d| !keep(*d)) {
            dropped += tx.query_row(
                "SELECT coalesce(sum(n), 0) FROM evidence_chunks WHERE day = ?1",
                [day],
                |r| r.get::<_, i64>(0),
            )?;
            tx.execute("DELETE FROM evidence_chunks WHERE day = ?1", [day])?;
        }
        tx.commit()?;
        if dropped > 0 {
            self.vacuum()?;
        }
        Ok(u64_col(dropped))
    }

    /// See [`super::Maintenance::mark_pruned`].
    pub fn mark_pruned(&mut self, month: &str, at_ms: i64, results: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE archives SET pruned_at = ?2, pruned = pruned + ?3 WHERE month = ?1",
            params![month, at_ms, to_i64(results)],
        )?;
        Ok(())
    }
}

/// Adds `runs` (sorted, disjoint from what is stored) to `agent`'s ranges,
/// merging with the neighbours they touch.
fn add_ranges(conn: &Connection, agent: &str, runs: &[(u64, u64)]) -> Result<(), StoreError> {
    let mut left = conn.prepare_cached(
        "SELECT lo, hi FROM compacted_seqs WHERE agent = ?1 AND lo <= ?2 ORDER BY lo DESC LIMIT 1",
    )?;
    let mut right =
        conn.prepare_cached("SELECT hi FROM compacted_seqs WHERE agent = ?1 AND lo = ?2")?;
    let mut del = conn.prepare_cached("DELETE FROM compacted_seqs WHERE agent = ?1 AND lo = ?2")?;
    let mut put = conn.prepare_cached(
        "INSERT INTO compacted_seqs (agent, lo, hi) VALUES (?1, ?2, ?3)
         ON CONFLICT (agent, lo) DO UPDATE SET hi = excluded.hi",
    )?;
    for &(lo, hi) in runs {
        let (mut lo, mut hi) = (to_i64(lo), to_i64(hi));
        if let Some((llo, lhi)) = left
            .query_row(params![agent, lo], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?
            && lhi + 1 == lo
        {
            lo = llo;
        }
        if let Some(rhi) = right
            .query_row(params![agent, hi + 1], |r| r.get::<_, i64>(0))
            .optional()?
        {
            del.execute(params![agent, hi + 1])?;
            hi = rhi;
        }
        put.execute(params![agent, lo, hi])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slaprobe_wire::{CheckKind, FailureClass};

    fn row(seq: u64, check: &str, started_at_ms: i64, class: Option<FailureClass>) -> NewResult {
        NewResult {
            seq,
            check: check.into(),
            location: "ams".into(),
            kind: CheckKind::Http,
            started_at_ms,
            success: class.is_none(),
            class,
            raw: format!("{{\"seq\":{seq}}}").into_bytes(),
        }
    }

    #[tokio::test]
    async fn batches_duplicates_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = tokio::task::spawn_blocking({
            let p = dir.path().to_path_buf();
            move || Store::open(&p)
        })
        .await
        .unwrap()
        .unwrap();
        let out = store
            .insert_batch(
                "a1",
                "ams",
                1000,
                vec![
                    row(1, "w", 10, None),
                    row(2, "w", 20, Some(FailureClass::Timeout)),
                    row(4, "x", 5, None),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            out,
            BatchOutcome {
                inserted: vec![true, true, true],
                stored: 3,
                duplicates: 0,
                batch_no: 1,
            }
        );
        let out = store
            .insert_batch(
                "a1",
                "ams",
                2000,
                vec![row(2, "w", 20, None), row(2, "w", 20, None)],
            )
            .await
            .unwrap();
        assert_eq!((out.stored, out.duplicates), (0, 2));

        let agents = store.read(|r| r.agents()).await.unwrap();
        assert_eq!(agents.len(), 1);
        assert_eq!(
            (
                agents[0].max_seq,
                agents[0].results,
                agents[0].duplicates,
                agents[0].missing()
            ),
            (4, 3, 2, 1)
        );
        assert_eq!(agents[0].last_seen_ms, 2000);

        let latest = store.read(|r| r.latest()).await.unwrap();
        assert_eq!(latest.len(), 2);
        assert_eq!(
            (
                latest[0].check.as_str(),
                latest[0].seq,
                latest[0].class.as_deref()
            ),
            ("w", 2, Some("timeout"))
        );

        let counts = store.read(|r| r.probe_counts()).await.unwrap();
        assert_eq!(counts.len(), 3);

        let rs = store
            .read(|r| r.results_between(&["w".to_string()], 0, 15))
            .await
            .unwrap();
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].raw, "{\"seq\":1}");
        store.close().await;
        assert!(matches!(
            store.insert_batch("a1", "ams", 1, vec![]).await,
            Err(StoreError::Closed)
        ));

        // Reopen: migrations are idempotent, data kept.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read(|r| r.count_results()).await.unwrap(), 3);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
        c.execute("INSERT INTO schema_version (version) VALUES (99)", [])
            .unwrap();
        drop(c);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
        assert!(matches!(
            Reader::open(dir.path()),
            Err(StoreError::NewerSchema { .. })
        ));
    }
}
