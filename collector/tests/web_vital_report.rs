//! A contract with Web Vitals objectives, end to end through the store and
//! the `report` CLI: the monthly report (JSON, CSV, HTML) shows the
//! nearest-rank 75th percentile of LCP and CLS over the month's successful
//! browser results, met or breached, and a daily series like latency's.
//! The month is June 2025 (past, fixed): nothing depends on today's date.

use std::process::{Command, Output};

use serde_json::Value;
use slaprobe_collector::store::{NewResult, Store};
use slaprobe_wire::{CheckKind, FailureClass};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slaprobe-collector"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SLAPROBE_") {
            c.env_remove(k);
        }
    }
    c
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

const CONFIG: &str = r#"
[collector]
data_dir = "data"

[[checks]]
name = "shop"
kind = "browser"
interval = "60s"
timeout = "30s"
url = "https://shop.acme.example/"

[[contracts]]
name = "agency-shop"
vendor = "WebAgency"
checks = ["shop"]
timezone = "UTC"
slot = "60s"
quorum = 1
objectives = [
  { kind = "availability", target = 99.0 },
  { kind = "web_vital", metric = "lcp", percentile = 75, max = "2.5s" },
  { kind = "web_vital", metric = "cls", percentile = 75, max = 0.1 },
]
"#;

fn result(seq: u64, started_ms: i64, lcp: f64, cls: f64, success: bool) -> NewResult {
    let t = jiff::Timestamp::from_millisecond(started_ms).unwrap();
    let failure = if success {
        String::new()
    } else {
        r#","failure":{"class":"page_js_error","message":"1 uncaught JavaScript error(s)"}"#.into()
    };
    let raw = format!(
        r#"{{"seq":{seq},"agent":"ams-1","location":"ams","check":"shop","kind":"browser","target":"https://shop.acme.example/","started_at":"{t}","duration_seconds":3.0,"success":{success}{failure},"browser":{{"ttfb":0.1,"fcp":0.9,"lcp":{lcp},"cls":{cls},"tbt":0.05,"dom_content_loaded":1.0,"load":1.5,"requests":10,"failed_requests":0,"transfer_bytes":1000,"js_errors":0}}}}"#
    );
    NewResult {
        seq,
        check: "shop".into(),
        location: "ams".into(),
        kind: CheckKind::Browser,
        started_at_ms: started_ms,
        success,
        class: (!success).then_some(FailureClass::PageJsError),
        raw: raw.into_bytes(),
    }
}

#[test]
fn the_monthly_report_holds_vendors_to_web_vitals() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("collector.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let data = tmp.path().join("data");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Store::open_sqlite(&data).unwrap();
    let hour = 3_600_000;
    let day1: i64 = "2025-06-10T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let day2 = day1 + 24 * hour;
    let mut rows = Vec::new();
    let mut seq = 0;
    // 10 June: 24 results, LCP 1.5 s, CLS 0.05.
    for h in 0..24 {
        seq += 1;
        rows.push(result(seq, day1 + h * hour, 1.5, 0.05, true));
    }
    // 11 June: LCP 12 × 2.0 s then 12 × 3.0 s; CLS 11 × 0.05 then 13 × 0.3.
    for h in 0..24 {
        seq += 1;
        let lcp = if h < 12 { 2.0 } else { 3.0 };
        let cls = if h < 11 { 0.05 } else { 0.3 };
        rows.push(result(seq, day2 + h * hour, lcp, cls, true));
    }
    // A failed probe's figures are no sample (as for latency).
    seq += 1;
    rows.push(result(seq, day2 + 30 * 60_000, 9.9, 0.9, false));
    rt.block_on(store.insert_batch("ams-1", "ams", day2 + 25 * hour, rows))
        .unwrap();
    rt.block_on(store.close());

    let report = |format: &str| {
        ok(bin()
            .args(["report", "--config"])
            .arg(&cfg)
            .args([
                "--contract",
                "agency-shop",
                "--month",
                "2025-06",
                "--format",
                format,
            ])
            .output()
            .unwrap())
    };
    let json: Value = serde_json::from_str(&report("json")).unwrap();
    let objectives = json["objectives"].as_array().unwrap();
    // Month: 24 × 1.5, 12 × 2.0, 12 × 3.0; rank ceil(0.75 × 48) = 36 → 2.0 s.
    let lcp = &objectives[1];
    assert_eq!(lcp["kind"], "web_vital", "{lcp}");
    assert_eq!(lcp["objective"], "web_vital_lcp_p75");
    assert_eq!(lcp["metric"], "lcp");
    assert_eq!(lcp["percentile"], 75.0);
    assert_eq!(lcp["max"], 2.5);
    assert_eq!(lcp["samples"], 48);
    assert_eq!(lcp["attained"], 2.0);
    assert_eq!(lcp["met"], true);
    // CLS: 35 × 0.05, 13 × 0.3; rank 36 → 0.3 > 0.1: breached.
    let cls = &objectives[2];
    assert_eq!(cls["objective"], "web_vital_cls_p75");
    assert_eq!(cls["attained"], 0.3, "{cls}");
    assert_eq!(cls["met"], false);
    assert_eq!(cls["samples"], 48);
    // The daily series: 11 June alone is 12 × 2.0, 12 × 3.0 → rank 18 → 3.0 s.
    let day = json["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == "2025-06-11")
        .expect("11 June");
    let daily = |label: &str| {
        day["latency"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["objective"] == label)
            .cloned()
            .unwrap_or_else(|| panic!("{label} in {day}"))
    };
    assert_eq!(daily("web_vital_lcp_p75")["value"], 3.0);
    assert_eq!(daily("web_vital_lcp_p75")["samples"], 24);
    assert_eq!(daily("web_vital_cls_p75")["value"], 0.3);
    assert_eq!(daily("web_vital_lcp_p75")["phase"], "lcp");

    let csv = report("csv");
    assert!(
        csv.lines().any(
            |l| l.starts_with("objective,web_vital_lcp_p75,web_vital,2.5,2,true,lcp,75,2.5,48")
        ),
        "{csv}"
    );
    let html = report("html");
    assert!(html.contains("Web Vitals by day"), "no chart section");
    assert!(html.contains("Web Vital: LCP, 75th percentile"));
    assert!(
        html.contains("≤ 0.1<"),
        "CLS is unitless in the verdict table"
    );
    assert!(html.contains(">0.3<"), "CLS attained, unitless");
}
