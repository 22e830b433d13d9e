//! The SLA ledger: every contract's slot verdicts, month-to-date latency and
//! monotonic counters, **derived from what the store committed** and kept in
//! the store, so that memory is bounded by the open slots, a restart does
//! not replay the month, and every collector on a shared store serves the
//! same figures (DESIGN.md §6b).
//!
//! # Who writes it
//! One [`Keeper`] at a time (on PostgreSQL the collector holding the
//! ledger's advisory lock; with SQLite the only collector) follows the
//! store's feed of committed batches from its persisted cursor, updates the
//! verdicts, and writes the rows it changed together with the new cursor in
//! one fenced transaction. Every collector (the keeper included) serves
//! from a [`LedgerData`] built from those rows, so they agree once they have
//! read the same version.
//!
//! # Verdicts
//! A month holds one byte per slot: the [`SlotState`] code in the low two
//! bits and the counters' flags above. While a slot is **open** (it has not
//! settled: `now < slot end + one slot`) the keeper keeps the deciding
//! result of each (check, location) in memory — the same packed key as the
//! offline evaluator, so the verdict is the same by construction — and
//! writes the provisional verdict each round. A slot **settles** one slot
//! after its end; its cells are then dropped. A result that arrives for a
//! settled slot (a back-fill) marks it dirty, and the keeper re-derives that
//! slot from the store, which holds every result of it. On start the keeper
//! rebuilds its open slots' cells from the store too (cells are idempotent:
//! a result seen twice decides nothing twice).
//!
//! Canaries (rule 1a) feed every contract: an open slot also holds each
//! location's rule 1a flags (`Cells::flags`, ORed exactly as the offline
//! evaluator does), and a late canary result marks the slot dirty in every
//! contract, which re-derives it from the store's covered checks **and**
//! canaries ([`Contract::evidence_checks`]).
//!
//! # Location track (`slaprobe_location_impaired*`)
//! Rule 1a per location on a one-minute UTC grid, from the same inputs
//! (canaries, `agent_error` of covered checks and canaries), settled one
//! minute after each minute's end and persisted as the row
//! [`LOCATIONS_ROW`] ([`LocationsLedger`]). A late failing canary or
//! `agent_error` re-decides its settled minute from the store and counts it
//! if it was not counted yet (the row keeps the counted minutes as ranges).
//!
//! # Counters (`slaprobe_sla_*_total`)
//! Per contract, never stepping back, persisted with the ledger:
//! - when a slot settles it adds its seconds to `maintenance`, `nodata` or
//!   `eligible` (plus `downtime` when DOWN, and an incident when the slot
//!   before it is not DOWN), by its state then;
//! - a settled slot that later becomes UP or DOWN for the first time (a
//!   back-filled result) adds its seconds to `eligible` then, and one that
//!   becomes DOWN for the first time adds to `downtime` (and an incident when
//!   the slot before it is not DOWN) then. So back-filled slots are counted
//!   when their data is committed; a slot counted as NODATA and later filled
//!   is in both `nodata` and `eligible`, and a DOWN slot a late PASS turns UP
//!   keeps its counted downtime (the month's figures show the current verdicts).
//!
//! # Latency
//! Month to date the percentile comes from a [`LatencySketch`] per latency
//! objective fed once per result through the feed (0.2 % bound; `met` is
//! exact). Reports compute the exact nearest-rank percentile from the store.
//!
//! # Months
//! A month is created when a result for it (or its start) is seen: its
//! verdicts are derived from the store as it is then (results stored before
//! the feed existed included), its sketch from the same pass, and the feed
//! batches that pass already covered are skipped for it (`base_batch`).
//!
//! # Layout
//! - `data`: the rows as stored and read ([`LedgerData`]), the counters,
//!   the contract [`fingerprint`].
//! - `status`: month to date from the rows ([`ContractStatus`]).
//! - `source`: [`LedgerSource`], the keeper's view of the store.
//! - `cells`: an open slot's deciding results and flags, and its verdict.
//! - `keeper`: [`Keeper`], the feed follower; `settle` and `write` hold its
//!   settling and its writes.

mod cells;
mod data;
mod keeper;
mod settle;
mod source;
mod status;
mod write;

pub use data::{
    ContractLedger, LOCATIONS_ROW, LedgerData, LocationStatus, LocationsLedger, MonthLedger,
    SlaCounters, fingerprint,
};
pub use keeper::Keeper;
pub use source::LedgerSource;
pub use status::ContractStatus;

use crate::sla::rules::SlotState;

/// Slots per persisted chunk row.
pub const CHUNK_SLOTS: u32 = 256;
/// Batches read from the feed per step of a round: a step's rows are held
/// at once (16 batches of 1,000 results: ~10 MB; 256 made a backlog cost
/// 150 MB of RSS in the month bench).
const FEED_BATCHES: u64 = 16;
/// Feed steps per round at most: a longer backlog is written in parts.
const MAX_FEED_STEPS: usize = 256;
/// Work per round before it writes what it has (a backlog is written in parts).
const ROUND_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// A verdict byte's [`SlotState`] code; the bits above say what the counters counted.
const STATE_BITS: u8 = 0b11;
/// Counted in `eligible` (and the state was UP or DOWN then).
const COUNTED_ELIGIBLE: u8 = 1 << 2;
/// Counted in `downtime`.
const COUNTED_DOWN: u8 = 1 << 3;
/// Counted in `nodata` or `maintenance` when it settled.
const COUNTED_EXCLUDED: u8 = 1 << 4;

/// The state in a verdict byte.
fn state_of(byte: u8) -> SlotState {
    SlotState::from_code(byte & STATE_BITS)
}
