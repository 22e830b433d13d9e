//! The demo as a user meets it: the real `slaprobe-demo` binary with a short
//! back-fill, its status page in headless Chromium (every link followed), a
//! restart that continues where it stopped, and a run in a network namespace
//! with nothing but loopback under strace, which must show no connection to
//! any other address.
//!
//! Each demo gets its own data dir, a free collector port and its own
//! `127.<net>.*.*` vendor addresses, so the tests run side by side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEMO: &str = env!("CARGO_BIN_EXE_slaprobe-demo");

/// A running demo, its stdout lines collected on a thread.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    addr: Option<SocketAddr>,
}

/// A vendor net no other test in this run uses (second octet of 127.x).
fn net_for(test: u8) -> u8 {
    100 + test + (std::process::id() % 40) as u8 * 3
}

impl Demo {
    fn spawn(mut cmd: Command) -> Demo {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null());
        // Its own process group, so SIGINT reaches it as Ctrl-C would (and
        // reaches strace's tracee too).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("start slaprobe-demo");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("demo| {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo {
            child,
            lines: rx,
            seen: Vec::new(),
            addr: None,
        }
    }

    fn args(data: &Path, net: u8, history_days: u32) -> Vec<String> {
        vec![
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--history-days".into(),
            history_days.to_string(),
            "--net".into(),
            net.to_string(),
        ]
    }

    fn start(data: &Path, net: u8, history_days: u32) -> Demo {
        let mut cmd = Command::new(DEMO);
        cmd.args(Self::args(data, net, history_days));
        let mut d = Demo::spawn(cmd);
        d.wait_running();
        d
    }

    /// Waits for the "running" line; learns the collector's address on the way.
    fn wait_running(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the demo did not start in time; said {:?}", self.seen));
            if let Some(rest) = line.strip_prefix("slaprobe demo: collector on http://") {
                let addr = rest.split('/').next().unwrap();
                self.addr = Some(addr.parse().expect("collector address"));
            }
            let done = line.starts_with("slaprobe demo: running");
            self.seen.push(line);
            if done {
                break;
            }
        }
        assert!(
            self.addr.is_some(),
            "no collector address in {:?}",
            self.seen
        );
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    /// Ctrl-C: SIGINT to the process group; the exit status and every line said.
    fn interrupt(mut self) -> (ExitStatus, Vec<String>) {
        let pgid = self.child.id();
        let ok = Command::new("kill")
            .args(["-INT", "--", &format!("-{pgid}")])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the demo did not stop within 40 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(l);
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // The whole group: under strace the demo is the child's child.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// GET over plain HTTP/1.1: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line for {path}: {text:.200}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// Headless Chromium with no network beyond loopback and its own profile.
fn chromium(work: &Path, args: &[String]) -> String {
    let profile = work.join(format!("chromium-profile-{}", args.len()));
    let out = Command::new(std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into()))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-proxy-server",
            // Names resolve to nothing: the page must not need any.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium (apt-get install chromium)");
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hrefs(dom: &str) -> Vec<String> {
    dom.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.replace("&amp;", "&"))
        .collect()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn status_page_renders_in_chromium_and_every_link_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = Demo::start(&tmp.path().join("data"), net_for(0), 2);
    let base = demo.base();
    let addr = demo.addr.unwrap();

    let dom = chromium(tmp.path(), &["--dump-dom".into(), format!("{base}/")]);
    for contract in ["hostco-shop", "dnsco-zone", "cdnco-assets"] {
        assert!(
            dom.contains("<article class=\"card")
                && dom.contains(&format!("data-contract=\"{contract}\"")),
            "no card for {contract} in the DOM:\n{dom}"
        );
    }
    assert_eq!(dom.matches("<article class=\"card").count(), 3, "{dom}");
    for loc in ["ams", "nyc", "sgp"] {
        assert!(
            dom.contains(&format!("data-location=\"{loc}\"")),
            "no row for {loc}"
        );
    }
    assert!(dom.contains("HostCo (demo)"), "vendor names say demo");
    // Two days of history hold 48 hourly outages; November's report has some.
    let card = dom.split("data-contract=\"hostco-shop\"").nth(1).unwrap();
    let incidents: u32 = card
        .split("data-field=\"incidents\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.trim().parse().ok())
        .expect("incident count on the HostCo card");
    assert!(
        incidents >= 1,
        "HostCo shows {incidents} incidents this month"
    );

    let page = chromium(
        tmp.path(),
        &["--dump-dom".into(), format!("{base}/status/hostco-shop")],
    );
    assert!(
        page.contains("<tr class=\"incident\">"),
        "no incident on the contract page:\n{page}"
    );
    assert!(page.contains("<tr class=\"day\">"), "no daily availability");

    let mut links: Vec<String> = hrefs(&dom);
    links.extend(hrefs(&page));
    links.sort();
    links.dedup();
    assert!(links.len() >= 10, "too few links: {links:?}");
    for link in &links {
        assert!(link.starts_with('/'), "a link leaves the collector: {link}");
        let (status, _) = get(addr, link);
        assert_eq!(status, 200, "GET {link}");
    }
    // The previous month's report, as JSON: incidents and a credit.
    let prev = links
        .iter()
        .find(|l| l.starts_with("/api/v1/reports/hostco-shop/") && l.ends_with("json"))
        .unwrap();
    let (_, body) = get(addr, prev);
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        !report["incidents"].as_array().unwrap().is_empty(),
        "{prev}: {body:.400}"
    );
    assert!(report["credit_percent"].as_f64().unwrap() > 0.0, "{prev}");
    assert!(report["contract"].as_str().unwrap().contains("hostco"));

    // /metrics as Prometheus reads it.
    let (code, metrics) = get(addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("slaprobe_sla_credit_ratio{"),
        "{metrics:.300}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let shots = artifacts();
    for (name, size) in [
        ("status-phone.png", "412,1500"),
        ("status-desktop.png", "1280,1100"),
    ] {
        let png = shots.join(name);
        let _ = std::fs::remove_file(&png);
        chromium(
            tmp.path(),
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={size}"),
                format!("{base}/"),
            ],
        );
        assert!(
            png.metadata().map(|m| m.len() > 10_000).unwrap_or(false),
            "{name}"
        );
    }
    let png = shots.join("contract-phone.png");
    chromium(
        tmp.path(),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=412,1500".into(),
            format!("{base}/status/hostco-shop"),
        ],
    );
    println!("screenshots in {}", shots.display());

    let (status, said) = demo.interrupt();
    assert!(status.success(), "exit status {status:?}; said {said:?}");
    assert!(said.iter().any(|l| l.contains("stopped")), "{said:?}");
}

#[test]
fn a_restart_continues_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let net = net_for(1);
    let demo = Demo::start(&data, net, 1);
    assert!(
        demo.seen.iter().any(|l| l.contains("back-filled")),
        "{:?}",
        demo.seen
    );
    // Let the live agents deliver something.
    std::thread::sleep(Duration::from_secs(8));
    let (status, _) = demo.interrupt();
    assert!(status.success());

    let demo = Demo::start(&data, net, 1);
    // At most the minutes since the stop are filled again.
    let filled: u64 = demo
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("slaprobe demo: back-filled "))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        filled < 3 * 30,
        "the restart back-filled {filled} results again: {:?}",
        demo.seen
    );
    std::thread::sleep(Duration::from_secs(5));
    let (code, agents) = get(demo.addr.unwrap(), "/api/v1/agents");
    assert_eq!(code, 200);
    let agents: serde_json::Value = serde_json::from_str(&agents).unwrap();
    let list = agents.as_array().unwrap();
    assert_eq!(list.len(), 6, "{agents}");
    for a in list {
        assert_eq!(a["missing"], 0, "{a}");
        assert_eq!(a["duplicates"], 0, "{a}");
        assert!(a["id"].as_str().unwrap().starts_with("demo-"), "{a}");
    }
    let history: u64 = list
        .iter()
        .filter(|a| a["id"].as_str().unwrap().ends_with("-history"))
        .map(|a| a["results"].as_u64().unwrap())
        .sum();
    // One day of 3 locations: 4 checks a minute and one every 5 minutes.
    assert!(history >= 3 * 24 * (60 * 4 + 12) - 3 * 10, "{history}");
    assert!(history <= 3 * 24 * (60 * 4 + 12) + 3 * 30, "{history}");
    let (status, _) = demo.interrupt();
    assert!(status.success());
}

#[test]
fn in_a_loopback_only_network_it_connects_to_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("strace.log");
    let mut cmd = Command::new("unshare");
    cmd.args(["-rn", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .args([
            "strace",
            "-f",
            "-qq",
            "-I",
            "3",
            "-e",
            "trace=connect,sendto,sendmsg",
            "-o",
        ])
        .arg(&log)
        .arg(DEMO)
        .args(Demo::args(&tmp.path().join("data"), 1, 1));
    let mut demo = Demo::spawn(cmd);
    // The collector is in the namespace: this test cannot reach it, only watch.
    demo.wait_running();
    // Until every location has reached the vendors a few times (each check
    // fires once a minute at its own phase).
    let deadline = Instant::now() + Duration::from_secs(50);
    loop {
        let trace = std::fs::read_to_string(&log).unwrap_or_default();
        let reached = (1..=3)
            .filter(|l| trace.matches(&format!("inet_addr(\"127.1.{l}.")).count() >= 2)
            .count();
        if reached == 3 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let (status, said) = demo.interrupt();
    assert!(status.success(), "exit status {status:?}; said {said:?}");

    let trace = std::fs::read_to_string(&log).unwrap();
    let mut inet = 0;
    let mut vendors = 0;
    for line in trace.lines() {
        for part in line.split("inet_addr(\"").skip(1) {
            let ip = part.split('"').next().unwrap();
            inet += 1;
            assert!(
                ip.starts_with("127."),
                "a connection outside loopback: {line}"
            );
            if ip.starts_with("127.1.") {
                vendors += 1;
            }
        }
        if line.contains("AF_INET6") {
            assert!(
                line.contains("\"::1\""),
                "an IPv6 connection outside loopback: {line}"
            );
        }
        assert!(
            !line.contains("htons(53)"),
            "a DNS query to a resolver: {line}"
        );
        assert!(!line.contains("nscd"), "a resolver lookup via nscd: {line}");
    }
    // The history posts and the agents' shipping reuse their connections;
    // each probe opens its own.
    assert!(
        inet >= 10,
        "strace saw only {inet} inet connections:\n{trace:.2000}"
    );
    for l in 1..=3 {
        assert!(
            trace.contains(&format!("inet_addr(\"127.1.{l}.")),
            "location {l} never reached a vendor:\n{trace:.2000}"
        );
    }
    assert!(
        vendors >= 6,
        "the agents reached the vendors {vendors} times"
    );
}
