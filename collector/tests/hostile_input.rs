//! Hostile input, fuzzed with proptest: the ingest decoder
//! ([`slaprobe_collector::ingest::decode_batch`], what `POST /api/v1/results`
//! runs on every body) and the config loaders of the agent and the collector.
//! Whatever the bytes, nothing panics, the answer is a clear 4xx (or a valid
//! batch), size limits hold before any decoding work, and a config is either
//! valid or an `Err(ConfigError)` naming a key.
//!
//! Bounded allocation: the body cap is checked before decoding, decompression
//! stops one byte past `max_decoded_bytes`, and serde_json's recursion limit
//! (128) stops nesting bombs, which would otherwise overflow the stack and
//! abort this whole test binary.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use proptest::prelude::*;
use slaprobe_agent::config::AgentConfig;
use slaprobe_collector::CollectorConfig;
use slaprobe_collector::auth::{Auth, Principal};
use slaprobe_collector::ingest::{IngestLimits, MAX_MESSAGE, Rejection, decode_batch};
use slaprobe_wire::Timestamp;

fn setup() -> (tempfile::TempDir, CollectorConfig, Principal) {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
[collector]
data_dir = "data"

[[agents]]
id = "ams-1"
location = "ams"
token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

[[checks]]
name = "c"
kind = "http"
url = "http://127.0.0.1:9/"
"#;
    std::fs::write(dir.path().join("collector.toml"), toml).unwrap();
    let config = CollectorConfig::load(&dir.path().join("collector.toml")).unwrap();
    let who = Auth::new(&config, None).principals()[0].clone();
    (dir, config, who)
}

/// Small limits so the fuzzer reaches them; the shape is the production one.
fn limits() -> IngestLimits {
    IngestLimits {
        max_body_bytes: 1 << 20,
        max_decoded_bytes: 4 << 20,
        max_results: 100,
        ..Default::default()
    }
}

fn result(seq: &str, extra: &str) -> String {
    format!(
        r#"{{"seq":{seq},"agent":"ams-1","location":"ams","check":"c","kind":"http","target":"http://127.0.0.1:9/","started_at":"{}","duration_seconds":0.01,"success":true{extra}}}"#,
        Timestamp::now()
    )
}

fn batch(results: &[String]) -> String {
    format!(r#"{{"agent":"ams-1","results":[{}]}}"#, results.join(","))
}

/// The decoder's verdict must be Ok or one of the documented refusals, with
/// a bounded message.
fn check_verdict(
    r: &Result<slaprobe_collector::ingest::DecodedBatch, Rejection>,
) -> Option<StatusCode> {
    match r {
        Ok(_) => None,
        Err(e) => {
            assert!(
                [
                    StatusCode::BAD_REQUEST,
                    StatusCode::FORBIDDEN,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                ]
                .contains(&e.status()),
                "unexpected status {}: {}",
                e.status(),
                e.message()
            );
            assert!(!e.message().is_empty());
            assert!(
                e.message().chars().count() <= MAX_MESSAGE + 60,
                "message of {} chars",
                e.message().len()
            );
            Some(e.status())
        }
    }
}

fn decode(enc: Option<&str>, body: &[u8]) -> Option<StatusCode> {
    let (_dir, config, who) = setup();
    check_verdict(&decode_batch(
        enc,
        body,
        &who,
        &config,
        Timestamp::now(),
        limits(),
    ))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_valid_batch_decodes() {
    let body = batch(&[result("1", ""), result("2", "")]);
    let (_dir, config, who) = setup();
    let d = decode_batch(
        None,
        body.as_bytes(),
        &who,
        &config,
        Timestamp::now(),
        limits(),
    )
    .unwrap();
    assert_eq!(d.results.len(), 2);
    assert_eq!(d.rows[1].seq, 2);
    let d = decode_batch(
        Some("gzip"),
        &gzip(body.as_bytes()),
        &who,
        &config,
        Timestamp::now(),
        limits(),
    )
    .unwrap();
    assert_eq!(d.results.len(), 2);
    let z = zstd::encode_all(body.as_bytes(), 3).unwrap();
    assert_eq!(
        decode_batch(Some("zstd"), &z, &who, &config, Timestamp::now(), limits())
            .unwrap()
            .rows
            .len(),
        2
    );
}

#[test]
fn named_hostile_bodies_get_clear_4xx() {
    let bad = Some(StatusCode::BAD_REQUEST);
    let too_large = Some(StatusCode::PAYLOAD_TOO_LARGE);
    // Nesting bombs: in the envelope, in a result, in a detail field.
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert_eq!(decode(None, deep(200_000).as_bytes()), bad);
    assert_eq!(decode(None, batch(&[deep(100_000)]).as_bytes()), bad);
    assert_eq!(
        decode(
            None,
            batch(&[result("1", &format!(r#","http":{}"#, deep(100_000)))]).as_bytes()
        ),
        bad
    );
    let objects = format!(
        r#"{{"agent":"ams-1","results":[{}1{}]}}"#,
        r#"{"a":"#.repeat(50_000),
        "}".repeat(50_000)
    );
    assert_eq!(decode(None, objects.as_bytes()), bad);
    // Numbers: 1e400, negative, fractional, zero and too-large seqs.
    for seq in [
        "1e400",
        "-5",
        "1.5",
        "0",
        "18446744073709551615",
        "99999999999999999999999",
    ] {
        assert_eq!(
            decode(None, batch(&[result(seq, "")]).as_bytes()),
            bad,
            "seq {seq}"
        );
    }
    assert_eq!(
        decode(
            None,
            batch(&[result("1", "").replace("0.01", "1e400")]).as_bytes()
        ),
        bad
    );
    assert_eq!(
        decode(
            None,
            batch(&[result("1", "").replace("0.01", "-1")]).as_bytes()
        ),
        bad
    );
    // Huge strings: refused, and never echoed whole.
    let (_dir, config, who) = setup();
    let huge = result("1", "").replace(
        r#""check":"c""#,
        &format!(r#""check":"{}""#, "x".repeat(900_000)),
    );
    let e = decode_batch(
        None,
        batch(&[huge]).as_bytes(),
        &who,
        &config,
        Timestamp::now(),
        limits(),
    )
    .unwrap_err();
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    assert!(e.message().len() < 400, "{}", e.message());
    let e = decode_batch(
        None,
        format!(r#"{{"agent":"{}","results":[]}}"#, "y".repeat(900_000)).as_bytes(),
        &who,
        &config,
        Timestamp::now(),
        limits(),
    )
    .unwrap_err();
    assert_eq!(e.status(), StatusCode::FORBIDDEN);
    assert!(e.message().len() < 400, "{}", e.message());
    let wrong_type = result("1", "").replace(
        r#""target":"http://127.0.0.1:9/""#,
        &format!(r#""target":{}"#, "7".repeat(900_000)),
    );
    assert_eq!(decode(None, batch(&[wrong_type]).as_bytes()), bad);
    // Invalid UTF-8, inside a string and raw.
    assert_eq!(
        decode(None, b"{\"agent\":\"ams-\xff\",\"results\":[]}"),
        bad
    );
    assert_eq!(decode(None, &[0xc3, 0x28, 0xa0, 0xa1]), bad);
    // A 40 MB body: refused by size before anything is decoded.
    assert_eq!(decode(None, &vec![b'['; 40_000_000]), too_large);
    // Zip bombs and truncated or corrupt compression.
    assert_eq!(decode(Some("gzip"), &gzip(&vec![b' '; 5 << 20])), too_large);
    let z = zstd::encode_all(&vec![b' '; 5 << 20][..], 3).unwrap();
    assert_eq!(decode(Some("zstd"), &z), too_large);
    let good = batch(&[result("1", "")]);
    let gz = gzip(good.as_bytes());
    assert_eq!(decode(Some("gzip"), &gz[..gz.len() / 2]), bad);
    let z = zstd::encode_all(good.as_bytes(), 3).unwrap();
    assert_eq!(decode(Some("zstd"), &z[..z.len() / 2]), bad);
    assert_eq!(decode(Some("zstd"), b"\x28\xb5\x2f\xfd garbage"), bad);
    assert_eq!(
        decode(Some("br"), good.as_bytes()),
        Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    );
    assert_eq!(
        decode(Some("gzip\u{7f}"), good.as_bytes()),
        Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    );
    // Too many results.
    let many: Vec<String> = (1..=101).map(|s| result(&s.to_string(), "")).collect();
    assert_eq!(decode(None, batch(&many).as_bytes()), too_large);
    // Empty and odd envelopes.
    for body in [
        "",
        "null",
        "[]",
        "{}",
        r#"{"agent":"ams-1"}"#,
        r#"{"agent":"ams-1","results":{}}"#,
        r#"{"agent":1,"results":[]}"#,
    ] {
        assert_eq!(decode(None, body.as_bytes()), bad, "{body:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4096), enc in prop_oneof![Just(None), Just(Some("gzip".to_string())), Just(Some("zstd".to_string())), Just(Some("identity".to_string())), ".{0,12}".prop_map(Some)]) {
        let (_dir, config, who) = setup();
        let r = decode_batch(enc.as_deref(), &body, &who, &config, Timestamp::now(), limits());
        check_verdict(&r);
    }

    #[test]
    fn mutated_batches_never_panic(
        n in 1usize..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        compress in 0u8..3,
    ) {
        let results: Vec<String> = (1..=n).map(|s| result(&s.to_string(), "")).collect();
        let mut body = batch(&results).into_bytes();
        for (i, b) in flips {
            let i = i.index(body.len());
            body[i] = b;
        }
        if let Some(c) = cut {
            body.truncate(c.index(body.len() + 1));
        }
        let (enc, body) = match compress {
            0 => (None, body),
            1 => (Some("gzip"), gzip(&body)),
            _ => (Some("zstd"), zstd::encode_all(&body[..], 1).unwrap()),
        };
        let (_dir, config, who) = setup();
        check_verdict(&decode_batch(enc, &body, &who, &config, Timestamp::now(), limits()));
    }

    #[test]
    fn random_field_values_never_panic(
        seq in prop_oneof![Just("1".to_string()), any::<i64>().prop_map(|v| v.to_string()), any::<f64>().prop_map(|v| format!("{v:?}")), "\"[^\"\\\\]{0,20}\"".prop_map(|s| s)],
        duration in prop_oneof![any::<f64>().prop_map(|v| format!("{v:?}")), Just("1e400".to_string()), Just("null".to_string())],
        started in prop_oneof![Just(format!("\"{}\"", Timestamp::now())), "\"[0-9T:Z.+-]{0,30}\"".prop_map(|s| s), Just("\"-009999-01-01T00:00:00Z\"".to_string()), Just("\"9999-12-31T23:59:59Z\"".to_string())],
        kind in prop_oneof![Just("http"), Just("dns"), Just("tls"), Just("page"), Just("nope")],
        text in "\\PC{0,40}",
    ) {
        let r = format!(
            r#"{{"seq":{seq},"agent":"ams-1","location":"ams","check":"c","kind":"{kind}","target":{},"started_at":{started},"duration_seconds":{duration},"success":false,"failure":{{"class":"timeout","message":{}}}}}"#,
            serde_json::to_string(&text).unwrap(),
            serde_json::to_string(&text).unwrap(),
        );
        let (_dir, config, who) = setup();
        check_verdict(&decode_batch(None, batch(&[r]).as_bytes(), &who, &config, Timestamp::now(), limits()));
    }
}

// ---- config loaders ----

/// A TOML value of any shape, including nasty ones.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "\\PC{0,30}".prop_map(|s| toml_string(&s)),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:?}")),
        Just("inf".to_string()),
        Just("nan".to_string()),
        Just("-0".to_string()),
        any::<bool>().prop_map(|v| v.to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("\"0s\"".to_string()),
        Just("\"-1s\"".to_string()),
        Just("\"999999999999999999d\"".to_string()),
        Just("\"[::1]:0\"".to_string()),
        Just("\"http://\"".to_string()),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|v| format!(
                "{{ {} }}",
                v.into_iter()
                    .map(|(k, x)| format!("{k} = {x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ]
    })
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap() // a JSON string is a valid TOML basic string
}

#[test]
fn the_base_configs_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let kv = |b: &[(&str, &str)]| {
        b.iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect::<String>()
    };
    let p = write_config(
        dir.path(),
        &format!(
            "[agent]\n{}\n[[checks]]\n{}",
            kv(AGENT_BASE),
            kv(CHECK_BASE)
        ),
    );
    AgentConfig::load(&p).unwrap();
    let p = write_config(
        dir.path(),
        &format!(
            "[collector]\n{}\n[[agents]]\n{}\n[[checks]]\n{}",
            kv(COLLECTOR_BASE),
            kv(AGENT_ENTRY_BASE),
            kv(CHECK_BASE)
        ),
    );
    CollectorConfig::load(&p).unwrap();
}

const AGENT_KEYS: &[&str] = &[
    "id",
    "location",
    "collector",
    "token",
    "token_file",
    "spool_dir",
    "concurrency",
    "batch_max",
    "batch_interval",
    "checks_refresh",
    "ca_file",
    "tls_cert_file",
    "tls_key_file",
    "metrics_listen",
    "spool_max_bytes",
    "spool_fsync",
];
const COLLECTOR_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "max_result_age",
    "max_results_per_second_per_agent",
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "database_url",
];
const CHECK_KEYS: &[&str] = &[
    "name",
    "kind",
    "interval",
    "timeout",
    "url",
    "expect_status",
    "body_contains",
    "max_redirects",
    "max_body_bytes",
    "ip_version",
    "ca_file",
    "ca_pem",
    "resolve",
    "host",
    "port",
    "warn_days",
    "query",
    "record_type",
    "nameservers",
    "expect_answers",
    "locations",
    "canary",
];

/// A section: valid `base` keys, 0–3 of them (or of `keys`) given random values.
fn section(
    keys: &'static [&'static str],
    base: &'static [(&'static str, &'static str)],
) -> impl Strategy<Value = String> {
    proptest::collection::vec((proptest::sample::select(keys), toml_value()), 0..4).prop_map(
        move |kv| {
            let mut map: std::collections::BTreeMap<&str, String> =
                base.iter().map(|(k, v)| (*k, v.to_string())).collect();
            for (k, v) in kv {
                map.insert(k, v);
            }
            map.into_iter()
                .map(|(k, v)| format!("{k} = {v}\n"))
                .collect()
        },
    )
}

const AGENT_BASE: &[(&str, &str)] = &[
    ("id", "\"a\""),
    ("location", "\"l\""),
    ("collector", "\"http://127.0.0.1:1\""),
    ("token", "\"t\""),
];
const COLLECTOR_BASE: &[(&str, &str)] = &[("data_dir", "\"data\"")];
const AGENT_ENTRY_BASE: &[(&str, &str)] = &[
    ("id", "\"a\""),
    ("location", "\"l\""),
    (
        "token_sha256",
        "\"0000000000000000000000000000000000000000000000000000000000000000\"",
    ),
];
const CHECK_BASE: &[(&str, &str)] = &[
    ("name", "\"c\""),
    ("kind", "\"http\""),
    ("url", "\"http://127.0.0.1:9/\""),
];

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_toml_text_never_panics_a_loader(text in "\\PC{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        let p = write_config(dir.path(), &text);
        let _ = AgentConfig::load(&p);
        let _ = CollectorConfig::load(&p);
    }

    #[test]
    fn random_agent_configs_are_valid_or_a_config_error(agent in section(AGENT_KEYS, AGENT_BASE), checks in proptest::collection::vec(section(CHECK_KEYS, CHECK_BASE), 0..3)) {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("[agent]\n{agent}");
        for c in checks {
            text.push_str(&format!("\n[[checks]]\n{c}"));
        }
        let p = write_config(dir.path(), &text);
        if let Err(e) = AgentConfig::load(&p) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn random_collector_configs_are_valid_or_a_config_error(
        collector in section(COLLECTOR_KEYS, COLLECTOR_BASE),
        agents in proptest::collection::vec(section(&["id", "location", "token_sha256"], AGENT_ENTRY_BASE), 0..3),
        checks in proptest::collection::vec(section(CHECK_KEYS, CHECK_BASE), 0..3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("[collector]\n{collector}");
        for a in agents {
            text.push_str(&format!("\n[[agents]]\n{a}"));
        }
        for c in checks {
            text.push_str(&format!("\n[[checks]]\n{c}"));
        }
        let p = write_config(dir.path(), &text);
        if let Err(e) = CollectorConfig::load(&p) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

/// Random `SLAPROBE_*` environment values against both binaries'
/// `check-config` (a child process: the environment cannot be changed safely
/// inside this multi-threaded test): an exit code and a message, never a panic.
#[test]
fn random_env_values_give_config_errors_not_panics() {
    let agent = slaprobe_tests::procs::bin_path("slaprobe-agent");
    let collector = slaprobe_tests::procs::bin_path("slaprobe-collector");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("agent.toml"),
        "[agent]\nid = \"a\"\nlocation = \"l\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("collector.toml"),
        "[collector]\ndata_dir = \"data\"\n",
    )
    .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::sample::select(vec![
            "SLAPROBE_AGENT__ID",
            "SLAPROBE_AGENT__CONCURRENCY",
            "SLAPROBE_AGENT__BATCH_INTERVAL",
            "SLAPROBE_AGENT__SPOOL_MAX_BYTES",
            "SLAPROBE_AGENT__COLLECTOR",
            "SLAPROBE_AGENT__METRICS_LISTEN",
            "SLAPROBE_AGENT__NOPE",
            "SLAPROBE_COLLECTOR__LISTEN",
            "SLAPROBE_COLLECTOR__MAX_RESULT_AGE",
            "SLAPROBE_COLLECTOR__MAX_RESULTS_PER_SECOND_PER_AGENT",
            "SLAPROBE_COLLECTOR__TLS_CERT_FILE",
            "SLAPROBE_CHECKS__0__NAME",
            "SLAPROBE_AGENT__",
            "SLAPROBE___",
        ]),
        prop_oneof![
            "\\PC{0,40}",
            Just("[1, {a = 2}]".to_string()),
            Just("-1".to_string()),
            Just("1e400".to_string()),
            Just("99999999999999999999999".to_string())
        ],
    );
    runner
        .run(&strategy, |(key, value)| {
            for (bin, cfg) in [(&agent, "agent.toml"), (&collector, "collector.toml")] {
                let out = Command::new(bin)
                    .args(["check-config", "--config"])
                    .arg(dir.path().join(cfg))
                    .env(key, &value)
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr);
                prop_assert!(!stderr.contains("panicked"), "{key}={value:?}: {stderr}");
                prop_assert!(
                    out.status.code().is_some_and(|c| c != 101),
                    "{key}={value:?}: {:?} {stderr}",
                    out.status
                );
            }
            Ok(())
        })
        .unwrap();
}
