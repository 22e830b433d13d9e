//! The agent's own /metrics page: valid Prometheus text (promtool), with the
//! spool losses by reason and the 409 counter.

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
        stats,
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
