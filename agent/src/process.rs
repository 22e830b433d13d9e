//! The process around the library, the same for `slaprobe-agent`,
//! `slaprobe-collector` and the demo: logging, the rustls crypto provider,
//! the open-file limit and shutdown on SIGTERM or SIGINT.
//!
//! It lives here, not in `slaprobe-wire`: the collector already depends on
//! this crate (the embedded agent, the check schema), and the wire crate
//! stays serde only, free of tokio and tracing.

use tokio_util::sync::CancellationToken;

/// Logs to stderr. The filter is `SLAPROBE_LOG`, else `RUST_LOG`, else
/// `default_filter` (also when the variable does not parse); colours only
/// when stderr is a terminal. A second call changes nothing.
pub fn init_logging(default_filter: &str) {
    let filter = std::env::var("SLAPROBE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default_filter.to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Installs ring as the process-wide rustls provider (reqwest, built without
/// one, needs a process default; our own probes and listeners pass the
/// provider explicitly). Harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

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

/// A token cancelled on the first SIGTERM or SIGINT (a task on the current
/// tokio runtime waits for them).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT (Ctrl-C) stops the process");
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
