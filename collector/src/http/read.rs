//! The read endpoints (DESIGN.md §5, §7): `GET /api/v1/checks` for agents,
//! `GET /api/v1/agents` for people and scripts, `/metrics`, `/healthz`, `/readyz`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use slaprobe_wire::{AssignedChecks, Timestamp};

use super::error::ApiError;
use crate::app::AppState;
use crate::ingest::Rejection;
use crate::store::StoreError;

/// `GET /healthz`: the process is up (always 200).
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 once the store is open and migrated (and while its
/// writer runs), else 503.
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.store() {
        Some(s) if s.is_writable() => (StatusCode::OK, "ready\n").into_response(),
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, "store writer stopped\n").into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: store not open yet\n",
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> Response {
    // Building tens of thousands of series is CPU work: off the async workers.
    let m = app.metrics().clone();
    match tokio::task::spawn_blocking(move || m.render()).await {
        Ok(body) => {
            let mut resp = body.into_response();
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics task failed: {e}\n"),
        )
            .into_response(),
    }
}

/// `GET /api/v1/checks` (bearer token): the checks whose `locations` include
/// the agent's location (all checks without `locations`), `ca_file` inlined as `ca_pem`.
pub async fn checks(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let who = match app.auth().authenticate(&headers) {
        Ok(p) => p,
        Err(e) => {
            return Rejection::unauthorized(e.message()).into_response();
        }
    };
    app.metrics().agent_seen(
        &who.id,
        &who.location,
        Timestamp::now().as_millisecond() as f64 / 1000.0,
    );
    let checks = app
        .config()
        .checks
        .iter()
        .filter(|c| c.runs_at(&who.location))
        .map(|c| c.served.clone())
        .collect();
    Json(AssignedChecks { checks }).into_response()
}

/// One agent in `GET /api/v1/agents`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    pub id: String,
    pub location: String,
    /// Last contact (a stored batch or a checks fetch); null when never seen.
    pub last_seen: Option<Timestamp>,
    /// Results stored (each seq once).
    pub results: u64,
    /// Highest seq stored.
    pub max_seq: u64,
    /// Seqs up to `max_seq` never received (lost results).
    pub missing: u64,
    /// Results received again after they were stored.
    pub duplicates: u64,
    /// Whether the current config still lists the agent.
    pub configured: bool,
}

/// `GET /api/v1/agents`: every configured agent and every agent the store has seen.
pub async fn agents(State(app): State<AppState>) -> Response {
    match agent_statuses(&app).await {
        Ok(Some(list)) => Json(list).into_response(),
        Ok(None) => {
            Rejection::unavailable("the collector is starting (store not open yet)").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reading agents failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

/// What `GET /api/v1/agents` lists (also the status page's locations):
/// configured agents and every agent the store has seen, by id; `None`
/// while the store is not open.
pub async fn agent_statuses(app: &AppState) -> Result<Option<Vec<AgentStatus>>, StoreError> {
    let Some(store) = app.store().cloned() else {
        return Ok(None);
    };
    let rows = store.read(|r| r.agents()).await?;
    let mut out: BTreeMap<String, AgentStatus> = BTreeMap::new();
    for p in app.auth().principals() {
        out.insert(
            p.id.clone(),
            AgentStatus {
                id: p.id.clone(),
                location: p.location.clone(),
                last_seen: None,
                results: 0,
                max_seq: 0,
                missing: 0,
                duplicates: 0,
                configured: true,
            },
        );
    }
    for row in rows {
        let missing = row.missing();
        let e = out.entry(row.id.clone()).or_insert_with(|| AgentStatus {
            id: row.id.clone(),
            location: row.location.clone(),
            last_seen: None,
            results: 0,
            max_seq: 0,
            missing: 0,
            duplicates: 0,
            configured: false,
        });
        e.results = row.results;
        e.max_seq = row.max_seq;
        e.missing = missing;
        e.duplicates = row.duplicates;
        e.last_seen = Timestamp::from_millisecond(row.last_seen_ms).ok();
    }
    for e in out.values_mut() {
        // A checks fetch is contact too; the store only records batches.
        if let Some(t) = app.metrics().last_seen(&e.id)
            && let Ok(ts) = Timestamp::from_millisecond((t * 1000.0) as i64)
            && e.last_seen.is_none_or(|cur| ts > cur)
        {
            e.last_seen = Some(ts);
        }
    }
    Ok(Some(out.into_values().collect()))
}
