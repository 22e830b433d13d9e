//! The ops kit (dashboards/, config/prometheus.yml, config/alertmanager.yml,
//! config/grafana/) checked with the tools an ops team runs: `promtool` parses
//! and unit-tests the rules and the Prometheus config, `amtool` checks the
//! Alertmanager config and its routing, and every Grafana dashboard query is
//! parsed as PromQL by `promtool` after substituting the template variables.
//!
//! Needs `promtool` (Debian package `prometheus`) and `amtool` (Debian package
//! `prometheus-alertmanager`); `scripts/test.sh` installs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Metric names DESIGN.md §8 defines, plus Prometheus' own `up`. A dashboard
/// query may use only these, the recording rules' outputs and
/// [`PROPOSED_METRICS`].
const DESIGN_METRICS: &[&str] = &[
    "up",
    // Probes.
    "slaprobe_probe_success",
    "slaprobe_probe_duration_seconds",
    "slaprobe_probes_total",
    "slaprobe_probe_failures_total",
    "slaprobe_http_status_code",
    "slaprobe_tls_cert_expiry_timestamp_seconds",
    "slaprobe_page_bytes",
    "slaprobe_page_resources",
    "slaprobe_page_load_seconds",
    "slaprobe_check_info",
    // Browser checks (README: "Browser checks").
    "slaprobe_browser_web_vital",
    "slaprobe_browser_requests",
    "slaprobe_browser_failed_requests",
    "slaprobe_browser_js_errors_total",
    // SLA.
    "slaprobe_sla_target_ratio",
    "slaprobe_sla_attained_ratio",
    "slaprobe_sla_met",
    "slaprobe_sla_down",
    "slaprobe_sla_error_budget_remaining_ratio",
    "slaprobe_sla_credit_ratio",
    "slaprobe_sla_downtime_seconds_total",
    "slaprobe_sla_eligible_seconds_total",
    "slaprobe_sla_excluded_seconds_total",
    "slaprobe_sla_incidents_total",
    // Fleet.
    "slaprobe_agent_last_seen_timestamp_seconds",
    "slaprobe_ingest_results_total",
    "slaprobe_ingest_duplicates_total",
    "slaprobe_ingest_rejected_total",
    "slaprobe_build_info",
];

/// Metrics the dashboards use that DESIGN.md §8 does not list yet (the
/// README's metrics table does): a gauge per agent (seqs up to its highest
/// never received, the `missing` of `/api/v1/agents`), the earliest RRSIG
/// expiry of DNSSEC checks, the registration expiry of domain checks, and
/// rule 1a's location impairment and which checks are canaries (issue 17).
const PROPOSED_METRICS: &[&str] = &[
    "slaprobe_check_canary",
    "slaprobe_agent_missing_results",
    "slaprobe_dns_rrsig_expiry_timestamp_seconds",
    "slaprobe_domain_expiry_timestamp_seconds",
    "slaprobe_location_impaired",
    "slaprobe_location_impaired_seconds_total",
];

/// The dashboards every alert's `dashboard` link and the README point at.
const DASHBOARD_UIDS: &[&str] = &[
    "slaprobe-sla-overview",
    "slaprobe-site-detail",
    "slaprobe-agent-fleet",
];

/// The workspace root (this crate lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Finds `name` on PATH; fails with what to install when it is missing.
fn tool(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` not found on PATH: install the Debian package `{package}` \
             (apt-get install {package}; scripts/test.sh does it)"
        )
    })
}

fn promtool() -> PathBuf {
    tool("promtool", "prometheus")
}

fn amtool() -> PathBuf {
    tool("amtool", "prometheus-alertmanager")
}

/// Runs `program args…` in the workspace root; panics with the command and
/// its whole output unless it exits 0. Returns stdout and stderr together.
fn run_ok(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "`{} {}` failed ({}):\n{text}",
        program.display(),
        args.join(" "),
        output.status
    );
    text
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Files in `dir` (relative to the root) ending in `suffix`, sorted, as
/// root-relative paths.
fn files_in(dir: &str, suffix: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(suffix))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    files.sort();
    files
}

const RECORDING: &str = "dashboards/rules/slaprobe-recording.yml";
const ALERTS: &str = "dashboards/rules/slaprobe-alerts.yml";

/// The values of `key: value` lines (e.g. `- record: NAME`) in a YAML file.
fn yaml_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches("- ");
            line.strip_prefix(key)?
                .strip_prefix(':')
                .map(|v| v.trim().to_string())
        })
        .collect()
}

#[test]
fn rule_files_pass_promtool_check() {
    let out = run_ok(
        &promtool(),
        &["check", "rules", "--lint-fatal", RECORDING, ALERTS],
    );
    assert_eq!(out.matches("SUCCESS").count(), 2, "{out}");
}

#[test]
fn rule_unit_tests_pass() {
    let tests = files_in("dashboards/rules/tests", ".yml");
    assert!(tests.len() >= 4, "rule tests missing: {tests:?}");
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    run_ok(&promtool(), &args);

    // Every alert has a test case where it fires and one where it must not.
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in &tests {
        // alert_rule_test items start with `- eval_time:`; an item with
        // `exp_labels` expects the alert to fire.
        let mut item: Option<(String, bool)> = None;
        let mut flush = |item: &mut Option<(String, bool)>| {
            if let Some((name, fired)) = item.take() {
                if fired {
                    fires.insert(name)
                } else {
                    quiet.insert(name)
                };
            }
        };
        for line in read(file).lines().map(str::trim) {
            if line.starts_with("- eval_time:") || line.starts_with("- interval:") {
                flush(&mut item);
                item = Some((String::new(), false));
            } else if let Some(name) = line.strip_prefix("alertname:") {
                if let Some(item) = item.as_mut() {
                    item.0 = name.trim().to_string();
                }
            } else if line.starts_with("- exp_labels:")
                && let Some(item) = item.as_mut()
            {
                item.1 = true;
            }
        }
        flush(&mut item);
    }
    for alert in yaml_values(&read(ALERTS), "alert") {
        assert!(fires.contains(&alert), "no rule test where {alert} fires");
        assert!(
            quiet.contains(&alert),
            "no rule test where {alert} must stay quiet"
        );
    }
}

#[test]
fn alerts_carry_severity_and_annotations() {
    let text = read(ALERTS);
    let blocks: Vec<&str> = text.split("- alert:").skip(1).collect();
    assert!(
        blocks.len() >= 8,
        "expected the 8 slaprobe alerts, found {}",
        blocks.len()
    );
    for block in blocks {
        let name = block.lines().next().unwrap_or_default().trim();
        let severity = yaml_values(block, "severity");
        assert!(
            severity == ["page"] || severity == ["ticket"],
            "{name}: severity must be page or ticket, got {severity:?}"
        );
        for key in ["summary", "description", "dashboard"] {
            assert!(
                yaml_values(block, key).iter().any(|v| !v.is_empty()),
                "{name}: missing annotation `{key}`"
            );
        }
        let link = &yaml_values(block, "dashboard")[0];
        assert!(
            DASHBOARD_UIDS
                .iter()
                .any(|uid| link.contains(&format!("/d/{uid}"))),
            "{name}: dashboard link {link} names no slaprobe dashboard uid"
        );
    }
}

#[test]
fn example_prometheus_config_is_valid() {
    let out = run_ok(&promtool(), &["check", "config", "config/prometheus.yml"]);
    // The rule_files glob must find both rule files (and the rules pass).
    for file in ["slaprobe-recording.yml", "slaprobe-alerts.yml"] {
        assert!(
            out.contains(file),
            "config/prometheus.yml does not load {file}:\n{out}"
        );
    }
    let text = read("config/prometheus.yml");
    for needle in [
        "job_name: slaprobe-collector",
        "credentials_file: slaprobe-viewer.token",
        "127.0.0.1:9464",
        "127.0.0.1:9093",
    ] {
        assert!(
            text.contains(needle),
            "config/prometheus.yml lacks {needle}"
        );
    }
}

#[test]
fn example_alertmanager_config_is_valid_and_routes_by_severity() {
    let amtool = amtool();
    run_ok(&amtool, &["check-config", "config/alertmanager.yml"]);
    for (severity, receiver) in [("page", "page"), ("ticket", "ticket")] {
        let out = run_ok(
            &amtool,
            &[
                "config",
                "routes",
                "test",
                "--config.file=config/alertmanager.yml",
                &format!("severity={severity}"),
                "contract=hostco-acme",
            ],
        );
        // stdout is the receiver; stderr may carry a warning about the URL flag.
        assert!(
            out.lines().any(|line| line.trim() == receiver),
            "severity={severity} should route to `{receiver}`:\n{out}"
        );
    }
}

#[test]
fn grafana_provisioning_points_at_prometheus_and_dashboards() {
    let ds = read("config/grafana/provisioning/datasources/slaprobe.yml");
    for needle in [
        "apiVersion: 1",
        "type: prometheus",
        "url: http://127.0.0.1:9090",
    ] {
        assert!(
            ds.contains(needle),
            "datasource provisioning lacks `{needle}`"
        );
    }
    let dash = read("config/grafana/provisioning/dashboards/slaprobe.yml");
    for needle in ["apiVersion: 1", "type: file", "path: $SLAPROBE_DASHBOARDS"] {
        assert!(
            dash.contains(needle),
            "dashboard provisioning lacks `{needle}`"
        );
    }
    for text in [&ds, &dash] {
        assert!(!text.contains('\t'), "YAML must not be indented with tabs");
    }
}

/// One dashboard query with where it comes from.
struct Query {
    origin: String,
    expr: String,
}

/// A parsed dashboard file.
struct Dashboard {
    file: String,
    json: Value,
}

fn dashboards() -> Vec<Dashboard> {
    let files = files_in("dashboards", ".json");
    assert!(files.len() >= 3, "dashboards missing: {files:?}");
    files
        .into_iter()
        .map(|file| {
            let json = serde_json::from_str(&read(&file))
                .unwrap_or_else(|e| panic!("{file}: invalid JSON: {e}"));
            Dashboard { file, json }
        })
        .collect()
}

/// Every panel, rows' collapsed children included.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dash["panels"].as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

fn is_datasource_var(ds: &Value) -> bool {
    ds["uid"] == "${datasource}" && ds["type"] == "prometheus"
}

/// The query text of a query variable (a string, or `{ "query": … }`).
fn variable_query(var: &Value) -> &str {
    var["query"]
        .as_str()
        .or_else(|| var["query"]["query"].as_str())
        .unwrap_or_default()
}

/// Every `$name` / `${name}` in `text`, Grafana's own `$__…` excluded.
fn variables_used(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let braced = rest.starts_with('{');
        let body = if braced { &rest[1..] } else { rest };
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !name.starts_with("__") {
            used.insert(name);
        }
    }
    used
}

/// Replaces Grafana's variables by values PromQL accepts.
fn substitute(expr: &str) -> String {
    let mut out = expr
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    for name in variables_used(&out) {
        out = out
            .replace(&format!("${{{name}}}"), "dummy")
            .replace(&format!("${name}"), "dummy");
    }
    out
}

/// The identifiers of a PromQL expression outside string literals: metric
/// names, functions, label names, keywords.
fn identifiers(expr: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            let mut escaped = false;
            for d in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' && c != '`' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut id = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' {
                    id.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            ids.insert(id);
        } else if c.is_ascii_digit() {
            // A number or a duration (5m, 1e3): not an identifier.
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
            {
                chars.next();
            }
        }
    }
    ids
}

/// The metric names a query may use: DESIGN.md §8, the proposed ones, and
/// the recording rules' outputs.
fn known_metrics() -> BTreeSet<String> {
    let recorded = yaml_values(&read(RECORDING), "record");
    assert!(
        recorded.len() >= 15,
        "recording rules missing: {recorded:?}"
    );
    DESIGN_METRICS
        .iter()
        .chain(PROPOSED_METRICS)
        .map(|m| m.to_string())
        .chain(recorded)
        .collect()
}

/// Every query of every dashboard: panel targets and the selectors of the
/// `label_values(selector, label)` variables.
fn all_queries(dashboards: &[Dashboard]) -> Vec<Query> {
    let mut queries = Vec::new();
    for d in dashboards {
        for var in d.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if var["type"] != "query" {
                continue;
            }
            let query = variable_query(var);
            let selector = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .and_then(|q| q.rsplit_once(','))
                .map(|(selector, _label)| selector.trim().to_string())
                .unwrap_or_default();
            queries.push(Query {
                origin: format!("{} variable {}", d.file, var["name"]),
                expr: selector,
            });
        }
        for panel in panels(&d.json) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                queries.push(Query {
                    origin: format!(
                        "{} panel {} target {}",
                        d.file, panel["title"], target["refId"]
                    ),
                    expr: target["expr"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
    }
    queries
}

#[test]
fn dashboards_are_well_formed() {
    let dashboards = dashboards();
    let known = known_metrics();
    let mut problems = Vec::new();
    let mut uids = BTreeMap::new();
    let mut all_vars = BTreeSet::new();

    for Dashboard { file, json: d } in &dashboards {
        let mut problem = |what: String| problems.push(format!("{file}: {what}"));
        let uid = d["uid"].as_str().unwrap_or_default();
        if uid.is_empty() {
            problem("no uid".into());
        }
        if let Some(other) = uids.insert(uid.to_string(), file.clone()) {
            problem(format!("uid {uid} also used by {other}"));
        }
        if d["title"].as_str().unwrap_or_default().is_empty() {
            problem("no title".into());
        }
        if d["schemaVersion"].as_u64().unwrap_or(0) < 39 {
            problem(format!("schemaVersion {} < 39", d["schemaVersion"]));
        }

        // Template variables: a Prometheus data source picker, the rest
        // label_values() queries against it.
        let vars = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: BTreeSet<String> = vars
            .iter()
            .filter_map(|v| v["name"].as_str().map(String::from))
            .collect();
        all_vars.extend(names.iter().cloned());
        if !vars.iter().any(|v| {
            v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"
        }) {
            problem("no `datasource` variable of type datasource (query prometheus)".into());
        }
        for var in vars.iter().filter(|v| v["type"] == "query") {
            let name = &var["name"];
            if !is_datasource_var(&var["datasource"]) {
                problem(format!("variable {name} does not use ${{datasource}}"));
            }
            let query = variable_query(var);
            if !query.starts_with("label_values(") {
                problem(format!(
                    "variable {name} is not a label_values() query: {query:?}"
                ));
            }
            for used in variables_used(query) {
                if !names.contains(&used) {
                    problem(format!("variable {name} uses undefined ${used}"));
                }
            }
        }

        // Panels.
        let mut ids = BTreeSet::new();
        for panel in panels(d) {
            let title = panel["title"].as_str().unwrap_or_default();
            let mut problem =
                |what: &str| problems.push(format!("{file}: panel {title:?}: {what}"));
            if panel["type"] == "row" {
                continue;
            }
            if title.is_empty() {
                problem("no title");
            }
            if !ids.insert(panel["id"].as_u64().unwrap_or(0)) || panel["id"].as_u64().is_none() {
                problem(&format!("missing or duplicate id {}", panel["id"]));
            }
            if panel["description"].as_str().unwrap_or_default().is_empty() {
                problem("no description");
            }
            if panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                problem("no unit");
            }
            if !panel["gridPos"].is_object() {
                problem("no gridPos");
            }
            if !is_datasource_var(&panel["datasource"]) {
                problem("datasource is not ${datasource}");
            }
            if let Some(repeat) = panel["repeat"].as_str()
                && !names.contains(repeat)
            {
                problem(&format!("repeats over undefined variable {repeat}"));
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problem("no targets");
            }
            let mut refs = BTreeSet::new();
            for target in &targets {
                let expr = target["expr"].as_str().unwrap_or_default();
                if !refs.insert(target["refId"].as_str().unwrap_or_default().to_string()) {
                    problem(&format!("duplicate refId {}", target["refId"]));
                }
                if !is_datasource_var(&target["datasource"]) {
                    problem(&format!(
                        "target {} datasource is not ${{datasource}}",
                        target["refId"]
                    ));
                }
                if expr.trim().is_empty() {
                    problem(&format!("target {} has an empty expr", target["refId"]));
                }
                for used in variables_used(expr) {
                    if !names.contains(&used) {
                        problem(&format!("expr uses undefined ${used}: {expr}"));
                    }
                }
            }
        }
    }

    for query in all_queries(&dashboards) {
        for id in identifiers(&query.expr) {
            if id.starts_with("slaprobe") && !known.contains(&id) {
                problems.push(format!(
                    "{}: unknown metric {id} (not in DESIGN.md §8 or the recording rules)",
                    query.origin
                ));
            }
        }
    }
    for uid in DASHBOARD_UIDS {
        if !uids.contains_key(*uid) {
            problems.push(format!("no dashboard with uid {uid}"));
        }
    }
    for var in [
        "datasource",
        "contract",
        "vendor",
        "check",
        "location",
        "agent",
    ] {
        if !all_vars.contains(var) {
            problems.push(format!("no dashboard has a `{var}` variable"));
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard problems:\n  {}",
        problems.join("\n  ")
    );
}

/// promtool has no offline "parse this query" command, but `check rules`
/// parses every rule's expr: each dashboard query (variables substituted)
/// becomes a recording rule in a throwaway rules file.
#[test]
fn dashboard_queries_parse_as_promql() {
    let queries = all_queries(&dashboards());
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let expr = substitute(&q.expr);
            assert!(
                !expr.contains('$'),
                "{}: unsubstituted variable in {expr}",
                q.origin
            );
            serde_json::json!({ "record": format!("slaprobe_dashboard:query_{i}"), "expr": expr })
        })
        .collect();
    let file = serde_json::json!({ "groups": [{ "name": "dashboard-queries", "rules": rules }] });
    let dir = tempfile::tempdir().expect("temp dir");
    // JSON is YAML: promtool reads it as a rules file.
    let path = dir.path().join("dashboard-queries.yml");
    std::fs::write(&path, serde_json::to_vec_pretty(&file).expect("serialise"))
        .expect("write rules file");

    let output = Command::new(promtool())
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool");
    let listing: String = queries
        .iter()
        .enumerate()
        .map(|(i, q)| format!("  query_{i}: {}: {}\n", q.origin, q.expr))
        .collect();
    assert!(
        output.status.success(),
        "a dashboard query does not parse:\n{}{}\nqueries:\n{listing}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
}

#[test]
fn helpers_substitute_and_tokenise() {
    assert_eq!(
        substitute(
            r#"increase(x{contract=~"$contract",c="${check}"}[$__range]) / rate(y[$__rate_interval])"#
        ),
        r#"increase(x{contract=~"dummy",c="dummy"}[1h]) / rate(y[5m])"#
    );
    let ids = identifiers(
        r#"sum by (check) (rate(slaprobe_probes_total{class=~"slaprobe_fake"}[5m])) > 1e3"#,
    );
    assert!(ids.contains("slaprobe_probes_total") && ids.contains("check") && ids.contains("rate"));
    assert!(
        !ids.contains("slaprobe_fake"),
        "string literals are not identifiers"
    );
    assert!(
        !ids.contains("m") && !ids.contains("e3"),
        "durations and numbers are not identifiers"
    );
    assert!(identifiers("slaprobe:sla_burn_rate:rate1h").contains("slaprobe:sla_burn_rate:rate1h"));
}
