//! The rows that cross the store's boundary, the same for both backends:
//! what ingest writes, what readers get back, the ledger's rows, and the
//! aggregate one batch adds to the bookkeeping tables.

use std::collections::BTreeMap;

use slaprobe_wire::{CheckKind, FailureClass};

/// A month written to an archive bundle (`slaprobe-collector archive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// `YYYY-MM`.
    pub month: String,
    pub archived_at_ms: i64,
    /// Results in the bundle.
    pub results: u64,
    /// SHA-256 (hex) of the bundle's uncompressed `results.jsonl`.
    pub sha256: String,
    /// Results of the month dropped by retention since (0: none).
    pub pruned: u64,
}

/// Whether a result is stored, and with which bytes ([`Reader::stored_seq`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSeq {
    /// Not stored: a new result.
    Absent,
    /// Stored with these bytes (in `results`, or compacted).
    Stored(Vec<u8>),
    /// Stored and compacted, but not under the check and UTC day asked for,
    /// so with other bytes — or its evidence was dropped by retention.
    StoredOtherwise,
}

/// One validated result to store.
#[derive(Debug, Clone)]
pub struct NewResult {
    pub seq: u64,
    pub check: String,
    pub location: String,
    pub kind: CheckKind,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    pub success: bool,
    pub class: Option<FailureClass>,
    /// The result's JSON exactly as the agent sent it.
    pub raw: Vec<u8>,
}

/// See [`Reader::metrics_seed`].
#[derive(Debug, Clone, Default)]
pub struct MetricsSeed {
    pub head: u64,
    pub latest: Vec<StoredResult>,
    pub counts: Vec<ProbeCount>,
    pub agents: Vec<AgentRow>,
}

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Per input row: stored now (true) or already stored before (false: a duplicate).
    pub inserted: Vec<bool>,
    pub stored: u64,
    pub duplicates: u64,
    /// The feed's number of this batch's transaction (see the feed above):
    /// a follower at or past it has seen the batch.
    pub batch_no: u64,
}

/// Per-agent bookkeeping kept by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub id: String,
    pub location: String,
    /// Highest seq ever stored.
    pub max_seq: u64,
    /// Results stored (each seq once).
    pub results: u64,
    /// Results received again after they were stored.
    pub duplicates: u64,
    /// When the collector last stored a batch from it (ms since the epoch).
    pub last_seen_ms: i64,
}

impl AgentRow {
    /// Seqs up to `max_seq` never received. Seqs start at 1 and each is stored
    /// once, so this is exact.
    pub fn missing(&self) -> u64 {
        self.max_seq.saturating_sub(self.results)
    }
}

/// A stored result with its raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub agent: String,
    pub seq: u64,
    pub check: String,
    pub location: String,
    pub started_at_ms: i64,
    pub success: bool,
    /// Failure class as stored (snake_case), `None` for a success.
    pub class: Option<String>,
    /// The JSON exactly as the agent sent it.
    pub raw: String,
    /// The batch number it was committed with (0 for results stored before
    /// the feed existed, and for compacted results).
    pub batch_no: u64,
}

/// The SLA ledger's position: the feed cursor its rows were derived up to,
/// and the version of its latest write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerState {
    /// Every batch up to this number is reflected in the rows.
    pub cursor: u64,
    /// Bumped by every write; rows carry the version that wrote them.
    pub version: u64,
}

/// One opaque ledger row (the SLA ledger defines what `data` holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub contract: String,
    /// `YYYY-MM`, or empty for a contract-wide row.
    pub month: String,
    /// A chunk of slots, or -1 for the month's (or contract's) own row.
    pub chunk: i64,
    pub data: Vec<u8>,
}

/// What changed in the ledger since some version.
#[derive(Debug, Clone, Default)]
pub struct LedgerChanges {
    pub state: LedgerState,
    /// Rows written after the version asked for (all rows from version 0).
    pub rows: Vec<LedgerRow>,
}

/// One write of the ledger: rows upserted and the new cursor, derived from
/// the ledger at version `base` (the write fails when the ledger is no longer there).
#[derive(Debug, Clone, Default)]
pub struct LedgerWrite {
    pub base: u64,
    pub cursor: u64,
    pub rows: Vec<LedgerRow>,
    /// Drop every row of these contracts first (the contract changed: its months are re-derived).
    pub reset_contracts: Vec<String>,
}

/// How many results a (check, location) has, by failure class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeCount {
    pub check: String,
    pub location: String,
    /// `None` counts successes.
    pub class: Option<String>,
    pub count: u64,
}

/// What one batch changes besides the result rows, computed the same way for
/// every backend from the rows and which of them were newly inserted: one
/// upsert per key instead of one per row. Keys are sorted (a BTreeMap), which
/// PostgreSQL needs as a lock order.
pub(crate) struct BatchAggregate<'a> {
    /// (check, location, class or "") → newly stored results.
    pub counts: BTreeMap<(&'a str, &'a str, &'a str), i64>,
    /// (check, location) → the newest newly stored result (by started_at, then seq).
    pub latest: BTreeMap<(&'a str, &'a str), &'a NewResult>,
    /// Newly stored results.
    pub stored: u64,
    /// Highest seq in the batch (duplicates included).
    pub max_seq: u64,
    /// Results of the batch that were already stored.
    pub duplicates: u64,
}

impl<'a> BatchAggregate<'a> {
    /// `inserted[i]` says whether `rows[i]` was newly stored.
    pub(crate) fn new(rows: &'a [NewResult], inserted: &[bool]) -> Self {
        let mut agg = BatchAggregate {
            counts: BTreeMap::new(),
            latest: BTreeMap::new(),
            stored: 0,
            max_seq: 0,
            duplicates: 0,
        };
        for (r, &new) in rows.iter().zip(inserted) {
            agg.max_seq = agg.max_seq.max(r.seq);
            if !new {
                continue;
            }
            agg.stored += 1;
            let class = r.class.map_or("", |c| c.as_str());
            *agg.counts
                .entry((&r.check, &r.location, class))
                .or_default() += 1;
            let slot = agg.latest.entry((&r.check, &r.location)).or_insert(r);
            if (r.started_at_ms, r.seq) > (slot.started_at_ms, slot.seq) {
                *slot = r;
            }
        }
        agg.duplicates = rows.len() as u64 - agg.stored;
        agg
    }
}

/// What a row whose (agent, seq) is already stored is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    /// The same bytes again (a resend after a lost ack): acked, stored once.
    Same,
    /// Other bytes under the same seq (the agent reused it): never acked as
    /// a duplicate, answered 409.
    Conflict,
}

/// Classifies a duplicate by comparing the stored raw JSON with the one sent
/// again. Agents resend the spooled bytes exactly, so any difference means a
/// reused seq.
pub fn classify_duplicate(stored_raw: &[u8], sent_raw: &[u8]) -> Duplicate {
    if stored_raw == sent_raw {
        Duplicate::Same
    } else {
        Duplicate::Conflict
    }
}
