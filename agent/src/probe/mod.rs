//! The probes (http, page, dns, tls, domain, browser). Each takes a validated check and returns what it saw; a
//! failed probe is data (a result with a failure class), never an `Err`.
//!
//! [`Prober`] holds what probes share (trusted roots, crypto provider) and is
//! built once and cloned cheaply. [`Prober::probe`] bounds every probe by the
//! check's `timeout`, whatever the target does.

pub mod bound;
pub mod browser;
pub mod dns;
pub mod dnssec;
pub mod domain;
pub mod http;
pub mod net;
pub mod page;
pub mod record_tap;
pub mod revocation;
pub mod tls;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use slaprobe_wire::{
    BrowserDetail, DnsDetail, DomainDetail, Failure, FailureClass, HttpDetail, PageDetail,
    ProbeResult, Timestamp, TlsDetail,
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
    pub domain: Option<DomainDetail>,
    pub browser: Option<BrowserDetail>,
}

impl Outcome {
    pub fn failed(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            failure: Some(Failure::new(class, message)),
            ..Default::default()
        }
    }
}

/// Polls a future, turning a panic inside it into `Err(panic message)`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                Poll::Ready(Err(msg))
            }
        }
    }
}

/// Runs a probe's future; a panic inside it becomes an `agent_error`
/// outcome (the agent's own fault, never the target's), so a bug triggered
/// by one hostile target costs one result, not the check's future runs.
pub async fn guarded(fut: impl Future<Output = Outcome>) -> Outcome {
    match CatchUnwind(Box::pin(fut)).await {
        Ok(o) => o,
        Err(msg) => {
            tracing::error!("probe panicked (an agent bug; reported as agent_error): {msg}");
            let mut message = format!("the probe panicked (agent bug): {msg}");
            bound::cut(&mut message, bound::MAX_MESSAGE);
            Outcome::failed(FailureClass::AgentError, message)
        }
    }
}

/// Shared probe state, built once per process.
#[derive(Clone)]
pub struct Prober {
    inner: Arc<tls::TlsShared>,
    /// Name resolution for http, tls and page probes (async, no blocking pool).
    resolver: hickory_resolver::TokioResolver,
    /// The agent's Chromium for browser checks (started on first use).
    browser: Arc<browser::Browser>,
    /// Test seam: a probe of a check with this name panics (to prove that a
    /// panicking probe is reported and its check keeps running).
    panic_for: Option<Arc<str>>,
    /// Which RDAP server serves which TLD (domain checks).
    rdap_bootstrap: Arc<domain::RdapBootstrap>,
    /// The HTTP client for RDAP, built on the first domain probe.
    rdap_client: Arc<OnceLock<Result<reqwest::Client, String>>>,
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
            resolver: net::system_resolver(),
            browser: Arc::new(browser::Browser::new(Default::default())),
            panic_for: None,
            rdap_bootstrap: Arc::new(domain::RdapBootstrap::builtin()),
            rdap_client: Arc::new(OnceLock::new()),
        }
    }

    /// Uses `bootstrap` (e.g. `[agent] rdap_bootstrap`) instead of the
    /// shipped snapshot to find RDAP servers.
    pub fn with_rdap_bootstrap(mut self, bootstrap: Arc<domain::RdapBootstrap>) -> Self {
        self.rdap_bootstrap = bootstrap;
        self
    }

    /// Uses `settings` for browser checks (binary, concurrency, memory bound).
    pub fn with_browser(mut self, settings: crate::config::BrowserSettings) -> Self {
        self.browser = Arc::new(browser::Browser::new(settings));
        self
    }

    /// The agent's Chromium (for browser checks).
    pub fn browser(&self) -> &browser::Browser {
        &self.browser
    }

    /// Makes every probe of the check named `check` panic (tests only: the
    /// panic path must be exercised through the real scheduler).
    #[doc(hidden)]
    pub fn panicking_for(mut self, check: &str) -> Self {
        self.panic_for = Some(check.into());
        self
    }

    pub fn tls(&self) -> &tls::TlsShared {
        &self.inner
    }

    /// The resolver the probes share.
    pub fn resolver(&self) -> &hickory_resolver::TokioResolver {
        &self.resolver
    }

    /// Runs one probe of `check`, bounded by its timeout. `seq`, `agent` and
    /// `location` are left empty for the caller to fill.
    pub async fn probe(&self, check: &Check) -> ProbeResult {
        let started_at = Timestamp::now();
        let t0 = Instant::now();
        let deadline = tokio::time::Instant::now() + check.timeout;
        let fut = guarded(async {
            if self.panic_for.as_deref() == Some(check.name.as_str()) {
                panic!("injected panic for check {}", check.name);
            }
            match &check.probe {
                ProbeSpec::Http(spec) => http::probe(self, spec, deadline).await,
                ProbeSpec::Page(spec) => page::probe(self, spec, deadline).await,
                ProbeSpec::Dns(spec) => dns::probe(spec, deadline).await,
                ProbeSpec::Tls(spec) => tls::probe(self, spec, deadline).await,
                ProbeSpec::Domain(spec) => {
                    match self.rdap_client.get_or_init(domain::rdap_client) {
                        Ok(client) => {
                            domain::probe(
                                client,
                                &self.rdap_bootstrap,
                                spec,
                                deadline,
                                Timestamp::now(),
                            )
                            .await
                        }
                        Err(e) => Outcome::failed(
                            FailureClass::AgentError,
                            format!("cannot build the RDAP HTTP client: {e}"),
                        ),
                    }
                }
                ProbeSpec::Browser(spec) => browser::probe(&self.browser, spec, deadline).await,
            }
        });
        // The probes watch the deadline themselves to classify which phase
        // timed out; this outer bound is the guarantee.
        let mut outcome = match tokio::time::timeout_at(deadline, fut).await {
            Ok(o) => o,
            Err(_) => Outcome::failed(
                FailureClass::Timeout,
                format!(
                    "probe did not finish within {}",
                    humantime::format_duration(check.timeout)
                ),
            ),
        };
        bound::outcome(&mut outcome);
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
            domain: outcome.domain,
            browser: outcome.browser,
        }
    }
}
