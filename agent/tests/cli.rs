//! The `slaprobe-agent` binary as a user meets it: exit codes, error
//! messages, one JSON result per line, and every example in `config/`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slaprobe-agent"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run slaprobe-agent");
    eprintln!(
        "$ slaprobe-agent {}\nexit {:?}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A one-request-at-a-time HTTP server answering 200 "hello" (std only, so
/// this test does not depend on the fixtures crate).
fn tiny_http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    port
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_agent_example_in_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "toml")
            && text.lines().any(|l| l.trim() == "[agent]")
        {
            let out = agent(&["check-config", "--config", path.to_str().unwrap()], &[]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{} must be valid",
                path.display()
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
            checked += 1;
        }
    }
    assert!(checked >= 1, "no agent config found in {}", dir.display());
}

#[test]
fn config_errors_name_file_key_and_problem_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "[agent]\nid = \"a\"\nlocation = \"b\"\nbogus = 1\n",
            "unknown key",
            &["agent.bogus", "unknown field"],
        ),
        (
            "[agent]\nid = \"a\"\n",
            "missing location",
            &["agent.location", "missing"],
        ),
        (
            "[agent]\nid = \"a\"\nlocation = \"b\"\n[[checks]]\nname = \"w\"\nkind = \"http\"\nurl = \"https://x/\"\ntimeout = \"forever\"\n",
            "bad duration",
            &["checks[w].timeout", "invalid duration"],
        ),
        (
            "[agent]\nid = \"a\"\nlocation = \"b\"\n[[checks]]\nname = \"w\"\nkind = \"dns\"\nquery = \"x.example\"\nurl = \"https://x/\"\n",
            "key of another kind",
            &["checks[w].url", "does not apply to a dns check"],
        ),
        (
            "[agent]\nid = \"a\"\nlocation = \"b\"\n[[checks]]\nname = \"w\"\nkind = \"tls\"\nhost = \"x\"\n[[checks]]\nname = \"w\"\nkind = \"tls\"\nhost = \"y\"\n",
            "duplicate name",
            &["checks[w].name", "duplicate"],
        ),
        ("[agent\nid = 1\n", "TOML syntax", &["config error in"]),
    ];
    for (i, (text, what, needles)) in cases.iter().enumerate() {
        let path = write(tmp.path(), &format!("bad{i}.toml"), text);
        let out = agent(&["check-config", "--config", path.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{what}");
        let err = stderr(&out);
        assert!(
            err.contains(path.to_str().unwrap()),
            "{what}: file not named: {err}"
        );
        for n in *needles {
            assert!(err.contains(n), "{what}: expected {n:?} in {err}");
        }
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    let out = agent(
        &[
            "check-config",
            "--config",
            tmp.path().join("missing.toml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"));
}

#[test]
fn environment_overrides_and_names_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "a.toml",
        "[agent]\nid = \"a\"\nlocation = \"b\"\n",
    );
    let out = agent(
        &["check-config", "--config", path.to_str().unwrap()],
        &[("SLAPROBE_AGENT__LOCATION", "\"nyc\"")],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("location nyc"));
    let out = agent(
        &["check-config", "--config", path.to_str().unwrap()],
        &[("SLAPROBE_AGENT__CONCURRENCY", "lots")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("SLAPROBE_AGENT__CONCURRENCY"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn token_is_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "a.toml",
        "[agent]\nid = \"a\"\nlocation = \"b\"\ncollector = \"http://127.0.0.1:1\"\ntoken = \"s3cr3t-t0ken\"\n",
    );
    let out = agent(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains("s3cr3t-t0ken"));
}

#[test]
fn probe_prints_json_lines_and_exit_status_says_whether_all_succeeded() {
    let tmp = tempfile::tempdir().unwrap();
    let ok_port = tiny_http_server();
    let dead_port = free_port();
    let path = write(
        tmp.path(),
        "a.toml",
        &format!(
            "[agent]\nid = \"ams-1\"\nlocation = \"ams\"\n\
             [[checks]]\nname = \"up\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{ok_port}/\"\ntimeout = \"5s\"\nbody_contains = \"hello\"\n\
             [[checks]]\nname = \"down\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{dead_port}/\"\ntimeout = \"5s\"\n"
        ),
    );
    let p = path.to_str().unwrap();

    let out = agent(&["probe", "--config", p, "--check", "up"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    let r: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(r["check"], "up");
    assert_eq!(r["agent"], "ams-1");
    assert_eq!(r["location"], "ams");
    assert_eq!(r["kind"], "http");
    assert_eq!(r["success"], true);
    assert_eq!(r["http"]["status"], 200);
    assert!(r["started_at"].as_str().unwrap().ends_with('Z'));

    let out = agent(&["probe", "--config", p], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["check"], "up");
    assert_eq!(results[1]["check"], "down");
    assert_eq!(results[1]["success"], false);
    assert_eq!(results[1]["failure"]["class"], "connect_refused");

    let out = agent(&["probe", "--config", p, "--check", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope"));
}

#[test]
fn variables_that_are_not_config_keys_do_not_break_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "a.toml",
        "[agent]\nid = \"a\"\nlocation = \"b\"\n",
    );
    let p = path.to_str().unwrap();
    let out = agent(
        &["check-config", "--config", p],
        &[("SLAPROBE_LOG", "debug"), ("SLAPROBE_SOMETHING_ELSE", "1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = agent(
        &["check-config", "--config", p],
        &[("SLAPROBE_AGENT__IDD", "\"x\"")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("idd"), "{}", stderr(&out));
}

#[test]
fn a_cleartext_remote_collector_is_warned_about_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |collector: &str, extra: &str| {
        write(
            tmp.path(),
            "a.toml",
            &format!(
                "[agent]\nid = \"a\"\nlocation = \"b\"\ncollector = \"{collector}\"\ntoken = \"t\"\n{extra}"
            ),
        )
    };
    let check = |path: &Path| agent(&["check-config", "--config", path.to_str().unwrap()], &[]);

    let out = check(&cfg("http://192.0.2.10:9464", ""));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("WARNING") && text.contains("unencrypted"),
        "{text}"
    );

    let out = check(&cfg("http://192.0.2.10:9464", "require_tls = true\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("agent.collector") && err.contains("require_tls"),
        "{err}"
    );

    for fine in [
        "http://127.0.0.1:9464",
        "http://localhost:9464",
        "http://[::1]:9464",
        "https://collector.example:9464",
    ] {
        let out = check(&cfg(fine, "require_tls = true\n"));
        assert_eq!(out.status.code(), Some(0), "{fine}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("WARNING"),
            "{fine}"
        );
    }
}
