//! [`Maintenance`]: compaction, archive records and retention on a connection of their own.

use super::*;

/// The PostgreSQL side of [`crate::store::Maintenance`]: a connection of its own.
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
    pub(in crate::store) fn seal(&mut self, before_day: i64) -> Result<u64, StoreError> {
        use crate::store::compact::{SEAL_PER_TX, frames_json, parse_frames, reseal};
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
    pub(in crate::store) fn compact_tx(
        &mut self,
        received_before_ms: i64,
        started_before_ms: i64,
        after_id: i64,
    ) -> Result<(u64, u64, i64), StoreError> {
        use crate::store::compact::{Row, encode_groups, frames_json, parse_frames, seq_runs};
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
                    &(crate::store::compact::ROWS_PER_TX as i64),
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

    /// See [`crate::store::Maintenance::record_archive`].
    pub fn record_archive(&mut self, a: &crate::store::ArchiveRecord) -> Result<(), StoreError> {
        self.client.execute(
            "INSERT INTO archives (month, archived_at, results, sha256) VALUES ($1, $2, $3, $4)
             ON CONFLICT (month) DO UPDATE SET archived_at = excluded.archived_at,
               results = excluded.results, sha256 = excluded.sha256",
            &[&a.month, &a.archived_at_ms, &to_i64(a.results), &a.sha256],
        )?;
        Ok(())
    }

    /// See [`crate::store::Maintenance::prune_days`].
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

    /// See [`crate::store::Maintenance::mark_pruned`].
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
pub(super) fn add_ranges(
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
