//! What the binary's subcommands do besides `run`: logging, signals,
//! `check-config` output and one-shot `probe`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, Check};
use crate::probe::Prober;

/// Logs to stderr; level from `SLAPROBE_LOG` (else `RUST_LOG`, else `info`).
pub fn init_logging() {
    let filter = std::env::var("SLAPROBE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    install_crypto_provider();
}

/// Installs ring as the process-wide rustls provider (reqwest needs one; our
/// own probes pass the provider explicitly). Harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A token cancelled on the first SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("cannot listen for SIGTERM: {e}");
                        let _ = ctrl_c.await;
                        t.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => tracing::info!("SIGINT: shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        t.cancel();
    });
    token
}

/// The `check-config` summary: settings (never the token) and every check.
pub fn describe(config: &AgentConfig) -> String {
    let a = &config.agent;
    let mut out = String::new();
    let _ = writeln!(out, "config {} is valid", config.file.display());
    let _ = writeln!(out, "agent {} at location {}", a.id, a.location);
    match &a.collector {
        Some(c) => {
            let _ = writeln!(
                out,
                "collector {c} (token {})",
                if a.token.is_some() { "set" } else { "MISSING" }
            );
            if let Some(risk) = a.cleartext_collector_risk() {
                let _ = writeln!(out, "WARNING: {risk}");
            }
        }
        None => {
            let _ = writeln!(out, "collector: none (only `probe` can run)");
        }
    }
    if let Some(dir) = &a.spool_dir {
        let _ = writeln!(
            out,
            "spool {} (max {} bytes)",
            dir.display(),
            a.spool_max_bytes
        );
    }
    let _ = writeln!(
        out,
        "{} local check(s){}",
        config.checks.len(),
        if a.collector.is_some() {
            ", plus those the collector assigns"
        } else {
            ""
        }
    );
    out.push_str(&describe_checks(&config.checks));
    out
}

/// One line per check: name, kind, interval, timeout, target.
pub fn describe_checks(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let _ = writeln!(
            out,
            "  {:<24} {:<7} every {:<6} timeout {:<6} {}{}{}",
            c.name,
            c.kind.as_str(),
            humantime::format_duration(c.interval).to_string(),
            humantime::format_duration(c.timeout).to_string(),
            c.target,
            c.locations
                .as_ref()
                .map(|l| format!("  (locations: {})", l.join(", ")))
                .unwrap_or_default(),
            if c.canary { "  (canary)" } else { "" }
        );
    }
    out
}

/// `probe`: runs the selected checks once, concurrently, and prints one JSON
/// result per line in config order. Exit 0 if all succeeded, 1 if any
/// failed, 2 for an unknown check name.
/// Raises the soft `RLIMIT_NOFILE` to the hard limit: every probe holds
/// sockets, and the usual soft default (1024) is far below what hundreds of
/// concurrent probes need. Returns the (soft, hard) limits now in force;
/// failing to raise it is logged, never fatal.
pub fn raise_fd_limit() -> Option<(u64, u64)> {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => {
            let hard = before.map_or(soft, |(_, h)| h);
            if before.is_some_and(|(s, _)| s < soft) {
                tracing::debug!(soft, hard, "raised the open-file limit to the hard limit");
            }
            Some((soft, hard))
        }
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit (RLIMIT_NOFILE): {e}");
            before
        }
    }
}

pub async fn probe_once(config: &AgentConfig, only: &[String]) -> ExitCode {
    raise_fd_limit();
    for name in only {
        if !config.checks.iter().any(|c| &c.name == name) {
            let known: Vec<&str> = config.checks.iter().map(|c| c.name.as_str()).collect();
            eprintln!(
                "no check named {name:?} in {}; known: {}",
                config.file.display(),
                known.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let selected: Vec<Check> = config
        .checks
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.name))
        .cloned()
        .collect();
    let mut prober = Prober::new().with_browser(config.agent.browser.clone());
    if let Some(b) = &config.agent.rdap_bootstrap {
        prober = prober.with_rdap_bootstrap(b.clone());
    }
    let permits = Arc::new(Semaphore::new(config.agent.concurrency));
    let tasks: Vec<_> = selected
        .into_iter()
        .map(|check| {
            let prober = prober.clone();
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                prober.probe(&check).await
            })
        })
        .collect();
    let mut all_ok = true;
    let mut stdout = std::io::stdout().lock();
    for (i, task) in tasks.into_iter().enumerate() {
        let mut result = match task.await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("probe task failed: {e}");
                all_ok = false;
                continue;
            }
        };
        result.seq = i as u64 + 1;
        result.agent = config.agent.id.clone();
        result.location = config.agent.location.clone();
        all_ok &= result.success;
        match serde_json::to_string(&result) {
            Ok(line) => {
                let _ = writeln!(stdout, "{line}");
            }
            Err(e) => eprintln!("cannot encode result of {}: {e}", result.check),
        }
    }
    let _ = stdout.flush();
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
