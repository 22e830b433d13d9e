//! Test fixtures shared by the agent's, the collector's and the end-to-end
//! tests: certificates made at test time, in-process HTTP/HTTPS and DNS
//! servers (well-behaved and hostile), and helpers for real processes.
//!
//! # Layout
//! - [`clock`]: a test's "now" as of a chosen instant, and `faketime` for the binaries it runs.
//! - [`certs`]: a test CA and leaf certificates (valid, expired, wrong host, self-signed).
//! - [`http_server`]: HTTP/HTTPS servers on 127.0.0.1, including misbehaving ones.
//! - [`ocsp`]: OCSP responses (made in Rust and by `openssl ocsp`) for revocation tests.
//! - [`tls_raw`]: a hand-written TLS 1.2 server sending an oversized certificate message.
//! - [`dns_server`]: an authoritative hickory DNS server with a test zone.
//! - [`dns_client`]: a one-shot DNS query (readiness, reading a server's records).
//! - [`knot`]: knotd serving DNSSEC-signed zones (good, expired, mismatched DS, unsigned); zone keys.
//! - [`rdap_server`]: an RDAP server (axum) with RFC 9083-shaped domain answers, held and hostile ones.
//! - [`prom`]: Prometheus text-format helpers, `promtool check metrics`, token hashes.
//! - [`procs`]: the real binaries as child processes, plain HTTP requests.
//! - [`wait`]: waiting for a condition with a deadline (polling, with a failure message naming what never happened).
//! - [`postgres`]: a throwaway PostgreSQL server (initdb + pg_ctl on a loopback port).
//! - [`results`]: probe results as agents send them (a JSON builder) and batches.
//! - [`sla_month`]: the SLA end-to-end tests' month: agents, collector config, the real collector, its CLI and the evidence recipe.
//! - [`collector`]: an in-process collector (bind, serve, wait for `/readyz`); feature `collector`.
#![forbid(unsafe_code)]

pub mod certs;
pub mod clock;
#[cfg(feature = "collector")]
pub mod collector;
pub mod dns_client;
pub mod dns_server;
pub mod http_server;
pub mod knot;
pub mod ocsp;
pub mod postgres;
pub mod procs;
pub mod prom;
pub mod rdap_server;
pub mod results;
pub mod sla_month;
pub mod tls_raw;
pub mod wait;
