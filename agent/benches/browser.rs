//! What browser checks cost on this machine: CPU seconds and memory (agent
//! plus Chromium's whole process tree) per probe, Chromium's memory after
//! many probes, and how many browser checks per minute one agent sustains.
//!
//! `cargo bench -p slaprobe-agent --bench browser` (env: BROWSER_BENCH_PROBES,
//! default 200; BROWSER_BENCH_SECS, default 60; BROWSER_BENCH_CONCURRENCY,
//! default 2). The page is served on 127.0.0.1: a document, a stylesheet, a
//! script and twelve images, about 60 KB, like a small marketing page.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use slaprobe_agent::config::{BrowserSettings, Check};
use slaprobe_agent::probe::Prober;
use slaprobe_agent::probe::browser::process::group_members;
use slaprobe_tests::http_server::{Route, Routes, TestServer};
use slaprobe_wire::{CheckKind, CheckSpec};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// CPU seconds (user + system) of `pid`, plus its reaped children's when `children`.
fn cpu_of(pid: i32, children: bool) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the command: state(0) ppid pgrp session tty tpgid flags minflt
    // cminflt majflt cmajflt utime(11) stime(12) cutime(13) cstime(14).
    let mut t = f[11] + f[12];
    if children {
        t += f[13] + f[14];
    }
    t / ticks()
}

/// CPU seconds of Chromium: every live process of its group, plus what the
/// main process has reaped (renderers that came and went).
fn browser_cpu(pgid: i32) -> f64 {
    group_members(pgid)
        .into_iter()
        .map(|p| cpu_of(p, p == pgid))
        .sum()
}

fn self_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1 << 20) as f64)
}

fn page() -> Routes {
    let mut html = String::from(
        r#"<!doctype html><html><head><title>Acme</title><link rel="stylesheet" href="/site.css"><script src="/app.js" defer></script></head><body><header><h1>Acme widgets</h1></header><main>"#,
    );
    for i in 0..12 {
        html.push_str(&format!(
            "<article><img src=\"/img/{i}.svg\" width=\"300\" height=\"200\"><p>{}</p></article>",
            "Widgets for every purpose, delivered fast. ".repeat(8)
        ));
    }
    html.push_str("</main></body></html>");
    let mut routes = Routes::new()
        .route("/", Route::ok(html))
        .route(
            "/site.css",
            Route::status(
                200,
                "body{font:16px sans-serif;margin:0}article{display:inline-block;width:300px;margin:8px}"
                    .repeat(40),
            )
            .header("Content-Type", "text/css"),
        )
        .route(
            "/app.js",
            Route::status(
                200,
                "document.querySelectorAll('article').forEach((a,i)=>a.dataset.i=i);".repeat(30),
            )
            .header("Content-Type", "application/javascript"),
        );
    for i in 0..12u64 {
        let mut svg =
            String::from(r#"<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200">"#);
        for j in 0..60u64 {
            svg.push_str(&format!(
                r##"<rect x="{}" y="{}" width="30" height="20" fill="#{:06x}"/>"##,
                (j * 37) % 300,
                (j * 53) % 200,
                ((i + 1) * (j + 7) * 2654435761) & 0xffffff
            ));
        }
        svg.push_str("</svg>");
        routes = routes.route(
            &format!("/img/{i}.svg"),
            Route::status(200, svg).header("Content-Type", "image/svg+xml"),
        );
    }
    routes
}

fn check(url: &str) -> Check {
    let spec = CheckSpec {
        name: "bench".into(),
        kind: CheckKind::Browser,
        url: Some(url.into()),
        timeout: Some("30s".into()),
        ..Default::default()
    };
    Check::from_spec(
        &spec,
        0,
        std::path::Path::new("bench.toml"),
        std::path::Path::new("/"),
    )
    .expect("valid check")
}

fn main() {
    let probes = env("BROWSER_BENCH_PROBES", 200);
    let secs = env("BROWSER_BENCH_SECS", 60);
    let concurrency = env("BROWSER_BENCH_CONCURRENCY", 2) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let srv = TestServer::http(page()).await;
        let c = check(&srv.url("/"));
        let prober = Prober::new().with_browser(BrowserSettings {
            chromium_path: PathBuf::from("chromium"),
            concurrency,
            ..Default::default()
        });

        // 1. One probe at a time: cost per probe.
        let t_start = Instant::now();
        let first = prober.probe(&c).await;
        assert!(first.success, "{first:?}");
        let start_s = t_start.elapsed().as_secs_f64();
        let (pid, _) = prober.browser().current().await.unwrap();
        let pgid = pid as i32;
        let me = std::process::id() as i32;
        let (agent0, browser0) = (cpu_of(me, false), browser_cpu(pgid));
        let t0 = Instant::now();
        let (mut peak_browser, mut peak_total) = (0u64, 0u64);
        let mut after = Vec::new();
        let mut failed = 0;
        let mut lcp = Vec::new();
        for i in 1..=probes {
            let r = prober.probe(&c).await;
            if !r.success {
                failed += 1;
            }
            if let Some(v) = r.browser.as_ref().and_then(|b| b.lcp) {
                lcp.push(v);
            }
            let (_, mem) = prober.browser().current().await.unwrap_or((0, 0));
            peak_browser = peak_browser.max(mem);
            peak_total = peak_total.max(mem + self_status("VmRSS:"));
            if [1, 10, 50, 100, 200, probes].contains(&i)
                && after.last().map(|(n, _)| *n) != Some(i)
            {
                after.push((i, mem));
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let agent_cpu = cpu_of(me, false) - agent0;
        let restarts = prober.browser().restarts();
        let browser_cpu_s = browser_cpu(pgid) - browser0;
        lcp.sort_by(f64::total_cmp);
        let n = probes as f64;
        println!("browser probe bench: {probes} probes of a 15-request page, one at a time");
        println!("  Chromium start + first probe: {start_s:.2} s");
        println!(
            "  per probe: {:.3} s wall, CPU {:.3} s (agent {:.4} s + Chromium {:.3} s)",
            wall / n,
            (agent_cpu + browser_cpu_s) / n,
            agent_cpu / n,
            browser_cpu_s / n
        );
        println!(
            "  peak memory: Chromium tree {} (PSS), agent + Chromium {}; agent VmHWM {}",
            mib(peak_browser),
            mib(peak_total),
            mib(self_status("VmHWM:"))
        );
        let series: Vec<String> = after
            .iter()
            .map(|(i, m)| format!("{i}: {}", mib(*m)))
            .collect();
        println!("  Chromium tree after N probes: {}", series.join(", "));
        println!(
            "  failed {failed}, restarts {restarts}, LCP median {:.3} s",
            lcp.get(lcp.len() / 2).copied().unwrap_or(f64::NAN)
        );

        // 2. Sustained: `concurrency` probes in flight for `secs`.
        let done = Arc::new(AtomicU64::new(0));
        let fails = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (prober, c, done, fails) =
                (prober.clone(), c.clone(), done.clone(), fails.clone());
            workers.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = prober.probe(&c).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    if !r.success {
                        fails.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let t1 = Instant::now();
        for w in workers {
            w.await.unwrap();
        }
        let took = t1.elapsed().as_secs_f64();
        let k = done.load(Ordering::Relaxed);
        println!(
            "sustained, browser_concurrency {concurrency}: {k} probes in {took:.1} s = {:.1} browser checks/minute ({} failed)",
            k as f64 * 60.0 / took,
            fails.load(Ordering::Relaxed)
        );
        drop(srv);
    });
}
