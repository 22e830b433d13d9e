//! The types agents and the collector exchange: probe results, batches, acks
//! and the check definitions the collector hands out.
//!
//! # Layout
//! - `result`: [`ProbeResult`], one probe's outcome (DESIGN.md §4), with its
//!   HTTP section ([`HttpDetail`], [`Phases`]).
//! - `tls`: [`TlsDetail`] and the leaf's [`Revocation`].
//! - `dns`: [`DnsDetail`] with each server's [`DnsServerDetail`] and
//!   [`DnssecDetail`]; a domain's registration, [`DomainDetail`].
//! - `page`: [`PageDetail`] (document plus resources) and [`BrowserDetail`]
//!   (headless Chromium).
//! - `failure`: [`FailureClass`], the stable, snake_case vocabulary of what
//!   went wrong, and [`Failure`].
//! - `batch`: [`Batch`] / [`Ack`], the body of `POST /api/v1/results` and its
//!   answer, and [`AssignedChecks`] (§5).
//! - `check`: [`CheckKind`] and [`CheckSpec`], one `[[checks]]` entry exactly
//!   as written in a config file (raw strings; the agent validates it), also
//!   served by `GET /api/v1/checks`.
//!
//! Every type is re-exported at the crate root (`slaprobe_wire::ProbeResult`).
//! This crate holds data only (serde); behaviour lives in the agent and collector.
#![forbid(unsafe_code)]

pub use jiff::Timestamp;

mod batch;
mod check;
mod dns;
mod failure;
mod page;
mod result;
mod tls;

pub use batch::{Ack, AssignedChecks, Batch};
pub use check::{CheckKind, CheckSpec};
pub use dns::{DnsDetail, DnsServerDetail, DnssecDetail, DnssecStatus, DomainDetail};
pub use failure::{Failure, FailureClass};
pub use page::{BrowserDetail, PageDetail, RequestFailure, ResourceFailure};
pub use result::{HttpDetail, Phases, ProbeResult};
pub use tls::{Revocation, RevocationSource, RevocationStatus, TlsDetail};

/// serde's `skip_serializing_if` for flags that are off by default.
fn is_false(b: &bool) -> bool {
    !*b
}
