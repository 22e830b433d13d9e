//! Helpers shared by the probe tests: build a validated `Check` the way a
//! config file would, and run it through `Prober::probe` like the scheduler.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use slaprobe_agent::config::Check;
use slaprobe_agent::probe::Prober;
use slaprobe_wire::{CheckKind, CheckSpec, FailureClass, ProbeResult};

/// A check of `kind` with `timeout`, adjusted by `f`, validated like config.
pub fn check(kind: CheckKind, timeout: &str, f: impl FnOnce(&mut CheckSpec)) -> Check {
    let mut spec = CheckSpec {
        name: "t".into(),
        kind,
        timeout: Some(timeout.into()),
        ..Default::default()
    };
    f(&mut spec);
    Check::from_spec(&spec, 0, Path::new("test.toml"), Path::new("/")).expect("valid check")
}

/// An http check of `url`.
pub fn http(url: &str, timeout: &str, f: impl FnOnce(&mut CheckSpec)) -> Check {
    check(CheckKind::Http, timeout, |s| {
        s.url = Some(url.into());
        f(s)
    })
}

/// `{"host" = "ip"}` for `CheckSpec.resolve`.
pub fn resolve(host: &str, ip: &str) -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([(host.to_string(), ip.to_string())]))
}

/// Runs `check` once on its own task, as the scheduler does (which also
/// proves the probe future is `Send`).
pub async fn run(check: &Check) -> ProbeResult {
    let check = check.clone();
    tokio::spawn(async move { Prober::new().probe(&check).await })
        .await
        .expect("probe task")
}

/// Asserts the result failed with `class`, printing it otherwise.
pub fn assert_class(r: &ProbeResult, class: FailureClass) {
    assert!(!r.success, "expected {class}, got success: {r:#?}");
    assert_eq!(r.class(), Some(class), "{r:#?}");
}

/// Asserts success, printing the result otherwise.
pub fn assert_ok(r: &ProbeResult) {
    assert!(r.success, "expected success: {r:#?}");
}

/// Sum of the phases that are present.
pub fn phase_sum(r: &ProbeResult) -> f64 {
    let p = &r.http.as_ref().expect("http section").phases;
    slaprobe_wire::Phases::NAMES
        .iter()
        .filter_map(|n| p.get(n))
        .sum()
}
