//! slaprobe collector: ingest, durable store, SLA evaluation, Prometheus
//! metrics and monthly reports.
//!
//! # Layout
//! - [`config`]: the collector config file (figment, then a typed, cross-checked config).
//! - [`conn`]: the accept loop: connection cap, header/body timeouts, lingering close.
//! - [`embedded_link`]: the embedded agent's plain loopback port when the listener speaks TLS.
//! - [`auth`]: agents' bearer tokens, checked against `token_sha256` in constant time.
//! - [`store`]: the durable result store (embedded SQLite: WAL, migrations, one writer thread).
//! - [`read_auth`]: who may read (`[[viewers]]`, `/login` cookies, `public_read`): a layer on the read routes.
//! - [`ingest`]: `POST /api/v1/results`: limits, decompression, validation, ack after commit.
//! - [`api`]: `/api/v1/checks`, `/api/v1/agents`, `/metrics`, `/healthz`, `/readyz`.
//! - [`metrics`]: probe and fleet metrics, a custom Prometheus collector over our own state.
//! - [`server`]: shared state, router, start-up and graceful shutdown; [`run`].
//! - [`status_page`]: the HTML status page at `/` and `/status/{contract}`.
//! - [`sla`]: contracts and the SLA maths (pure functions).
//! - [`sla_service`]: the SLA ledger in the running collector (keep or follow it), `/api/v1/contracts`,
//!   `/api/v1/reports/...`, the `slaprobe_sla_*` metrics; the offline report function.
#![forbid(unsafe_code)]

pub mod api;
pub mod archive;
pub mod auth;
pub mod config;
pub mod conn;
pub mod embedded_link;
pub mod ingest;
pub mod metrics;
pub mod read_auth;
pub mod render;
pub mod server;
pub mod sla;
pub mod sla_service;
pub mod status_page;
pub mod store;
pub mod tls;

pub use config::CollectorConfig;
pub use server::{Server, ServerOptions, SlaHook, run};
