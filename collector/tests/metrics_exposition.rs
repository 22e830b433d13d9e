//! `/metrics` byte for byte: the whole page for a fixed data set
//! (`metrics_golden/`: a config, results, fleet events, SLA status and
//! rule 1a per location) against the golden text the collector wrote before
//! its families were declared by name. A family swapped, renamed, given
//! another's labels or reordered fails here; the page also passes
//! `promtool check metrics`.

use std::path::Path;
use std::sync::Arc;

use slaprobe_collector::CollectorConfig;
use slaprobe_collector::conn::ConnStats;
use slaprobe_collector::metrics::{MetricFamilies, Metrics};
use slaprobe_collector::sla::ContractStatus;
use slaprobe_collector::sla::ledger::LocationsLedger;
use slaprobe_collector::sla_metrics;
use slaprobe_exposition::Exposition;
use slaprobe_tests::prom::promtool_check_metrics;
use slaprobe_wire::ProbeResult;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics_golden");

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(DIR).join(name)).unwrap()
}

/// Fixed SLA figures in place of the ledger's (whose status depends on the clock).
struct FixedSla {
    status: Vec<ContractStatus>,
    locations: LocationsLedger,
}

impl MetricFamilies for FixedSla {
    fn write_families(&self, out: &mut Exposition) {
        sla_metrics::write_families(&self.status, &self.locations, out);
    }
}

#[test]
fn metrics_page_is_exactly_the_golden_text() {
    let config = CollectorConfig::load(&Path::new(DIR).join("collector.toml")).unwrap();
    let m = Metrics::new(&config, &[("embedded-1".into(), "local".into())]);
    // Out of order, a replay of an older result, a check no longer configured.
    let results: Vec<ProbeResult> = serde_json::from_str(&read("results.json")).unwrap();
    m.observe(&results);
    m.received("ams-1", "ams", 2, 1_795_000_000.5);
    m.received("nyc-1", "nyc", 0, 1_795_000_100.0);
    m.received("nyc-1", "nyc", 1, 1_794_999_000.0); // older: last seen stays
    m.agent_seen("lab-9", "lab", 1_795_000_050.25);
    m.conflict("nyc-1");
    m.rejected("malformed");
    m.rejected("malformed");
    m.rejected("unauthorized");
    // Contracts and objectives out of label order; a vendor that needs escaping.
    m.add(Arc::new(FixedSla {
        status: serde_json::from_str(&read("sla_status.json")).unwrap(),
        locations: serde_json::from_str(&read("locations.json")).unwrap(),
    }));
    m.add(Arc::new(ConnStats::default()));

    let text = String::from_utf8(m.render()).unwrap();
    let golden = read("metrics.prom").replace("VERSION", env!("CARGO_PKG_VERSION"));
    if text != golden {
        let first = text
            .lines()
            .zip(golden.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(text.lines().count().min(golden.lines().count()));
        panic!(
            "/metrics differs from tests/metrics_golden/metrics.prom from line {}:\n got: {:?}\nwant: {:?}\n--- page ---\n{text}",
            first + 1,
            text.lines().nth(first),
            golden.lines().nth(first)
        );
    }
    promtool_check_metrics(&text);
}
