//! slaprobe demo: a whole slaprobe world in one process, on loopback only.
//!
//! A collector (the collector library's [`Server`], SQLite under the data
//! dir), three agents (`ams`, `nyc`, `sgp`; the agent library, each with its
//! own spool) and simulated vendors with scripted faults ([`world`]). Before
//! probing live it back-fills the missing past through the real ingest API
//! ([`history`]), so this and last month's reports, incidents and credits are
//! there at once. Restarted, it back-fills only the gap since it stopped.
//!
//! Nothing here contacts an address outside 127.0.0.0/8: the vendors are
//! reached by `resolve` pins and explicit nameservers, never a resolver.
//!
//! # Layout
//! - [`world`]: locations, vendors, loopback addresses, the fault script.
//! - [`certs`]: the demo CA and the vendors' certificates (rcgen).
//! - [`vendors`]: the simulated HostCo, CDNCo (hyper) and DNSCo (hickory-server).
//! - [`config`]: the collector's config file and the agents' configs.
//! - [`history`]: the back-fill.
//! - here: [`run`], which wires them and shuts them down in order.
#![forbid(unsafe_code)]

/// `println!` that never panics: a closed stdout (the terminal gone, a
/// reader that stopped) must not stop a clean shutdown.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod certs;
pub mod config;
pub mod history;
pub mod vendors;
pub mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;
use slaprobe_collector::Server;
use slaprobe_collector::app::AppState;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::world::{LOCATIONS, Net};

/// How the demo runs (the CLI's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the store, the spools and the generated config live.
    pub data_dir: PathBuf,
    /// The collector's address.
    pub listen: SocketAddr,
    /// How many days of history to back-fill (at most 40).
    pub history_days: u32,
    /// The second octet of the vendors' loopback addresses (`127.<net>.*.*`).
    pub net: u8,
}

/// Runs the demo until `shutdown`, then stops the agents (they deliver what
/// they hold), the collector and the vendors, in that order.
pub async fn run(opts: Options, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=40).contains(&opts.history_days),
        "--history-days must be between 1 and 40 (the collector keeps 45 days)"
    );
    slaprobe_agent::install_crypto_provider();
    let net = Net(opts.net);
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("cannot create {}", opts.data_dir.display()))?;
    let data_dir = opts.data_dir.canonicalize()?;
    let now = Timestamp::now();

    let pki = certs::DemoPki::new(now)?;
    let keys = config::agent_keys()?;
    let collector_config =
        config::write_collector(&data_dir, opts.listen, net, &keys, &pki.ca_pem)?;
    let vendors = vendors::Vendors::start(net, &pki).await?;

    let server = Server::bind(collector_config.clone()).await?;
    let local = server.local_addr();
    let state = server.state().clone();
    let collector_stop = CancellationToken::new();
    let collector = tokio::spawn(server.serve(collector_stop.clone()));

    let outcome = async {
        tokio::select! {
            r = wait_ready(&state) => r?,
            _ = shutdown.cancelled() => return Ok(None),
        }
        say!(
            "slaprobe demo: collector on http://{local}/ (data in {})",
            data_dir.display()
        );
        let backfill = history::Backfill {
            collector: local,
            keys: &keys,
            net,
            pki: &pki,
            days: opts.history_days,
        };
        tokio::select! {
            r = backfill.run(&state, Timestamp::now()) => { r.context("back-filling the history")?; }
            _ = shutdown.cancelled() => return Ok(None),
        }
        let agents_stop = CancellationToken::new();
        let mut agents = JoinSet::new();
        for key in keys
            .iter()
            .filter(|k| k.id == config::live_agent(&k.location))
        {
            let spool = data_dir.join("agents").join(&key.location);
            let checks = config::location_checks(&collector_config, net, &key.location);
            let cfg = config::agent_config(key, local, spool, checks)?;
            let stop = agents_stop.clone();
            agents.spawn(async move { slaprobe_agent::run(cfg, stop).await });
        }
        print_urls(local, &collector_config);
        Ok::<_, anyhow::Error>(Some((agents_stop, agents)))
    }
    .await;

    let result = match outcome {
        Ok(Some((agents_stop, mut agents))) => {
            shutdown.cancelled().await;
            say!("slaprobe demo: stopping");
            agents_stop.cancel();
            let mut result = Ok(());
            while let Some(r) = agents.join_next().await {
                if let Ok(Err(e)) = r {
                    result = Err(e.context("a demo agent failed"));
                }
            }
            result
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    collector_stop.cancel();
    match collector.await {
        Ok(Err(e)) if result.is_ok() => return Err(e.context("the collector failed")),
        Err(e) if result.is_ok() => return Err(anyhow::anyhow!("collector task: {e}")),
        _ => {}
    }
    vendors.stop().await;
    if result.is_ok() {
        say!("slaprobe demo: stopped; run it again to continue where it left off");
    }
    result
}

/// Waits until the store is open and the SLA replay has finished.
async fn wait_ready(state: &AppState) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let ready = state.store().is_some() && state.sla().status(Timestamp::now()).is_some();
        if ready {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the collector did not become ready within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_urls(local: SocketAddr, config: &slaprobe_collector::CollectorConfig) {
    let base = format!("http://{local}");
    say!(
        "slaprobe demo: running ({} locations probing live). Open:",
        LOCATIONS.len()
    );
    say!("  {base}/                       status page");
    if let Some(c) = config.contracts.first() {
        say!(
            "  {base}/status/{}          one contract: incidents, daily availability",
            c.name
        );
    }
    say!("  {base}/api/v1/contracts       month to date, JSON");
    say!("  {base}/metrics                Prometheus");
    say!("Press Ctrl-C to stop.");
}
