//! What crosses the wire between an agent and the collector: the body of
//! `POST /api/v1/results`, its answer, and the checks assigned to an agent (§5).

use serde::{Deserialize, Serialize};

use crate::{CheckSpec, ProbeResult};

/// Body of `POST /api/v1/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub agent: String,
    pub results: Vec<ProbeResult>,
}

/// Answer to a batch: every seq of this agent up to `acked` is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub acked: u64,
}

/// Answer of `GET /api/v1/checks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedChecks {
    pub checks: Vec<CheckSpec>,
}
