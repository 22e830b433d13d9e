//! The `slaprobe-collector` binary: `check-config` on the example and on bad
//! files (exit 2 with file, key and reason, never a panic), environment
//! overrides, and `run` answering then stopping cleanly on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slaprobe-collector"));
    // The developer's own environment must not leak into the config.
    for (k, _) in std::env::vars() {
        if k.starts_with("SLAPROBE_") {
            c.env_remove(k);
        }
    }
    c
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/collector.toml")
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn example_config_checks() {
    let out = bin()
        .arg("check-config")
        .arg("--config")
        .arg(example())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "agents (2):",
        "ams-1  location ams",
        "acme-www  http  every 1m  https://www.acme.example/  locations: all",
        "acme-page  page  every 5m",
        "locations: ams",
        "hostco-acme  vendor HostCo  checks: acme-www, acme-tls",
        "max_result_age 45d",
        "reads: viewers",
        "viewers (1): prometheus",
    ] {
        assert!(stdout.contains(want), "missing {want:?}\n{}", show(&out));
    }
}

#[test]
fn environment_overrides_keys() {
    let out = bin()
        .arg("check-config")
        .arg("--config")
        .arg(example())
        .env("SLAPROBE_COLLECTOR__LISTEN", "127.0.0.1:19999")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("listen 127.0.0.1:19999"),
        "{}",
        show(&out)
    );

    let out = bin()
        .arg("check-config")
        .arg("--config")
        .arg(example())
        .env("SLAPROBE_COLLECTOR__BOGUS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("collector.bogus") && err.contains("SLAPROBE_COLLECTOR__BOGUS"),
        "{}",
        show(&out)
    );
}

#[test]
fn bad_configs_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(example()).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            example.replace("max_result_age = \"45d\"", "max_result_age = \"soon\""),
            "collector.max_result_age",
        ),
        (
            example.replace("listen = \"127.0.0.1:9464\"", "listen = \"localhost\""),
            "collector.listen",
        ),
        (
            example.replace("id = \"nyc-1\"", "id = \"ams-1\""),
            "agents[ams-1].id",
        ),
        (
            example.replace("b862f6f6690accc4", "zz"),
            "agents[nyc-1].token_sha256",
        ),
        (
            example.replace("locations = [\"ams\"]", "locations = [\"sfo\"]"),
            "checks[acme-page].locations",
        ),
        (
            example.replace("kind = \"tls\"", "kind = \"tls\"\nurl = \"https://x/\""),
            "checks[acme-tls].url",
        ),
        (
            example.replace(
                "# database_url = \"postgres://",
                "database_url = \"mysql://",
            ),
            "collector.database_url",
        ),
        (
            example.replace("[collector]", "[collector]\nlisten_on = 1"),
            "collector.listen_on",
        ),
        (
            example.replace("name = \"dnsco-acme\"", "name = \"hostco-acme\""),
            "contracts[1].name",
        ),
        ("[collector\n".to_string(), ""),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = bin()
            .arg("check-config")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "case {i}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("bad{i}.toml")),
            "case {i} names no file: {err}"
        );
        assert!(err.contains(key), "case {i} should name {key:?}: {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
    }
    let out = bin()
        .arg("check-config")
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = bin().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

/// Starts `run` on the example config (a free port, the store in `dir`),
/// with `env` set, and waits until it is ready.
fn start_collector(dir: &Path, env: &[(&str, &str)]) -> (std::process::Child, u16) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace(
            "listen = \"127.0.0.1:9464\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace("data_dir = \"./data\"", "data_dir = \"store\"");
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = bin()
        .arg("run")
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        if http_status(port, "/readyz") == Some(200) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !ready {
        let _ = child.kill();
        panic!(
            "collector not ready: {}",
            show(&child.wait_with_output().unwrap())
        );
    }
    (child, port)
}

/// Sends SIGTERM and waits for the collector to exit.
fn stop_collector(child: std::process::Child) -> Output {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    child.wait_with_output().unwrap()
}

#[test]
fn rust_log_sets_the_log_filter_like_slaprobe_log() {
    for (var, value) in [("RUST_LOG", "warn"), ("SLAPROBE_LOG", "warn")] {
        let dir = tempfile::tempdir().unwrap();
        let (child, _) = start_collector(dir.path(), &[(var, value)]);
        let out = stop_collector(child);
        assert!(out.status.success(), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("collector listening") && !stderr.contains("INFO"),
            "{var}={value} must hide the info lines: {}",
            show(&out)
        );
    }
}

#[test]
fn run_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = start_collector(dir.path(), &[]);
    assert_eq!(http_status(port, "/healthz"), Some(200));
    assert!(dir.path().join("store/slaprobe.db").exists());

    let out = stop_collector(child);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SIGTERM"),
        "{}",
        show(&out)
    );
    // The start-up log names the read mode (the example has a viewer).
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reads=\"viewers"),
        "{}",
        show(&out)
    );
}

/// A GET over a raw socket (the test needs no HTTP client for this).
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split(' ').nth(1)?.parse().ok()
}
