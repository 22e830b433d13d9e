//! Browser results at the collector: stored with their screenshot (a
//! browser result may be far larger than others), and exported as the
//! `slaprobe_browser_*` metrics, which pass `promtool check metrics`.

use std::io::Write as _;

use serde_json::{Value, json};
use slaprobe_collector::ServerOptions;
use slaprobe_tests::collector::TestCollector;
use slaprobe_tests::prom::sha256_hex;
use slaprobe_tests::results::TestResult;

const TOKEN: &str = "token-of-ams-1";
const URL: &str = "https://shop.acme.example/";

fn browser_result(seq: u64, js_errors: u32, screenshot_bytes: usize) -> Value {
    let mut r = TestResult::new("ams-1", "ams", seq, "acme-browser")
        .kind("browser")
        .target(URL)
        .ago(10 - seq as i64)
        .duration(2.5)
        .json();
    r["browser"] = json!({
        "ttfb": 0.12, "fcp": 0.8, "lcp": 2.1, "cls": 0.05, "tbt": 0.19,
        "dom_content_loaded": 0.9, "load": 1.7, "status": 200,
        "requests": 42, "failed_requests": 2, "transfer_bytes": 900000,
        "js_errors": js_errors, "final_url": URL,
    });
    if screenshot_bytes > 0 {
        r["browser"]["screenshot"] = json!("A".repeat(screenshot_bytes));
    }
    r
}

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    })
}

#[tokio::test]
async fn browser_results_are_stored_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[collector]
public_read = true
listen = "127.0.0.1:0"
data_dir = "data"

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "{}"

[[checks]]
name = "acme-browser"
kind = "browser"
url = "{URL}"
timeout = "30s"
"#,
            sha256_hex(TOKEN)
        ),
    )
    .unwrap();
    let c = TestCollector::start_with(&cfg, ServerOptions::default()).await;
    let post = |results: Vec<Value>| {
        let client = c.client.clone();
        let url = format!("http://{}/api/v1/results", c.addr);
        async move {
            let resp = client
                .post(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(json!({"agent": "ams-1", "results": results}).to_string())
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    // A failed probe's result with a ~270 KB (base64) screenshot is taken:
    // other kinds stop at 64 KiB.
    let (status, body) = post(vec![browser_result(1, 1, 270_000)]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(vec![browser_result(2, 3, 0)]).await;
    assert_eq!(status, 200, "{body}");
    // Past the browser bound it is refused, naming the result.
    let (status, body) = post(vec![browser_result(3, 0, 400_000)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("results[0]") && body.contains("too_large"),
        "{body}"
    );

    let text = c
        .client
        .get(format!("http://{}/metrics", c.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cl = r#"check="acme-browser",location="ams""#;
    for (metric, want) in [
        ("lcp", 2.1),
        ("cls", 0.05),
        ("fcp", 0.8),
        ("ttfb", 0.12),
        ("tbt", 0.19),
    ] {
        assert_eq!(
            metric_value(
                &text,
                &format!("slaprobe_browser_web_vital{{{cl},metric=\"{metric}\"}}")
            ),
            Some(want),
            "{metric}\n{text}"
        );
    }
    assert_eq!(
        metric_value(&text, &format!("slaprobe_browser_requests{{{cl}}}")),
        Some(42.0)
    );
    assert_eq!(
        metric_value(&text, &format!("slaprobe_browser_failed_requests{{{cl}}}")),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&text, &format!("slaprobe_browser_js_errors_total{{{cl}}}")),
        Some(4.0),
        "1 + 3 errors over two results"
    );
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    c.stop().await;
}
