//! Helpers shared by the `sla_*` integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use figment::providers::Format;
use jiff::Timestamp;
use slaprobe_collector::sla::contract::RawContract;
use slaprobe_collector::sla::{Contract, Observation, Phase};
use slaprobe_wire::FailureClass;

/// Checks every test config may cover: `a`..`j` every 60 s, `fast` every 10 s.
pub fn intervals() -> HashMap<String, Duration> {
    let mut m: HashMap<String, Duration> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
        .iter()
        .map(|n| (n.to_string(), Duration::from_secs(60)))
        .collect();
    m.insert("fast".into(), Duration::from_secs(10));
    m
}

/// A validated contract from a TOML body (without the `[[contracts]]` header).
pub fn contract(toml_text: &str) -> Contract {
    let raw: RawContract = figment::Figment::from(figment::providers::Toml::string(toml_text))
        .extract()
        .expect("test TOML parses");
    Contract::from_raw(&raw, &intervals(), Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A PASS with `processing` and `total` phases.
pub fn pass<'a>(check: &'a str, loc: &'a str, at: Timestamp, processing: f64) -> Observation<'a> {
    let mut phases = [None; Phase::ALL.len()];
    phases[Phase::Processing.index()] = Some(processing);
    phases[Phase::Total.index()] = Some(processing * 2.0);
    Observation {
        check,
        location: loc,
        started_at: at,
        success: true,
        class: None,
        message: None,
        phases,
    }
}

/// A FAIL with a class and message.
pub fn fail<'a>(
    check: &'a str,
    loc: &'a str,
    at: Timestamp,
    class: FailureClass,
    message: &'a str,
) -> Observation<'a> {
    Observation {
        check,
        location: loc,
        started_at: at,
        success: false,
        class: Some(class),
        message: Some(message),
        phases: [
            None,
            Some(0.001),
            None,
            None,
            None,
            Some(10.0),
            None,
            None,
            None,
            None,
            None,
        ],
    }
}

/// `base` plus `secs` seconds.
pub fn at(base: Timestamp, secs: i64) -> Timestamp {
    base.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap()
}
