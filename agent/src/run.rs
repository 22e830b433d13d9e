//! `slaprobe-agent run`: scheduler → spool → shipper, plus the check
//! assignments pulled from the collector ([`crate::assign`]).
//!
//! Shutdown order (SIGTERM/SIGINT): the scheduler stops firing and lets the
//! probes in flight finish; the writer spools their results and fsyncs; the
//! shipper makes a last bounded attempt to deliver; whatever is left stays in
//! the spool for the next start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use slaprobe_wire::ProbeResult;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::assign;
use crate::config::{AgentConfig, AgentSettings, Check, Secret, parse_pem_certs};
use crate::probe::Prober;
use crate::schedule::{self, Identity, ScheduleStats};
use crate::ship::{self, ShipConfig, ShipStats};
use crate::spool::{Spool, SpoolOptions};

/// Everything `run` shares with its tasks and self-metrics.
#[derive(Debug, Default)]
pub struct AgentStats {
    pub schedule: Arc<ScheduleStats>,
    pub ship: Arc<ShipStats>,
}

/// Runs the agent until `shutdown` is cancelled.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_stats(config, shutdown, Arc::new(AgentStats::default())).await
}

/// [`run`], exposing its counters (for tests and the embedded agent).
pub async fn run_with_stats(
    config: AgentConfig,
    shutdown: CancellationToken,
    stats: Arc<AgentStats>,
) -> anyhow::Result<()> {
    config.require_for_run()?;
    crate::process::install_crypto_provider();
    if let Some((soft, hard)) = crate::process::raise_fd_limit() {
        tracing::info!(soft, hard, "open-file limit");
    }
    // Our own token: a dying task stops this agent, not the caller's other
    // services (the embedded agent shares the collector's root token).
    let shutdown = shutdown.child_token();
    let a = &config.agent;
    let (spool_dir, spool) = open_spool(a)?;
    let api = CollectorApi::new(a)?;

    let local = config.checks.clone();
    let initial = assign::initial_checks(&local, &spool_dir, &config.file);
    let (checks_tx, checks_rx) = watch::channel(Arc::new(initial));

    let (results_tx, results_rx) = mpsc::channel(16_384);
    let ready = Arc::new(Notify::new());
    let writer_done = CancellationToken::new();

    let mut tasks = Tasks::new();
    if let Some(addr) = a.metrics_listen {
        spawn_self_metrics(&mut tasks, addr, a, &stats, &spool, &shutdown).await?;
    }
    {
        let pull = assign::Pull {
            client: api.client.clone(),
            url: api.checks_url.clone(),
            token: api.token.clone(),
            local,
            spool_dir,
            file: config.file.clone(),
            refresh: a.checks_refresh,
        };
        let shutdown = shutdown.clone();
        tasks.spawn("check assignment", false, async move {
            assign::pull_checks(pull, checks_tx, shutdown).await;
        });
    }
    spawn_scheduler(&mut tasks, a, checks_rx, results_tx, &stats, &shutdown);
    {
        let spool = spool.clone();
        let ready = ready.clone();
        let stats = stats.ship.clone();
        let batch_max = a.batch_max;
        let fsync = a.spool_fsync;
        let writer_done = writer_done.clone();
        tasks.spawn("spool writer", true, async move {
            // Also on a panic: the shipper's final flush must not wait for it.
            let _done = writer_done.drop_guard();
            crate::writer::write_results(results_rx, spool, batch_max, ready, stats, fsync).await;
        });
    }
    {
        let cfg = ShipConfig {
            results_url: api.results_url,
            token: api.token,
            agent: a.id.clone(),
            batch_max: a.batch_max,
            batch_interval: a.batch_interval,
            client: api.client,
        };
        let spool = spool.clone();
        let shutdown = shutdown.clone();
        let ship_stats = stats.ship.clone();
        tasks.spawn("shipper", true, async move {
            ship::ship(
                cfg,
                spool,
                ready,
                ship_stats,
                shutdown,
                writer_done,
                Duration::from_secs(5),
            )
            .await;
        });
    }
    let failed = tasks.supervise(&shutdown).await;
    stop(&spool, failed)
}

/// Creates `spool_dir` and opens the spool in it.
fn open_spool(a: &AgentSettings) -> anyhow::Result<(PathBuf, Arc<Mutex<Spool>>)> {
    let spool_dir = a.spool_dir.clone().context("agent.spool_dir is required")?;
    std::fs::create_dir_all(&spool_dir)
        .with_context(|| format!("cannot create spool dir {}", spool_dir.display()))?;
    let spool = Spool::open(
        &spool_dir,
        SpoolOptions {
            max_bytes: a.spool_max_bytes,
            fsync_every: a.spool_fsync,
            segment_bytes: 8 * 1024 * 1024,
        },
    )
    .with_context(|| format!("cannot open spool in {}", spool_dir.display()))?;
    tracing::info!(
        agent = %a.id, location = %a.location,
        last_seq = spool.last_seq(), unacked = spool.unacked(),
        "agent starting"
    );
    Ok((spool_dir, Arc::new(Mutex::new(spool))))
}

/// How the agent reaches the collector: its client, endpoints and token.
struct CollectorApi {
    client: reqwest::Client,
    checks_url: Url,
    results_url: Url,
    token: Secret,
}

impl CollectorApi {
    fn new(a: &AgentSettings) -> anyhow::Result<Self> {
        let collector = a.collector.clone().context("agent.collector is required")?;
        if let Some(risk) = a.cleartext_collector_risk() {
            tracing::warn!("{risk}");
        }
        let token = a.token.clone().context("agent.token is required")?;
        let identity = a
            .tls_client
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        let client = http_client_with_identity(a.ca_file.as_deref(), identity)?;
        Ok(Self {
            client,
            checks_url: api_url(&collector, "api/v1/checks")?,
            results_url: api_url(&collector, "api/v1/results")?,
            token,
        })
    }
}

/// Binds `addr` and serves the agent's own `/metrics` there.
async fn spawn_self_metrics(
    tasks: &mut Tasks,
    addr: SocketAddr,
    a: &AgentSettings,
    stats: &AgentStats,
    spool: &Arc<Mutex<Spool>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let listener = crate::selfmetrics::bind(addr).await?;
    tracing::info!(%addr, "agent self-metrics at /metrics");
    let metrics = crate::selfmetrics::SelfMetrics {
        schedule: stats.schedule.clone(),
        ship: stats.ship.clone(),
        spool: spool.clone(),
        agent: a.id.clone(),
        location: a.location.clone(),
    };
    tasks.spawn(
        "self-metrics",
        false,
        crate::selfmetrics::serve(listener, metrics, shutdown.clone()),
    );
    Ok(())
}

/// Starts the scheduler: probes the checks `checks` holds, results to `out`.
fn spawn_scheduler(
    tasks: &mut Tasks,
    a: &AgentSettings,
    checks: watch::Receiver<Arc<Vec<Check>>>,
    out: mpsc::Sender<ProbeResult>,
    stats: &AgentStats,
    shutdown: &CancellationToken,
) {
    let identity = Identity {
        agent: a.id.clone(),
        location: a.location.clone(),
    };
    let shutdown = shutdown.clone();
    let stats = stats.schedule.clone();
    let concurrency = a.concurrency;
    let mut prober = Prober::new().with_browser(a.browser.clone());
    if let Some(b) = &a.rdap_bootstrap {
        prober = prober.with_rdap_bootstrap(b.clone());
    }
    let threads = a.probe_threads;
    tasks.spawn("scheduler", true, async move {
        let probing = schedule::run(checks, prober, identity, concurrency, out, stats, shutdown);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new()
            .name("slaprobe-probes".into())
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    on_probe_runtime(threads, probing)
                }));
                let _ = done_tx.send(ran);
            });
        if let Err(e) = started {
            panic!("cannot start the probe thread: {e}");
        }
        match done_rx.await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("cannot start the probe runtime: {e}"),
            // The supervisor reports the scheduler's own panic message.
            Ok(Err(p)) => std::panic::resume_unwind(p),
            Err(_) => panic!("the probe thread ended without a word"),
        }
    });
}

/// Runs the scheduler, and so every probe, on a runtime of its own: with
/// `threads` = 1 a current-thread runtime on the calling thread, else a
/// multi-thread runtime of that many workers. The rest of the agent (spool
/// writer and its fsyncs, shipper and its compression, self-metrics,
/// assignment) stays on the caller's runtime: none of it can hold up a
/// probe's event, and so its timings, whatever the disk does.
fn on_probe_runtime(
    threads: usize,
    probing: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("slaprobe-probe")
            .enable_all()
            .build()?
    };
    // Spawned, so that with several threads the scheduler runs on a worker
    // beside its probes rather than on this thread, which only waits; a
    // panic comes back through the join handle either way.
    let task = rt.spawn(probing);
    if let Err(e) = rt.block_on(task)
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
    Ok(())
}

/// The last fsync once every task is done, then the first task failure.
fn stop(spool: &Mutex<Spool>, failed: Option<anyhow::Error>) -> anyhow::Result<()> {
    let mut s = spool.lock().unwrap_or_else(|p| p.into_inner());
    s.sync().context("final spool fsync")?;
    tracing::info!(
        last_seq = s.last_seq(),
        unacked = s.unacked(),
        "agent stopped"
    );
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The agent's tasks, each known by name. A task that panics, or an
/// essential one (scheduler, spool writer, shipper) that ends before
/// shutdown, stops the agent with an error (exit status 1) instead of
/// leaving it probing into the void.
struct Tasks {
    set: tokio::task::JoinSet<()>,
    /// Task id → (name, essential).
    names: std::collections::HashMap<tokio::task::Id, (&'static str, bool)>,
}

impl Tasks {
    fn new() -> Self {
        Self {
            set: tokio::task::JoinSet::new(),
            names: std::collections::HashMap::new(),
        }
    }

    fn spawn(
        &mut self,
        name: &'static str,
        essential: bool,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let handle = self.set.spawn(fut);
        self.names.insert(handle.id(), (name, essential));
    }

    /// Waits for every task; on the first failure cancels `shutdown` so the
    /// others drain as on a signal, and returns that failure.
    async fn supervise(mut self, shutdown: &CancellationToken) -> Option<anyhow::Error> {
        let mut failure: Option<anyhow::Error> = None;
        while let Some(res) = self.set.join_next_with_id().await {
            let (id, problem) = match res {
                Ok((id, ())) => (id, None),
                Err(e) => {
                    let id = e.id();
                    let why = if e.is_panic() {
                        let p = e.into_panic();
                        let msg = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        format!("panicked: {msg}")
                    } else {
                        "was cancelled".to_string()
                    };
                    (id, Some(why))
                }
            };
            let (name, essential) = self.names.get(&id).copied().unwrap_or(("agent", true));
            let problem = problem.or_else(|| {
                (essential && !shutdown.is_cancelled()).then(|| "stopped unexpectedly".to_string())
            });
            if let Some(why) = problem {
                tracing::error!("the {name} task {why}; stopping the agent");
                if failure.is_none() {
                    failure = Some(anyhow::anyhow!("the {name} task {why}"));
                }
                shutdown.cancel();
            }
        }
        failure
    }
}

/// `collector` joined with an API path, keeping any path prefix.
pub fn api_url(collector: &Url, path: &str) -> anyhow::Result<Url> {
    let mut base = collector.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.join(path)
        .with_context(|| format!("cannot build {path} URL from {collector}"))
}

/// The HTTP client for the collector: rustls with ring, system roots plus
/// `[agent] ca_file`, bounded timeouts.
pub fn http_client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    http_client_with_identity(ca_file, None)
}

/// [`http_client`] presenting a client certificate, `(cert_file, key_file)`
/// in PEM (`[agent] tls_cert_file`, `tls_key_file`), for a collector in mTLS mode.
pub fn http_client_with_identity(
    ca_file: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> anyhow::Result<reqwest::Client> {
    let (mut roots, _source) = crate::probe::tls::system_roots();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("agent.ca_file: cannot read {}", path.display()))?;
        let certs = parse_pem_certs(&pem)
            .map_err(|m| anyhow::anyhow!("agent.ca_file {}: {m}", path.display()))?;
        for c in certs {
            roots.add(c).with_context(|| {
                format!("agent.ca_file {}: unusable certificate", path.display())
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    let tls = match identity {
        None => builder.with_no_client_auth(),
        Some((cert_file, key_file)) => {
            use rustls::pki_types::PrivateKeyDer;
            use rustls::pki_types::pem::PemObject;
            let pem = std::fs::read(cert_file).with_context(|| {
                format!("agent.tls_cert_file: cannot read {}", cert_file.display())
            })?;
            let chain = parse_pem_certs(&pem)
                .map_err(|m| anyhow::anyhow!("agent.tls_cert_file {}: {m}", cert_file.display()))?;
            let key_pem = std::fs::read(key_file).with_context(|| {
                format!("agent.tls_key_file: cannot read {}", key_file.display())
            })?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                anyhow::anyhow!(
                    "agent.tls_key_file {}: no usable PEM private key ({e})",
                    key_file.display()
                )
            })?;
            builder.with_client_auth_cert(chain, key).with_context(|| {
                format!(
                    "agent.tls_cert_file {} and tls_key_file do not make a usable pair",
                    cert_file.display()
                )
            })?
        }
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("slaprobe-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dying_essential_task_stops_the_agent_with_an_error() {
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new();
        let s = shutdown.clone();
        tasks.spawn("scheduler", true, async move { s.cancelled().await });
        tasks.spawn("spool writer", true, async { panic!("disk on fire") });
        let e = tasks.supervise(&shutdown).await.expect("a failure");
        assert!(shutdown.is_cancelled(), "the others are told to stop");
        let e = e.to_string();
        assert!(
            e.contains("spool writer") && e.contains("disk on fire"),
            "{e}"
        );

        // An essential task that just returns before shutdown is a failure too.
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new();
        tasks.spawn("shipper", true, async {});
        let e = tasks.supervise(&shutdown).await.expect("a failure");
        assert!(
            e.to_string().contains("shipper task stopped unexpectedly"),
            "{e}"
        );

        // A clean shutdown is no failure.
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new();
        let s = shutdown.clone();
        tasks.spawn("shipper", true, async move { s.cancelled().await });
        shutdown.cancel();
        assert!(tasks.supervise(&shutdown).await.is_none());
    }
}
