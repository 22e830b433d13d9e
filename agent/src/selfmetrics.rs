//! The agent's own metrics on `[agent] metrics_listen` (optional): probes
//! run, queue depth, spool size, ship errors, acks. Prometheus text format,
//! rendered by hand from atomics so the agent needs no metrics library.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use crate::run::AgentStats;
use crate::ship::SharedSpool;

/// What the page shows besides the counters in [`AgentStats`].
#[derive(Clone)]
pub struct SelfMetrics {
    pub stats: Arc<AgentStats>,
    pub spool: SharedSpool,
    pub agent: String,
    pub location: String,
}

impl SelfMetrics {
    /// The Prometheus text exposition of the agent's state.
    pub fn render(&self) -> String {
        let s = &self.stats;
        let (unacked, bytes, dropped, corrupt, last_seq, acked) = {
            let spool = self.spool.lock().unwrap_or_else(|p| p.into_inner());
            (
                spool.unacked(),
                spool.bytes(),
                spool.dropped_total(),
                spool.dropped_corrupt(),
                spool.last_seq(),
                spool.acked(),
            )
        };
        let labels = format!(
            "agent=\"{}\",location=\"{}\"",
            escape(&self.agent),
            escape(&self.location)
        );
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{labels}}} {value}"
            );
        };
        let sch = &s.schedule;
        let ship = &s.ship;
        metric(
            "slaprobe_agent_probes_total",
            "counter",
            "Probes finished by this agent.",
            sch.finished.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_probes_skipped_total",
            "counter",
            "Scheduled runs skipped because the check's previous run was still going.",
            sch.skipped.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_probes_in_flight",
            "gauge",
            "Probes running or waiting for a concurrency slot.",
            sch.in_flight.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_checks",
            "gauge",
            "Checks currently scheduled (local plus assigned).",
            sch.checks.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_queue_depth",
            "gauge",
            "Results spooled and not yet acked by the collector.",
            unacked as f64,
        );
        metric(
            "slaprobe_agent_spool_bytes",
            "gauge",
            "Bytes the spool occupies on disk.",
            bytes as f64,
        );
        let _ = writeln!(
            out,
            "# HELP slaprobe_agent_spool_dropped_total Unacked results lost in the spool: reason=\"full\" (spool_max_bytes reached), reason=\"corrupt\" (damaged records skipped on recovery).\n# TYPE slaprobe_agent_spool_dropped_total counter\nslaprobe_agent_spool_dropped_total{{{labels},reason=\"full\"}} {dropped}\nslaprobe_agent_spool_dropped_total{{{labels},reason=\"corrupt\"}} {corrupt}"
        );
        let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{labels}}} {value}"
            );
        };
        metric(
            "slaprobe_agent_spool_append_errors_total",
            "counter",
            "Results that could not be written to the spool (disk errors).",
            ship.spool_append_errors.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_last_seq",
            "gauge",
            "Highest seq assigned.",
            last_seq as f64,
        );
        metric(
            "slaprobe_agent_acked_seq",
            "gauge",
            "Highest seq the collector has acked.",
            acked as f64,
        );
        metric(
            "slaprobe_agent_batches_acked_total",
            "counter",
            "Batches the collector acked.",
            ship.batches_sent.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_results_acked_total",
            "counter",
            "Results the collector acked.",
            ship.results_acked.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_results_rejected_total",
            "counter",
            "Results the collector refused with 400 on their own, dropped from the spool.",
            ship.results_rejected.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_seq_conflicts_total",
            "counter",
            "409 answers: the collector held other results under seqs this agent sent; the seq was moved past the collector's.",
            ship.seq_conflicts.load(Ordering::Relaxed) as f64,
        );
        metric(
            "slaprobe_agent_ship_errors_total",
            "counter",
            "Failed attempts to ship a batch.",
            ship.errors.load(Ordering::Relaxed) as f64,
        );
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: SelfMetrics,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, _peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("self-metrics accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let resp = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(Bytes::from(metrics.render())))
                    } else {
                        Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::from_static(b"try /metrics\n")))
                    };
                    Ok::<_, hyper::http::Error>(resp.unwrap_or_default())
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
        });
    }
}

/// Binds `addr` (errors name it).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("agent.metrics_listen: cannot listen on {addr}: {e}"))
}
