//! The durable store of probe results: every result kept whole (the raw JSON
//! the agent sent, because monthly evidence is computed from it), plus small
//! tables kept in the same transaction (per agent, latest per check and
//! location, probe counts) so that a restart rebuilds its state cheaply.
//!
//! # Layout
//! - [`sqlite`]: the embedded SQLite store (default). One writer thread owns
//!   the write connection; reads use their own connections.
//! - [`postgres`]: the shared PostgreSQL store (`[collector] database_url`,
//!   DESIGN.md §9): several collectors on one database. Same schema
//!   (translated), same migrations numbering, same semantics; ingest is
//!   idempotent on (agent, seq) in the database itself.
//! - `rows`: the rows both backends take and give ([`NewResult`], [`StoredResult`], the ledger's).
//! - `error`: [`StoreError`].
//! - `threads`: the writer queue and background jobs both backends run.
//! - `int`: the u64 ↔ i64 column conversions.
//!
//! [`Store`] and [`Reader`] are enums dispatching to one or the other, so
//! callers do not care which backend they talk to. The row types here are
//! what both produce, byte for byte (the raw JSON is never normalised).
//!
//! # The feed: committed batches, in commit order
//! Every batch transaction takes the next **batch number** from a one-row
//! counter (`feed.last_batch`) as its first statement and stamps its rows
//! with it. The counter's row lock is held until the transaction ends, so
//! batch numbers are gapless (a rolled-back batch rolls its number back too)
//! and in commit order even with several writers on PostgreSQL (where a
//! `bigserial` would not be): whoever can see batch `n` committed can see
//! every batch before it. Consumers that must not miss a committed result
//! (the SLA ledger) follow the feed with [`Reader::feed_after`] and a cursor,
//! never an ingest request's future.
//!
//! # Compacted evidence
//! Settled results move from `results` into zstd-compressed chunks
//! ([`compact`] has the format; [`Maintenance::compact`] the rule: old
//! enough, hour over, consumed by the ledger). Reads are unchanged:
//! [`Reader::for_each_result`] merges chunks and rows in one snapshot
//! (a compacted result reads back with `batch_no` 0), [`Reader::count_results`]
//! counts both, `latest` keeps its own copy. Dedup stays exact through
//! per-agent compacted seq ranges; [`Reader::stored_seq`] is the one place
//! per backend that says whether a seq is stored and with which bytes.
//! [`Store::start_compactor`] runs the passes on a thread of the store;
//! [`Maintenance`] also records archived months and drops their evidence
//! (retention, `crate::archive`).
//!
//! # The ledger's rows
//! The SLA ledger persists its derived state in one table of opaque rows
//! keyed by (contract, month, chunk) with the version that last wrote them,
//! next to its feed cursor ([`LedgerState`]). Writes are fenced: a
//! [`LedgerWrite`] names the version it was derived from and fails with
//! [`StoreError::LedgerConflict`] when another writer moved on.

pub mod compact;
mod error;
mod int;
pub mod pg_tls;
pub mod postgres;
mod rows;
pub mod sqlite;
mod threads;

pub use error::StoreError;
pub use rows::*;
pub(crate) use threads::*;

use std::path::{Path, PathBuf};

/// The database's address: where the store lives (from `[collector]
/// data_dir` / `database_url`). Not a `location`, which in slaprobe is an
/// agent's vantage point.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreAddress {
    /// The embedded SQLite store in this data directory.
    Sqlite(PathBuf),
    /// A shared PostgreSQL database (`postgres://user@host:port/db`).
    Postgres(String),
}

impl StoreAddress {
    /// A printable form: the directory, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreAddress::Sqlite(dir) => dir.display().to_string(),
            StoreAddress::Postgres(url) => postgres::describe_url(url),
        }
    }
}

impl std::fmt::Debug for StoreAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a database password.
        write!(f, "StoreAddress({})", self.describe())
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(sqlite::Store),
    Postgres(postgres::Store),
}

impl Store {
    /// Opens (creating if needed) the SQLite store in `data_dir`. Blocking:
    /// call it from `spawn_blocking` inside a runtime.
    pub fn open_sqlite(data_dir: &Path) -> Result<Store, StoreError> {
        sqlite::Store::open(data_dir).map(Store::Sqlite)
    }

    /// Opens the store at `address` (creating its schema if needed, running
    /// the migrations). Blocking: call it from `spawn_blocking` (never from
    /// an async task: the PostgreSQL client runs its own runtime).
    pub fn open(address: &StoreAddress) -> Result<Store, StoreError> {
        match address {
            StoreAddress::Sqlite(dir) => Store::open_sqlite(dir),
            StoreAddress::Postgres(url) => postgres::Store::open(url).map(Store::Postgres),
        }
    }

    /// True when other collectors may write to the same store (PostgreSQL):
    /// this process then does not see every result as it is stored, so
    /// figures that must agree across collectors are read from the store.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Where the store is, printable (no password).
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(s) => s.dir().display().to_string(),
            Store::Postgres(s) => s.describe(),
        }
    }

    /// The SQLite data directory (`None` for PostgreSQL).
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Store::Sqlite(s) => Some(s.dir()),
            Store::Postgres(_) => None,
        }
    }

    /// False once the writer has stopped (closed, or died): nothing more can be stored.
    pub fn is_writable(&self) -> bool {
        match self {
            Store::Sqlite(s) => s.is_writable(),
            Store::Postgres(s) => s.is_writable(),
        }
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
        match self {
            Store::Sqlite(s) => s.insert_batch(agent, location, received_ms, rows).await,
            Store::Postgres(s) => s.insert_batch(agent, location, received_ms, rows).await,
        }
    }

    /// Runs `f` with a read connection off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.read(f).await,
            Store::Postgres(s) => s.read(f).await,
        }
    }

    /// [`Store::read`] for a caller already on a blocking thread
    /// (`spawn_blocking`, a plain thread). Never call it from an async task.
    pub fn read_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.read_blocking(f),
            Store::Postgres(s) => s.read_blocking(f),
        }
    }

    /// Starts the compactor thread: every `every`, [`Maintenance::compact`]
    /// with `after` as the horizon, then `after_pass` (retention), on a
    /// maintenance connection of its own. A failed pass is logged and tried
    /// again at the next. Stops (and is joined) when the store closes.
    pub fn start_compactor(
        &self,
        address: StoreAddress,
        every: std::time::Duration,
        after: std::time::Duration,
        mut after_pass: AfterPass,
    ) -> Result<(), StoreError> {
        let background = match self {
            Store::Sqlite(s) => s.background(),
            Store::Postgres(s) => s.background(),
        };
        let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        let mut conn: Option<Maintenance> = None;
        background.spawn("slaprobe-compactor", every, move || {
            let m = match conn.as_mut() {
                Some(m) => m,
                None => match Maintenance::open(&address) {
                    Ok(m) => conn.insert(m),
                    Err(e) => {
                        tracing::warn!(error = %e, "compactor: cannot open the store; retrying");
                        return;
                    }
                },
            };
            let now = jiff::Timestamp::now().as_millisecond();
            let t0 = std::time::Instant::now();
            match m.compact(now, after_ms) {
                Ok(s) if s.results > 0 => tracing::info!(
                    results = s.results,
                    frames = s.frames,
                    transactions = s.transactions,
                    secs = t0.elapsed().as_secs_f64(),
                    "compacted settled results"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "compaction failed; retrying at the next pass");
                    conn = None;
                    return;
                }
            }
            after_pass(m, now);
        })
    }

    /// Finishes the queued batches and stops the writer(s). Batches sent
    /// afterwards fail with [`StoreError::Closed`]; reads keep working.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

/// A read connection. Also usable on its own, without a running collector
/// (offline reports): [`Reader::open`], [`Reader::open_at`].
#[derive(Debug)]
pub enum Reader {
    Sqlite(sqlite::Reader),
    Postgres(postgres::Reader),
}

impl Reader {
    /// Opens the existing SQLite store in `data_dir` for reading. Fails when
    /// there is none or its schema is newer than this build.
    pub fn open_sqlite(data_dir: &Path) -> Result<Reader, StoreError> {
        sqlite::Reader::open(data_dir).map(Reader::Sqlite)
    }

    /// Opens the existing store at `address` for reading (blocking; not
    /// from an async task).
    pub fn open(address: &StoreAddress) -> Result<Reader, StoreError> {
        match address {
            StoreAddress::Sqlite(dir) => Reader::open_sqlite(dir),
            StoreAddress::Postgres(url) => postgres::Reader::open(url).map(Reader::Postgres),
        }
    }

    /// Every agent the store has seen, by id.
    pub fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.agents(),
            Reader::Postgres(r) => r.agents(),
        }
    }

    /// The newest result per (check, location), raw JSON, by (check, location).
    pub fn latest(&self) -> Result<Vec<StoredResult>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.latest(),
            Reader::Postgres(r) => r.latest(),
        }
    }

    /// Result counts per (check, location, class), in that order.
    pub fn probe_counts(&self) -> Result<Vec<ProbeCount>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.probe_counts(),
            Reader::Postgres(r) => r.probe_counts(),
        }
    }

    /// Calls `f` for every result of `checks` started in `[from_ms, to_ms)`,
    /// compacted or not, in (agent, seq) order (bytewise on `agent`) — the
    /// canonical order evidence digests use. One snapshot; streams (memory
    /// holds about one decompressed frame per check read), so a month of
    /// results need not fit in memory. Compacted results have `batch_no` 0.
    pub fn for_each_result<F>(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
        f: F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(StoredResult),
    {
        match self {
            Reader::Sqlite(r) => r.for_each_result(checks, from_ms, to_ms, f),
            Reader::Postgres(r) => r.for_each_result(checks, from_ms, to_ms, f),
        }
    }

    /// [`Reader::for_each_result`] collected into a `Vec`.
    pub fn results_between(
        &self,
        checks: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredResult>, StoreError> {
        let mut out = Vec::new();
        self.for_each_result(checks, from_ms, to_ms, |r| out.push(r))?;
        Ok(out)
    }

    /// How many results are stored in all.
    pub fn count_results(&self) -> Result<u64, StoreError> {
        match self {
            Reader::Sqlite(r) => r.count_results(),
            Reader::Postgres(r) => r.count_results(),
        }
    }

    /// Calls `f` for every stored result of the batches numbered after
    /// `cursor` and at most `cursor + max_batches`, in (batch, agent, seq)
    /// order. Only uncompacted rows: compaction takes none above the
    /// ledger's cursor, so a follower at that cursor misses nothing. Returns the new cursor: every batch up to it has been
    /// delivered whole (batches whose rows were all duplicates have none),
    /// and nothing numbered below it can appear later.
    pub fn feed_after<F>(&self, cursor: u64, max_batches: u64, f: F) -> Result<u64, StoreError>
    where
        F: FnMut(StoredResult),
    {
        match self {
            Reader::Sqlite(r) => r.feed_after(cursor, max_batches, f),
            Reader::Postgres(r) => r.feed_after(cursor, max_batches, f),
        }
    }

    /// Whether `(agent, seq)` is stored, and with which bytes, whether its
    /// row is in `results` or was compacted (then it is found under `check`
    /// and the UTC day of `started_at_ms`: the same bytes name the same
    /// check and start). The one place per backend that answers it.
    pub fn stored_seq(
        &self,
        agent: &str,
        seq: u64,
        check: &str,
        started_at_ms: i64,
    ) -> Result<StoredSeq, StoreError> {
        match self {
            Reader::Sqlite(r) => r.stored_seq(agent, seq, check, started_at_ms),
            Reader::Postgres(r) => r.stored_seq(agent, seq, check, started_at_ms),
        }
    }

    /// The archived months, by month.
    pub fn archives(&self) -> Result<Vec<ArchiveRecord>, StoreError> {
        match self {
            Reader::Sqlite(r) => r.archives(),
            Reader::Postgres(r) => r.archives(),
        }
    }

    /// The number of the latest committed batch.
    pub fn feed_head(&self) -> Result<u64, StoreError> {
        match self {
            Reader::Sqlite(r) => r.feed_head(),
            Reader::Postgres(r) => r.feed_head(),
        }
    }

    /// What the probe metrics start from, in one snapshot: the feed's head
    /// and everything committed up to it (latest results, counts, agents).
    /// A follower of the feed from `head` on then counts every result once.
    pub fn metrics_seed(&self) -> Result<MetricsSeed, StoreError> {
        match self {
            Reader::Sqlite(r) => r.metrics_seed(),
            Reader::Postgres(r) => r.metrics_seed(),
        }
    }

    /// The ledger's state and the rows written after `since` (one snapshot).
    pub fn ledger_since(&self, since: u64) -> Result<LedgerChanges, StoreError> {
        match self {
            Reader::Sqlite(r) => r.ledger_since(since),
            Reader::Postgres(r) => r.ledger_since(since),
        }
    }
}

/// The connection the SLA ledger's keeper writes through (blocking: use it
/// from a thread of its own). With PostgreSQL it also holds the session
/// advisory lock that makes one collector the keeper.
#[derive(Debug)]
pub enum LedgerConn {
    Sqlite(sqlite::LedgerConn),
    Postgres(postgres::LedgerConn),
}

impl LedgerConn {
    /// Opens a ledger connection to the store at `address`.
    pub fn open(address: &StoreAddress) -> Result<LedgerConn, StoreError> {
        match address {
            StoreAddress::Sqlite(dir) => sqlite::LedgerConn::open(dir).map(LedgerConn::Sqlite),
            StoreAddress::Postgres(url) => {
                postgres::LedgerConn::open(url).map(LedgerConn::Postgres)
            }
        }
    }

    /// Tries to become the ledger's keeper (always yes for SQLite: one
    /// collector per data directory). Keeps the role until the connection closes.
    pub fn try_lead(&mut self) -> Result<bool, StoreError> {
        match self {
            LedgerConn::Sqlite(_) => Ok(true),
            LedgerConn::Postgres(c) => c.try_lead(),
        }
    }

    /// Applies `w` in one transaction, fenced on `w.base`; returns the new version.
    pub fn write(&mut self, w: &LedgerWrite) -> Result<u64, StoreError> {
        match self {
            LedgerConn::Sqlite(c) => c.write(w),
            LedgerConn::Postgres(c) => c.write(w),
        }
    }
}

/// The connection compaction, archive records and retention write through
/// (blocking: use it from a thread of its own, e.g. [`Store::start_compactor`]).
#[derive(Debug)]
pub enum Maintenance {
    Sqlite(sqlite::Maintenance),
    Postgres(postgres::Maintenance),
}

impl Maintenance {
    /// Opens a maintenance connection to the existing store at `address`.
    pub fn open(address: &StoreAddress) -> Result<Maintenance, StoreError> {
        match address {
            StoreAddress::Sqlite(dir) => sqlite::Maintenance::open(dir).map(Maintenance::Sqlite),
            StoreAddress::Postgres(url) => {
                postgres::Maintenance::open(url).map(Maintenance::Postgres)
            }
        }
    }

    /// Compacts the results that are settled as of `now_ms`: received more
    /// than `after_ms` ago, started in an hour that was over by then, and
    /// consumed by the SLA ledger (`batch_no` at most `ledger_state.cursor`;
    /// rows without a batch number predate the feed and qualify). Bounded
    /// transactions, each moving rows into chunks and deleting them
    /// atomically, until none is left.
    pub fn compact(
        &mut self,
        now_ms: i64,
        after_ms: i64,
    ) -> Result<compact::CompactStats, StoreError> {
        let received_before = now_ms.saturating_sub(after_ms);
        let started_before = received_before.div_euclid(compact::HOUR_MS) * compact::HOUR_MS;
        // Bounded steps until nothing is left, then the finished days'
        // frames are resealed; SQLite then returns freed pages.
        let mut stats = compact::CompactStats::default();
        let mut after_id = 0i64;
        loop {
            let (moved, frames, last_id) = match self {
                Maintenance::Sqlite(m) => m.compact_tx(received_before, started_before, after_id),
                Maintenance::Postgres(m) => m.compact_tx(received_before, started_before, after_id),
            }?;
            if moved == 0 {
                break;
            }
            stats.results += moved;
            stats.frames += frames;
            stats.transactions += 1;
            after_id = last_id;
        }
        let before_day = compact::day_of(started_before);
        stats.sealed = match self {
            Maintenance::Sqlite(m) => m.seal(before_day)?,
            Maintenance::Postgres(m) => m.seal(before_day)?,
        };
        if let Maintenance::Sqlite(m) = self
            && (stats.results > 0 || stats.sealed > 0)
        {
            m.vacuum()?;
        }
        Ok(stats)
    }

    /// Records that `a.month` was archived (again: the newest bundle counts).
    pub fn record_archive(&mut self, a: &ArchiveRecord) -> Result<(), StoreError> {
        match self {
            Maintenance::Sqlite(m) => m.record_archive(a),
            Maintenance::Postgres(m) => m.record_archive(a),
        }
    }

    /// Drops the compacted evidence of every UTC day before `before_day`
    /// (days since the epoch) for which `keep` is false; returns how many
    /// results were dropped. Uncompacted rows are never dropped (they are
    /// compacted first). The seq ranges stay, so a result sent again after
    /// its evidence was dropped is still a duplicate.
    pub fn prune_days(
        &mut self,
        before_day: i64,
        keep: &dyn Fn(i64) -> bool,
    ) -> Result<u64, StoreError> {
        match self {
            Maintenance::Sqlite(m) => m.prune_days(before_day, keep),
            Maintenance::Postgres(m) => m.prune_days(before_day, keep),
        }
    }

    /// Counts `results` dropped from archived `month` (the archive row's `pruned`).
    pub fn mark_pruned(&mut self, month: &str, at_ms: i64, results: u64) -> Result<(), StoreError> {
        match self {
            Maintenance::Sqlite(m) => m.mark_pruned(month, at_ms, results),
            Maintenance::Postgres(m) => m.mark_pruned(month, at_ms, results),
        }
    }
}

/// Runs after each compaction pass with the maintenance connection and the
/// pass's `now` (ms): retention ([`Store::start_compactor`]).
pub type AfterPass = Box<dyn FnMut(&mut Maintenance, i64) + Send>;
