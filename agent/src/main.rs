//! `slaprobe-agent`: parse the command line, set up logging, load the config,
//! hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slaprobe_agent::config::AgentConfig;

#[derive(Parser)]
#[command(
    name = "slaprobe-agent",
    version,
    about = "Probe sites' hosting, DNS, TLS and page performance; stream results to a slaprobe collector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the checks once, print one JSON result per line; exit 1 if any failed.
    Probe {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Only this check (repeatable); default: every local check.
        #[arg(long = "check", value_name = "NAME")]
        checks: Vec<String>,
    },
    /// Probe on schedule and stream results to the collector.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate the config, print what would run, exit.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    slaprobe_agent::init_logging("info");
    slaprobe_agent::install_crypto_provider();
    let path = match &cli.command {
        Command::Probe { config, .. }
        | Command::Run { config }
        | Command::CheckConfig { config } => config.clone(),
    };
    let config = match AgentConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // `run` probes on a runtime of its own (`[agent] probe_threads`); the
    // spool writer, shipper and self-metrics left here need one thread.
    // `probe` runs its checks here, on every core.
    let runtime = match cli.command {
        Command::Run { .. } => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::CheckConfig { .. } => {
            print!("{}", slaprobe_agent::describe(&config));
            ExitCode::SUCCESS
        }
        Command::Probe { checks, .. } => runtime.block_on(async {
            let stop = slaprobe_agent::shutdown_on_signals();
            slaprobe_agent::probe_once(&config, &checks, stop).await
        }),
        Command::Run { .. } => {
            if let Err(e) = config.require_for_run() {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
            runtime.block_on(async {
                let shutdown = slaprobe_agent::shutdown_on_signals();
                match slaprobe_agent::run(config, shutdown).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("slaprobe-agent: {e:#}");
                        ExitCode::from(1)
                    }
                }
            })
        }
    }
}
