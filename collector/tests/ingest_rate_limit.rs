//! The per-agent rate limit of ingest (`[collector]
//! max_results_per_second_per_agent`, burst 10×): over HTTP an agent over its
//! budget gets 429 with a Retry-After that, once waited, gets it through; other
//! agents are not affected; the bucket arithmetic on its own.

use std::path::Path;
use std::time::{Duration, Instant};

use slaprobe_collector::ingest::RateLimiter;
use slaprobe_collector::{CollectorConfig, Server, ServerOptions};
use slaprobe_tests::prom::sha256_hex;
use tokio_util::sync::CancellationToken;

const AMS: &str = "rate-token-ams";
const NYC: &str = "rate-token-nyc";

fn write_config(dir: &Path, rate: u64) {
    let toml = format!(
        r#"
[collector]
public_read = true
listen = "127.0.0.1:0"
data_dir = "data"
max_results_per_second_per_agent = {rate}

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{ams}"

[[agents]]
id = "nyc-1"
location = "nyc"
token_sha256 = "{nyc}"

[[checks]]
name = "c"
kind = "http"
url = "http://127.0.0.1:9/"
"#,
        ams = sha256_hex(AMS),
        nyc = sha256_hex(NYC)
    );
    std::fs::write(dir.join("collector.toml"), toml).unwrap();
}

fn batch(agent: &str, location: &str, seqs: std::ops::RangeInclusive<u64>) -> String {
    let now = jiff::Timestamp::now();
    let results: Vec<String> = seqs
        .map(|seq| {
            format!(
                r#"{{"seq":{seq},"agent":"{agent}","location":"{location}","check":"c","kind":"http","target":"x","started_at":"{now}","duration_seconds":0.01,"success":true}}"#
            )
        })
        .collect();
    format!(r#"{{"agent":"{agent}","results":[{}]}}"#, results.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), 10); // 10/s, burst 100
    let config = CollectorConfig::load(&dir.path().join("collector.toml")).unwrap();
    assert_eq!(config.collector.max_results_per_second_per_agent, 10);
    let server = Server::bind_with(config, ServerOptions::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(server.serve(shutdown.clone()));
    let client = slaprobe_agent::run::http_client(None).unwrap();
    let url = format!("http://{addr}/api/v1/results");
    let post = |token: &'static str, body: String| {
        let req = client
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (r.status().as_u16(), retry, r.text().await.unwrap())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 60 + 60 from a full bucket of 100: both admitted (the second puts it in debt).
    let (s, _, body) = post(AMS, batch("ams-1", "ams", 1..=60)).await;
    assert_eq!(s, 200, "{body}");
    let (s, _, body) = post(AMS, batch("ams-1", "ams", 61..=120)).await;
    assert_eq!(s, 200, "{body}");
    // In debt: refused before the body is looked at, with a Retry-After.
    let (s, retry, body) = post(AMS, batch("ams-1", "ams", 121..=130)).await;
    assert_eq!(s, 429, "{body}");
    assert!(body.contains("max_results_per_second_per_agent"), "{body}");
    let retry = retry.expect("429 carries Retry-After");
    assert!(
        (1..=3).contains(&retry),
        "debt of ~20 at 10/s: about 2 s, got {retry}"
    );
    // Another agent has its own bucket.
    let (s, _, body) = post(NYC, batch("nyc-1", "nyc", 1..=50)).await;
    assert_eq!(s, 200, "{body}");
    // After Retry-After the same batch goes in.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (s, _, body) = post(AMS, batch("ams-1", "ams", 121..=130)).await;
    assert_eq!(s, 200, "{body}");

    let metrics = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"slaprobe_ingest_rejected_total{reason="rate_limited"} 1"#),
        "{metrics}"
    );
    shutdown.cancel();
    handle.await.unwrap().unwrap();
}

#[test]
fn token_bucket_refills_at_rate_up_to_ten_times_the_rate() {
    let r = RateLimiter::new(100);
    let t0 = Instant::now();
    assert!(r.admit_at("a", t0).is_ok());
    r.charge_at("a", 1000, t0); // the whole burst
    assert!(r.admit_at("a", t0).is_ok(), "exactly empty is not in debt");
    r.charge_at("a", 50, t0);
    let wait = r.admit_at("a", t0).unwrap_err();
    assert_eq!(
        wait,
        Duration::from_millis(500),
        "50 results of debt at 100/s"
    );
    assert!(r.admit_at("a", t0 + Duration::from_millis(500)).is_ok());
    assert!(r.admit_at("b", t0).is_ok(), "buckets are per agent");
    // A long idle time refills to the burst, not beyond.
    let later = t0 + Duration::from_secs(3600);
    r.charge_at("a", 1001, later);
    assert!(r.admit_at("a", later).is_err());
    // 0 disables the limit.
    let off = RateLimiter::new(0);
    off.charge_at("a", u64::MAX, t0);
    assert!(off.admit_at("a", t0).is_ok());
}
