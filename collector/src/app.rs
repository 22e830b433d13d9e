//! The state every handler shares ([`AppState`]): config, credentials,
//! metrics, the store once open, the SLA service, ingest's limits. It knows
//! no handler and no route (those are [`crate::http`]), so the HTTP edge,
//! the SLA service and the server depend on it and not on each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::auth::Auth;
use crate::config::CollectorConfig;
use crate::ingest::{IngestLimits, RateLimiter, RejectReason};
use crate::metrics::Metrics;
use crate::probe_feed::ProbeFeed;
use crate::read_auth::ReadAccess;
use crate::sla_service::SlaService;
use crate::store::Store;

/// How often each kind of ingest refusal is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// State every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<AppInner>,
}

struct AppInner {
    config: Arc<CollectorConfig>,
    auth: Auth,
    /// Who may call the read routes (`[[viewers]]`, `public_read`).
    read: ReadAccess,
    metrics: Metrics,
    /// Set once the store is open and migrated (what `/readyz` reports).
    store: OnceLock<Store>,
    limits: IngestLimits,
    /// The SLA ledger and reports.
    sla: SlaService,
    /// The probe metrics' follower of the store's feed.
    probe_feed: ProbeFeed,
    /// When each kind of refusal was last logged: a misconfigured agent
    /// retrying must not flood the log (the metric counts every one).
    log_gate: Mutex<HashMap<RejectReason, Instant>>,
    /// Per-agent results rate (`[collector] max_results_per_second_per_agent`).
    rate: RateLimiter,
}

/// What [`AppState::new`] is built from.
pub(crate) struct AppParts {
    pub config: CollectorConfig,
    pub auth: Auth,
    pub read: ReadAccess,
    pub metrics: Metrics,
    pub limits: IngestLimits,
    pub sla: SlaService,
    pub probe_feed: ProbeFeed,
}

impl AppState {
    pub(crate) fn new(p: AppParts) -> AppState {
        let rate = RateLimiter::new(p.config.collector.max_results_per_second_per_agent);
        AppState {
            inner: Arc::new(AppInner {
                config: Arc::new(p.config),
                auth: p.auth,
                read: p.read,
                metrics: p.metrics,
                store: OnceLock::new(),
                limits: p.limits,
                sla: p.sla,
                probe_feed: p.probe_feed,
                log_gate: Mutex::new(HashMap::new()),
                rate,
            }),
        }
    }

    pub fn config(&self) -> &Arc<CollectorConfig> {
        &self.inner.config
    }
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }
    /// The read credentials.
    pub fn read_access(&self) -> &ReadAccess {
        &self.inner.read
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    /// The store, once open.
    pub fn store(&self) -> Option<&Store> {
        self.inner.store.get()
    }
    pub fn limits(&self) -> IngestLimits {
        self.inner.limits
    }
    /// The per-agent rate limit of ingest.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.rate
    }
    /// The SLA ledger and reports.
    pub fn sla(&self) -> &SlaService {
        &self.inner.sla
    }
    /// The probe metrics' follower of the store's feed.
    pub fn probe_feed(&self) -> &ProbeFeed {
        &self.inner.probe_feed
    }
    /// Records the open store (once; what `/readyz` waits for).
    pub(crate) fn set_store(&self, store: Store) {
        let _ = self.inner.store.set(store);
    }
    /// A batch was committed: wake what follows the store's feed (a hint
    /// only; both also poll, so a request cut off here loses nothing).
    pub(crate) fn committed(&self) {
        self.inner.sla.wake();
        self.inner.probe_feed.wake();
    }
    /// Whether a refusal for `reason` should be logged now (at most once a minute each).
    pub(crate) fn should_log(&self, reason: RejectReason) -> bool {
        let mut gate = self
            .inner
            .log_gate
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match gate.get(&reason) {
            Some(t) if now.duration_since(*t) < LOG_EVERY => false,
            _ => {
                gate.insert(reason, now);
                true
            }
        }
    }
}
