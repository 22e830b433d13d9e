//! The collector process: shared state, the axum router, start-up (bind,
//! open the store, rebuild metrics), graceful shutdown.
//!
//! The listener is bound before the store opens so `/healthz` answers at
//! once; `/readyz` and the API answer 503 until the store is open and migrated.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use slaprobe_agent::config::{AgentConfig, ConfigError, RawAgentFile, RawAgentSection, Secret};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::{AppParts, AppState};
use crate::auth::{Auth, token_sha256};
use crate::config::CollectorConfig;
use crate::conn::{ConnLimits, ConnStats};
use crate::ingest::IngestLimits;
use crate::metrics::Metrics;
use crate::probe_feed::ProbeFeed;
use crate::read_auth::ReadAccess;
use crate::sla_service::SlaService;
use crate::store::Store;

/// How long in-flight requests may take to finish after shutdown is asked.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Knobs for [`Server::bind_with`]; the defaults are what `run` uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerOptions {
    pub limits: IngestLimits,
    /// Connection bounds; `None`: the defaults with `[collector] max_connections`.
    pub conn: Option<ConnLimits>,
}

/// A bound, not yet serving, collector.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    /// The embedded agent's config (with its per-process token), if enabled.
    embedded: Option<AgentConfig>,
    /// HTTPS (`[collector] tls_*`), built at bind so bad files fail start-up.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Timeouts and the connection cap of the listener.
    conn: ConnLimits,
    /// Connection counters (exported with the other metrics).
    conn_stats: Arc<ConnStats>,
    /// The embedded agent's plain loopback port when the listener speaks TLS.
    link: Option<TcpListener>,
}

impl Server {
    /// Binds `[collector] listen` with default options.
    pub async fn bind(config: CollectorConfig) -> anyhow::Result<Server> {
        Self::bind_with(config, ServerOptions::default()).await
    }

    /// Binds the listener and builds the state; the store opens in [`Server::serve`].
    pub async fn bind_with(
        config: CollectorConfig,
        options: ServerOptions,
    ) -> anyhow::Result<Server> {
        let listen = config.collector.listen;
        let tls = config
            .collector
            .tls
            .as_ref()
            .map(crate::tls::server_config)
            .transpose()?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let mut local = listener.local_addr()?;
        // Behind TLS the embedded agent gets a plain loopback port of its own
        // (see `embedded_link`).
        let link = match (&tls, &config.embedded_agent) {
            (Some(_), Some(_)) => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .context("cannot listen on 127.0.0.1 for the embedded agent")?;
                local = l.local_addr()?;
                Some(l)
            }
            _ => None,
        };

        // The embedded agent talks to us over HTTP like any agent, with a
        // token made for this process only.
        let (embedded, extra) = match &config.embedded_agent {
            None => (None, None),
            Some(e) => {
                let token = random_token();
                let agent = embedded_agent_config(&config, local, &token)
                    .context("building the embedded agent's config")?;
                (
                    Some(agent),
                    Some((e.id.clone(), e.location.clone(), token_sha256(&token))),
                )
            }
        };
        let auth = Auth::new(&config, extra.clone());
        let read = ReadAccess::new(&config);
        let extra_agents: Vec<(String, String)> = extra
            .iter()
            .map(|(id, loc, _)| (id.clone(), loc.clone()))
            .collect();
        let metrics = Metrics::new(&config, &extra_agents);
        let sla = SlaService::for_config(&config);
        metrics.add(Arc::new(sla.clone()));
        let probe_feed = ProbeFeed::new(metrics.clone(), config.collector.store_address().clone());
        let conn = options.conn.unwrap_or(ConnLimits {
            max_connections: config.collector.max_connections,
            ..ConnLimits::default()
        });
        let conn_stats = Arc::new(ConnStats::default());
        metrics.add(conn_stats.clone());
        let state = AppState::new(AppParts {
            config,
            auth,
            read,
            metrics,
            limits: options.limits,
            sla,
            probe_feed,
        });
        Ok(Server {
            listener,
            state,
            embedded,
            tls,
            conn,
            conn_stats,
            link,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config().collector.listen)
    }

    /// The shared state (tests and later wiring).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Connection counters of this server's listener.
    pub fn conn_stats(&self) -> &Arc<ConnStats> {
        &self.conn_stats
    }

    /// The embedded agent's config, when `[embedded_agent]` is set.
    pub fn embedded_agent(&self) -> Option<&AgentConfig> {
        self.embedded.as_ref()
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests
    /// (bounded by a deadline) and closes the store.
    pub async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Server {
            listener,
            state,
            embedded,
            tls,
            conn,
            conn_stats,
            link,
        } = self;
        let local = listener.local_addr()?;
        let shutdown_root = shutdown.clone();
        // Cancelled once the caller's shutdown has stopped the embedded agent
        // (so its last results still reach us), or by us when the store
        // cannot open.
        let stop = CancellationToken::new();
        let agent_stop = CancellationToken::new();
        let agent_done = CancellationToken::new();
        {
            let (stop, agent_stop, agent_done) =
                (stop.clone(), agent_stop.clone(), agent_done.clone());
            let has_agent = embedded.is_some();
            tokio::spawn(async move {
                shutdown.cancelled().await;
                if has_agent {
                    agent_stop.cancel();
                    if tokio::time::timeout(Duration::from_secs(25), agent_done.cancelled())
                        .await
                        .is_err()
                    {
                        tracing::warn!("embedded agent did not stop in 25 s");
                    }
                }
                stop.cancel();
            });
        }
        let app = crate::http::router(state.clone());
        let link_task = match (link, &embedded) {
            (Some(l), Some(agent)) => {
                if let Ok(at) = l.local_addr() {
                    tracing::info!(link = %at, "the embedded agent reaches this TLS collector over a loopback port of its own");
                }
                Some(tokio::spawn(crate::conn::serve(
                    l,
                    None,
                    crate::http::embedded_link::router(state.clone(), agent.agent.id.clone()),
                    conn,
                    conn_stats.clone(),
                    stop.clone(),
                )))
            }
            _ => None,
        };
        let mut server = Box::pin(crate::conn::serve(
            listener,
            tls,
            app,
            conn,
            conn_stats,
            stop.clone(),
        ));
        tracing::info!(listen = %local, reads = state.read_access().mode().describe(), "collector listening");
        if let Some(w) = state.config().read_warning() {
            tracing::warn!("{w}");
        }

        let open = open_store(&state, shutdown_root.clone());
        let opened = tokio::select! {
            r = open => r,
            r = &mut server => {
                // Shut down before the store was open.
                return r.context("serving HTTP");
            }
        };
        if let Err(e) = opened {
            stop.cancel();
            let _ = tokio::time::timeout(DRAIN_DEADLINE, &mut server).await;
            return Err(e);
        }
        tracing::info!(store = %state.config().collector.store_address().describe(), "store open; ready");

        match embedded {
            Some(agent) => start_embedded_agent(agent, agent_stop, agent_done),
            None => agent_done.cancel(),
        }

        let result = tokio::select! {
            r = &mut server => r.context("serving HTTP"),
            _ = async { stop.cancelled().await; tokio::time::sleep(DRAIN_DEADLINE).await } => {
                tracing::warn!(deadline = ?DRAIN_DEADLINE, "requests still running at the drain deadline; closing anyway");
                Ok(())
            }
        };
        if let Some(t) = link_task {
            // Stopped with the main listener; its agent is gone already.
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
        // The followers of the store end before it closes.
        {
            let (sla, feed) = (state.sla().clone(), state.probe_feed().clone());
            let _ = tokio::task::spawn_blocking(move || {
                sla.stop();
                feed.stop();
            })
            .await;
        }
        if let Some(store) = state.store() {
            store.close().await;
        }
        tracing::info!("collector stopped");
        result
    }
}

/// Opens the store, starts the compactor and the store's followers (the
/// probe metrics, the SLA ledger), then marks the state ready. Every loop
/// started here ends when `shutdown` is cancelled.
async fn open_store(state: &AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let address = state.config().collector.store_address().clone();
    let store = tokio::task::spawn_blocking({
        let address = address.clone();
        move || Store::open(&address)
    })
    .await
    .context("opening the store")?
    .with_context(|| format!("opening the store in {}", address.describe()))?;
    crate::archive::start_compactor(&store, state.config()).context("starting the compactor")?;
    let (feed, sla, s, stop) = (
        state.probe_feed().clone(),
        state.sla().clone(),
        store.clone(),
        shutdown,
    );
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        feed.start(&s, stop.clone())
            .context("reading the store to rebuild metrics")?;
        sla.start(&s, stop).context("loading the SLA ledger")
    })
    .await
    .context("start-up task")??;
    state.set_store(store);
    Ok(())
}

/// Runs the embedded agent in this process until `shutdown`, then marks
/// `done`. It talks to this collector over HTTP like any agent.
fn start_embedded_agent(agent: AgentConfig, shutdown: CancellationToken, done: CancellationToken) {
    tracing::info!(
        id = agent.agent.id,
        location = agent.agent.location,
        "starting the embedded agent"
    );
    tokio::spawn(async move {
        if let Err(e) = slaprobe_agent::run(agent, shutdown).await {
            tracing::error!("embedded agent stopped: {e:#}");
        }
        done.cancel();
    });
}

/// The embedded agent's config: it reaches this collector on `local` with
/// `token`, keeps its spool under `data_dir/embedded-agent`, and pulls its
/// checks (those for its location) like any agent.
pub fn embedded_agent_config(
    config: &CollectorConfig,
    local: SocketAddr,
    token: &str,
) -> Result<AgentConfig, ConfigError> {
    let Some(e) = &config.embedded_agent else {
        return Err(ConfigError::new(
            &config.file,
            "embedded_agent",
            "not configured",
        ));
    };
    // A wildcard listen address is not a destination: talk over loopback.
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let raw = RawAgentFile {
        agent: RawAgentSection {
            id: Some(e.id.clone()),
            location: Some(e.location.clone()),
            collector: Some(format!("http://{}", SocketAddr::new(ip, local.port()))),
            token: Some(Secret::new(token)),
            spool_dir: Some(config.collector.data_dir.join("embedded-agent")),
            rdap_bootstrap: e.rdap_bootstrap.clone(),
            ..Default::default()
        },
        checks: Vec::new(),
    };
    AgentConfig::from_raw(raw, &config.file)
}

/// 32 random bytes, hex: the embedded agent's token for this process.
fn random_token() -> String {
    let mut buf = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf));
    if from_os.is_err() {
        // No /dev/urandom (not Linux): RandomState is seeded from the OS.
        use std::hash::{BuildHasher, Hasher};
        for chunk in buf.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    hex::encode(buf)
}

/// Serves `config` (with the SLA engine over its contracts) until `shutdown` is cancelled.
pub async fn run(config: CollectorConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    Server::bind(config).await?.serve(shutdown).await
}
