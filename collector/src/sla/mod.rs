//! The SLA engine: contracts, slots, confirmed downtime, monthly attainment,
//! credits (DESIGN.md §6). The maths are pure functions; see each module.

pub mod contract;

pub use contract::RawContract;
