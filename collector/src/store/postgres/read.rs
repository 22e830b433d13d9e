//! [`Reader`]: a read connection (a running collector's, or an offline report's).

use super::*;

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

pub(super) const RESULT_COLUMNS: &str =
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

    pub(super) fn is_closed(&self) -> bool {
        self.client
            .try_borrow()
            .map(|c| c.is_closed())
            .unwrap_or(false)
    }

    pub(super) fn client(&self) -> Result<std::cell::RefMut<'_, Client>, StoreError> {
        self.client
            .try_borrow_mut()
            .map_err(|_| StoreError::Task("the reader is already in use (nested read)".into()))
    }

    /// See [`crate::store::Reader::agents`].
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

    /// See [`crate::store::Reader::latest`].
    pub fn latest(&self) -> Result<Vec<StoredResult>, StoreError> {
        let rows = self.client()?.query(
            "SELECT agent, seq, check_name, location, started_at, success, class, raw, batch_no
             FROM latest ORDER BY check_name, location",
            &[],
        )?;
        rows.iter().map(row_to_result).collect()
    }

    /// See [`crate::store::Reader::probe_counts`].
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

    /// See [`crate::store::Reader::for_each_result`]. Streams through a portal
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
        use crate::store::compact::{FrameRef, Interner, Merge, day_of, frame_refs};
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

    /// See [`crate::store::Reader::count_results`]: compacted results included.
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

    /// See [`crate::store::Reader::stored_seq`].
    pub fn stored_seq(
        &self,
        agent: &str,
        seq: u64,
        check: &str,
        started_at_ms: i64,
    ) -> Result<crate::store::StoredSeq, StoreError> {
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

    /// See [`crate::store::Reader::archives`].
    pub fn archives(&self) -> Result<Vec<crate::store::ArchiveRecord>, StoreError> {
        let rows = self.client()?.query(
            "SELECT month, archived_at, results, sha256, pruned FROM archives ORDER BY month",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(crate::store::ArchiveRecord {
                    month: r.try_get(0)?,
                    archived_at_ms: r.try_get(1)?,
                    results: u64_col(r.try_get(2)?),
                    sha256: r.try_get(3)?,
                    pruned: u64_col(r.try_get(4)?),
                })
            })
            .collect()
    }

    /// See [`crate::store::Reader::feed_after`]. The head is read first (in READ
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

    /// See [`crate::store::Reader::feed_head`].
    pub fn feed_head(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .client()?
            .query_one("SELECT last_batch FROM feed WHERE id = 1", &[])?
            .try_get(0)?;
        Ok(u64_col(n))
    }

    /// See [`crate::store::Reader::metrics_seed`]: one REPEATABLE READ snapshot
    /// (the reads below run on this reader's one session, inside it).
    pub fn metrics_seed(&self) -> Result<crate::store::MetricsSeed, StoreError> {
        self.client()?
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        let out = (|| -> Result<_, StoreError> {
            Ok(crate::store::MetricsSeed {
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

    /// See [`crate::store::Reader::ledger_since`]: one REPEATABLE READ snapshot.
    pub fn ledger_since(&self, since: u64) -> Result<crate::store::LedgerChanges, StoreError> {
        let mut client = self.client()?;
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .start()?;
        let st = tx.query_one("SELECT cursor, version FROM ledger_state WHERE id = 1", &[])?;
        let state = crate::store::LedgerState {
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
                Ok(crate::store::LedgerRow {
                    contract: r.try_get(0)?,
                    month: r.try_get(1)?,
                    chunk: r.try_get(2)?,
                    data: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit()?;
        Ok(crate::store::LedgerChanges { state, rows })
    }
}

pub(super) fn row_to_result(r: &::postgres::Row) -> Result<StoredResult, StoreError> {
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
