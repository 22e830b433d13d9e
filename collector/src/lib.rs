//! slaprobe collector: ingest, durable store, SLA evaluation, Prometheus
//! metrics and monthly reports.
//!
//! # Layout
//! - [`config`]: the collector config file (figment, then a typed, cross-checked config;
//!   `raw`, `validate`, `summary` inside).
//! - [`conn`]: the accept loop: connection cap, header/body timeouts, lingering close.
//! - [`auth`]: agents' bearer tokens, checked against `token_sha256` in constant time.
//! - [`store`]: the durable result store behind one [`store::StoreAddress`]: embedded SQLite
//!   (WAL, migrations, one writer thread) or shared PostgreSQL, each a module of its own.
//! - [`read_auth`]: who may read (`[[viewers]]`, `/login` cookies, `public_read`); the layer
//!   and `/login` themselves are [`http::login`].
//! - [`ingest`]: what ingest decides about a batch (limits, decoding, validation, rate, the
//!   refusal and its [`ingest::RejectReason`]), without HTTP.
//! - [`app`]: the state every handler shares ([`app::AppState`]); knows no handler.
//! - [`http`]: the handlers and the router: ingest, the read endpoints, `/login`, the SLA
//!   endpoints, the status page, and the one JSON error envelope ([`http::error::ApiError`]).
//! - [`metrics`]: `/metrics`: the probe and fleet families over our own state, and the
//!   parts that add theirs ([`metrics::MetricFamilies`]), written with `slaprobe_exposition`.
//! - [`probe_feed`]: the probe metrics follow the store's feed of committed batches.
//! - [`wake`]: how the store's followers sleep, wake and stop.
//! - [`server`]: bind, start-up (store, followers), graceful shutdown; [`run`]. Logging and
//!   signals are the agent crate's `slaprobe_agent::process`, shared by both binaries.
//! - [`sla`]: contracts and the SLA maths (pure functions), the ledger.
//! - [`sla_service`]: the SLA ledger in the running collector (keep or follow it), its status;
//!   reports from the store (also the offline CLI's).
//! - [`sla_metrics`]: the `slaprobe_sla_*` and `slaprobe_location_*` families over that status.
//! - [`archive`]: the compactor's schedule, retention, `archive` and `verify-archive`.
//! - [`render`]: a month report as JSON, CSV or HTML.
//! - [`tls`]: the listener's rustls config.
#![forbid(unsafe_code)]

pub mod app;
pub mod archive;
pub mod auth;
pub mod config;
pub mod conn;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod probe_feed;
pub mod read_auth;
pub mod render;
pub mod server;
pub mod sla;
pub mod sla_metrics;
pub mod sla_service;
pub mod store;
pub mod tls;
pub mod wake;

pub use config::CollectorConfig;
pub use server::{Server, ServerOptions, run};
