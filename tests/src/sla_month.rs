//! The month fixture the SLA end-to-end tests share (`sla_e2e`,
//! `sla_canary_e2e`): three agents in three locations, a collector config
//! written for them in a temporary directory, the real collector binary run
//! on a [`TestClock`], its offline CLI, and the README's evidence recipe
//! (`scripts/evidence_digest.py`) run against the same SQLite file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::clock::TestClock;
use crate::procs::{Proc, bin_path, free_port, http_get, post_batch, wait_for};
use crate::prom::sha256_hex;

/// The agents posting the month: `(id, location, bearer token)`.
pub const AGENTS: [(&str, &str, &str); 3] = [
    ("a-ams", "ams", "tok-ams-0123456789"),
    ("a-nyc", "nyc", "tok-nyc-0123456789"),
    ("a-sgp", "sgp", "tok-sgp-0123456789"),
];

/// One `[[checks]]` entry of the month's config: an HTTP check every 10
/// minutes on `http://<name>.example/`, a canary when `canary` is set.
#[derive(Debug, Clone, Copy)]
pub struct CheckDef {
    pub name: &'static str,
    pub canary: bool,
}

/// The collector config of a month: public reads on `port`, the store in
/// `data/`, results kept for `max_result_age`, the [`AGENTS`], `checks`,
/// then `contracts` (TOML `[[contracts]]` tables, as the test writes them).
pub fn collector_config(
    port: u16,
    max_result_age: &str,
    checks: &[CheckDef],
    contracts: &str,
) -> String {
    let mut cfg = format!(
        "[collector]\npublic_read = true\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"data\"\nmax_result_age = \"{max_result_age}\"\n"
    );
    for (id, loc, tok) in AGENTS {
        cfg += &format!(
            "[[agents]]\nid = \"{id}\"\nlocation = \"{loc}\"\ntoken_sha256 = \"{}\"\n",
            sha256_hex(tok.as_bytes())
        );
    }
    for c in checks {
        cfg += &format!(
            "[[checks]]\nname = \"{}\"\nkind = \"http\"\nurl = \"http://{}.example/\"\ninterval = \"10m\"\n{}",
            c.name,
            c.name,
            if c.canary { "canary = true\n" } else { "" }
        );
    }
    cfg + contracts
}

/// A month's files (config, store) in a temporary directory, the collector
/// binary, the clock it runs on and its port.
#[derive(Debug)]
pub struct MonthCollector {
    pub clock: TestClock,
    pub dir: TempDir,
    pub port: u16,
    /// The config text, as written to [`MonthCollector::config_path`].
    pub config_text: String,
    pub config_path: PathBuf,
    pub bin: PathBuf,
}

impl MonthCollector {
    /// Writes the config ([`collector_config`] on a free port) into a new
    /// temporary directory; starts nothing.
    pub fn new(
        clock: TestClock,
        max_result_age: &str,
        checks: &[CheckDef],
        contracts: &str,
    ) -> MonthCollector {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config_text = collector_config(port, max_result_age, checks, contracts);
        let config_path = dir.path().join("collector.toml");
        std::fs::write(&config_path, &config_text).unwrap();
        MonthCollector {
            clock,
            dir,
            port,
            config_text,
            config_path,
            bin: bin_path("slaprobe-collector"),
        }
    }

    /// The config path as a CLI argument.
    pub fn config(&self) -> &str {
        self.config_path.to_str().unwrap()
    }

    /// The SQLite file of the store.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("data/slaprobe.db")
    }

    /// Writes `text` to `name` in the month's directory; returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A command running the collector binary on the test clock.
    pub fn command(&self) -> Command {
        self.clock.command(&self.bin)
    }

    /// Runs the collector CLI with `args`, whatever its outcome.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs the collector CLI with `args`; panics with its stderr unless it
    /// succeeds, else returns its stdout.
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `slaprobe-collector evidence` for `contract` in `month` (the
    /// README's recipe, `… | sha256sum`): `(lines, SHA-256 of the output)`.
    pub fn evidence_cli(&self, contract: &str, month: &str) -> (u64, String) {
        let out = self.cli(&[
            "evidence",
            "--config",
            self.config(),
            "--contract",
            contract,
            "--month",
            month,
        ]);
        let n = out.iter().filter(|b| **b == b'\n').count() as u64;
        (n, sha256_hex(&out))
    }

    /// The README's independent recipe: `scripts/evidence_digest.py` (Python
    /// 3 with `zstandard`) reading the SQLite file itself, with `args` after
    /// `--db` (`--checks … --from-ms … --to-ms …`, or `--report FILE`):
    /// `(results, digest)`.
    pub fn evidence_script(&self, args: &[&str]) -> (u64, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/evidence_digest.py");
        let out = Command::new("/usr/bin/python3")
            .arg(script)
            .arg("--db")
            .arg(self.db())
            .args(args)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "evidence_digest.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let n: u64 = lines.next().unwrap().trim().parse().unwrap();
        (n, lines.next().unwrap().trim().to_string())
    }

    /// Starts `slaprobe-collector run` (log level info) and waits for `/readyz`.
    pub fn start(&self) -> Proc {
        let mut run = self.command();
        run.args(["run", "--config", self.config()])
            .env("SLAPROBE_LOG", "info");
        let collector = Proc::spawn("collector", run, self.dir.path());
        wait_for("collector ready", Duration::from_secs(20), || {
            http_get(self.port, "/readyz", None).filter(|(s, _)| *s == 200)
        });
        collector
    }

    /// `GET path`: `(status, JSON or null, body)`.
    pub fn get_json(&self, path: &str) -> (u16, Value, String) {
        let (status, body) =
            http_get(self.port, path, None).unwrap_or_else(|| panic!("GET {path} failed"));
        let v = serde_json::from_str(&body).unwrap_or(Value::Null);
        (status, v, body)
    }

    /// Posts `raws` as agent `agent` (an index into [`AGENTS`]), at most
    /// `per_batch` results a request; returns the batches stored (each
    /// accepted request is one batch, one feed number).
    pub fn post(&self, agent: usize, raws: &[&str], per_batch: usize) -> u64 {
        let (id, _, token) = AGENTS[agent];
        let mut batches = 0;
        for chunk in raws.chunks(per_batch) {
            post_batch(self.port, id, token, chunk);
            batches += 1;
        }
        batches
    }

    /// Waits until the SLA ledger reflects feed position `batches`; returns
    /// `/api/v1/contracts` as it then reads.
    pub fn wait_for_ledger(&self, batches: u64) -> Value {
        wait_for(
            "the SLA ledger to catch up",
            Duration::from_secs(60),
            || {
                let (s, v, _) = self.get_json("/api/v1/contracts");
                (s == 200 && v["ledger"]["cursor"].as_u64() >= Some(batches)).then_some(v)
            },
        )
    }
}

/// The live figures of contract `name` in a `/api/v1/contracts` answer.
pub fn contract_status(contracts: &Value, name: &str) -> Value {
    contracts["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no contract {name} in {contracts}"))
        .clone()
}
