//! Real processes for end-to-end tests: the built `slaprobe-agent` and
//! `slaprobe-collector` binaries, started with their logs captured, stopped
//! with SIGTERM or killed with SIGKILL, and always killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary in the same target dir as the running test
/// (`scripts/test.sh` builds them first with `cargo build --workspace --bins`).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not found; build the binaries first: cargo build --workspace --bins (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind :0")
        .local_addr()
        .expect("local_addr")
        .port()
}

/// A child process whose stdout/stderr go to a log file; killed on drop.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `bin` with `args`, logging to `<log_dir>/<name>.log` (appended,
    /// so restarts of the same process share one log).
    pub fn start(
        name: &str,
        bin: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log_dir: &Path,
    ) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Proc::spawn(name, cmd, log_dir)
    }

    /// Starts a prepared command (e.g. from [`crate::clock::TestClock::command`]),
    /// logging to `<log_dir>/<name>.log` (appended) like [`Proc::start`].
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open log");
        let err = file.try_clone().expect("clone log handle");
        cmd.stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Sends a signal (`TERM`, `KILL`, …) with kill(1).
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// SIGTERM, then wait up to `grace` for exit; SIGKILL after that. Returns
    /// the exit code if the process exited by itself.
    pub fn stop(&mut self, grace: Duration) -> Option<i32> {
        self.signal("TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory (VmHWM) in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- log of {} -----\n{}\n----- end of {} -----",
                self.name,
                self.log_text(),
                self.name
            );
        }
    }
}

pub use crate::wait::{wait_for, wait_for_every};

/// A blocking HTTP GET on 127.0.0.1 (std only): `(status, body)`.
pub fn http_get(port: u16, path: &str, bearer: Option<&str>) -> Option<(u16, String)> {
    http_request(port, "GET", path, bearer, &[], &[])
}

/// Posts one batch of raw result JSON as agent `id` (bearer `token`) to the
/// collector on `port`, retrying overload answers (429, 503) as an agent
/// would, for up to 60 s; panics unless it is stored (200).
pub fn post_batch(port: u16, id: &str, token: &str, raws: &[&str]) {
    let body = format!(r#"{{"agent":"{id}","results":[{}]}}"#, raws.join(","));
    let (status, text) = wait_for_every(
        "ingest to accept a batch",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            let r = http_request(
                port,
                "POST",
                "/api/v1/results",
                Some(token),
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )?;
            (r.0 != 429 && r.0 != 503).then_some(r)
        },
    );
    assert_eq!(status, 200, "ingest refused a batch: {text}");
}

/// A blocking HTTP/1.1 request on 127.0.0.1 (std only, `Connection: close`).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = bearer {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
