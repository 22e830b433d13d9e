//! The agent's own metrics on `[agent] metrics_listen` (optional): probes
//! run, queue depth, spool size, ship errors, acks. Prometheus text format,
//! written with the collector's writer ([`slaprobe_exposition`]) from
//! atomics, so the agent needs no metrics library.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use slaprobe_exposition::{Exposition, Family, Kind};
use tokio_util::sync::CancellationToken;

use crate::schedule::ScheduleStats;
use crate::ship::{SharedSpool, ShipStats};

/// Label names every family here carries.
const AGENT: &[&str] = &["agent", "location"];

/// A family of this page (all carry [`AGENT`]'s labels).
const fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        labels: AGENT,
    }
}

/// `slaprobe_agent_probes_total`.
pub const PROBES: Family = family(
    "slaprobe_agent_probes_total",
    Kind::Counter,
    "Probes finished by this agent.",
);
/// `slaprobe_agent_probes_skipped_total`.
pub const PROBES_SKIPPED: Family = family(
    "slaprobe_agent_probes_skipped_total",
    Kind::Counter,
    "Scheduled runs skipped because the check's previous run was still going.",
);
/// `slaprobe_agent_probes_in_flight`.
pub const PROBES_IN_FLIGHT: Family = family(
    "slaprobe_agent_probes_in_flight",
    Kind::Gauge,
    "Probes running or waiting for a concurrency slot.",
);
/// `slaprobe_agent_checks`.
pub const CHECKS: Family = family(
    "slaprobe_agent_checks",
    Kind::Gauge,
    "Checks currently scheduled (local plus assigned).",
);
/// `slaprobe_agent_queue_depth`.
pub const QUEUE_DEPTH: Family = family(
    "slaprobe_agent_queue_depth",
    Kind::Gauge,
    "Results spooled and not yet acked by the collector.",
);
/// `slaprobe_agent_spool_bytes`.
pub const SPOOL_BYTES: Family = family(
    "slaprobe_agent_spool_bytes",
    Kind::Gauge,
    "Bytes the spool occupies on disk.",
);
/// `slaprobe_agent_spool_dropped_total`.
pub const SPOOL_DROPPED: Family = Family {
    name: "slaprobe_agent_spool_dropped_total",
    kind: Kind::Counter,
    help: "Unacked results lost in the spool: reason=\"full\" (spool_max_bytes reached), reason=\"corrupt\" (damaged records skipped on recovery).",
    labels: &["agent", "location", "reason"],
};
/// `slaprobe_agent_spool_append_errors_total`.
pub const SPOOL_APPEND_ERRORS: Family = family(
    "slaprobe_agent_spool_append_errors_total",
    Kind::Counter,
    "Results that could not be written to the spool (disk errors).",
);
/// `slaprobe_agent_last_seq`.
pub const LAST_SEQ: Family = family(
    "slaprobe_agent_last_seq",
    Kind::Gauge,
    "Highest seq assigned.",
);
/// `slaprobe_agent_acked_seq`.
pub const ACKED_SEQ: Family = family(
    "slaprobe_agent_acked_seq",
    Kind::Gauge,
    "Highest seq the collector has acked.",
);
/// `slaprobe_agent_batches_acked_total`.
pub const BATCHES_ACKED: Family = family(
    "slaprobe_agent_batches_acked_total",
    Kind::Counter,
    "Batches the collector acked.",
);
/// `slaprobe_agent_results_acked_total`.
pub const RESULTS_ACKED: Family = family(
    "slaprobe_agent_results_acked_total",
    Kind::Counter,
    "Results the collector acked.",
);
/// `slaprobe_agent_results_rejected_total`.
pub const RESULTS_REJECTED: Family = family(
    "slaprobe_agent_results_rejected_total",
    Kind::Counter,
    "Results the collector refused with 400 on their own, dropped from the spool.",
);
/// `slaprobe_agent_seq_conflicts_total`.
pub const SEQ_CONFLICTS: Family = family(
    "slaprobe_agent_seq_conflicts_total",
    Kind::Counter,
    "409 answers: the collector held other results under seqs this agent sent; the seq was moved past the collector's.",
);
/// `slaprobe_agent_ship_errors_total`.
pub const SHIP_ERRORS: Family = family(
    "slaprobe_agent_ship_errors_total",
    Kind::Counter,
    "Failed attempts to ship a batch.",
);

/// What the page is written from: the scheduler's and shipper's counters,
/// the spool, and who this agent is.
#[derive(Clone)]
pub struct SelfMetrics {
    pub schedule: Arc<ScheduleStats>,
    pub ship: Arc<ShipStats>,
    pub spool: SharedSpool,
    pub agent: String,
    pub location: String,
}

impl SelfMetrics {
    /// The Prometheus text exposition of the agent's state.
    pub fn render(&self) -> String {
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
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let (sch, ship) = (&*self.schedule, &*self.ship);
        let labels = [self.agent.as_str(), self.location.as_str()];
        let mut out = Exposition::with_capacity(4096);
        let one = |out: &mut Exposition, family: &'static Family, v: f64| {
            out.family(family, |s| s.add(&labels, v));
        };
        for (family, v) in [
            (&PROBES, n(&sch.finished)),
            (&PROBES_SKIPPED, n(&sch.skipped)),
            (&PROBES_IN_FLIGHT, n(&sch.in_flight)),
            (&CHECKS, n(&sch.checks)),
            (&QUEUE_DEPTH, unacked as f64),
            (&SPOOL_BYTES, bytes as f64),
        ] {
            one(&mut out, family, v);
        }
        out.family(&SPOOL_DROPPED, |s| {
            s.add(&[labels[0], labels[1], "full"], dropped as f64);
            s.add(&[labels[0], labels[1], "corrupt"], corrupt as f64);
        });
        for (family, v) in [
            (&SPOOL_APPEND_ERRORS, n(&ship.spool_append_errors)),
            (&LAST_SEQ, last_seq as f64),
            (&ACKED_SEQ, acked as f64),
            (&BATCHES_ACKED, n(&ship.batches_sent)),
            (&RESULTS_ACKED, n(&ship.results_acked)),
            (&RESULTS_REJECTED, n(&ship.results_rejected)),
            (&SEQ_CONFLICTS, n(&ship.seq_conflicts)),
            (&SHIP_ERRORS, n(&ship.errors)),
        ] {
            one(&mut out, family, v);
        }
        out.into_string()
    }
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
