//! What `check-config` prints: [`CollectorConfig::summary`].

use super::*;

impl CollectorConfig {
    /// The human summary `check-config` prints.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.collector;
        let _ = writeln!(s, "config OK: {}", self.file.display());
        let _ = writeln!(
            s,
            "collector: listen {}, {}, max_result_age {}",
            c.listen,
            match &c.store {
                StoreAddress::Sqlite(dir) => format!("data_dir {}", dir.display()),
                pg @ StoreAddress::Postgres(_) => format!("database_url {}", pg.describe()),
            },
            format_duration(c.max_result_age)
        );
        let _ = writeln!(s, "reads: {}", self.read_mode().describe());
        if let Some(w) = self.read_warning() {
            let _ = writeln!(s, "warning: {w}");
        }
        let _ = writeln!(
            s,
            "evidence: compact_after {}, retention {}",
            format_duration(c.compact_after),
            c.retention
                .map_or_else(|| "forever".to_string(), format_duration)
        );
        let _ = writeln!(s, "agents ({}):", self.agents.len());
        for a in &self.agents {
            let _ = writeln!(s, "  {}  location {}", a.id, a.location);
        }
        if !self.viewers.is_empty() {
            let names: Vec<&str> = self.viewers.iter().map(|v| v.name.as_str()).collect();
            let _ = writeln!(s, "viewers ({}): {}", names.len(), names.join(", "));
        }
        match &self.embedded_agent {
            Some(e) => {
                let _ = writeln!(s, "embedded agent: id {}, location {}", e.id, e.location);
            }
            None => {
                let _ = writeln!(s, "embedded agent: off");
            }
        }
        let _ = writeln!(s, "checks ({}):", self.checks.len());
        for cc in &self.checks {
            let ch = &cc.check;
            let locs = ch
                .locations
                .as_ref()
                .map_or_else(|| "all".to_string(), |l| l.join(", "));
            let _ = writeln!(
                s,
                "  {}  {}  every {}  {}  locations: {}{}",
                ch.name,
                ch.kind,
                format_duration(ch.interval),
                ch.target,
                locs,
                if ch.canary { "  (canary)" } else { "" }
            );
        }
        let _ = writeln!(s, "contracts ({}):", self.contracts.len());
        for k in &self.contracts {
            let objectives: Vec<String> = k.objectives.iter().map(describe_objective).collect();
            let _ = writeln!(
                s,
                "  {}  vendor {}  checks: {}  zone {}  slot {}  quorum {}  objectives: {}",
                k.name,
                k.vendor,
                k.checks.join(", "),
                k.timezone,
                format_duration(k.slot),
                k.quorum,
                if objectives.is_empty() {
                    "none".to_string()
                } else {
                    objectives.join(", ")
                }
            );
            for m in &k.maintenance {
                let _ = writeln!(
                    s,
                    "    maintenance {} for {}",
                    m.describe(),
                    format_duration(m.duration())
                );
            }
            if !k.credits.is_empty() {
                let tiers: Vec<String> = k
                    .credits
                    .iter()
                    .map(|t| format!("below {}% -> {}%", t.below, t.percent))
                    .collect();
                let _ = writeln!(s, "    credits: {}", tiers.join(", "));
            }
        }
        s
    }
}

/// An objective as `check-config` prints it: `availability >= 99.9%`,
/// `processing p95 <= 800ms`.
pub(super) fn describe_objective(o: &Objective) -> String {
    match o {
        Objective::Availability { target } => format!("availability >= {target}%"),
        Objective::Latency {
            phase,
            percentile,
            max,
        } => format!("{phase} p{percentile} <= {}", format_duration(*max)),
        Objective::WebVital {
            metric,
            percentile,
            max,
        } => match metric {
            crate::sla::Phase::Cls => format!("web vital {metric} p{percentile} <= {max}"),
            _ => format!(
                "web vital {metric} p{percentile} <= {}",
                format_duration(Duration::from_secs_f64(*max))
            ),
        },
    }
}
