//! What the binary's subcommands do besides `run`: `check-config` output
//! and one-shot `probe`. Logging and signals are [`crate::process`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::{AgentConfig, Check};
use crate::probe::Prober;

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
/// failed or `stop` was cancelled (SIGTERM, SIGINT: the checks not yet
/// printed are abandoned, and Chromium is stopped and reaped all the same),
/// 2 for an unknown check name.
pub async fn probe_once(
    config: &AgentConfig,
    only: &[String],
    stop: tokio_util::sync::CancellationToken,
) -> ExitCode {
    crate::process::raise_fd_limit();
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
    let mut tasks = tasks.into_iter();
    let mut interrupted = false;
    let mut i = 0;
    while let Some(mut task) = tasks.next() {
        i += 1;
        let joined = tokio::select! {
            r = &mut task => r,
            _ = stop.cancelled() => {
                task.abort();
                tasks.by_ref().for_each(|t| t.abort());
                interrupted = true;
                break;
            }
        };
        let mut result = match joined {
            Ok(r) => r,
            Err(e) => {
                eprintln!("probe task failed: {e}");
                all_ok = false;
                continue;
            }
        };
        result.seq = i as u64;
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
    drop(stdout);
    // Chromium (if a browser check ran) goes with the agent, reaped.
    prober.browser().shutdown().await;
    if interrupted {
        eprintln!("probe interrupted: the checks not printed were abandoned");
        return ExitCode::from(1);
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
