//! The agent binary with a browser check: `probe` prints the browser
//! section, and Chromium's processes never outlive the agent, whether it
//! exits normally or is SIGKILLed in the middle of `run`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slaprobe_tests::http_server::{Route, Routes, TestServer};
use slaprobe_tests::wait::wait_for_state;

/// Pids whose command line mentions `needle` (Chromium's processes carry
/// their profile directory, which lives under the agent's TMPDIR).
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if cmd.contains(needle) && !zombie {
            out.push((pid, cmd));
        }
    }
    out
}

fn wait_until_gone(needle: &str, within: Duration) {
    wait_for_state(
        "the browser processes to go",
        within,
        Duration::from_millis(100),
        || {
            let left = processes_mentioning(needle);
            if left.is_empty() { Ok(()) } else { Err(left) }
        },
    );
}

/// An agent config with one browser check of `url`, probing every
/// `timeout` (and given that long).
fn config(dir: &Path, url: &str, extra: &str, timeout: &str) -> std::path::PathBuf {
    let p = dir.join("agent.toml");
    std::fs::write(
        &p,
        format!(
            r#"[agent]
id = "b-1"
location = "lab"
{extra}
[[checks]]
name = "site-browser"
kind = "browser"
url = "{url}"
interval = "{timeout}"
timeout = "{timeout}"
selector_present = "h1"
"#
        ),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_prints_the_browser_section_and_leaves_no_browser() {
    let srv = TestServer::http(Routes::new().route("/", Route::ok("<h1>Shop</h1>"))).await;
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // The probe's time includes Chromium's start-up: 3 s was enough on an
    // idle machine but not on a loaded 2-core one (Target.createBrowserContext
    // got no answer in time); the test is about the output and the cleanup.
    let cfg = config(dir.path(), &srv.url("/"), "", "15s");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_slaprobe-agent"))
            .args(["probe", "--config"])
            .arg(&cfg)
            .env("TMPDIR", &tmp)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(r["kind"], "browser");
    let b = &r["browser"];
    for k in [
        "ttfb",
        "fcp",
        "lcp",
        "cls",
        "tbt",
        "dom_content_loaded",
        "load",
    ] {
        assert!(b[k].is_number(), "{k}: {b}");
    }
    assert_eq!(b["requests"], 1, "{b}");
    assert_eq!(b["failed_requests"], 0, "{b}");
    assert_eq!(b["js_errors"], 0, "{b}");
    let needle = dir.path().join("tmp").display().to_string();
    wait_until_gone(&needle, Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_agent_takes_its_browser_with_it() {
    let srv = TestServer::http(Routes::new().route("/", Route::ok("<h1>Shop</h1>"))).await;
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // A collector nobody listens on: the agent spools and keeps probing.
    let dead = slaprobe_tests::http_server::refused_addr();
    let extra = format!(
        "collector = \"http://{dead}\"\ntoken = \"t\"\nspool_dir = \"{}\"\n",
        dir.path().join("spool").display()
    );
    let cfg = config(dir.path(), &srv.url("/"), &extra, "3s");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_slaprobe-agent"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(Some(agent.id() as i32));
    let needle = tmp.display().to_string();
    // Wait for the browser and for a probe to have loaded the page.
    let t0 = Instant::now();
    while srv.stats().requests().is_empty() || processes_mentioning(&needle).len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no browser probe within 60 s: {:?}",
            processes_mentioning(&needle)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = processes_mentioning(&needle).len();
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    guard.0 = None; // waited for: the pid is free for reuse
    wait_until_gone(&needle, Duration::from_secs(10));
    assert!(before >= 3, "Chromium runs several processes: {before}");
}

/// `(comm, state, ppid)` of `pid`, if it exists (zombies included).
fn proc_stat(pid: i32) -> Option<(String, char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let comm = s[s.find('(')? + 1..s.rfind(')')?].to_string();
    let mut f = s[s.rfind(')')? + 1..].split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// Every process below `root` (children, their children, ...).
fn descendants(root: i32) -> Vec<(i32, String)> {
    let all: Vec<(i32, String, i32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| proc_stat(pid).map(|(comm, _, ppid)| (pid, comm, ppid)))
        .collect();
    let mut out = Vec::new();
    let mut parents = vec![root];
    while let Some(p) = parents.pop() {
        for (pid, comm, ppid) in &all {
            if *ppid == p {
                out.push((*pid, comm.clone()));
                parents.push(*pid);
            }
        }
    }
    out
}

/// Which of `pids` still exist as a Chromium process, zombie or not (a pid
/// reused by something else meanwhile does not count).
fn still_there(pids: &[i32]) -> Vec<(i32, String, char)> {
    pids.iter()
        .filter_map(|&pid| {
            let (comm, state, _) = proc_stat(pid)?;
            comm.starts_with("chrom").then_some((pid, comm, state))
        })
        .collect()
}

/// Kills the agent if a test fails before it stopped (else it would keep
/// probing, with its browser, after the test).
struct KillOnDrop(Option<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The agent stops its Chromium and reaps every one of its processes
/// (the crash handler included) before it exits, after SIGTERM to `run` or
/// to `probe` and at the end of `probe`: none is left even as `<defunct>` for PID 1 to
/// reap (which on some machines takes seconds, during which `ps` lists
/// them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_leaves_no_browser_process_not_even_a_zombie() {
    let page = r#"<h1>Shop</h1><img src="/slow.png" width="10" height="10">"#;
    let routes = Routes::new().route("/", Route::ok(page)).route(
        "/slow.png",
        Route::status(404, "").delay(Duration::from_secs(3)),
    );
    let srv = TestServer::http(routes).await;
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let needle = tmp.display().to_string();
    let dead = slaprobe_tests::http_server::refused_addr();
    let extra = format!(
        "collector = \"http://{dead}\"\ntoken = \"t\"\nspool_dir = \"{}\"\n",
        dir.path().join("spool").display()
    );
    let cfg = config(dir.path(), &srv.url("/"), &extra, "15s");

    let slow = || {
        srv.stats()
            .requests()
            .iter()
            .filter(|q| q.target == "/slow.png")
            .count()
    };
    // (command, stopped by SIGTERM while the page loads)
    for (mode, term) in [("run", true), ("probe", false), ("probe", true)] {
        let seen = slow();
        let mut agent = Command::new(env!("CARGO_BIN_EXE_slaprobe-agent"))
            .args([mode, "--config"])
            .arg(&cfg)
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent_pid = agent.id() as i32;
        let mut guard = KillOnDrop(Some(agent_pid));
        // While the page loads (its image takes 3 s): note the browser's pids.
        let t0 = Instant::now();
        let mut pids: Vec<i32> = Vec::new();
        while slow() == seen || processes_mentioning(&needle).len() < 3 {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{mode}: no browser probe within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..5 {
            pids.extend(processes_mentioning(&needle).iter().map(|(p, _)| *p));
            // Chromium's crash handler detaches itself (its own session);
            // it is the agent's as its subreaper.
            pids.extend(
                descendants(agent_pid)
                    .into_iter()
                    .filter(|(_, comm)| comm.starts_with("chrom"))
                    .map(|(p, _)| p),
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pids.sort_unstable();
        pids.dedup();
        assert!(pids.len() >= 3, "{mode}: Chromium runs several processes");
        let status = tokio::task::spawn_blocking(move || {
            if term {
                let pid = rustix::process::Pid::from_raw(agent_pid).unwrap();
                rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
            }
            agent.wait().unwrap()
        })
        .await
        .unwrap();
        guard.0 = None; // waited for: the pid is free for reuse
        if mode == "probe" {
            // Interrupted or not, `probe` ends by itself (not by the
            // signal), having stopped its browser; 1: a check did not pass.
            assert_eq!(
                status.code(),
                Some(if term { 1 } else { 0 }),
                "probe: {status}"
            );
        }
        // Right away: the agent has exited, so whatever is left is PID 1's.
        let left = still_there(&pids);
        assert!(
            left.is_empty(),
            "{mode} ({status}): left behind {left:?} of {pids:?}"
        );
    }
}
