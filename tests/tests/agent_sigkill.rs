//! The real agent SIGKILLed again and again while acks land: it never reuses
//! a seq. A reused seq would carry other bytes than the one the collector
//! holds, which the collector answers with 409 and counts in
//! `slaprobe_ingest_conflicts_total`; so after every round that counter is 0,
//! and at the end nothing is missing (every seq up to the highest arrived).

use std::path::Path;
use std::time::Duration;

use slaprobe_tests::http_server::refused_addr;
use slaprobe_tests::procs::{Proc, bin_path, free_port, http_get, wait_for};
use slaprobe_tests::prom::{sha256_hex, value};

const TOKEN: &str = "sigkill-token-0123456789";
const KILLS: usize = 12;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn agent_row(port: u16) -> Option<serde_json::Value> {
    let (s, body) = http_get(port, "/api/v1/agents", None)?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let row = v.as_array()?.iter().find(|a| a["id"] == "ams-1")?.clone();
    (s == 200).then_some(row)
}

fn conflicts(port: u16) -> f64 {
    let (_, text) = http_get(port, "/metrics", None).unwrap();
    value(
        &text,
        "slaprobe_ingest_conflicts_total",
        &[("agent", "ams-1")],
    )
    .unwrap_or(0.0)
}

#[test]
fn a_sigkilled_agent_never_reuses_a_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let dead = refused_addr();
    let port = free_port();
    // 40 checks a second against a closed port: fast results, many acks.
    let checks: String = (0..40)
        .map(|i| {
            format!(
                "[[checks]]\nname = \"c{i}\"\nkind = \"http\"\ninterval = \"1s\"\ntimeout = \"1s\"\nurl = \"http://{dead}/{i}\"\n\n"
            )
        })
        .collect();
    let collector_cfg = write(
        dir,
        "collector.toml",
        &format!(
            "[collector]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{data}\"\npublic_read = true\n\n[[agents]]\nid = \"ams-1\"\nlocation = \"ams\"\ntoken_sha256 = \"{hash}\"\n\n{checks}",
            data = dir.join("data").display(),
            hash = sha256_hex(TOKEN),
        ),
    );
    let agent_cfg = write(
        dir,
        "agent.toml",
        &format!(
            "[agent]\nid = \"ams-1\"\nlocation = \"ams\"\ncollector = \"http://127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\nspool_dir = \"{spool}\"\nbatch_max = 7\nbatch_interval = \"50ms\"\nchecks_refresh = \"1s\"\n",
            spool = dir.join("spool").display()
        ),
    );
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let _collector = Proc::start(
        "collector",
        &bin_path("slaprobe-collector"),
        &["run", "--config", &collector_cfg],
        &[],
        &logs,
    );
    wait_for("collector /readyz", Duration::from_secs(30), || {
        http_get(port, "/readyz", None).filter(|(s, _)| *s == 200)
    });

    let start = |logs: &Path| {
        Proc::start(
            "agent",
            &bin_path("slaprobe-agent"),
            &["run", "--config", &agent_cfg],
            &[],
            logs,
        )
    };
    let mut stored_before = 0;
    for round in 0..KILLS {
        let mut agent = start(&logs);
        // Let acks land, then kill at an arbitrary moment.
        let stored = wait_for("results acked", Duration::from_secs(30), || {
            let n = agent_row(port)?["results"].as_u64()?;
            (n > stored_before).then_some(n)
        });
        std::thread::sleep(Duration::from_millis(137 * (round as u64 % 7) + 50));
        agent.kill();
        stored_before = stored;
        assert_eq!(conflicts(port), 0.0, "round {round}: a seq was reused");
    }
    // A last clean run delivers what the kills left in the spool.
    let mut agent = start(&logs);
    std::thread::sleep(Duration::from_secs(2));
    agent.stop(Duration::from_secs(20));
    let row = wait_for("everything delivered", Duration::from_secs(10), || {
        let row = agent_row(port)?;
        (row["missing"].as_u64()? == 0).then_some(row)
    });
    println!("after {KILLS} SIGKILLs: {row}");
    assert_eq!(conflicts(port), 0.0);
    assert_eq!(row["missing"], 0);
    assert!(row["max_seq"].as_u64().unwrap() > 100, "{row}");
    let log = std::fs::read_to_string(logs.join("agent.log")).unwrap();
    // The agent's own words on a 409 (a bare "409" also matches timestamps).
    assert!(
        !log.contains("seq conflict") && !log.contains("collector holds different results"),
        "no conflict seen by the agent"
    );
}
