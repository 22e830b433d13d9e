//! Helpers for `bench/run.sh`: the collector ingest load (closed loop and
//! fixed rate), seeding and timing `/metrics`, and the floor — a bare rustls
//! handshake plus one HTTP/1.1 exchange in a tight loop.
//!
//! Plain std threads and a minimal HTTP/1.1 client on purpose: the load
//! generator shares two cores with the collector it measures, so it must
//! cost as little as possible (results are pre-serialised; only `seq` is
//! patched per result).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slaprobe_wire::{CheckKind, Failure, FailureClass, HttpDetail, Phases, ProbeResult, Timestamp};

const USAGE: &str = "usage:
  slaprobe-bench floor https|http ADDR HOST CA_PEM SECS
  slaprobe-bench ingest ADDR SECS RATE AGENTS CHECKS     (RATE 0 = as fast as acks come; AGENTS = id:location:token,...)
  slaprobe-bench seed ADDR AGENTS CHECKS
  slaprobe-bench month ADDR AGENTS CHECKS FROM TO INTERVAL_S   (every check from every agent, FROM..TO RFC 3339, as fast as acks come)
  slaprobe-bench scrape ADDR TIMES";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = match a.as_slice() {
        ["floor", scheme, addr, host, ca, secs] => {
            floor(scheme, addr, host, ca, secs.parse().unwrap_or(5.0))
        }
        ["ingest", addr, secs, rate, agents, checks] => ingest(
            addr,
            secs.parse().unwrap_or(10.0),
            rate.parse().unwrap_or(0.0),
            &parse_agents(agents),
            checks.parse().unwrap_or(100),
        ),
        ["seed", addr, agents, checks] => seed(
            addr,
            &parse_agents(agents),
            checks.parse().unwrap_or(10_000),
        ),
        ["scrape", addr, times] => scrape(addr, times.parse().unwrap_or(5)),
        ["month", addr, agents, checks, from, to, every] => month(
            addr,
            &parse_agents(agents),
            checks.parse().unwrap_or(60),
            from,
            to,
            every.parse().unwrap_or(60),
        ),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = res {
        eprintln!("slaprobe-bench: {e}");
        std::process::exit(2);
    }
}

/// An agent the collector knows: id, location, bearer token.
#[derive(Debug, Clone)]
struct Agent {
    id: String,
    location: String,
    token: String,
}

fn parse_agents(s: &str) -> Vec<Agent> {
    s.split(',')
        .filter_map(|a| {
            let mut it = a.splitn(3, ':');
            Some(Agent {
                id: it.next()?.into(),
                location: it.next()?.into(),
                token: it.next()?.into(),
            })
        })
        .collect()
}

/// CPU seconds (user + system, all threads) this process has used so far.
fn self_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5), 11 and 12 here; USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

// ---------------------------------------------------------------- floor

fn floor(scheme: &str, addr: &str, host: &str, ca: &str, secs: f64) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let tls = scheme == "https";
    let config = if tls {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
            roots
                .add(c.map_err(|e| format!("{ca}: {e}"))?)
                .map_err(|e| format!("{ca}: {e}"))?;
        }
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        // A fresh full handshake each time, as the probes do.
        cfg.resumption = rustls::client::Resumption::disabled();
        Some(Arc::new(cfg))
    } else {
        None
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slaprobe-bench\r\nConnection: close\r\n\r\n"
    );
    let mut buf = Vec::with_capacity(4096);
    let c0 = self_cpu();
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        buf.clear();
        match &config {
            Some(cfg) => {
                let conn = rustls::ClientConnection::new(cfg.clone(), name.clone())
                    .map_err(|e| e.to_string())?;
                let mut s = rustls::StreamOwned::new(conn, tcp);
                s.write_all(req.as_bytes())
                    .map_err(|e| format!("TLS write: {e}"))?;
                match s.read_to_end(&mut buf) {
                    Ok(_) => {}
                    // nginx may close without close_notify after `Connection: close`.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                    Err(e) => return Err(format!("TLS read: {e}")),
                }
            }
            None => {
                let mut s = tcp;
                s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
                s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
            }
        }
        if !buf.starts_with(b"HTTP/1.1 200") {
            return Err(format!(
                "unexpected response: {:?}",
                String::from_utf8_lossy(&buf[..buf.len().min(80)])
            ));
        }
        n += 1;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = self_cpu() - c0;
    println!(
        "floor scheme={scheme} exchanges={n} wall_s={wall:.2} cpu_s={cpu:.2} cpu_us_per_exchange={:.1}",
        cpu * 1e6 / n.max(1) as f64
    );
    Ok(())
}

// ---------------------------------------------------------------- results

/// One result of `check` pre-serialised without its seq: `{"seq":` + N + tail.
fn template(agent: &Agent, check: &str, fail: bool) -> String {
    let r = ProbeResult {
        seq: 0,
        agent: agent.id.clone(),
        location: agent.location.clone(),
        check: check.to_string(),
        kind: CheckKind::Http,
        target: format!("https://{check}.bench.example/"),
        started_at: Timestamp::now() - Duration::from_secs(1),
        duration_seconds: 0.0123,
        success: !fail,
        failure: fail.then(|| {
            Failure::new(
                FailureClass::Timeout,
                "no response headers within the timeout (waited 10.000s)",
            )
        }),
        http: Some(HttpDetail {
            status: (!fail).then_some(200),
            version: Some("HTTP/1.1".into()),
            phases: Phases {
                resolve: Some(0.0004),
                connect: Some(0.0011),
                tls: Some(0.0042),
                processing: (!fail).then_some(0.0051),
                transfer: (!fail).then_some(0.0002),
            },
            ..Default::default()
        }),
        tls: None,
        dns: None,
        page: None,
        domain: None,
        browser: None,
    };
    let s = serde_json::to_string(&r).unwrap_or_default();
    s.strip_prefix("{\"seq\":0")
        .map(str::to_string)
        .unwrap_or(s)
}

/// A batch body of `templates` results starting at `seq`.
fn batch_body(agent: &Agent, templates: &[String], seq: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(templates.iter().map(|t| t.len() + 16).sum::<usize>() + 64);
    b.extend_from_slice(
        format!(
            "{{\"agent\":{},\"results\":[",
            serde_json::Value::from(agent.id.as_str())
        )
        .as_bytes(),
    );
    for (i, t) in templates.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(format!("{{\"seq\":{}", seq + i as u64).as_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(b"]}");
    b
}

/// A keep-alive HTTP/1.1 connection, just enough for the collector.
struct Client {
    addr: String,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str) -> Result<Self, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self {
            addr: addr.to_string(),
            r: BufReader::new(s),
        })
    }

    /// Sends a request and returns (status, body).
    fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!(
                "Authorization: Bearer {t}\r\nContent-Type: application/json\r\n"
            ));
        }
        head.push_str("\r\n");
        let s = self.r.get_mut();
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body).map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.r.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("bad status line {line:?}"))?;
        let mut len: Option<usize> = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.r.read_line(&mut line).map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().ok();
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.r.read_line(&mut line).map_err(|e| e.to_string())?;
                let n = usize::from_str_radix(line.trim(), 16)
                    .map_err(|e| format!("chunk size {line:?}: {e}"))?;
                let start = out.len();
                out.resize(start + n + 2, 0);
                self.r
                    .read_exact(&mut out[start..])
                    .map_err(|e| e.to_string())?;
                out.truncate(start + n);
                if n == 0 {
                    break;
                }
            }
        } else if let Some(n) = len {
            out.resize(n, 0);
            self.r.read_exact(&mut out).map_err(|e| e.to_string())?;
        }
        Ok((status, out))
    }
}

fn check_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i:05}")).collect()
}

// ---------------------------------------------------------------- ingest

const BATCH: usize = 1000;

/// Each agent posts batches of 1,000 from its own thread and connection,
/// back to back (RATE 0) or on a fixed schedule. Latency is measured from
/// the scheduled send time, so a stalled collector cannot hide its backlog.
fn ingest(
    addr: &str,
    secs: f64,
    rate: f64,
    agents: &[Agent],
    nchecks: usize,
) -> Result<(), String> {
    let names = check_names(nchecks);
    let per_agent_interval =
        (rate > 0.0).then(|| Duration::from_secs_f64(BATCH as f64 * agents.len() as f64 / rate));
    let n_agents = u32::try_from(agents.len()).unwrap_or(1).max(1);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let handles: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(ai, agent)| {
            let agent = agent.clone();
            let addr = addr.to_string();
            let names = names.clone();
            std::thread::spawn(move || -> Result<(Vec<f64>, u64), String> {
                let templates: Vec<String> = (0..BATCH)
                    .map(|i| template(&agent, &names[(i + ai * 7) % names.len()], i % 50 == 0))
                    .collect();
                let mut client = Client::connect(&addr)?;
                let mut lat = Vec::new();
                let mut seq = 1u64;
                let mut errors = 0u64;
                // Stagger the agents over one interval.
                let mut due =
                    t0 + per_agent_interval.map_or(Duration::ZERO, |i| i * ai as u32 / n_agents);
                while Instant::now() < end {
                    let body = batch_body(&agent, &templates, seq);
                    let start = match per_agent_interval {
                        Some(iv) => {
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                            let d = due;
                            due += iv;
                            d
                        }
                        None => Instant::now(),
                    };
                    let (status, resp) = match client.request(
                        "POST",
                        "/api/v1/results",
                        Some(&agent.token),
                        &body,
                    ) {
                        Ok(r) => r,
                        Err(e) => {
                            // The collector may close after refusing a batch: reconnect and go on.
                            errors += 1;
                            eprintln!("ingest: {e}; reconnecting");
                            client = Client::connect(&addr)?;
                            continue;
                        }
                    };
                    if status != 200 {
                        errors += 1;
                        if errors < 3 {
                            eprintln!("ingest: {status} {}", String::from_utf8_lossy(&resp));
                        }
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    lat.push(start.elapsed().as_secs_f64());
                    seq += BATCH as u64;
                }
                Ok((lat, errors))
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h
            .join()
            .map_err(|_| "ingest thread panicked".to_string())??;
        lat.extend(l);
        errors += e;
    }
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
            * 1000.0
    };
    let stored = lat.len() * BATCH;
    println!(
        "ingest agents={} target_rate={} batches={} results={stored} wall_s={wall:.1} results_per_s={:.0} ack_p50_ms={:.1} ack_p99_ms={:.1} ack_max_ms={:.1} errors={errors}",
        agents.len(),
        if rate > 0.0 {
            format!("{rate:.0}")
        } else {
            "max".into()
        },
        lat.len(),
        stored as f64 / wall,
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );
    Ok(())
}

// ---------------------------------------------------------------- a month

/// xorshift64*: cheap, seeded varied numbers (phases, jitter, outages).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One realistic result: phases that vary like a real site's (rounded to
/// the microsecond, as agents report them), start jitter in milliseconds,
/// a failure now and then and during outages.
fn month_result(
    agent: &Agent,
    check: &str,
    seq: u64,
    started: Timestamp,
    fail: bool,
    rng: &mut Rng,
) -> String {
    let us = |v: f64| (v * 1e6).round() / 1e6;
    let resolve = us(0.0002 + rng.unit() * 0.002);
    let connect = us(0.004 + rng.unit() * 0.03);
    let tls = us(0.01 + rng.unit() * 0.05);
    let processing = us(0.05 + rng.unit() * rng.unit() * 0.6);
    let transfer = us(0.0005 + rng.unit() * 0.02);
    let r = ProbeResult {
        seq,
        agent: agent.id.clone(),
        location: agent.location.clone(),
        check: check.to_string(),
        kind: CheckKind::Http,
        target: format!("https://{check}.bench.example/"),
        started_at: started,
        duration_seconds: if fail {
            10.0
        } else {
            us(resolve + connect + tls + processing + transfer)
        },
        success: !fail,
        failure: fail.then(|| {
            Failure::new(
                FailureClass::Timeout,
                "no response headers within the timeout (waited 10.000s)",
            )
        }),
        http: Some(HttpDetail {
            status: (!fail).then_some(200),
            version: Some("HTTP/1.1".into()),
            body_bytes: if fail { 0 } else { 27_000 + (rng.next() % 64) },
            phases: Phases {
                resolve: Some(resolve),
                connect: Some(connect),
                tls: Some(tls),
                processing: (!fail).then_some(processing),
                transfer: (!fail).then_some(transfer),
            },
            ..Default::default()
        }),
        tls: None,
        dns: None,
        page: None,
        domain: None,
        browser: None,
    };
    serde_json::to_string(&r).unwrap_or_default()
}

/// Every check from every agent every `every` seconds from `from` to `to`,
/// posted in time order by one thread per agent, batches of 1,000.
fn month(
    addr: &str,
    agents: &[Agent],
    nchecks: usize,
    from: &str,
    to: &str,
    every: i64,
) -> Result<(), String> {
    let from: Timestamp = from.parse().map_err(|e| format!("FROM: {e}"))?;
    let to: Timestamp = to.parse().map_err(|e| format!("TO: {e}"))?;
    let names = Arc::new(check_names(nchecks));
    // Seqs count from the start of FROM's UTC month, so a run that goes on
    // where another stopped (the wide scenario's day 2) continues its seqs.
    let month_start: Timestamp = format!("{}-01T00:00:00Z", &from.to_string()[..7])
        .parse()
        .map_err(|e| format!("FROM: {e}"))?;
    let first_seq =
        1 + ((from.as_second() - month_start.as_second()) / every) as u64 * nchecks as u64;
    let t0 = Instant::now();
    let handles: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(ai, agent)| {
            let (agent, addr, names) = (agent.clone(), addr.to_string(), names.clone());
            std::thread::spawn(move || -> Result<u64, String> {
                let mut rng = Rng(0x9e37_79b9 + ai as u64);
                let mut client = Client::connect(&addr)?;
                let mut seq = first_seq;
                let mut batch: Vec<String> = Vec::with_capacity(BATCH);
                let mut sent = 0u64;
                let mut t = from;
                let post = |batch: &mut Vec<String>, client: &mut Client| -> Result<(), String> {
                    let body = format!(
                        "{{\"agent\":{},\"results\":[{}]}}",
                        serde_json::Value::from(agent.id.as_str()),
                        batch.join(",")
                    );
                    loop {
                        match client.request(
                            "POST",
                            "/api/v1/results",
                            Some(&agent.token),
                            body.as_bytes(),
                        ) {
                            Ok((200, _)) => break,
                            Ok((429 | 503, _)) => std::thread::sleep(Duration::from_millis(20)),
                            Ok((s, b)) => {
                                return Err(format!("{s} {}", String::from_utf8_lossy(&b)));
                            }
                            Err(_) => *client = Client::connect(&addr)?,
                        }
                    }
                    batch.clear();
                    Ok(())
                };
                let mut minute = 0u64;
                while t < to {
                    // An outage of site k now and then, seen from every agent.
                    let outage = (minute / 97) % 13;
                    for (k, name) in names.iter().enumerate() {
                        let jitter = Duration::from_millis(
                            (k as u64 * 997 + ai as u64 * 131) % (every as u64 * 1000),
                        );
                        let started = t + jitter + Duration::from_micros(rng.next() % 1000);
                        let fail = (k as u64 % 13 == outage && minute % 97 < 3)
                            || rng.next().is_multiple_of(500);
                        batch.push(month_result(&agent, name, seq, started, fail, &mut rng));
                        seq += 1;
                        if batch.len() == BATCH {
                            post(&mut batch, &mut client)?;
                            sent += BATCH as u64;
                        }
                    }
                    t += Duration::from_secs(every as u64);
                    minute += 1;
                }
                if !batch.is_empty() {
                    sent += batch.len() as u64;
                    post(&mut batch, &mut client)?;
                }
                Ok(sent)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h
            .join()
            .map_err(|_| "month thread panicked".to_string())??;
    }
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "month results={total} wall_s={wall:.1} results_per_s={:.0}",
        total as f64 / wall
    );
    Ok(())
}

// ---------------------------------------------------------------- /metrics

/// One result per check per agent (1 in 50 failing), so `/metrics` has every
/// (check, location) series.
fn seed(addr: &str, agents: &[Agent], nchecks: usize) -> Result<(), String> {
    let names = check_names(nchecks);
    let t0 = Instant::now();
    let mut total = 0;
    for agent in agents {
        let mut client = Client::connect(addr)?;
        let mut seq = 1u64;
        for chunk in names.chunks(BATCH) {
            let templates: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(i, n)| template(agent, n, i % 50 == 0))
                .collect();
            let (status, resp) = client.request(
                "POST",
                "/api/v1/results",
                Some(&agent.token),
                &batch_body(agent, &templates, seq),
            )?;
            if status != 200 {
                return Err(format!(
                    "seeding: {status} {}",
                    String::from_utf8_lossy(&resp)
                ));
            }
            seq += chunk.len() as u64;
            total += chunk.len();
        }
    }
    println!(
        "seed results={total} secs={:.1}",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Times full `GET /metrics` responses (new connection each, body read).
fn scrape(addr: &str, times: usize) -> Result<(), String> {
    let mut ms = Vec::new();
    let mut bytes = 0;
    for _ in 0..times {
        let t0 = Instant::now();
        let mut c = Client::connect(addr)?;
        let (status, body) = c.request("GET", "/metrics", None, b"")?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        if status != 200 {
            return Err(format!("/metrics answered {status}"));
        }
        bytes = body.len();
    }
    let lines = ms.len();
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "scrape times={lines} bytes={bytes} median_ms={:.1} max_ms={:.1} all_ms={:?}",
        sorted[lines / 2],
        sorted[lines - 1],
        ms.iter()
            .map(|m| (m * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    Ok(())
}
