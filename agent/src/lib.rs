//! slaprobe agent: probes a site's hosting (HTTP), DNS, TLS and page
//! performance, and streams every result to the collector.
//!
//! # Layout
//! - [`config`]: figment loading and the typed, validated config.
//! - [`probe`]: the probes (`http`, `dns` with DNSSEC, `tls`, `page`, `domain`, `browser`:
//!   headless Chromium over the DevTools pipe) and what they share.
//! - [`cli`]: `check-config` and one-shot `probe`.
//! - [`process`]: logging, the crypto provider, the open-file limit, signals (shared with the collector).
//! - [`schedule`]: fires each check on its interval (one heap, no drift).
//! - [`spool`]: the on-disk queue of results; assigns `seq`, survives restarts.
//! - [`writer`]: the spool writer (results in, batched appends, fsync).
//! - [`ship`]: the shipper (batches, acks, backoff).
//! - [`run`]: `run` wiring scheduler → spool → shipper.
//! - [`assign`]: check assignments pulled from the collector, parsed as they stream.
//! - [`selfmetrics`]: the agent's own `/metrics` (optional).
#![forbid(unsafe_code)]

pub mod assign;
pub mod cli;
pub mod config;
pub mod probe;
pub mod process;
pub mod run;
pub mod schedule;
pub mod selfmetrics;
pub mod ship;
pub mod spool;
pub mod writer;

pub use cli::{describe, probe_once};
pub use process::{init_logging, install_crypto_provider, shutdown_on_signals};

pub use run::run;
