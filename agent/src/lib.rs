//! slaprobe agent: probes a site's hosting (HTTP), DNS, TLS and page
//! performance, and streams every result to the collector.
//!
//! # Layout
//! - [`config`]: figment loading and the typed, validated config.
//! - [`probe`]: the four probes (`http`, `dns`, `tls`, `page`) and what they share.
#![forbid(unsafe_code)]

pub mod config;
pub mod probe;
