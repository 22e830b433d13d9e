//! slaprobe agent: probes a site's hosting (HTTP), DNS, TLS and page
//! performance, and streams every result to the collector.
//!
//! # Layout
//! - [`config`]: figment loading and the typed, validated config.
//! - [`probe`]: the probes (`http`, `dns` with DNSSEC, `tls`, `page`, `domain`, `browser`:
//!   headless Chromium over the DevTools pipe) and what they share.
//! - [`app`]: logging, signals, `check-config` and one-shot `probe`.
//! - [`schedule`]: fires each check on its interval (one heap, no drift).
//! - [`spool`]: the on-disk queue of results; assigns `seq`, survives restarts.
//! - [`writer`]: the spool writer (results in, batched appends, fsync).
//! - [`ship`]: the shipper (batches, acks, backoff).
//! - [`run`]: `run` wiring scheduler → spool → shipper.
//! - [`assign`]: check assignments pulled from the collector, parsed as they stream.
//! - [`selfmetrics`]: the agent's own `/metrics` (optional).
#![forbid(unsafe_code)]

pub mod app;
pub mod assign;
pub mod config;
pub mod probe;
pub mod run;
pub mod schedule;
pub mod selfmetrics;
pub mod ship;
pub mod spool;
pub mod writer;

pub use app::{describe, init_logging, probe_once, shutdown_on_signals};

pub use run::run;
