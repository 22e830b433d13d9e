//! The SLA engine: contracts, slots, confirmed downtime, monthly attainment,
//! credits (DESIGN.md §6). The maths are pure functions; see each module.
//!
//! # Layout
//! - [`contract`]: `[[contracts]]` as written and validated ([`Contract::from_raw`],
//!   [`validate_contracts`]).
//! - [`month`]: calendar months in a zone, the slot grid, local days, maintenance windows.
//! - [`rules`]: §6's rules as pure functions (quorum, states, percentile, credit, budget).
//! - [`observation`]: [`Observation`], what the maths read from a probe result.
//! - `state` (private): one contract-month fed result by result.
//! - `evaluate` (private): [`MonthEvaluator`] and [`evaluate_month`], the
//!   offline evaluation behind every report (state in, report out).
//! - [`report`]: [`MonthReport`], the §7 JSON report.
//! - [`ledger`]: the SLA ledger: slot verdicts derived from the store's feed and kept in
//!   the store, month-to-date status and counters ([`Keeper`], [`LedgerData`]).
//! - [`sketch`]: the bounded month-to-date latency percentile of the live figures.
//! - [`evidence`]: [`evidence_digest`], the report's evidence hash.
//!
//! Typical use: `validate_contracts` at config load; a [`Keeper`] follows the
//! store's feed and writes the ledger, [`LedgerData::status`] per scrape,
//! `evaluate_month` over the store for every report.

pub mod contract;
mod evaluate;
pub mod evidence;
pub mod ledger;
pub mod month;
pub mod observation;
pub mod report;
pub mod rules;
pub mod select;
pub mod sketch;
mod state;

pub use contract::{Contract, Objective, ObjectiveKind, Phase, RawContract, validate_contracts};
pub use evaluate::{MonthEvaluator, evaluate_month};
pub use evidence::evidence_digest;
pub use ledger::{ContractStatus, Keeper, LedgerData, SlaCounters};
pub use month::{Month, MonthFrame};
pub use observation::Observation;
pub use report::MonthReport;
