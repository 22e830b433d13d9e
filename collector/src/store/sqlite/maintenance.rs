//! [`Maintenance`]: compaction, archive records and retention on a connection of their own.

use super::*;

/// The SQLite side of [`crate::store::Maintenance`]: a write connection of its own
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
    /// than one frame as one frame ([`crate::store::compact::reseal`]), a few rows a transaction.
    pub(in crate::store) fn seal(&mut self, before_day: i64) -> Result<u64, StoreError> {
        use crate::store::compact::{SEAL_PER_TX, frames_json, parse_frames, reseal};
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
    pub(in crate::store) fn vacuum(&mut self) -> Result<(), StoreError> {
        // Stepped to the end: each step of the pragma frees one page.
        let mut st = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
        Ok(())
    }

    /// One step: up to [`crate::store::compact::ROWS_PER_TX`] eligible rows (by
    /// id, after `after_id`) are read and compressed outside any write
    /// transaction; then one short transaction deletes them, stores their
    /// frames and joins their seqs to the agent's ranges. Should a row be gone
    /// by then (another compactor took it), the transaction is rolled back and
    /// the step moves nothing. Returns (rows moved, frames, last id seen).
    pub(in crate::store) fn compact_tx(
        &mut self,
        received_before_ms: i64,
        started_before_ms: i64,
        after_id: i64,
    ) -> Result<(u64, u64, i64), StoreError> {
        use crate::store::compact::{Row, encode_groups, frames_json, parse_frames, seq_runs};
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
                    crate::store::compact::ROWS_PER_TX as i64
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

    /// See [`crate::store::Maintenance::record_archive`].
    pub fn record_archive(&mut self, a: &crate::store::ArchiveRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO archives (month, archived_at, results, sha256) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (month) DO UPDATE SET archived_at = excluded.archived_at,
               results = excluded.results, sha256 = excluded.sha256",
            params![a.month, a.archived_at_ms, to_i64(a.results), a.sha256],
        )?;
        Ok(())
    }

    /// See [`crate::store::Maintenance::prune_days`].
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

    /// See [`crate::store::Maintenance::mark_pruned`].
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
pub(super) fn add_ranges(
    conn: &Connection,
    agent: &str,
    runs: &[(u64, u64)],
) -> Result<(), StoreError> {
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
