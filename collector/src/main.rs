//! `slaprobe-collector`: parse the command line, set up logging, load the
//! config, hand over to the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slaprobe_collector::CollectorConfig;
use slaprobe_collector::render::{self, Format};
use slaprobe_collector::sla_service::{ReportRequestError, report_from_store, resolve_request};
use slaprobe_collector::store::{Location, Reader};
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
    /// Write a contract's monthly report from the store (works with the collector stopped).
    Report {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The contract's name.
        #[arg(long, value_name = "NAME")]
        contract: String,
        /// The calendar month in the contract's zone, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        /// json, csv or html.
        #[arg(long, value_name = "FORMAT", default_value = "json")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let path = match &cli.command {
        Command::Run { config }
        | Command::CheckConfig { config }
        | Command::Report { config, .. } => config.clone(),
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
        Command::Report {
            contract,
            month,
            format,
            output,
            ..
        } => match report(&config, &contract, &month, &format, output.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("slaprobe-collector: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run { .. } => {
            // The embedded agent's HTTP client (reqwest without a built-in
            // provider) needs a process default; the collector itself passes
            // providers explicitly.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
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

/// `report`: the same figures and digest as `/api/v1/reports/...`
/// (`sla_service::report_from_store`), read straight from the store.
fn report(
    config: &CollectorConfig,
    contract: &str,
    month: &str,
    format: &str,
    output: Option<&Path>,
) -> Result<(), String> {
    let format: Format = format.parse().map_err(|e| format!("--format: {e}"))?;
    let now = jiff::Timestamp::now();
    let (contract, month) =
        resolve_request(&config.contracts, contract, month, now).map_err(|e| match e {
            ReportRequestError::BadMonth(m) => format!("--month: {m}"),
            other => other.to_string(),
        })?;
    let location = config.collector.store_location();
    let key = if matches!(location, Location::Postgres(_)) {
        "collector.database_url"
    } else {
        "collector.data_dir"
    };
    let reader = Reader::open_at(location)
        .map_err(|e| format!("{e} ({key} in {})", config.file.display()))?;
    let report = report_from_store(&reader, contract, month, now)
        .map_err(|e| format!("reading the store failed: {e}"))?;
    let body = render::render(&report, format);
    match output {
        Some(path) => {
            std::fs::write(path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(body.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the report: {e}"))
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLAPROBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
