//! `slaprobe-collector`: parse the command line, set up logging, load the
//! config, hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slaprobe_collector::CollectorConfig;
use tokio_util::sync::CancellationToken;

/// Receives probe results from agents, stores them, evaluates vendor SLAs and
/// exports Prometheus metrics.
#[derive(Parser)]
#[command(name = "slaprobe-collector", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve ingest, metrics and the API until SIGTERM or SIGINT.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate the config, print what it defines, exit.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let path = match &cli.command {
        Command::Run { config } | Command::CheckConfig { config } => config.clone(),
    };
    let config = match CollectorConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("slaprobe-collector: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::CheckConfig { .. } => {
            print!("{}", config.summary());
            ExitCode::SUCCESS
        }
        Command::Run { .. } => {
            // The embedded agent's HTTP client (reqwest without a built-in
            // provider) needs a process default; the collector itself passes
            // providers explicitly.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("slaprobe-collector: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(async {
                let shutdown = CancellationToken::new();
                slaprobe_collector::server::cancel_on_signals(shutdown.clone());
                slaprobe_collector::run(config, shutdown).await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("slaprobe-collector: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLAPROBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}
