//! The four probes. Each takes a validated check and returns what it saw; a
//! failed probe is data (a result with a failure class), never an `Err`.
//!
//! [`Prober`] holds what probes share (trusted roots, crypto provider) and is
//! built once and cloned cheaply. [`Prober::probe`] bounds every probe by the
//! check's `timeout`, whatever the target does.

pub mod dns;
pub mod http;
pub mod net;
pub mod page;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use slaprobe_wire::{
    DnsDetail, Failure, FailureClass, HttpDetail, PageDetail, ProbeResult, Timestamp, TlsDetail,
};

use crate::config::{Check, ProbeSpec};

/// What one probe saw, before the scheduler stamps identity and seq on it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub failure: Option<Failure>,
    pub http: Option<HttpDetail>,
    pub tls: Option<TlsDetail>,
    pub dns: Option<DnsDetail>,
    pub page: Option<PageDetail>,
}

impl Outcome {
    pub fn failed(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            failure: Some(Failure::new(class, message)),
            ..Default::default()
        }
    }
}

/// Shared probe state, built once per process.
#[derive(Clone)]
pub struct Prober {
    inner: Arc<tls::TlsShared>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").finish_non_exhaustive()
    }
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}

impl Prober {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(tls::TlsShared::new()),
        }
    }

    pub fn tls(&self) -> &tls::TlsShared {
        &self.inner
    }

    /// Runs one probe of `check`, bounded by its timeout. `seq`, `agent` and
    /// `location` are left empty for the caller to fill.
    pub async fn probe(&self, check: &Check) -> ProbeResult {
        let started_at = Timestamp::now();
        let t0 = Instant::now();
        let deadline = tokio::time::Instant::now() + check.timeout;
        let fut = async {
            match &check.probe {
                ProbeSpec::Http(spec) => http::probe(self, spec, deadline).await,
                ProbeSpec::Page(spec) => page::probe(self, spec, deadline).await,
                ProbeSpec::Dns(spec) => dns::probe(spec, deadline).await,
                ProbeSpec::Tls(spec) => tls::probe(self, spec, deadline).await,
            }
        };
        // The probes watch the deadline themselves to classify which phase
        // timed out; this outer bound is the guarantee.
        let outcome = match tokio::time::timeout_at(deadline, fut).await {
            Ok(o) => o,
            Err(_) => Outcome::failed(
                FailureClass::Timeout,
                format!(
                    "probe did not finish within {}",
                    humantime::format_duration(check.timeout)
                ),
            ),
        };
        ProbeResult {
            seq: 0,
            agent: String::new(),
            location: String::new(),
            check: check.name.clone(),
            kind: check.kind,
            target: check.target.clone(),
            started_at,
            duration_seconds: t0.elapsed().as_secs_f64(),
            success: outcome.failure.is_none(),
            failure: outcome.failure,
            http: outcome.http,
            tls: outcome.tls,
            dns: outcome.dns,
            page: outcome.page,
        }
    }
}
