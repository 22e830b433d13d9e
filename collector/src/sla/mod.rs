//! The SLA engine: contracts, slots, confirmed downtime, monthly attainment,
//! credits (DESIGN.md §6). The maths are pure functions; see each module.
//!
//! # Layout
//! - [`contract`]: `[[contracts]]` as written and validated ([`Contract::from_raw`],
//!   [`validate_contracts`]).
//! - [`month`]: calendar months in a zone, the slot grid, local days, maintenance windows.
//! - [`rules`]: §6's rules as pure functions (quorum, states, percentile, credit, budget).
//! - [`observation`]: [`Observation`], what the maths read from a probe result.
//! - `state` (private): one contract-month fed result by result; [`MonthEvaluator`]
//!   and [`evaluate_month`] for offline reports.
//! - [`report`]: [`MonthReport`], the §7 JSON report.
//! - [`engine`]: [`SlaEngine`], the live state, month-to-date status and counters.
//! - [`evidence`]: [`evidence_digest`], the report's evidence hash.
//!
//! Typical use: `validate_contracts` at config load; `SlaEngine::new`, replay
//! the store from `replay_from()`, then `observe` each newly stored result,
//! `status(now)` per scrape and `report(...)` (or `evaluate_month` over the
//! store when it returns `None`) for reports.

pub mod contract;
pub mod engine;
pub mod evidence;
pub mod ledger;
pub mod month;
pub mod observation;
pub mod report;
pub mod rules;
mod samples;
pub mod sketch;
mod state;

pub use contract::{Contract, Objective, Phase, RawContract, validate_contracts};
pub use engine::{ContractStatus, SlaCounters, SlaEngine};
pub use evidence::evidence_digest;
pub use ledger::{Keeper, LedgerData};
pub use month::{Month, MonthFrame};
pub use observation::Observation;
pub use report::MonthReport;
pub use state::{MonthEvaluator, evaluate_month};
