//! `GET /api/v1/contracts` (the ledger's month-to-date figures) and
//! `GET /api/v1/reports/{contract}/{YYYY-MM}` (a report built from the store).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Serialize;

use super::error::ApiError;
use crate::app::AppState;
use crate::render::{self, Format};
use crate::sla::report::{ObjectiveResult, SlotCounts};
use crate::sla::{Contract, ContractStatus, Month, SlaCounters};
use crate::sla_service::{
    LedgerPosition, REPORTS_AT_ONCE, ReportRequestError, report_from_store_until, resolve_request,
};

/// Sets its flag when dropped (the request's future was abandoned).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError::new(status, message).into_response()
}

fn not_ready() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the collector is starting (store not open yet)",
    )
    .retry_after(5)
    .into_response()
}

/// One contract in `GET /api/v1/contracts` (documented in the README).
#[derive(Debug, Clone, Serialize)]
pub struct ContractView {
    /// The contract's name (`contract` label).
    pub name: String,
    pub vendor: String,
    /// The current month in the contract's zone, `YYYY-MM`.
    pub month: Month,
    pub timezone: String,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// Slots that started by now, by state.
    pub slots: SlotCounts,
    /// Month to date, percent; `null` without UP or DOWN slots.
    pub availability_percent: Option<f64>,
    /// The availability objective's target, percent (`null` without one).
    pub target_percent: Option<f64>,
    pub downtime_seconds: u64,
    /// Every objective is met so far.
    pub met: bool,
    /// Per objective: `kind`, `objective`, `target`, `attained`, `met` (as in the report).
    pub objectives: Vec<ObjectiveResult>,
    /// The latest settled slot is DOWN.
    pub down_now: bool,
    /// Error budget remaining, ratio (`null` without an availability objective).
    pub error_budget_remaining: Option<f64>,
    pub credit_percent: f64,
    /// DOWN runs so far this month.
    pub incidents: u32,
    /// The monotonic counters behind `slaprobe_sla_*_total`.
    pub counters: SlaCounters,
}

impl ContractView {
    fn new(s: ContractStatus, contract: Option<&Contract>) -> ContractView {
        ContractView {
            met: s.objectives.iter().all(|o| o.met),
            target_percent: contract.and_then(Contract::availability_target),
            timezone: contract.map(|c| c.timezone.clone()).unwrap_or_default(),
            name: s.contract,
            vendor: s.vendor,
            month: s.month,
            period_start: s.period_start,
            period_end: s.period_end,
            slots: s.slots,
            availability_percent: s.availability_percent,
            downtime_seconds: s.downtime_seconds,
            objectives: s.objectives,
            down_now: s.down_now,
            error_budget_remaining: s.error_budget_remaining,
            credit_percent: s.credit_percent,
            incidents: s.incidents,
            counters: s.counters,
        }
    }
}

/// Body of `GET /api/v1/contracts`.
#[derive(Debug, Clone, Serialize)]
pub struct ContractsResponse {
    /// The instant the figures are as of.
    pub as_of: Timestamp,
    /// Which ledger the figures come from.
    pub ledger: LedgerPosition,
    pub contracts: Vec<ContractView>,
    /// Rule 1a per location, live: the `slaprobe_location_impaired*` figures.
    pub locations: Vec<LocationView>,
}

/// One location's live impairment (rule 1a) in `GET /api/v1/contracts`.
#[derive(Debug, Clone, Serialize)]
pub struct LocationView {
    pub location: String,
    /// Impaired in the latest settled minute.
    pub impaired: bool,
    /// Impaired minutes settled so far × 60 (`slaprobe_location_impaired_seconds_total`).
    pub impaired_seconds: u64,
}

/// `GET /api/v1/contracts`: month-to-date status of every contract.
pub async fn contracts(State(app): State<AppState>) -> Response {
    let sla = app.sla();
    let now = Timestamp::now();
    let Some(status) = sla.status(now) else {
        return not_ready();
    };
    let contracts = status.into_iter().map(|s| {
        let c = sla.contract(&s.contract);
        ContractView::new(s, c)
    });
    let ledger = sla.position();
    let locations = sla
        .locations()
        .locations
        .into_iter()
        .map(|(location, l)| LocationView {
            location,
            impaired: l.impaired,
            impaired_seconds: l.impaired_seconds,
        })
        .collect();
    Json(ContractsResponse {
        as_of: now,
        ledger,
        contracts: contracts.collect(),
        locations,
    })
    .into_response()
}

/// `GET /api/v1/reports/{contract}/{YYYY-MM}?format=json|csv|html`.
pub async fn report(
    State(app): State<AppState>,
    Path((name, month)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let format = match query.get("format").map(|f| f.parse::<Format>()) {
        None => Format::Json,
        Some(Ok(f)) => f,
        Some(Err(e)) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let sla = app.sla();
    let now = Timestamp::now();
    let (contract, month) = match resolve_request(sla.contracts(), &name, &month, now) {
        Ok(x) => x,
        Err(e @ ReportRequestError::UnknownContract { .. }) => {
            return json_error(StatusCode::NOT_FOUND, e.to_string());
        }
        Err(e) => return json_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(store) = app.store().cloned() else {
        return not_ready();
    };
    // A bounded pool: a report reads a month from the store, and clients
    // asking for many at once must not starve ingest's readers.
    let Some(permit) = sla.report_permit() else {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{REPORTS_AT_ONCE} reports are being built already; retry shortly"),
        )
        .retry_after(2)
        .into_response();
    };
    // Dropped with this future when the client goes away: the pass stops reading.
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    let contract = contract.clone();
    let result = store
        .read(move |r| {
            let _permit = permit;
            report_from_store_until(r, &contract, month, now, &cancel)
        })
        .await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(contract = name, %month, error = %e, "building a report failed");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the store failed: {e}"),
            );
        }
    };
    // Rendering a month of days into HTML is CPU work, but small (tens of KB): inline.
    let body = render::render(&report, format);
    let mut resp = body.into_response();
    if let Ok(v) = HeaderValue::from_str(format.content_type()) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}
