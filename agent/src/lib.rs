//! slaprobe agent: probes a site's hosting (HTTP), DNS, TLS and page
//! performance, and streams every result to the collector.
//!
//! # Layout
//! - [`config`]: figment loading and the typed, validated config.
//! - [`probe`]: the four probes (`http`, `dns`, `tls`, `page`) and what they share.
//! - [`app`]: logging, signals, `check-config` and one-shot `probe`.
//! - [`schedule`]: fires each check on its interval (one heap, no drift).
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod probe;
pub mod schedule;
pub mod spool;

pub use app::{describe, init_logging, probe_once, shutdown_on_signals};

/// Streams results to the collector until `shutdown` (placeholder until the scheduler lands).
pub async fn run(config: config::AgentConfig, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    let _ = config;
    shutdown.cancelled().await;
    Ok(())
}
