//! The agent's own /metrics page: valid Prometheus text (promtool), with the
//! spool losses by reason and the 409 counter, and its exact text for fixed
//! figures.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use slaprobe_agent::run::AgentStats;
use slaprobe_agent::selfmetrics::SelfMetrics;
use slaprobe_agent::spool::{Spool, SpoolOptions};
use slaprobe_tests::prom::{promtool_check_metrics, value};

#[test]
fn self_metrics_pass_promtool_and_name_the_loss_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let stats = Arc::new(AgentStats::default());
    stats
        .ship
        .seq_conflicts
        .fetch_add(2, std::sync::atomic::Ordering::Relaxed);
    let m = SelfMetrics {
        schedule: stats.schedule.clone(),
        ship: stats.ship.clone(),
        spool: Arc::new(Mutex::new(spool)),
        agent: "ams-1".into(),
        location: "ams".into(),
    };
    let text = m.render();
    promtool_check_metrics(&text);
    let l = |reason| [("agent", "ams-1"), ("location", "ams"), ("reason", reason)];
    assert_eq!(
        value(&text, "slaprobe_agent_spool_dropped_total", &l("full")),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "slaprobe_agent_spool_dropped_total", &l("corrupt")),
        Some(0.0)
    );
    assert_eq!(
        value(
            &text,
            "slaprobe_agent_seq_conflicts_total",
            &[("agent", "ams-1")]
        ),
        Some(2.0)
    );
}

/// The whole page for fixed figures, byte for byte (the text the agent
/// wrote before its families were declared by name): a family swapped,
/// renamed or given another's value fails here.
#[test]
fn self_metrics_page_is_exactly_the_golden_text() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let spool_bytes = spool.bytes();
    let stats = AgentStats::default();
    let s = &stats.schedule;
    s.finished.store(1, Relaxed);
    s.skipped.store(2, Relaxed);
    s.in_flight.store(3, Relaxed);
    s.checks.store(4, Relaxed);
    let sh = &stats.ship;
    sh.batches_sent.store(5, Relaxed);
    sh.results_acked.store(6, Relaxed);
    sh.errors.store(7, Relaxed);
    sh.spool_append_errors.store(8, Relaxed);
    sh.results_rejected.store(9, Relaxed);
    sh.seq_conflicts.store(10, Relaxed);
    let m = SelfMetrics {
        schedule: stats.schedule.clone(),
        ship: stats.ship.clone(),
        spool: Arc::new(Mutex::new(spool)),
        agent: "ams-1".into(),
        // Every character the text format escapes in a label value.
        location: "ams \"x\"\\y\nz".into(),
    };
    let text = m.render();
    // The spool's own size on disk is the spool's business, not this page's.
    let golden =
        include_str!("selfmetrics_golden.prom").replace("SPOOL_BYTES", &spool_bytes.to_string());
    assert_eq!(text, golden);
    promtool_check_metrics(&text);
}
