//! The scheduler through its real probe path: a probe that panics becomes an
//! `agent_error` result and its check keeps running; the other checks are
//! untouched.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use slaprobe_agent::config::{AgentConfig, RawAgentFile, RawAgentSection};
use slaprobe_agent::probe::Prober;
use slaprobe_agent::schedule::{self, Identity, ScheduleStats};
use slaprobe_wire::{CheckKind, CheckSpec, FailureClass};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

fn check(name: &str, url: &str) -> CheckSpec {
    CheckSpec {
        name: name.into(),
        kind: CheckKind::Http,
        interval: Some("1s".into()),
        timeout: Some("500ms".into()),
        url: Some(url.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_probe_is_an_agent_error_and_its_check_keeps_running() {
    // A closed port: the healthy check fails fast with connect_refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let raw = RawAgentFile {
        agent: RawAgentSection {
            id: Some("ams-1".into()),
            location: Some("ams".into()),
            ..Default::default()
        },
        checks: vec![check("boom", &url), check("calm", &url)],
    };
    let config = AgentConfig::from_raw(raw, Path::new("test-agent.toml")).unwrap();
    let (_tx, rx) = watch::channel(Arc::new(config.checks.clone()));
    let (out, mut results) = mpsc::channel(1024);
    let stats = Arc::new(ScheduleStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(schedule::run(
        rx,
        Prober::new().panicking_for("boom"),
        Identity {
            agent: "ams-1".into(),
            location: "ams".into(),
        },
        8,
        out,
        stats.clone(),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    shutdown.cancel();
    task.await.unwrap();
    let mut boom = Vec::new();
    let mut calm = Vec::new();
    while let Ok(r) = results.try_recv() {
        match r.check.as_str() {
            "boom" => boom.push(r),
            _ => calm.push(r),
        }
    }
    assert!(
        boom.len() >= 2,
        "the panicking check keeps running: {} results",
        boom.len()
    );
    for r in &boom {
        assert_eq!(r.class(), Some(FailureClass::AgentError), "{r:?}");
        assert!(!r.success);
        assert!(
            r.failure.as_ref().unwrap().message.contains("panicked"),
            "{r:?}"
        );
        assert_eq!(r.agent, "ams-1");
    }
    assert!(calm.len() >= 2, "{} results", calm.len());
    assert!(
        calm.iter()
            .all(|r| r.class() == Some(FailureClass::ConnectRefused))
    );
    assert_eq!(stats.in_flight.load(std::sync::atomic::Ordering::SeqCst), 0);
}
