//! The writers' transactions: one batch (retried on deadlock or serialization failure), and the lookups dedup needs.

use super::*;

pub(super) fn retryable(e: &::postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

pub(super) fn insert_batch(
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

pub(super) fn try_insert_batch(
    client: &mut Client,
    agent: &str,
    location: &str,
    received_ms: i64,
    rows: &[NewResult],
) -> Result<Result<BatchOutcome, (u64, u64)>, ::postgres::Error> {
    let mut tx = client.transaction()?;
    // The batch number first: the counter row stays locked until this
    // transaction ends, so numbers follow commit order (see the feed in `super`).
    let batch_no: i64 = tx
        .query_one(
            "UPDATE feed SET last_batch = last_batch + 1 WHERE id = 1 RETURNING last_batch",
            &[],
        )?
        .try_get(0)?;
    let inserted = insert_rows(&mut tx, agent, received_ms, batch_no, rows)?;
    if let Some(conflict) = reused_seq(&mut tx, agent, rows, &inserted)? {
        return Ok(Err(conflict));
    }
    let (stored, duplicates) = update_bookkeeping(
        &mut tx,
        agent,
        location,
        received_ms,
        batch_no,
        rows,
        &inserted,
    )?;
    tx.commit()?;
    Ok(Ok(BatchOutcome {
        inserted,
        stored,
        duplicates,
        batch_no: u64_col(batch_no),
    }))
}

/// Inserts the rows not stored yet, each seq once; per row, whether it was new.
fn insert_rows(
    tx: &mut ::postgres::Transaction<'_>,
    agent: &str,
    received_ms: i64,
    batch_no: i64,
    rows: &[NewResult],
) -> Result<Vec<bool>, ::postgres::Error> {
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

    // Seqs compacted away are stored too (see `crate::store::compact`). Read under
    // the feed lock: compaction holds it while it moves rows.
    let compacted = compacted_ranges(tx, agent)?;
    let keep: Vec<bool> = seqs
        .iter()
        .map(|&q| !crate::store::compact::in_ranges(&compacted, u64_col(q)))
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
    Ok(inserted)
}

/// The first duplicate that carries other bytes than the stored result (a
/// reused seq), with the agent's highest stored seq: the batch is refused
/// (dropping the transaction rolls it back).
fn reused_seq(
    tx: &mut ::postgres::Transaction<'_>,
    agent: &str,
    rows: &[NewResult],
    inserted: &[bool],
) -> Result<Option<(u64, u64)>, ::postgres::Error> {
    // A duplicate must carry the stored bytes; other bytes are a reused seq:
    // refuse the whole batch (dropping `tx` rolls it back).
    let dup_seqs: Vec<i64> = rows
        .iter()
        .zip(inserted)
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
        for (r, _) in rows.iter().zip(inserted).filter(|(_, new)| !**new) {
            let conflict = by_seq.get(&to_i64(r.seq)).is_some_and(|s| {
                crate::store::classify_duplicate(s, &r.raw) == crate::store::Duplicate::Conflict
            });
            if conflict {
                let max_seq: i64 = tx
                    .query_opt("SELECT max_seq FROM agents WHERE agent = $1", &[&agent])?
                    .map(|row| row.try_get(0))
                    .transpose()?
                    .unwrap_or(0);
                return Ok(Some((r.seq, u64::try_from(max_seq).unwrap_or(0))));
            }
        }
    }

    Ok(None)
}

/// The bookkeeping kept with the results (probe counts, latest per check and
/// location, the agent's row); returns (stored, duplicates).
fn update_bookkeeping(
    tx: &mut ::postgres::Transaction<'_>,
    agent: &str,
    location: &str,
    received_ms: i64,
    batch_no: i64,
    rows: &[NewResult],
    inserted: &[bool],
) -> Result<(u64, u64), ::postgres::Error> {
    // Aggregate the batch: one upsert per key, keys sorted (lock order).
    let crate::store::BatchAggregate {
        counts,
        latest,
        stored,
        max_seq,
        duplicates,
    } = crate::store::BatchAggregate::new(rows, inserted);
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
    Ok((stored, duplicates))
}

/// One frame's compressed bytes (`substring` is 1-based).
pub(super) fn load_frame(
    tx: &mut ::postgres::Transaction<'_>,
    sql: &str,
    fr: &crate::store::compact::FrameRef,
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
pub(super) fn compacted_ranges(
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
/// that answers it for this backend (see [`crate::store::StoredSeq`] and the
/// SQLite twin, `crate::store::sqlite::stored_seq`).
pub(crate) fn stored_seq(
    tx: &mut ::postgres::Transaction<'_>,
    agent: &str,
    seq: u64,
    check: &str,
    started_at_ms: i64,
) -> Result<crate::store::StoredSeq, StoreError> {
    if let Some(r) = tx.query_opt(
        "SELECT raw FROM results WHERE agent = $1 AND seq = $2",
        &[&agent, &to_i64(seq)],
    )? {
        return Ok(crate::store::StoredSeq::Stored(r.try_get(0)?));
    }
    if !crate::store::compact::in_ranges(&compacted_ranges(tx, agent)?, seq) {
        return Ok(crate::store::StoredSeq::Absent);
    }
    let chunks = tx.query(
        "SELECT id, frames FROM evidence_chunks WHERE check_name = $1 AND day = $2 AND agent = $3",
        &[
            &check,
            &crate::store::compact::day_of(started_at_ms),
            &agent,
        ],
    )?;
    let load_sql = "SELECT substring(data FROM $2 FOR $3) FROM evidence_chunks WHERE id = $1";
    for c in &chunks {
        let id: i64 = c.try_get(0)?;
        let mut offset = 0u64;
        for fm in crate::store::compact::parse_frames(c.try_get(1)?)? {
            if (fm.seq_min()..=fm.seq_max()).contains(&seq) {
                let fr = crate::store::compact::FrameRef {
                    agent: agent.into(),
                    check: check.into(),
                    location: "".into(),
                    chunk_id: id,
                    offset,
                    len: fm.len(),
                    seq_min: fm.seq_min(),
                };
                let data = load_frame(tx, load_sql, &fr)?;
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
