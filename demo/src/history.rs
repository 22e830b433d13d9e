//! The back-fill: results for the past, generated from the same fault script
//! the live vendors follow, posted through the real ingest API
//! (`POST /api/v1/results`) by one history agent per location
//! (`demo-<location>-history`).
//!
//! Where to start is read from the store, so a restart fills only the gap:
//! per location, from the minute after its latest stored result (live or
//! history) — or `days` back on a fresh store — to the current minute. The
//! history agents' seqs continue after the highest the store holds for them,
//! and they never meet the live agents' seqs (other ids). Results are
//! posted oldest first, one batch per location and half day, so an
//! interrupted back-fill resumes where it stopped.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use slaprobe_collector::app::AppState;
use slaprobe_wire::{
    Batch, CheckKind, DnsDetail, DnsServerDetail, Failure, FailureClass, HttpDetail, Phases,
    ProbeResult, TlsDetail,
};

use crate::certs::{CA_NAME, DemoPki, Leaf};
use crate::config::{AgentKey, history_agent};
use crate::world::{
    Behaviour, CDN_HOST, DNS_PORT, HTTP_PORT, HTTPS_PORT, LOCATIONS, Net, SHOP_HOST, Vendor,
    behaviour, jitter,
};

/// Results posted per request: half a day of one location (~3,000 results).
const CHUNK: SignedDuration = SignedDuration::from_hours(12);

/// The back-fill of one demo start.
pub struct Backfill<'a> {
    /// The collector's ingest address.
    pub collector: SocketAddr,
    /// Every demo agent (the history agents' tokens are used).
    pub keys: &'a [AgentKey],
    pub net: Net,
    pub pki: &'a DemoPki,
    /// How far back a fresh store is filled.
    pub days: u32,
}

/// What the back-fill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filled {
    pub results: u64,
    pub batches: u64,
}

fn floor_minute(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second().div_euclid(60) * 60).unwrap_or(t)
}

impl Backfill<'_> {
    /// Fills every location's history up to `now`'s minute.
    pub async fn run(&self, state: &AppState, now: Timestamp) -> anyhow::Result<Filled> {
        let store = state.store().context("the store is not open")?.clone();
        let (latest, agents) = store
            .read(|r| Ok((r.latest()?, r.agents()?)))
            .await
            .context("reading the store")?;
        let until = floor_minute(now);
        let earliest = until - SignedDuration::from_hours(24 * i64::from(self.days));
        let mut plan = Vec::new();
        for (li, loc) in LOCATIONS.iter().enumerate() {
            let last_ms = latest
                .iter()
                .filter(|r| r.location == *loc)
                .map(|r| r.started_at_ms)
                .max();
            let from = match last_ms.and_then(|ms| Timestamp::from_millisecond(ms).ok()) {
                Some(t) => (floor_minute(t) + SignedDuration::from_secs(60)).max(earliest),
                None => earliest,
            };
            let id = history_agent(loc);
            let seq = agents.iter().find(|a| a.id == id).map_or(0, |a| a.max_seq) + 1;
            let key = self
                .keys
                .iter()
                .find(|k| k.id == id)
                .context("no key for a history agent")?;
            plan.push((li, *loc, from, seq, key));
        }
        let Some(start) = plan.iter().map(|p| p.2).min().filter(|s| *s < until) else {
            say!("slaprobe demo: history is up to date");
            return Ok(Filled::default());
        };
        let hours = until.duration_since(start).as_secs() / 3600;
        say!(
            "slaprobe demo: back-filling {} of history from {} (demo agents {}) ...",
            if hours >= 48 {
                format!("{} days", hours / 24)
            } else {
                format!("{hours} h")
            },
            start.strftime("%Y-%m-%d %H:%M UTC"),
            plan.iter()
                .map(|p| p.4.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let client = reqwest::Client::builder()
            // Never a proxy from the environment: the collector is on loopback.
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()?;
        let url = format!("http://{}/api/v1/results", self.collector);
        let generator = Generator::new(self.net, self.pki);
        let mut filled = Filled::default();
        let mut t = start;
        while t < until {
            let end = (t + CHUNK).min(until);
            for (li, loc, from, seq, key) in plan.iter_mut() {
                let lo = t.max(*from);
                if lo >= end {
                    continue;
                }
                let results = generator.results(*li, loc, &key.id, lo, end, seq);
                if results.is_empty() {
                    continue;
                }
                let n = results.len() as u64;
                let batch = Batch {
                    agent: key.id.clone(),
                    results,
                };
                let resp = client
                    .post(&url)
                    .bearer_auth(&key.token)
                    .json(&batch)
                    .send()
                    .await
                    .context("posting history")?;
                let status = resp.status();
                if !status.is_success() {
                    let body = resp.text().await.unwrap_or_default();
                    anyhow::bail!("the collector refused history: {status}: {body}");
                }
                filled.results += n;
                filled.batches += 1;
            }
            t = end;
        }
        say!(
            "slaprobe demo: back-filled {} results in {} batches",
            filled.results,
            filled.batches
        );
        Ok(filled)
    }
}

/// Builds the results a location's agent would have produced.
pub struct Generator<'a> {
    net: Net,
    pki: &'a DemoPki,
}

/// The checks of the demo (as in config.rs), in the order they are probed.
const CHECKS: [(&str, u32); 5] = [
    ("shop-https", 1),
    ("shop-http", 1),
    ("shop-dns", 1),
    ("cdn-https", 1),
    ("cdn-cert", 5),
];

impl<'a> Generator<'a> {
    pub fn new(net: Net, pki: &'a DemoPki) -> Self {
        Generator { net, pki }
    }

    /// Every result of `location` started in `[from, to)` (whole minutes),
    /// numbered from `*seq` on.
    pub fn results(
        &self,
        li: usize,
        location: &str,
        agent: &str,
        from: Timestamp,
        to: Timestamp,
        seq: &mut u64,
    ) -> Vec<ProbeResult> {
        let mut out = Vec::new();
        let mut minute = floor_minute(from);
        while minute < to {
            let mut this_minute = Vec::new();
            let n = minute.as_second().div_euclid(60);
            for (ci, (check, every)) in CHECKS.iter().enumerate() {
                if n.rem_euclid(i64::from(*every)) != 0 {
                    continue;
                }
                // Each check keeps its own second in the minute, per location,
                // as an agent's schedule phase does.
                let offset_ms = ((7 + 13 * li as i64 + 11 * ci as i64) % 55) * 1000
                    + (jitter(minute, location, ci as u64) * 900.0) as i64;
                let started = minute + SignedDuration::from_millis(offset_ms);
                if started < from || started >= to {
                    continue;
                }
                this_minute.push(self.result(check, location, started));
            }
            // An agent numbers its results in the order they happen.
            this_minute.sort_by_key(|r| r.started_at);
            for mut r in this_minute {
                r.seq = *seq;
                r.agent = agent.to_string();
                *seq += 1;
                out.push(r);
            }
            minute += SignedDuration::from_secs(60);
        }
        out
    }

    fn result(&self, check: &str, location: &str, started: Timestamp) -> ProbeResult {
        match check {
            "shop-https" => self.http(
                check,
                location,
                started,
                Vendor::Hosting,
                &format!("https://{SHOP_HOST}:{HTTPS_PORT}/"),
                Some(&self.pki.shop),
                crate::vendors::SHOP_PAGE.len(),
            ),
            "shop-http" => self.http(
                check,
                location,
                started,
                Vendor::Hosting,
                &format!("http://{SHOP_HOST}:{HTTP_PORT}/"),
                None,
                crate::vendors::SHOP_PAGE.len(),
            ),
            "cdn-https" => self.http(
                check,
                location,
                started,
                Vendor::Cdn,
                &format!("https://{CDN_HOST}:{HTTPS_PORT}/assets/app.js"),
                Some(&self.pki.cdn),
                crate::vendors::CDN_ASSET.len(),
            ),
            "shop-dns" => self.dns(check, location, started),
            _ => {
                let tls = tls_detail(&self.pki.cdn, CDN_HOST, started);
                let secs = 0.0018 + jitter(started, location, 9) * 0.0008;
                let mut r = base(
                    check,
                    CheckKind::Tls,
                    location,
                    &format!("{CDN_HOST}:{HTTPS_PORT}"),
                    started,
                );
                r.duration_seconds = secs;
                r.success = true;
                r.tls = Some(tls);
                r
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn http(
        &self,
        check: &str,
        location: &str,
        started: Timestamp,
        vendor: Vendor,
        url: &str,
        leaf: Option<&Leaf>,
        body_bytes: usize,
    ) -> ProbeResult {
        let host = if vendor == Vendor::Cdn {
            CDN_HOST
        } else {
            SHOP_HOST
        };
        let port = if leaf.is_some() {
            HTTPS_PORT
        } else {
            HTTP_PORT
        };
        let remote = self.net.addr(vendor, location, port).to_string();
        let j = |salt| jitter(started, location, salt);
        let mut phases = Phases {
            resolve: Some(0.000016 + j(3) * 0.000004),
            connect: Some(0.00025 + j(4) * 0.0003),
            tls: leaf.map(|_| 0.0011 + j(5) * 0.0004),
            processing: None,
            transfer: None,
        };
        let mut r = base(check, CheckKind::Http, location, url, started);
        let mut http = HttpDetail {
            status: None,
            version: None,
            redirects: 0,
            body_bytes: 0,
            body_truncated: false,
            final_url: None,
            remote_addr: Some(remote),
            phases: Phases::default(),
        };
        let setup: f64 = [phases.resolve, phases.connect, phases.tls]
            .iter()
            .flatten()
            .sum();
        match behaviour(vendor, location, started) {
            Behaviour::Silent => {
                // What the agent reports when nothing answers (5 s timeout).
                phases.tls = None;
                r.duration_seconds = 5.0 + j(6) * 0.002;
                r.failure = Some(match leaf {
                    Some(_) => Failure::new(
                        FailureClass::Timeout,
                        format!(
                            "TLS handshake with {host} did not finish within the timeout (5.000s)"
                        ),
                    ),
                    None => Failure::new(
                        FailureClass::Timeout,
                        "no response headers within the timeout (waited 4.999s)",
                    ),
                });
                http.phases = phases;
                r.http = Some(http);
                return r;
            }
            Behaviour::Status { status, why } => {
                phases.processing = Some(0.0006 + j(7) * 0.0004);
                phases.transfer = Some(0.000012);
                http.status = Some(status);
                http.body_bytes = format!("{status}: {why} (demo)\n").len() as u64;
                r.failure = Some(Failure::new(
                    FailureClass::HttpStatus,
                    format!("status {status}, expected one of [200]"),
                ));
            }
            Behaviour::Ok { delay } => {
                phases.processing = Some(delay.as_secs_f64() + 0.0005 + j(7) * 0.001);
                phases.transfer = Some(0.000013 + j(8) * 0.000004);
                http.status = Some(200);
                http.body_bytes = body_bytes as u64;
                r.success = true;
            }
        }
        r.duration_seconds =
            setup + phases.processing.unwrap_or(0.0) + phases.transfer.unwrap_or(0.0) + 0.0002;
        http.version = Some("HTTP/1.1".into());
        http.final_url = Some(url.to_string());
        http.phases = phases;
        r.http = Some(http);
        r.tls = leaf.map(|l| tls_detail(l, host, started));
        r
    }

    fn dns(&self, check: &str, location: &str, started: Timestamp) -> ProbeResult {
        let ns = self.net.addr(Vendor::Dns, location, DNS_PORT).to_string();
        let answers = vec![crate::vendors::shop_a_record(self.net).to_string()];
        let latency = 0.0012 + jitter(started, location, 10) * 0.0006;
        let mut r = base(
            check,
            CheckKind::Dns,
            location,
            &format!("{SHOP_HOST} A"),
            started,
        );
        r.success = true;
        r.duration_seconds = latency + 0.0002;
        r.dns = Some(DnsDetail {
            nameserver: ns.clone(),
            rcode: Some("NOERROR".into()),
            answers: answers.clone(),
            answers_total: None,
            dnssec: None,
            servers: vec![DnsServerDetail {
                nameserver: ns,
                rcode: Some("NOERROR".into()),
                answers,
                answers_total: None,
                latency_seconds: latency,
                transport: Some("udp".into()),
                success: true,
                ..Default::default()
            }],
        });
        r
    }
}

fn base(
    check: &str,
    kind: CheckKind,
    location: &str,
    target: &str,
    started: Timestamp,
) -> ProbeResult {
    ProbeResult {
        seq: 0,
        agent: String::new(),
        location: location.to_string(),
        check: check.to_string(),
        kind,
        target: target.to_string(),
        started_at: started,
        duration_seconds: 0.0,
        success: false,
        failure: None,
        http: None,
        tls: None,
        dns: None,
        page: None,
        domain: None,
        browser: None,
    }
}

/// The TLS facts of `leaf` as a probe at `at` reports them.
fn tls_detail(leaf: &Leaf, host: &str, at: Timestamp) -> TlsDetail {
    let days_left = leaf.not_after.duration_since(at).as_secs_f64() / 86_400.0;
    TlsDetail {
        version: Some("TLSv1.3".into()),
        cipher: Some("TLS_AES_256_GCM_SHA384".into()),
        not_after: Some(leaf.not_after),
        earliest_not_after: Some(leaf.not_after),
        days_left: Some(days_left),
        issuer: Some(format!("CN={CA_NAME}")),
        subject: Some(leaf.subject.clone()),
        sans: vec![host.to_string()],
        sans_total: None,
        chain_valid: true,
        hostname_valid: true,
        chain_length: leaf.chain.len() as u32,
        // Only the TLS check has warn_days (14); the http checks report none.
        expiring_soon: false,
        // What the live agents say of the simulated vendors (no staple).
        revocation: Some(slaprobe_wire::Revocation::not_checked()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_follows_the_script_and_numbers_results() {
        let now: Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let pki = DemoPki::new(now).unwrap();
        let g = Generator::new(Net(1), &pki);
        let from: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        let to: Timestamp = "2026-11-30T11:00:00Z".parse().unwrap();
        let mut seq = 41;
        let rs = g.results(2, "sgp", "demo-sgp-history", from, to, &mut seq);
        // 4 checks every minute, the certificate every 5 minutes.
        assert_eq!(rs.len(), 60 * 4 + 12);
        assert_eq!(rs.first().unwrap().seq, 41);
        assert_eq!(seq, 41 + rs.len() as u64);
        assert!(rs.iter().all(|r| r.started_at >= from && r.started_at < to));
        let down = |check: &str, minute: i64| {
            rs.iter()
                .filter(|r| r.check == check && r.started_at.as_second() / 60 % 60 == minute)
                .all(|r| !r.success)
        };
        assert!(down("shop-https", 18), "the hourly outage");
        assert!(down("shop-https", 41), "sgp's blip");
        assert!(!down("shop-https", 50));
        let blip = rs
            .iter()
            .find(|r| r.check == "shop-http" && r.started_at.as_second() / 60 % 60 == 41)
            .unwrap();
        assert_eq!(blip.class(), Some(FailureClass::Timeout));
        // The CDN is slow from minute 30 to 35.
        let slow = rs
            .iter()
            .find(|r| r.check == "cdn-https" && r.started_at.as_second() / 60 % 60 == 31)
            .unwrap();
        assert!(slow.http.as_ref().unwrap().phases.processing.unwrap() > 0.4);
        // Every result survives the wire as the collector parses it.
        let json = serde_json::to_string(&rs[0]).unwrap();
        let back: ProbeResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rs[0]);
    }
}
