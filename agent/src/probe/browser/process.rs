//! Starting Chromium, measuring it and making sure it dies with the agent.
//!
//! Chromium is started headless with `--remote-debugging-pipe` (see
//! [`super::cdp`]): no TCP port for any local user to attach to, nothing to
//! discover. `/bin/sh` moves the pipe onto the fds Chromium expects (3 and 4),
//! then `setpriv --pdeathsig KILL` (util-linux) makes the kernel kill the
//! browser when the agent's thread that started it dies, SIGKILL included:
//! the workspace forbids `unsafe`, so no `pre_exec` of our own. The browser
//! leads its own process group, which [`BrowserProcess`]'s `Drop` kills
//! whole; and Chromium also exits by itself when the pipe closes (the agent's
//! fds close when it dies). Three independent ways, so that no renderer
//! outlives the agent.
//!
//! Nor does a dead one linger: the agent is its descendants' subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so a Chromium helper whose parent died is
//! handed to the agent, not to PID 1, and the agent reaps it
//! ([`reap_group`]) when a browser is replaced and before it exits (PID 1
//! of a container or VM may reap late, and `ps` shows `<defunct>` Chromium
//! processes meanwhile). Chromium's crash handler (`chrome_crashpad_handler`,
//! which headless Chromium starts whatever the flags, and which Chromium
//! cannot run without) lives in a session of its own, outside the group; it
//! exits when its browser is gone, and is reaped the same way.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::cdp::Cdp;
use crate::config::BrowserSettings;

/// Stderr lines kept for the message when the browser fails to start.
const STDERR_LINES: usize = 20;
/// How long a fresh browser gets to answer its first command (a cold
/// start on a loaded two-core machine takes seconds).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The viewport every probe renders into (CSS pixels). Layout shift scores
/// depend on it, so it is fixed rather than whatever the window happens to be.
pub const VIEWPORT: (u32, u32) = (1280, 800);

/// Why the browser could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    #[error(
        "Chromium not found: {0} (install the Debian `chromium` package or set [agent] chromium_path)"
    )]
    NotFound(String),
    #[error("cannot start Chromium {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("Chromium did not come up: {why}{stderr}")]
    NoAnswer { why: String, stderr: String },
    #[error("cannot create Chromium's profile directory: {0}")]
    Profile(std::io::Error),
}

/// A running Chromium and the connection to it. Dropping it kills the
/// browser's whole process group and removes its profile.
pub struct BrowserProcess {
    child: Child,
    pgid: Option<Pid>,
    pub cdp: Arc<Cdp>,
    // Removed on drop, after the kill.
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for BrowserProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserProcess")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// Finds `path` like `execvp` would: as given when it has a slash, else on PATH.
pub fn find_binary(path: &Path) -> Result<PathBuf, LaunchError> {
    if path.components().count() > 1 {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(LaunchError::NotFound(format!(
                "{} does not exist",
                path.display()
            )))
        };
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .map(|d| d.join(path))
        .find(|p| p.is_file())
        .ok_or_else(|| LaunchError::NotFound(format!("{} is not on PATH", path.display())))
}

/// The flags every browser runs with. Background networking, component
/// updates, sync, crash reports and the like are off: the agent must send
/// nothing but the probes' own requests. Background throttling is off so
/// that two tabs at once measure like a tab in front.
fn flags(profile: &Path) -> Vec<String> {
    let mut f: Vec<String> = [
        "--headless=new",
        "--remote-debugging-pipe",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-breakpad",
        "--disable-crash-reporter",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        "--disable-renderer-backgrounding",
        "--disable-hang-monitor",
        "--disable-ipc-flooding-protection",
        "--disable-popup-blocking",
        "--disable-prompt-on-repost",
        "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,InterestFeedContentSuggestions,CalculateNativeWinOcclusion,AutofillServerCommunication,CertificateTransparencyComponentUpdater,PrivacySandboxSettings4",
        "--metrics-recording-only",
        "--no-pings",
        "--password-store=basic",
        "--use-mock-keychain",
        "--mute-audio",
        "--hide-scrollbars",
        "--disable-gpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    f.push(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1));
    f.push(format!("--user-data-dir={}", profile.display()));
    // Chromium refuses to run as root with its sandbox on; the agent runs as
    // root in containers (and on this test machine), so only then.
    if rustix::process::geteuid().is_root() {
        f.push("--no-sandbox".into());
    }
    f.push("about:blank".into());
    f
}

/// Starts Chromium and waits until it answers.
pub async fn launch(settings: &BrowserSettings) -> Result<BrowserProcess, LaunchError> {
    let binary = find_binary(&settings.chromium_path)?;
    adopt_orphans();
    let profile = tempfile::Builder::new()
        .prefix("slaprobe-chromium-")
        .tempdir()
        .map_err(LaunchError::Profile)?;
    let setpriv = find_binary(Path::new("setpriv")).ok();
    // fd 0 → 3 (Chromium reads commands), fd 1 → 4 (it writes answers); its
    // own stdin and stdout become /dev/null.
    let script = match &setpriv {
        Some(_) => r#"exec 3<&0 4>&1 </dev/null >/dev/null; exec setpriv --pdeathsig KILL -- "$@""#,
        None => r#"exec 3<&0 4>&1 </dev/null >/dev/null; exec "$@""#,
    };
    if setpriv.is_none() {
        tracing::warn!(
            "setpriv (util-linux) not found: Chromium is not tied to the agent by PDEATHSIG, only by its pipe and process group"
        );
    }
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .arg("sh")
        .arg(&binary)
        .args(flags(profile.path()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        path: binary.display().to_string(),
        source,
    })?;
    let pgid = child.id().and_then(|id| Pid::from_raw(id as i32));
    let to_browser = child.stdin.take().expect("stdin is piped");
    let from_browser = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    {
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::trace!(target: "chromium", "{line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == STDERR_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
    }
    let cdp = Cdp::start(to_browser, from_browser);
    let process = BrowserProcess {
        child,
        pgid,
        cdp,
        _profile: profile,
    };
    let answer = tokio::time::timeout(
        START_TIMEOUT,
        process.cdp.call(None, "Browser.getVersion", json!({})),
    )
    .await;
    let why = match answer {
        Ok(Ok(v)) => {
            tracing::info!(
                product = v["product"].as_str().unwrap_or("?"),
                pid = process.child.id(),
                "Chromium started"
            );
            return Ok(process);
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {}s", START_TIMEOUT.as_secs()),
    };
    // Give stderr a moment to drain so the message says what Chromium said.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines: Vec<String> = tail
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect();
    let stderr = if lines.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", lines.join(" | "))
    };
    Err(LaunchError::NoAnswer { why, stderr })
}

impl BrowserProcess {
    /// The browser's main process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// True while the main process runs and the connection is open.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.cdp.closed().is_none()
    }

    /// Memory of the browser's whole process tree (its process group), in
    /// bytes: the sum of each process's proportional set size, so pages
    /// shared between Chromium's processes count once.
    pub fn memory_bytes(&self) -> u64 {
        self.pgid
            .map(|g| group_memory(g.as_raw_nonzero().get()))
            .unwrap_or(0)
    }
}

impl BrowserProcess {
    /// Kills the browser's whole process group (it is not asked to close:
    /// nothing of a probe's is kept in the profile).
    pub fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.start_kill();
    }

    /// Whether the main process has exited and been reaped.
    pub fn reaped(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The browser's process group.
    pub fn pgid(&self) -> Option<i32> {
        self.pgid.map(|g| g.as_raw_nonzero().get())
    }
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        self.kill();
        // Reap the helpers (handed to the agent as their parents die) once
        // they are gone; tokio reaps the main process itself.
        if let (Some(pgid), Ok(rt)) = (self.pgid(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let by = tokio::time::Instant::now() + REAP_WITHIN;
                while reap_group(pgid, false) > 0 && tokio::time::Instant::now() < by {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    }
}

/// How long a replaced browser's processes are waited for, to be reaped.
pub const REAP_WITHIN: Duration = Duration::from_secs(10);

/// Makes the agent the subreaper of its descendants (once per process):
/// orphaned Chromium helpers (and the crash handler, which detaches
/// itself) become its children, which [`reap_group`] reaps, instead of
/// PID 1's.
fn adopt_orphans() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let me = rustix::process::getpid();
        if let Err(e) = rustix::process::set_child_subreaper(Some(me)) {
            tracing::warn!(
                error = %e,
                "cannot become the subreaper of Chromium's processes; PID 1 reaps them"
            );
        }
    });
}

/// One process's command name, state, parent and process group, from
/// `/proc/{pid}/stat`.
fn stat(pid: i32) -> Option<(String, char, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let comm = s[s.find('(')? + 1..s.rfind(')')?].to_string();
    // Fields after the command (which may hold spaces and parentheses):
    // state ppid pgrp ...
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((comm, state, ppid, pgrp))
}

/// Every process: (pid, command name, state, ppid, pgrp).
fn all_processes() -> Vec<(i32, String, char, i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (comm, state, ppid, pgrp) = stat(pid)?;
            Some((pid, comm, state, ppid, pgrp))
        })
        .collect()
}

/// Chromium's crash handler (its command name, cut to 15 bytes).
fn is_crash_handler(comm: &str) -> bool {
    comm.starts_with("chrome_crashpad")
}

/// Reaps the agent's exited children that are Chromium's: members of
/// process group `pgid` handed to the agent when their parent died (never
/// the group's leader, the main process, which tokio waits for), and crash
/// handlers. Returns how many of the group's members are left, running or
/// not yet reaped (the leader included). With `at_exit`, the agent's crash
/// handlers still running are killed too, and counted until reaped.
pub fn reap_group(pgid: i32, at_exit: bool) -> usize {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    let mut left = 0;
    for (pid, comm, state, ppid, pgrp) in all_processes() {
        let helper = pgrp == pgid && pid != pgid;
        let handler = ppid == me && is_crash_handler(&comm);
        let Some(p) = Pid::from_raw(pid) else {
            continue;
        };
        if at_exit && handler && state != 'Z' {
            let _ = rustix::process::kill_process(p, Signal::KILL);
        }
        let reaped = ppid == me
            && (helper || handler)
            && state == 'Z'
            && matches!(
                rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG),
                Ok(Some(_))
            );
        if (pgrp == pgid || (at_exit && handler)) && !reaped {
            left += 1;
        }
    }
    left
}

/// Processes in process group `pgid`, by reading `/proc/*/stat`; not
/// zombies (they are dead already, waiting to be reaped).
pub fn group_members(pgid: i32) -> Vec<i32> {
    all_processes()
        .into_iter()
        .filter(|(_, _, state, _, pgrp)| *pgrp == pgid && *state != 'Z')
        .map(|(pid, ..)| pid)
        .collect()
}

/// Sum of PSS (else RSS) over the members of process group `pgid`, bytes.
pub fn group_memory(pgid: i32) -> u64 {
    group_members(pgid).into_iter().map(process_memory).sum()
}

fn process_memory(pid: i32) -> u64 {
    let field = |file: &str, name: &str| -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
        let line = s.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    };
    field("smaps_rollup", "Pss:")
        .or_else(|| field("status", "VmRSS:"))
        .unwrap_or(0)
}
