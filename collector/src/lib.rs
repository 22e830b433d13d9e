//! slaprobe collector: ingest, durable store, SLA evaluation, Prometheus
//! metrics and monthly reports.
//!
//! # Layout
//! - [`sla`]: contracts and the SLA maths (pure functions).
#![forbid(unsafe_code)]

pub mod sla;
