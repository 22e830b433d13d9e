//! [`Reader`]: the read connections (a running collector's, or an offline report's).

use super::*;

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
        use crate::store::compact::{Interner, Merge, day_of, frame_refs};
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
            |fr: &crate::store::compact::FrameRef| read_blob(conn, fr.chunk_id, fr.offset, fr.len);
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

    /// See [`crate::store::Reader::stored_seq`].
    pub fn stored_seq(
        &self,
        agent: &str,
        seq: u64,
        check: &str,
        started_at_ms: i64,
    ) -> Result<crate::store::StoredSeq, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let out = stored_seq(&self.conn, agent, seq, check, started_at_ms);
        self.conn.execute_batch("COMMIT")?;
        out
    }

    /// See [`crate::store::Reader::archives`].
    pub fn archives(&self) -> Result<Vec<crate::store::ArchiveRecord>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT month, archived_at, results, sha256, pruned FROM archives ORDER BY month",
        )?;
        let rows = st.query_map([], |r| {
            Ok(crate::store::ArchiveRecord {
                month: r.get(0)?,
                archived_at_ms: r.get(1)?,
                results: u64_col(r.get(2)?),
                sha256: r.get(3)?,
                pruned: u64_col(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// See [`crate::store::Reader::feed_after`].
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

    /// See [`crate::store::Reader::feed_head`].
    pub fn feed_head(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT last_batch FROM feed WHERE id = 1", [], |r| r.get(0))?;
        Ok(u64_col(n))
    }

    /// See [`crate::store::Reader::metrics_seed`]: one read transaction.
    pub fn metrics_seed(&self) -> Result<crate::store::MetricsSeed, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let out = (|| -> Result<_, StoreError> {
            Ok(crate::store::MetricsSeed {
                head: self.feed_head()?,
                latest: self.latest()?,
                counts: self.probe_counts()?,
                agents: self.agents()?,
            })
        })();
        self.conn.execute_batch("COMMIT")?;
        out
    }

    /// See [`crate::store::Reader::ledger_since`]: state and rows in one read transaction.
    pub fn ledger_since(&self, since: u64) -> Result<crate::store::LedgerChanges, StoreError> {
        self.conn.execute_batch("BEGIN")?;
        let out = ledger_rows(&self.conn, since);
        self.conn.execute_batch("COMMIT")?;
        let (state, rows) = out?;
        Ok(crate::store::LedgerChanges { state, rows })
    }
}
pub(super) fn row_to_result(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResult> {
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
pub(super) const RESULT_COLUMNS: &str =
    "agent, seq, check_name, location, started_at, success, class, raw, batch_no";
pub(super) fn ledger_rows(
    conn: &Connection,
    since: u64,
) -> Result<(crate::store::LedgerState, Vec<crate::store::LedgerRow>), StoreError> {
    let state = conn.query_row(
        "SELECT cursor, version FROM ledger_state WHERE id = 1",
        [],
        |r| {
            Ok(crate::store::LedgerState {
                cursor: u64_col(r.get(0)?),
                version: u64_col(r.get(1)?),
            })
        },
    )?;
    let mut st = conn.prepare_cached(
        "SELECT contract, month, chunk, data FROM ledger WHERE version > ?1 ORDER BY contract, month, chunk",
    )?;
    let rows = st.query_map([to_i64(since)], |r| {
        Ok(crate::store::LedgerRow {
            contract: r.get(0)?,
            month: r.get(1)?,
            chunk: r.get(2)?,
            data: r.get(3)?,
        })
    })?;
    Ok((state, rows.collect::<Result<_, _>>()?))
}
