//! `slaprobe-collector`: parse the command line, set up logging, load the
//! config, hand over to the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slaprobe_collector::CollectorConfig;
use slaprobe_collector::render::{self, Format};
use slaprobe_collector::sla_service::{ReportRequestError, report_from_store, resolve_request};
use slaprobe_collector::store::{Reader, StoreAddress};

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
    /// Write the canonical evidence of a contract's month (JSONL: each stored
    /// result's bytes then a newline, in (agent, seq) order); its sha256sum is
    /// the report's evidence.sha256.
    Evidence {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The contract's name.
        #[arg(long, value_name = "NAME")]
        contract: String,
        /// The calendar month in the contract's zone, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write a month's self-contained bundle (results, every contract's
    /// evidence and reports, a manifest of digests) and record the month as
    /// archived, which lets `retention` drop its evidence.
    Archive {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// YYYY-MM: every result started in that month in any time zone.
        #[arg(long, value_name = "YYYY-MM")]
        month: String,
        /// The bundle's directory (created; must be empty).
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
    },
    /// Verify a bundle offline (digests, counts, each report's evidence);
    /// with --config, also evaluate each report again from the bundle.
    VerifyArchive {
        /// The bundle's directory.
        dir: PathBuf,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    slaprobe_agent::init_logging("info");
    let path = match &cli.command {
        Command::Run { config }
        | Command::CheckConfig { config }
        | Command::Report { config, .. }
        | Command::Evidence { config, .. }
        | Command::Archive { config, .. } => config.clone(),
        Command::VerifyArchive { dir, config } => return verify_archive(dir, config.as_deref()),
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
        Command::Evidence {
            contract,
            month,
            output,
            ..
        } => match evidence(&config, &contract, &month, output.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("slaprobe-collector: {e}");
                ExitCode::from(2)
            }
        },
        Command::Archive { month, output, .. } => archive(&config, &month, &output),
        Command::VerifyArchive { .. } => ExitCode::SUCCESS,
        Command::Run { .. } => serve(config),
    }
}

/// `verify-archive`: a bundle's digests and counts, and with `config` each
/// report evaluated again from the bundle.
fn verify_archive(dir: &Path, config: Option<&Path>) -> ExitCode {
    let contracts = match config {
        None => None,
        Some(path) => match CollectorConfig::load(path) {
            Ok(c) => Some(c.contracts),
            Err(e) => {
                eprintln!("slaprobe-collector: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match slaprobe_collector::archive::verify_bundle(dir, contracts.as_deref()) {
        Ok(v) => {
            println!(
                "bundle OK: month {}, {} results (sha256 {}), contracts: {}; reports reproduced: {}",
                v.month,
                v.results.results,
                v.results.sha256,
                v.contracts.join(", "),
                if v.reproduced.is_empty() {
                    "none (no --config)".to_string()
                } else {
                    v.reproduced.join(", ")
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "slaprobe-collector: {} does not verify: {e:#}",
                dir.display()
            );
            ExitCode::from(1)
        }
    }
}

/// `archive`: a month's bundle, recorded as archived.
fn archive(config: &CollectorConfig, month: &str, output: &Path) -> ExitCode {
    let m = match month.trim().parse::<slaprobe_collector::sla::Month>() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("slaprobe-collector: --month: {e}");
            return ExitCode::from(2);
        }
    };
    match slaprobe_collector::archive::archive_month(config, m, output, jiff::Timestamp::now()) {
        Ok(s) => {
            println!(
                "archived {m} in {}: {} results (sha256 {}), {} contracts",
                s.dir.display(),
                s.results.results,
                s.results.sha256,
                s.contracts
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("slaprobe-collector: archive {m}: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `run`: serves until SIGTERM or SIGINT.
fn serve(config: CollectorConfig) -> ExitCode {
    // The embedded agent's HTTP client (reqwest without a built-in
    // provider) needs a process default; the collector itself passes
    // providers explicitly.
    slaprobe_agent::install_crypto_provider();
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
        let shutdown = slaprobe_agent::shutdown_on_signals();
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
    let reader = open_reader(config)?;
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

/// `evidence`: the canonical JSONL of a report's digest, from the store.
fn evidence(
    config: &CollectorConfig,
    contract: &str,
    month: &str,
    output: Option<&Path>,
) -> Result<(), String> {
    let (contract, month) =
        resolve_request(&config.contracts, contract, month, jiff::Timestamp::now()).map_err(
            |e| match e {
                ReportRequestError::BadMonth(m) => format!("--month: {m}"),
                other => other.to_string(),
            },
        )?;
    let reader = open_reader(config)?;
    let write = |out: &mut dyn std::io::Write| {
        slaprobe_collector::archive::write_evidence(&reader, contract, month, out)
            .map_err(|e| format!("{e:#}"))
    };
    let d = match output {
        Some(path) => {
            let f = std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            write(&mut std::io::BufWriter::new(f))?
        }
        None => write(&mut std::io::BufWriter::new(std::io::stdout().lock()))?,
    };
    eprintln!("{} results, sha256 {}", d.results, d.sha256);
    Ok(())
}

fn open_reader(config: &CollectorConfig) -> Result<Reader, String> {
    let address = config.collector.store_address();
    let key = if matches!(address, StoreAddress::Postgres(_)) {
        "collector.database_url"
    } else {
        "collector.data_dir"
    };
    Reader::open(address).map_err(|e| format!("{e} ({key} in {})", config.file.display()))
}
