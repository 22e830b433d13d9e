//! The collector's own families (DESIGN.md §8, probe and fleet sections):
//! each declared once by name, and the functions that write them from
//! [`State`].

use slaprobe_exposition::{Exposition, Family, Kind};
use slaprobe_wire::{BrowserDetail, Phases};

use super::state::{ProbeCounts, ProbeState, State};

/// Label names of the per-(check, location) families.
const CHECK_LOCATION: &[&str] = &["check", "location"];

/// `slaprobe_probe_success`.
pub const PROBE_SUCCESS: Family = Family {
    name: "slaprobe_probe_success",
    kind: Kind::Gauge,
    help: "1 if the latest probe of the check from the location succeeded, else 0.",
    labels: CHECK_LOCATION,
};
/// `slaprobe_probe_duration_seconds`.
pub const PROBE_DURATION: Family = Family {
    name: "slaprobe_probe_duration_seconds",
    kind: Kind::Gauge,
    help: "Duration of the latest probe (phase total) and of each HTTP phase it reached.",
    labels: &["check", "location", "phase"],
};
/// `slaprobe_probes_total`.
pub const PROBES: Family = Family {
    name: "slaprobe_probes_total",
    kind: Kind::Counter,
    help: "Probe results stored, per check and location.",
    labels: CHECK_LOCATION,
};
/// `slaprobe_probe_failures_total`.
pub const PROBE_FAILURES: Family = Family {
    name: "slaprobe_probe_failures_total",
    kind: Kind::Counter,
    help: "Failed probe results stored, by failure class.",
    labels: &["check", "location", "class"],
};
/// `slaprobe_http_status_code`.
pub const HTTP_STATUS: Family = Family {
    name: "slaprobe_http_status_code",
    kind: Kind::Gauge,
    help: "HTTP status of the latest probe's final response.",
    labels: CHECK_LOCATION,
};
/// `slaprobe_tls_cert_expiry_timestamp_seconds`.
pub const TLS_CERT_EXPIRY: Family = Family {
    name: "slaprobe_tls_cert_expiry_timestamp_seconds",
    kind: Kind::Gauge,
    help: "Earliest expiry in the certificate chain the latest probe saw (Unix seconds).",
    labels: CHECK_LOCATION,
};
/// `slaprobe_page_bytes`.
pub const PAGE_BYTES: Family = Family {
    name: "slaprobe_page_bytes",
    kind: Kind::Gauge,
    help: "Bytes of the document and every resource in the latest page load.",
    labels: CHECK_LOCATION,
};
/// `slaprobe_page_resources`.
pub const PAGE_RESOURCES: Family = Family {
    name: "slaprobe_page_resources",
    kind: Kind::Gauge,
    help: "Resources the latest page load requested (the document not counted).",
    labels: CHECK_LOCATION,
};
/// `slaprobe_page_load_seconds`.
pub const PAGE_LOAD: Family = Family {
    name: "slaprobe_page_load_seconds",
    kind: Kind::Gauge,
    help: "Time until the document and every resource had arrived in the latest page load.",
    labels: CHECK_LOCATION,
};
/// `slaprobe_dns_rrsig_expiry_timestamp_seconds`.
pub const DNS_RRSIG_EXPIRY: Family = Family {
    name: "slaprobe_dns_rrsig_expiry_timestamp_seconds",
    kind: Kind::Gauge,
    help: "Earliest expiry of the RRSIGs the latest DNSSEC validation relied on, over every nameserver (Unix seconds).",
    labels: CHECK_LOCATION,
};
/// `slaprobe_domain_expiry_timestamp_seconds`.
pub const DOMAIN_EXPIRY: Family = Family {
    name: "slaprobe_domain_expiry_timestamp_seconds",
    kind: Kind::Gauge,
    help: "Registration expiry of the domain as its registry's RDAP server reported it in the latest probe (Unix seconds).",
    labels: CHECK_LOCATION,
};
/// `slaprobe_browser_web_vital`.
pub const BROWSER_WEB_VITAL: Family = Family {
    name: "slaprobe_browser_web_vital",
    kind: Kind::Gauge,
    help: "Core Web Vitals of the latest browser probe, by metric (lcp, cls, fcp, ttfb, tbt); seconds, CLS unitless.",
    labels: &["check", "location", "metric"],
};
/// `slaprobe_browser_requests`.
pub const BROWSER_REQUESTS: Family = Family {
    name: "slaprobe_browser_requests",
    kind: Kind::Gauge,
    help: "Requests the page made in the latest browser probe (the document included).",
    labels: CHECK_LOCATION,
};
/// `slaprobe_browser_failed_requests`.
pub const BROWSER_FAILED_REQUESTS: Family = Family {
    name: "slaprobe_browser_failed_requests",
    kind: Kind::Gauge,
    help: "Requests that failed (network error or status >= 400) in the latest browser probe.",
    labels: CHECK_LOCATION,
};
/// `slaprobe_browser_js_errors_total`.
pub const BROWSER_JS_ERRORS: Family = Family {
    name: "slaprobe_browser_js_errors_total",
    kind: Kind::Counter,
    help: "Uncaught JavaScript errors seen by browser probes (restarts at 0 with the collector).",
    labels: CHECK_LOCATION,
};
/// `slaprobe_check_info`.
pub const CHECK_INFO: Family = Family {
    name: "slaprobe_check_info",
    kind: Kind::Gauge,
    help: "Configured checks; the value is always 1.",
    labels: &["check", "kind", "target"],
};
/// `slaprobe_check_canary`: which checks are canaries, so alert rules can
/// tell the monitor's own checks from the vendors'.
pub const CHECK_CANARY: Family = Family {
    name: "slaprobe_check_canary",
    kind: Kind::Gauge,
    help: "Configured checks marked canary = true (rule 1a: the monitor's own, part of no contract); the value is always 1.",
    labels: &["check"],
};
/// `slaprobe_agent_last_seen_timestamp_seconds`.
pub const AGENT_LAST_SEEN: Family = Family {
    name: "slaprobe_agent_last_seen_timestamp_seconds",
    kind: Kind::Gauge,
    help: "When the agent last talked to the collector (Unix seconds).",
    labels: &["agent", "location"],
};
/// `slaprobe_ingest_results_total`.
pub const INGEST_RESULTS: Family = Family {
    name: "slaprobe_ingest_results_total",
    kind: Kind::Counter,
    help: "Results stored from the agent (each seq once).",
    labels: &["agent"],
};
/// `slaprobe_ingest_duplicates_total`.
pub const INGEST_DUPLICATES: Family = Family {
    name: "slaprobe_ingest_duplicates_total",
    kind: Kind::Counter,
    help: "Results received again after they were already stored.",
    labels: &["agent"],
};
/// `slaprobe_ingest_rejected_total`.
pub const INGEST_REJECTED: Family = Family {
    name: "slaprobe_ingest_rejected_total",
    kind: Kind::Counter,
    help: "Ingest requests refused, by reason.",
    labels: &["reason"],
};
/// `slaprobe_build_info`.
pub const BUILD_INFO: Family = Family {
    name: "slaprobe_build_info",
    kind: Kind::Gauge,
    help: "Build of this collector; the value is always 1.",
    labels: &["version"],
};
/// `slaprobe_agent_missing_results`.
pub const AGENT_MISSING_RESULTS: Family = Family {
    name: "slaprobe_agent_missing_results",
    kind: Kind::Gauge,
    help: "Seqs up to the agent's highest stored one that were never received (lost results).",
    labels: &["agent"],
};
/// `slaprobe_ingest_conflicts_total`.
pub const INGEST_CONFLICTS: Family = Family {
    name: "slaprobe_ingest_conflicts_total",
    kind: Kind::Counter,
    help: "Batches refused with 409 because a seq was already stored with other bytes (the agent reused seqs).",
    labels: &["agent"],
};

type ProbeRows<'a> = [(&'a (String, String), &'a ProbeState)];
type CountRows<'a> = [(&'a (String, String), &'a ProbeCounts)];

/// The per-(check, location) families and `slaprobe_check_info`, series
/// sorted by label values. At 10,000 checks × 3 locations this is ~300,000
/// series: the one hot path of a scrape.
pub(super) fn write_check_families(st: &State, out: &mut Exposition) {
    let mut probes: Vec<(&(String, String), &ProbeState)> = st.probes.iter().collect();
    probes.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut counts: Vec<(&(String, String), &ProbeCounts)> = st.counts.iter().collect();
    counts.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let b = |v: bool| if v { 1.0 } else { 0.0 };
    out.family(&PROBE_SUCCESS, |s| {
        for ((c, l), p) in &probes {
            s.add(&[c, l], b(p.success));
        }
    });
    out.family(&PROBE_DURATION, |s| {
        for ((c, l), p) in &probes {
            s.add(&[c, l, "total"], p.duration);
            for (phase, v) in Phases::NAMES.iter().zip(p.phases) {
                if let Some(v) = v {
                    s.add(&[c, l, phase], v);
                }
            }
        }
    });
    out.family(&PROBES, |s| {
        for ((c, l), n) in &counts {
            s.add(&[c, l], n.total as f64);
        }
    });
    out.family(&PROBE_FAILURES, |s| {
        for ((c, l), n) in &counts {
            for (class, k) in &n.failures {
                s.add(&[c, l, class], *k as f64);
            }
        }
    });
    type Pick = fn(&ProbeState) -> Option<f64>;
    let latest: [(&'static Family, Pick); 7] = [
        (&HTTP_STATUS, |p| p.http_status.map(f64::from)),
        (&TLS_CERT_EXPIRY, |p| p.cert_expiry),
        (&PAGE_BYTES, |p| p.page.map(|g| g.total_bytes as f64)),
        (&PAGE_RESOURCES, |p| p.page.map(|g| f64::from(g.resources))),
        (&PAGE_LOAD, |p| p.page.map(|g| g.load_seconds)),
        (&DNS_RRSIG_EXPIRY, |p| p.rrsig_expiry),
        (&DOMAIN_EXPIRY, |p| p.domain_expiry),
    ];
    for (family, pick) in latest {
        out.family(family, |s| {
            for ((c, l), p) in &probes {
                if let Some(v) = pick(p) {
                    s.add(&[c, l], v);
                }
            }
        });
    }
    write_browser_families(&probes, &counts, out);
    out.family(&CHECK_INFO, |s| {
        let mut checks: Vec<&(String, String, String)> = st.checks.iter().collect();
        checks.sort_unstable();
        for (c, kind, target) in checks {
            s.add(&[c, kind, target], 1.0);
        }
    });
    out.family(&CHECK_CANARY, |s| {
        let mut canaries: Vec<&String> = st.canaries.iter().collect();
        canaries.sort_unstable();
        for c in canaries {
            s.add(&[c], 1.0);
        }
    });
}

/// The browser families. The JS error counter is written only for
/// (check, location) pairs whose latest result is a browser probe.
fn write_browser_families(probes: &ProbeRows<'_>, counts: &CountRows<'_>, out: &mut Exposition) {
    let browser = || {
        probes
            .iter()
            .filter_map(|((c, l), p)| p.browser.as_ref().map(|b| (c, l, b)))
    };
    // Most collectors run no browser checks: skip the search per count below.
    if browser().next().is_none() {
        return;
    }
    out.family(&BROWSER_WEB_VITAL, |s| {
        for (c, l, b) in browser() {
            for (metric, v) in BrowserDetail::VITALS.iter().zip(b.vitals) {
                if let Some(v) = v {
                    s.add(&[c, l, metric], v);
                }
            }
        }
    });
    out.family(&BROWSER_REQUESTS, |s| {
        for (c, l, b) in browser() {
            s.add(&[c, l], f64::from(b.requests));
        }
    });
    out.family(&BROWSER_FAILED_REQUESTS, |s| {
        for (c, l, b) in browser() {
            s.add(&[c, l], f64::from(b.failed_requests));
        }
    });
    out.family(&BROWSER_JS_ERRORS, |s| {
        // Both lists are sorted by key: a binary search per count.
        for (key, n) in counts {
            let is_browser = probes
                .binary_search_by(|(k, _)| (*k).cmp(key))
                .is_ok_and(|i| probes[i].1.browser.is_some());
            if is_browser {
                s.add(&[&key.0, &key.1], n.js_errors as f64);
            }
        }
    });
}

/// The fleet families: agents, ingest refusals, the build.
pub(super) fn write_fleet_families(st: &State, out: &mut Exposition) {
    out.family(&AGENT_LAST_SEEN, |s| {
        for (id, a) in &st.agents {
            if let Some(t) = a.last_seen {
                s.add(&[id, &a.location], t);
            }
        }
    });
    type Pick = fn(&super::state::AgentState) -> f64;
    let per_agent: [(&'static Family, Pick); 4] = [
        (&INGEST_RESULTS, |a| a.results as f64),
        (&INGEST_DUPLICATES, |a| a.duplicates as f64),
        (&AGENT_MISSING_RESULTS, |a| {
            a.max_seq.saturating_sub(a.results) as f64
        }),
        (&INGEST_CONFLICTS, |a| a.conflicts as f64),
    ];
    for (family, pick) in per_agent {
        out.family(family, |s| {
            for (id, a) in &st.agents {
                s.add(&[id], pick(a));
            }
        });
    }
    out.family(&INGEST_REJECTED, |s| {
        for (reason, n) in &st.rejected {
            s.add(&[reason], *n as f64);
        }
    });
    out.family(&BUILD_INFO, |s| s.add(&[env!("CARGO_PKG_VERSION")], 1.0));
}
