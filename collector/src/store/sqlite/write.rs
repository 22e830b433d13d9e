//! The writer's transactions: one batch, and the lookups dedup needs.

use super::*;

pub(super) fn insert_batch(
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
    let inserted = insert_rows(&tx, agent, received_ms, batch_no, rows)?;
    refuse_reused_seqs(&tx, agent, rows, &inserted)?;
    let (stored, duplicates) =
        update_bookkeeping(&tx, agent, location, received_ms, batch_no, rows, &inserted)?;
    tx.commit()?;
    Ok(BatchOutcome {
        inserted,
        stored,
        duplicates,
        batch_no: u64_col(batch_no),
    })
}

/// Inserts the rows not stored yet; per row, whether it was new. Seqs
/// compacted away are stored too (see `crate::store::compact`).
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    received_ms: i64,
    batch_no: i64,
    rows: &[NewResult],
) -> Result<Vec<bool>, StoreError> {
    let mut inserted = Vec::with_capacity(rows.len());
    let compacted = compacted_ranges(tx, agent)?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO results (agent, seq, check_name, location, kind, started_at, success, class, received_at, raw, batch_no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (agent, seq) DO NOTHING",
        )?;
        for r in rows {
            if crate::store::compact::in_ranges(&compacted, r.seq) {
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
    Ok(inserted)
}

/// Refuses the batch when a duplicate carries other bytes than the stored
/// result (a reused seq; the transaction rolls back on return).
fn refuse_reused_seqs(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    rows: &[NewResult],
    inserted: &[bool],
) -> Result<(), StoreError> {
    // A duplicate must carry the stored bytes; other bytes are a reused seq:
    // refuse the whole batch (the transaction rolls back on return).
    if inserted.iter().any(|new| !new) {
        let mut get = tx.prepare_cached("SELECT raw FROM results WHERE agent = ?1 AND seq = ?2")?;
        for (r, _) in rows.iter().zip(inserted).filter(|(_, new)| !**new) {
            // A compacted duplicate is not compared (as on PostgreSQL): the
            // seqs an agent could reuse after a crash are its latest, still raw.
            let stored: Option<Vec<u8>> = get
                .query_row(params![agent, to_i64(r.seq)], |row| row.get(0))
                .optional()?;
            if stored.is_some_and(|stored| {
                crate::store::classify_duplicate(&stored, &r.raw)
                    == crate::store::Duplicate::Conflict
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

    Ok(())
}

/// The bookkeeping kept with the results (probe counts, latest per check and
/// location, the agent's row); returns (stored, duplicates).
fn update_bookkeeping(
    tx: &rusqlite::Transaction<'_>,
    agent: &str,
    location: &str,
    received_ms: i64,
    batch_no: i64,
    rows: &[NewResult],
    inserted: &[bool],
) -> Result<(u64, u64), StoreError> {
    // Aggregate the batch first: one upsert per key instead of per row.
    let crate::store::BatchAggregate {
        counts,
        latest,
        stored,
        max_seq,
        duplicates,
    } = crate::store::BatchAggregate::new(rows, inserted);
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
    Ok((stored, duplicates))
}

/// `agent`'s compacted seq ranges, sorted.
pub(super) fn compacted_ranges(
    conn: &Connection,
    agent: &str,
) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT lo, hi FROM compacted_seqs WHERE agent = ?1 ORDER BY lo")?;
    let rows = st.query_map([agent], |r| Ok((u64_col(r.get(0)?), u64_col(r.get(1)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `(agent, seq)` is stored, and with which bytes: the one place
/// that answers it, for `results` rows and compacted ones alike (see
/// [`crate::store::StoredSeq`]). A compacted result is looked up under `check`
/// and the UTC day of `started_at_ms`: the same bytes carry the same check
/// and start, so a result not found there was stored with other bytes.
pub(crate) fn stored_seq(
    conn: &Connection,
    agent: &str,
    seq: u64,
    check: &str,
    started_at_ms: i64,
) -> Result<crate::store::StoredSeq, StoreError> {
    let raw: Option<Vec<u8>> = conn
        .prepare_cached("SELECT raw FROM results WHERE agent = ?1 AND seq = ?2")?
        .query_row(params![agent, to_i64(seq)], |r| r.get(0))
        .optional()?;
    if let Some(raw) = raw {
        return Ok(crate::store::StoredSeq::Stored(raw));
    }
    if !crate::store::compact::in_ranges(&compacted_ranges(conn, agent)?, seq) {
        return Ok(crate::store::StoredSeq::Absent);
    }
    let mut st = conn.prepare_cached(
        "SELECT id, frames FROM evidence_chunks WHERE check_name = ?1 AND day = ?2 AND agent = ?3",
    )?;
    let chunks = st
        .query_map(
            params![check, crate::store::compact::day_of(started_at_ms), agent],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for (id, frames) in chunks {
        let mut offset = 0u64;
        for fm in crate::store::compact::parse_frames(&frames)? {
            if (fm.seq_min()..=fm.seq_max()).contains(&seq) {
                let data = read_blob(conn, id, offset, fm.len())?;
                if let Some(r) = crate::store::compact::decode_frame(&data)?
                    .into_iter()
                    .find(|r| r.seq == seq)
                {
                    return Ok(crate::store::StoredSeq::Stored(r.raw));
                }
            }
            offset += fm.len();
        }
    }
    Ok(crate::store::StoredSeq::StoredOtherwise)
}

/// `len` bytes at `offset` of chunk `id`'s data (incremental blob I/O: the
/// other frames of the row are not copied).
pub(super) fn read_blob(
    conn: &Connection,
    id: i64,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, StoreError> {
    let blob = conn.blob_open(rusqlite::MAIN_DB, c"evidence_chunks", c"data", id, true)?;
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    blob.read_at_exact(&mut buf, usize::try_from(offset).unwrap_or(usize::MAX))?;
    Ok(buf)
}
