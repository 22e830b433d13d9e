//! Month bundles and retention (issue 12), on a store filled through the
//! store API with results of June 2025 and around it, compacted first:
//! `archive` writes a bundle whose manifest digests, evidence and reports
//! `verify-archive` checks offline, reproducing each report from the
//! bundle alone; the bundled JSON report equals the `report` CLI's; the
//! retention pass (as of a fixed date) drops only days whose every month is
//! archived, counts what it dropped, and the pruned month's bundle still
//! verifies and reproduces its reports; a pruned month is not archived again.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use slaprobe_collector::store::{
    LedgerConn, LedgerWrite, Maintenance, NewResult, Reader, Store, StoreAddress,
};
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
retention = "400d"

[[checks]]
name = "web"
kind = "http"
interval = "60s"
url = "https://www.acme.example/"

[[checks]]
name = "api"
kind = "http"
interval = "60s"
url = "https://api.acme.example/"

[[contracts]]
name = "hostco"
vendor = "HostCo"
checks = ["web", "api"]
timezone = "Europe/Amsterdam"
slot = "60s"
quorum = 1
objectives = [{ kind = "availability", target = 99.9 }]
credits = [{ below = 99.9, percent = 10 }]
"#;

fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn result(agent: &str, loc: &str, seq: u64, check: &str, started: i64, fail: bool) -> NewResult {
    let t = jiff::Timestamp::from_millisecond(started).unwrap();
    let raw = if fail {
        format!(
            r#"{{"seq":{seq},"agent":"{agent}","location":"{loc}","check":"{check}","kind":"http","target":"https://x/","started_at":"{t}","duration_seconds":10.0,"success":false,"failure":{{"class":"timeout","message":"waited"}}}}"#
        )
    } else {
        format!(
            r#"{{"seq":{seq},"agent":"{agent}","location":"{loc}","check":"{check}","kind":"http","target":"https://x/","started_at":"{t}","duration_seconds":0.{seq:06},"success":true,"http":{{"status":200,"phases":{{"processing":0.05}}}}}}"#
        )
    };
    NewResult {
        seq,
        check: check.into(),
        location: loc.into(),
        kind: CheckKind::Http,
        started_at_ms: started,
        success: !fail,
        class: fail.then_some(FailureClass::Timeout),
        raw: raw.into_bytes(),
    }
}

/// Hourly results of both checks from two agents over `[from, to)`.
fn fill(store: &Store, rt: &tokio::runtime::Runtime, seqs: &mut [u64; 2], from: i64, to: i64) {
    for (a, (agent, loc)) in [("ams-1", "ams"), ("nyc-1", "nyc")].iter().enumerate() {
        let mut rows = Vec::new();
        let mut t = from;
        while t < to {
            for check in ["web", "api"] {
                seqs[a] += 1;
                let fail = seqs[a].is_multiple_of(97);
                rows.push(result(
                    agent,
                    loc,
                    seqs[a],
                    check,
                    t + a as i64 * 1000,
                    fail,
                ));
            }
            t += 3_600_000;
        }
        for chunk in rows.chunks(500) {
            rt.block_on(store.insert_batch(agent, loc, to + 5_000, chunk.to_vec()))
                .unwrap();
        }
    }
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_pruned_month_bundle_still_verifies_and_reproduces_its_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("collector.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let data = tmp.path().join("data");
    let loc = StoreAddress::Sqlite(data.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Store::open_sqlite(&data).unwrap();
    let mut seqs = [0u64; 2];
    // April (never archived), then 31 May 20:00 UTC to 3 July (June in every zone, and around it).
    fill(
        &store,
        &rt,
        &mut seqs,
        at("2025-04-10T00:00:00Z"),
        at("2025-04-12T00:00:00Z"),
    );
    fill(
        &store,
        &rt,
        &mut seqs,
        at("2025-05-31T20:00:00Z"),
        at("2025-07-03T00:00:00Z"),
    );
    rt.block_on(store.close());
    let reader = Reader::open_sqlite(&data).unwrap();
    let total = reader.count_results().unwrap();

    // Everything is consumed by the ledger and compacted.
    let head = reader.feed_head().unwrap();
    LedgerConn::open(&loc)
        .unwrap()
        .write(&LedgerWrite {
            base: reader.ledger_since(u64::MAX).unwrap().state.version,
            cursor: head,
            rows: vec![],
            reset_contracts: vec![],
        })
        .unwrap();
    let stats = Maintenance::open(&loc)
        .unwrap()
        .compact(at("2025-08-01T00:00:00Z"), 3_600_000)
        .unwrap();
    assert_eq!(stats.results, total);

    let cfg_s = cfg.to_str().unwrap();
    let report_cli = ok(bin()
        .args([
            "report",
            "--config",
            cfg_s,
            "--contract",
            "hostco",
            "--month",
            "2025-06",
        ])
        .output()
        .unwrap());
    let bundle = tmp.path().join("bundle-2025-06");
    ok(bin()
        .args([
            "archive", "--config", cfg_s, "--month", "2025-06", "--output",
        ])
        .arg(&bundle)
        .output()
        .unwrap());
    let m = manifest(&bundle);
    // The span: 1 June 00:00 at UTC+14 (31 May 10:00 UTC) to 1 July 00:00 at UTC-12 (1 July 12:00 UTC).
    let (from, to) = (at("2025-05-31T10:00:00Z"), at("2025-07-01T12:00:00Z"));
    let in_span = reader
        .results_between(&["api".into(), "web".into()], from, to)
        .unwrap()
        .len() as u64;
    assert_eq!(m["results"]["results"].as_u64(), Some(in_span));
    assert_eq!(m["span"]["from_ms"].as_i64(), Some(from));
    let bundled_report = std::fs::read_to_string(bundle.join("reports/hostco.json")).unwrap();
    assert_eq!(
        bundled_report, report_cli,
        "the bundle holds the CLI's report"
    );
    let report: Value = serde_json::from_str(&bundled_report).unwrap();
    assert_eq!(
        m["contracts"][0]["evidence"]["sha256"],
        report["evidence"]["sha256"]
    );
    for ext in ["csv", "html"] {
        assert!(bundle.join(format!("reports/hostco.{ext}")).exists());
    }
    let out = ok(bin()
        .arg("verify-archive")
        .arg(&bundle)
        .args(["--config", cfg_s])
        .output()
        .unwrap());
    assert!(out.contains("reports reproduced: hostco"), "{out}");

    // Retention as of 1 September 2026, 400 days: everything before 28 July 2025 is old.
    let archives = reader.archives().unwrap();
    assert_eq!(archives.len(), 1);
    let mut maint = Maintenance::open(&loc).unwrap();
    let now = at("2026-09-01T00:00:00Z");
    let dropped =
        slaprobe_collector::archive::prune_expired(&mut maint, &archives, now, 400 * 86_400_000)
            .unwrap();
    let count = |a: &str, b: &str| {
        reader
            .results_between(&["api".into(), "web".into()], at(a), at(b))
            .unwrap()
            .len() as u64
    };
    // June 2..29 (UTC) only: 1 June touches May's span, 30 June July's, and
    // neither May nor July is archived; April was never archived.
    assert_eq!(count("2025-06-02T00:00:00Z", "2025-06-30T00:00:00Z"), 0);
    assert!(dropped > 0);
    assert_eq!(reader.count_results().unwrap(), total - dropped);
    assert_eq!(
        count("2025-04-10T00:00:00Z", "2025-04-12T00:00:00Z"),
        2 * 2 * 48
    );
    assert_eq!(
        count("2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z"),
        2 * 2 * 24
    );
    assert_eq!(
        count("2025-06-30T00:00:00Z", "2025-07-01T00:00:00Z"),
        2 * 2 * 24
    );
    assert_eq!(dropped, 2 * 2 * 24 * 28);
    assert_eq!(reader.archives().unwrap()[0].pruned, dropped);
    // Dedup survives: a dropped result sent again is a duplicate.
    let store = Store::open_sqlite(&data).unwrap();
    let again = rt
        .block_on(store.insert_batch(
            "ams-1",
            "ams",
            now,
            vec![result(
                "ams-1",
                "ams",
                200,
                "web",
                at("2025-06-05T00:00:00Z"),
                false,
            )],
        ))
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
    rt.block_on(store.close());

    // The store's report has changed; the bundle still verifies and reproduces its own.
    let out = ok(bin()
        .arg("verify-archive")
        .arg(&bundle)
        .args(["--config", cfg_s])
        .output()
        .unwrap());
    assert!(out.contains("reports reproduced: hostco"), "{out}");
    let after = ok(bin()
        .args([
            "report",
            "--config",
            cfg_s,
            "--contract",
            "hostco",
            "--month",
            "2025-06",
        ])
        .output()
        .unwrap());
    assert_ne!(after, report_cli);
    // A tampered bundle does not verify.
    let evidence = bundle.join("evidence/hostco.jsonl.zst");
    let mut bytes = std::fs::read(&evidence).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&evidence, bytes).unwrap();
    let bad = bin().arg("verify-archive").arg(&bundle).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    // A pruned month is not archived again (its first bundle stands).
    let again = bin()
        .args([
            "archive", "--config", cfg_s, "--month", "2025-06", "--output",
        ])
        .arg(tmp.path().join("again"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("dropped by retention"));
}
