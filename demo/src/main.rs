//! `slaprobe-demo`: the whole slaprobe world in one process, on loopback.
//! `cargo run --release -p slaprobe-demo`, then open the printed URL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// A collector, three agents (ams, nyc, sgp) and simulated vendors with
/// scripted faults, all on 127.0.0.0/8. Ctrl-C stops it; run it again to
/// continue where it left off.
#[derive(Debug, Parser)]
#[command(name = "slaprobe-demo", version)]
struct Cli {
    /// Where the store, the agents' spools and the generated collector.toml live.
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
    /// The collector's listen address (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// Days of history to back-fill before probing live (1-40).
    #[arg(long, default_value_t = 30)]
    history_days: u32,
    /// The vendors listen on 127.<NET>.x.y (change it to run two demos at once).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    net: u8,
}

/// The demo speaks through its own lines on stdout; logs (stderr) are for
/// problems. `SLAPROBE_LOG` (or `RUST_LOG`) overrides this filter. The
/// agents shadow the collector's checks with their own pinned copies on
/// purpose (see config.rs); slaprobe_agent::run warns about each.
const LOG_FILTER: &str = "warn,slaprobe_agent::run=error";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    slaprobe_agent::init_logging(LOG_FILTER);
    if !cli.listen.ip().is_loopback() {
        eprintln!(
            "slaprobe-demo: --listen must be a loopback address (the demo world stays on 127.0.0.0/8)"
        );
        return ExitCode::from(2);
    }
    let shutdown = slaprobe_agent::shutdown_on_signals();
    let opts = slaprobe_demo::Options {
        data_dir: cli.data_dir,
        listen: cli.listen,
        history_days: cli.history_days,
        net: cli.net,
    };
    match slaprobe_demo::run(opts, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slaprobe-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}
