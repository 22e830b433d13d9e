//! Probe results as agents send them, for tests that post to ingest: a
//! builder over the wire JSON (so tests can also send what the wire types
//! would never produce) and the batch envelope.

use serde_json::{Value, json};
use slaprobe_wire::Timestamp;

/// One result's JSON, built field by field. [`TestResult::new`] is a valid
/// successful HTTP result started now; every setter returns the builder.
#[derive(Debug, Clone)]
pub struct TestResult(Value);

impl TestResult {
    /// A successful `http` result of `check` (target `http://{check}.example/`,
    /// 10 ms, 200, processing 5 ms) from `agent` at `location`, started now.
    pub fn new(agent: &str, location: &str, seq: u64, check: &str) -> Self {
        Self(json!({
            "seq": seq,
            "agent": agent,
            "location": location,
            "check": check,
            "kind": "http",
            "target": format!("http://{check}.example/"),
            "started_at": Timestamp::now().to_string(),
            "duration_seconds": 0.01,
            "success": true,
            "http": {
                "status": 200, "version": "HTTP/1.1", "redirects": 0, "body_bytes": 512,
                "phases": {"resolve": 0.001, "connect": 0.002, "processing": 0.005, "transfer": 0.003}
            }
        }))
    }

    /// The probed target (must be the check's: its URL for http and page checks).
    pub fn target(self, target: &str) -> Self {
        self.set("target", json!(target))
    }

    /// The check kind; the `http` section is dropped for other kinds.
    pub fn kind(mut self, kind: &str) -> Self {
        if kind != "http" {
            self.0.as_object_mut().unwrap().remove("http");
        }
        self.set("kind", json!(kind))
    }

    /// When the probe started.
    pub fn started_at(self, at: Timestamp) -> Self {
        self.set("started_at", json!(at.to_string()))
    }

    /// Started `secs` seconds before now.
    pub fn ago(self, secs: i64) -> Self {
        let at = Timestamp::from_millisecond(Timestamp::now().as_millisecond() - secs * 1000)
            .expect("a time in range");
        self.started_at(at)
    }

    /// The whole probe's duration.
    pub fn duration(self, secs: f64) -> Self {
        self.set("duration_seconds", json!(secs))
    }

    /// The HTTP processing phase (time to first byte after the request).
    pub fn processing(mut self, secs: f64) -> Self {
        self.0["http"]["phases"]["processing"] = json!(secs);
        self
    }

    /// A failure of `class` with `message` (the `http` section is dropped).
    pub fn failure(mut self, class: &str, message: &str) -> Self {
        self.0.as_object_mut().unwrap().remove("http");
        self.0["success"] = json!(false);
        self.set("failure", json!({"class": class, "message": message}))
    }

    /// Sets (or, with `Value::Null`, adds as null) any top-level field.
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.0[key] = value;
        self
    }

    /// Removes a top-level field.
    pub fn without(mut self, key: &str) -> Self {
        self.0.as_object_mut().unwrap().remove(key);
        self
    }

    /// The JSON value.
    pub fn json(self) -> Value {
        self.0
    }
}

impl std::fmt::Display for TestResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<TestResult> for Value {
    fn from(r: TestResult) -> Value {
        r.0
    }
}

/// The body of `POST /api/v1/results`: `{"agent": …, "results": […]}`.
pub fn batch(agent: &str, results: impl IntoIterator<Item = impl Into<Value>>) -> String {
    let results: Vec<Value> = results.into_iter().map(Into::into).collect();
    json!({"agent": agent, "results": results}).to_string()
}
