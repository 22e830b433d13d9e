//! The per-agent rate limit of ingest (`[collector]
//! max_results_per_second_per_agent`, burst 10×): over HTTP an agent over its
//! budget gets 429 with a Retry-After that, once waited, gets it through; other
//! agents are not affected; the bucket arithmetic on its own.

use std::path::Path;
use std::time::{Duration, Instant};

use slaprobe_collector::ServerOptions;
use slaprobe_collector::ingest::RateLimiter;
use slaprobe_tests::collector::TestCollector;
use slaprobe_tests::prom::sha256_hex;
use slaprobe_tests::results::{self, TestResult};

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
    results::batch(
        agent,
        seqs.map(|seq| TestResult::new(agent, location, seq, "c").target("http://127.0.0.1:9/")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), 10); // 10/s, burst 100
    let c = TestCollector::start_with(&dir.path().join("collector.toml"), ServerOptions::default())
        .await;
    assert_eq!(c.config.collector.max_results_per_second_per_agent, 10);
    let client = c.client.clone();
    let url = c.url("/api/v1/results");
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
        .get(c.url("/metrics"))
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
    c.stop().await;
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
