//! The status page: `GET /` (one card per contract, one row per location,
//! links to the monthly reports) and `GET /status/{contract}[?month=YYYY-MM]`
//! (a contract's incidents, daily availability and monitoring coverage).
//!
//! A location is shown **impaired** when rule 1a held in the latest settled
//! minute (its canaries all failed, or it reported `agent_error`): its
//! results then count as no data, not against the vendor. The contract page
//! lists each location's impaired and silent time in the month.
//!
//! Server-rendered HTML: inline CSS, no script, no external assets (a
//! `<meta http-equiv="refresh">` keeps it current), one column on a phone.
//! Everything shown comes from the public SLA service API
//! ([`crate::sla_service::SlaService::status`] and `locations`, [`report_from_store`])
//! and the agents' rows ([`agent_statuses`]); [`gather`] and [`gather_contract`] are the
//! only functions that read the collector's state, so re-pointing the page
//! at another source means changing those two. Rendering is pure
//! ([`render_overview`], [`render_contract`]: data in, HTML out).
//!
//! The page has no authentication of its own: it is mounted with the other
//! read routes and shares whatever guards them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::{SignedDuration, Timestamp};

use super::read::{AgentStatus, agent_statuses};
use crate::app::AppState;
use crate::render::html::Esc;
use crate::render::human_duration;
use crate::sla::ledger::LocationStatus;
use crate::sla::report::{LocationCoverage, ObjectiveResult};
use crate::sla::{Contract, ContractStatus, Month, MonthReport};
use crate::sla_service::{ReportRequestError, report_from_store, resolve_request};

/// A location none of whose agents has been heard from for this long is
/// silent (the `SlaprobeAgentSilent` alert uses the same 5 minutes).
pub const SILENT_AFTER: SignedDuration = SignedDuration::from_secs(300);

/// How often the browser reloads the page, seconds.
const REFRESH_SECONDS: u32 = 30;

/// The routes of the status page (state: the collector's [`AppState`]).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview_handler))
        .route("/status/{contract}", get(contract_handler))
}

/// Everything `GET /` shows.
#[derive(Debug, Clone)]
pub struct Overview {
    /// The instant the figures are as of.
    pub now: Timestamp,
    /// One per contract, config order.
    pub cards: Vec<Card>,
    /// One per location, by name.
    pub locations: Vec<LocationRow>,
}

/// One contract's month to date.
#[derive(Debug, Clone)]
pub struct Card {
    pub status: ContractStatus,
    /// The availability objective's target, percent.
    pub target_percent: Option<f64>,
}

/// One location: its agents and when the collector last heard from any of them.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationRow {
    pub location: String,
    /// Agent ids at this location, sorted.
    pub agents: Vec<String>,
    pub last_seen: Option<Timestamp>,
    /// No agent of the location heard from for [`SILENT_AFTER`].
    pub silent: bool,
    /// Rule 1a held in the latest settled minute (`slaprobe_location_impaired`).
    pub impaired: bool,
    /// Impaired minutes counted so far × 60 (`slaprobe_location_impaired_seconds_total`).
    pub impaired_seconds: u64,
}

/// Why a page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The store is not open or the SLA replay is running.
    #[error("the collector is starting (store not open or SLA replay running)")]
    Starting,
    /// The report pool is full ([`crate::sla_service::REPORTS_AT_ONCE`]).
    #[error("reports are being built already; this page reloads shortly")]
    Busy,
    #[error("{0}")]
    Request(#[from] ReportRequestError),
    #[error("reading the store failed: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Gathers the overview: the SLA service's status and the agents' rows.
pub async fn gather(app: &AppState, now: Timestamp) -> Result<Overview, PageError> {
    let status = app.sla().status(now).ok_or(PageError::Starting)?;
    let agents = agent_statuses(app).await?.ok_or(PageError::Starting)?;
    let impairment = app.sla().locations().locations;
    let contracts = &app.config().contracts;
    let cards = status
        .into_iter()
        .map(|s| Card {
            target_percent: contracts
                .iter()
                .find(|c| c.name == s.contract)
                .and_then(Contract::availability_target),
            status: s,
        })
        .collect();
    Ok(Overview {
        now,
        cards,
        locations: location_rows(&agents, &impairment, now),
    })
}

/// Gathers one contract's month (the current one without `month`): the
/// same report as `/api/v1/reports/...`, evaluated from the store.
pub async fn gather_contract(
    app: &AppState,
    name: &str,
    month: Option<&str>,
    now: Timestamp,
) -> Result<MonthReport, PageError> {
    let contracts = &app.config().contracts;
    let current = contracts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| Month::containing(now, &c.tz))
        .map(|m| m.to_string())
        .unwrap_or_default();
    let (contract, month) = resolve_request(contracts, name, month.unwrap_or(&current), now)?;
    let store = app.store().cloned().ok_or(PageError::Starting)?;
    if app.sla().status(now).is_none() {
        return Err(PageError::Starting);
    }
    // The same bounded pool as the report endpoint: a page is a report.
    let permit = app.sla().report_permit().ok_or(PageError::Busy)?;
    let contract = contract.clone();
    Ok(store
        .read(move |r| {
            let _permit = permit;
            report_from_store(r, &contract, month, now)
        })
        .await?)
}

/// Groups agents by location; a location's last contact is its agents' latest.
pub fn location_rows(
    agents: &[AgentStatus],
    impairment: &BTreeMap<String, LocationStatus>,
    now: Timestamp,
) -> Vec<LocationRow> {
    let mut by_loc: BTreeMap<&str, LocationRow> = BTreeMap::new();
    for a in agents {
        let row = by_loc
            .entry(a.location.as_str())
            .or_insert_with(|| LocationRow {
                location: a.location.clone(),
                agents: Vec::new(),
                last_seen: None,
                silent: true,
                impaired: false,
                impaired_seconds: 0,
            });
        row.agents.push(a.id.clone());
        if a.last_seen
            .is_some_and(|t| row.last_seen.is_none_or(|l| t > l))
        {
            row.last_seen = a.last_seen;
        }
    }
    by_loc
        .into_values()
        .map(|mut row| {
            row.agents.sort();
            row.silent = row
                .last_seen
                .is_none_or(|t| now.duration_since(t) > SILENT_AFTER);
            if let Some(l) = impairment.get(&row.location) {
                row.impaired = l.impaired;
                row.impaired_seconds = l.impaired_seconds;
            }
            row
        })
        .collect()
}

async fn overview_handler(State(app): State<AppState>) -> Response {
    let now = Timestamp::now();
    match gather(&app, now).await {
        Ok(o) => html_response(StatusCode::OK, render_overview(&o)),
        Err(e) => error_page(&e),
    }
}

async fn contract_handler(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let now = Timestamp::now();
    let month = query.get("month").map(String::as_str);
    match gather_contract(&app, &name, month, now).await {
        Ok(r) => html_response(StatusCode::OK, render_contract(&r, now)),
        Err(e) => error_page(&e),
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn error_page(e: &PageError) -> Response {
    let status = match e {
        PageError::Starting => StatusCode::SERVICE_UNAVAILABLE,
        PageError::Busy => StatusCode::TOO_MANY_REQUESTS,
        PageError::Request(ReportRequestError::UnknownContract { .. }) => StatusCode::NOT_FOUND,
        PageError::Request(_) => StatusCode::BAD_REQUEST,
        PageError::Store(_) => {
            tracing::error!(error = %e, "status page: reading the store failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut out = String::new();
    head(&mut out, "slaprobe status", 5);
    let _ = writeln!(
        out,
        "<main><h1>slaprobe status</h1><p class=\"notice\">{}</p><p><a href=\"/\">Back to the overview</a></p></main></body></html>",
        Esc(&e.to_string())
    );
    let mut resp = html_response(status, out);
    if matches!(e, PageError::Starting | PageError::Busy) {
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("5"),
        );
    }
    resp
}

const CSS: &str = "
:root{--ok:#1b7f3b;--bad:#b3261e;--warn:#8a5a00;--mute:#5f6368;--line:#dadce0;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#202124;background:var(--bg)}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:.2rem 0}
h2{font-size:1.1rem;margin:0}
a{color:#1a56c4}
.sub{color:var(--mute);margin:0 0 1rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(19rem,1fr));gap:1rem}
.card{background:#fff;border:1px solid var(--line);border-left:6px solid var(--ok);border-radius:8px;padding:.9rem 1rem}
.card.down{border-left-color:var(--bad)}
.card.breach{border-left-color:var(--warn)}
.card header{display:flex;justify-content:space-between;align-items:baseline;gap:.5rem;flex-wrap:wrap}
.name{color:var(--mute);font-size:.85rem}
.pill{display:inline-block;border-radius:1rem;padding:0 .6rem;font-size:.8rem;font-weight:600;color:#fff;background:var(--ok)}
.pill.down,.pill.silent,.pill.no{background:var(--bad)}
.pill.impaired{background:var(--warn)}
.big{font-size:1.7rem;font-weight:650}
.big.bad{color:var(--bad)}
dl{display:grid;grid-template-columns:auto 1fr;gap:.15rem .8rem;margin:.6rem 0}
dt{color:var(--mute)}
dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.bad{color:var(--bad)}
.obj{list-style:none;padding:0;margin:.4rem 0}
.obj li{display:flex;justify-content:space-between;align-items:baseline;gap:.5rem;padding:.1rem 0}
.obj .pill{flex:none;white-space:nowrap}
td.t{white-space:nowrap}
.reports{font-size:.9rem;border-top:1px solid var(--line);padding-top:.5rem;margin-top:.5rem}
.reports div{margin:.15rem 0}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:8px;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.85rem;color:var(--mute);font-weight:600}
section{margin:1.5rem 0}
.bar{background:#e8eaed;border-radius:3px;height:.7rem;min-width:4rem}
.bar span{display:block;height:100%;border-radius:3px;background:var(--ok)}
.bar span.bad{background:var(--bad)}
.scroll{overflow-x:auto}
.notice{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem}
footer{color:var(--mute);font-size:.85rem;margin:2rem 0 1rem}
@media (max-width:36rem){main{padding:.6rem}.hide-narrow{display:none}}
";

fn head(out: &mut String, title: &str, refresh: u32) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\
         <title>{}</title><style>{CSS}</style></head><body>\n",
        Esc(title)
    );
}

fn pct(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$} %"),
        _ => "—".to_string(),
    }
}

/// `Tue 1 Dec 14:05` in `tz` (the page names the zone once).
fn local(ts: Timestamp, tz: &jiff::tz::TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%a %-d %b %H:%M")
        .to_string()
}

fn ago(now: Timestamp, t: Timestamp) -> String {
    let secs = now.duration_since(t).as_secs().max(0) as u64;
    format!("{} ago", human_duration(secs))
}

fn month_title(m: Month) -> String {
    m.first_day().strftime("%B %Y").to_string()
}

fn report_links(out: &mut String, contract: &str, month: Month) {
    let _ = write!(out, "<div>{}:", Esc(&month_title(month)));
    for (label, f) in [("HTML", "html"), ("CSV", "csv"), ("JSON", "json")] {
        let _ = write!(
            out,
            " <a href=\"/api/v1/reports/{}/{month}?format={f}\">{label}</a>",
            Esc(contract)
        );
    }
    out.push_str("</div>");
}

/// One line per objective: what is promised, what was attained, met or not.
fn objectives(out: &mut String, list: &[ObjectiveResult]) {
    out.push_str("<ul class=\"obj\">");
    for o in list {
        let text = if o.kind == crate::sla::ObjectiveKind::Availability {
            format!("Availability ≥ {} %", o.target)
        } else {
            // CLS is unitless; every other percentile objective is seconds.
            let unit = if o.metric.as_deref() == Some("cls") {
                ""
            } else {
                " s"
            };
            let attained = o
                .attained
                .map_or_else(|| "—".to_string(), |a| format!("{a:.3}{unit}"));
            format!(
                "{} p{} ≤ {:.3}{unit} (now {attained})",
                o.quantity().unwrap_or("latency"),
                o.percentile.unwrap_or(0.0),
                o.target
            )
        };
        let _ = write!(
            out,
            "<li data-objective=\"{}\">{}<span class=\"pill{}\">{}</span></li>",
            Esc(&o.objective),
            Esc(&text),
            if o.met { "" } else { " no" },
            if o.met { "met" } else { "missed" },
        );
    }
    out.push_str("</ul>");
}

/// The overview page.
pub fn render_overview(o: &Overview) -> String {
    let mut out = String::new();
    head(&mut out, "slaprobe status", REFRESH_SECONDS);
    let down = o.cards.iter().filter(|c| c.status.down_now).count();
    let _ = writeln!(
        out,
        "<main><h1>slaprobe status</h1><p class=\"sub\">{} contracts, {} down now · as of {} UTC · refreshes every {REFRESH_SECONDS} s</p>",
        o.cards.len(),
        down,
        o.now.strftime("%Y-%m-%d %H:%M:%S")
    );
    if o.cards.is_empty() {
        out.push_str("<p class=\"notice\">No contracts are configured.</p>\n");
    }
    out.push_str("<div class=\"cards\">\n");
    for c in &o.cards {
        card(&mut out, c);
    }
    out.push_str("</div>\n");
    locations(&mut out, &o.locations, o.now);
    out.push_str(
        "<footer>Month to date in each contract's time zone. Machine-readable: \
         <a href=\"/api/v1/contracts\">/api/v1/contracts</a>, \
         <a href=\"/api/v1/agents\">/api/v1/agents</a>, \
         <a href=\"/metrics\">/metrics</a>.</footer></main></body></html>\n",
    );
    out
}

fn card(out: &mut String, c: &Card) {
    let s = &c.status;
    let met = s.objectives.iter().all(|o| o.met);
    let class = if s.down_now {
        "card down"
    } else if !met {
        "card breach"
    } else {
        "card"
    };
    let below = matches!((s.availability_percent, c.target_percent), (Some(a), Some(t)) if a < t);
    let _ = write!(
        out,
        "<article class=\"{class}\" data-contract=\"{name}\"><header><h2><a href=\"/status/{name}\">{vendor}</a></h2>{pill}</header>\
         <div class=\"name\">{name} · {month}</div>\
         <div class=\"big{big}\" data-field=\"availability\">{avail}</div>\
         <div class=\"name\">availability month to date, target {target}</div><dl>",
        name = Esc(&s.contract),
        vendor = Esc(&s.vendor),
        pill = if s.down_now {
            "<span class=\"pill down\" data-field=\"down\">DOWN now</span>"
        } else {
            "<span class=\"pill\" data-field=\"down\">up</span>"
        },
        month = Esc(&month_title(s.month)),
        big = if below { " bad" } else { "" },
        avail = pct(s.availability_percent, 3),
        target = pct(c.target_percent, 2),
    );
    let budget = s.error_budget_remaining.map(|b| b * 100.0);
    let _ = write!(
        out,
        "<dt>Error budget left</dt><dd data-field=\"budget\"{}>{}</dd>",
        if budget.is_some_and(|b| b < 0.0) {
            " class=\"bad\""
        } else {
            ""
        },
        match budget {
            Some(b) if b < 0.0 => format!("overspent ({b:.0} %)"),
            b => pct(b, 1),
        }
    );
    let _ = write!(
        out,
        "<dt>Downtime</dt><dd>{}</dd><dt>Incidents this month</dt><dd data-field=\"incidents\">{}</dd>\
         <dt>Credit owed so far</dt><dd data-field=\"credit\"{}>{}</dd>",
        human_duration(s.downtime_seconds),
        s.incidents,
        if s.credit_percent > 0.0 {
            " class=\"bad\""
        } else {
            ""
        },
        pct(Some(s.credit_percent), 0),
    );
    out.push_str("</dl>");
    objectives(out, &s.objectives);
    out.push_str("<div class=\"reports\">Reports");
    report_links(out, &s.contract, s.month);
    report_links(out, &s.contract, s.month.prev());
    let _ = writeln!(
        out,
        "<div><a href=\"/status/{}\">Incidents and daily availability</a></div></div></article>",
        Esc(&s.contract)
    );
}

fn locations(out: &mut String, rows: &[LocationRow], now: Timestamp) {
    out.push_str("<section><h2>Locations</h2><div class=\"scroll\"><table><thead><tr><th>Location</th><th>Last seen</th><th>State</th><th class=\"hide-narrow\">Agents</th></tr></thead><tbody>\n");
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"4\">No agents yet.</td></tr>\n");
    }
    for r in rows {
        let seen = match r.last_seen {
            Some(t) => format!(
                "{} <span class=\"name\">({} UTC)</span>",
                ago(now, t),
                t.strftime("%Y-%m-%d %H:%M:%S")
            ),
            None => "never".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr data-location=\"{loc}\"><td>{loc}</td><td>{seen}</td><td>{state}</td><td class=\"hide-narrow\">{agents}</td></tr>",
            loc = Esc(&r.location),
            state = location_state(r),
            agents = Esc(&r.agents.join(", ")),
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// A location's State cell: silent, else impaired, else reporting; with
/// the impaired time so far when there was any.
fn location_state(r: &LocationRow) -> String {
    let pill = if r.silent {
        "<span class=\"pill silent\">silent</span>"
    } else if r.impaired {
        "<span class=\"pill impaired\" title=\"Its canaries fail or it reports agent_error (rule 1a): its results count as no data, not against vendors.\">impaired</span>"
    } else {
        "<span class=\"pill\">reporting</span>"
    };
    if r.impaired_seconds == 0 {
        return pill.to_string();
    }
    format!(
        "{pill} <span class=\"name\">(impaired {} so far)</span>",
        human_duration(r.impaired_seconds)
    )
}

/// One contract's page: summary, incidents, daily availability, coverage.
pub fn render_contract(r: &MonthReport, now: Timestamp) -> String {
    let (tz, _) = crate::render::zone(&r.timezone);
    let mut out = String::new();
    head(
        &mut out,
        &format!("{} · {} · slaprobe", r.vendor, r.contract),
        REFRESH_SECONDS * 2,
    );
    let _ = write!(
        out,
        "<main><p><a href=\"/\">← All contracts</a></p><h1>{vendor}</h1>\
         <p class=\"sub\">{name} · {month} ({zone}){asof}</p>",
        vendor = Esc(&r.vendor),
        name = Esc(&r.contract),
        month = Esc(&month_title(r.month)),
        zone = Esc(&r.timezone),
        asof = if r.as_of.is_some() {
            " · month to date"
        } else {
            " · final"
        },
    );
    let _ = write!(
        out,
        "<div class=\"cards\"><article class=\"card\"><dl>\
         <dt>Availability</dt><dd data-field=\"availability\">{}</dd>\
         <dt>Downtime</dt><dd>{}</dd><dt>Incidents</dt><dd>{}</dd>\
         <dt>Credit</dt><dd>{}</dd><dt>Maintenance</dt><dd>{}</dd><dt>No data</dt><dd>{}</dd>",
        pct(r.availability_percent, 3),
        human_duration(r.downtime_seconds),
        r.incidents.len(),
        pct(Some(r.credit_percent), 0),
        human_duration(r.maintenance_seconds),
        human_duration(r.nodata_seconds),
    );
    out.push_str("</dl>");
    objectives(&mut out, &r.objectives);
    out.push_str("<div class=\"reports\">Report");
    report_links(&mut out, &r.contract, r.month);
    let prev = r.month.prev();
    let _ = write!(
        out,
        "<div><a href=\"/status/{c}?month={prev}\">← {}</a>",
        Esc(&month_title(prev)),
        c = Esc(&r.contract)
    );
    let next = r.month.next();
    if next.period(&tz).0 <= now {
        let _ = write!(
            out,
            " · <a href=\"/status/{c}?month={next}\">{} →</a>",
            Esc(&month_title(next)),
            c = Esc(&r.contract)
        );
    }
    out.push_str("</div></div></article></div>\n");

    incidents(&mut out, r, &tz);
    daily(&mut out, r);
    coverage(&mut out, &r.locations, &tz);
    let _ = writeln!(
        out,
        "<footer>Slots of {}, quorum {}, locations: {}. Evidence: {} results.</footer></main></body></html>",
        human_duration(r.slot_seconds),
        r.quorum,
        Esc(&r
            .locations
            .iter()
            .map(|l| l.location.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
        r.evidence.results
    );
    out
}

/// The incidents table, newest first, times in the contract's zone.
fn incidents(out: &mut String, r: &MonthReport, tz: &jiff::tz::TimeZone) {
    let _ = writeln!(
        out,
        "<section><h2>Incidents ({})</h2><div class=\"scroll\"><table><thead><tr><th>Start ({})</th><th>Duration</th><th>Locations</th><th>Classes</th><th class=\"hide-narrow\">Sample error</th></tr></thead><tbody>",
        r.incidents.len(),
        Esc(&r.timezone)
    );
    if r.incidents.is_empty() {
        out.push_str("<tr><td colspan=\"5\">No incidents.</td></tr>\n");
    }
    // Newest first: the one that matters now is on top.
    for i in r.incidents.iter().rev() {
        let _ = writeln!(
            out,
            "<tr class=\"incident\"><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td class=\"hide-narrow\">{}</td></tr>",
            Esc(&local(i.start, tz)),
            human_duration(i.duration_seconds),
            Esc(&i.locations.join(", ")),
            Esc(&i.classes.join(", ")),
            Esc(i.sample_message.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// Most impaired stretches listed per location; the report has them all.
const STRETCHES_SHOWN: usize = 5;

/// Monitoring coverage per location (rule 1a): impaired and silent time in
/// the month, the failures impairment kept from counting, and when.
fn coverage(out: &mut String, locations: &[LocationCoverage], tz: &jiff::tz::TimeZone) {
    out.push_str("<section><h2>Monitoring coverage</h2><div class=\"scroll\"><table><thead><tr><th>Location</th><th>Impaired</th><th>Silent</th><th>Failures not counted</th><th class=\"hide-narrow\">Impaired stretches</th></tr></thead><tbody>\n");
    if locations.is_empty() {
        out.push_str("<tr><td colspan=\"5\">No locations.</td></tr>\n");
    }
    for l in locations {
        let mut stretches: Vec<String> = l
            .impaired_stretches
            .iter()
            .take(STRETCHES_SHOWN)
            .map(|s| {
                format!(
                    "{} for {} ({})",
                    local(s.start, tz),
                    human_duration(s.duration_seconds),
                    s.reasons.join(", ")
                )
            })
            .collect();
        if l.impaired_stretches.len() > STRETCHES_SHOWN {
            stretches.push(format!(
                "{} more in the report",
                l.impaired_stretches.len() - STRETCHES_SHOWN
            ));
        }
        let excluded: u64 = l.excluded_failures.iter().map(|e| e.duration_seconds).sum();
        let _ = writeln!(
            out,
            "<tr class=\"coverage\" data-location=\"{loc}\"><td>{loc}</td><td{bad}>{}</td><td>{}</td><td>{}</td><td class=\"hide-narrow\">{}</td></tr>",
            human_duration(l.impaired_seconds),
            human_duration(l.silent_seconds),
            if excluded == 0 {
                "none".to_string()
            } else {
                human_duration(excluded)
            },
            Esc(&stretches.join("; ")),
            loc = Esc(&l.location),
            bad = if l.impaired_seconds > 0 {
                " class=\"bad\""
            } else {
                ""
            },
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

/// The daily availability table, days below the target marked.
fn daily(out: &mut String, r: &MonthReport) {
    out.push_str("<section><h2>Daily availability</h2><div class=\"scroll\"><table><thead><tr><th>Day</th><th>Availability</th><th></th><th>Downtime</th><th class=\"hide-narrow\">Maintenance</th><th class=\"hide-narrow\">No data</th></tr></thead><tbody>\n");
    let target = r
        .objectives
        .iter()
        .find(|o| o.kind == crate::sla::ObjectiveKind::Availability)
        .map(|o| o.target);
    // Days still to come have no counted slot yet.
    for d in r
        .days
        .iter()
        .filter(|d| d.slots.up + d.slots.down + d.slots.maintenance + d.slots.nodata > 0)
    {
        let bad = matches!((d.availability_percent, target), (Some(a), Some(t)) if a < t);
        let width = d.availability_percent.unwrap_or(0.0).clamp(0.0, 100.0);
        let _ = writeln!(
            out,
            "<tr class=\"day\"><td class=\"t\">{}</td><td{}>{}</td><td><div class=\"bar\"><span{} style=\"width:{width:.1}%\"></span></div></td><td>{}</td><td class=\"hide-narrow\">{}</td><td class=\"hide-narrow\">{}</td></tr>",
            d.date,
            if bad { " class=\"bad\"" } else { "" },
            pct(d.availability_percent, 3),
            if bad { " class=\"bad\"" } else { "" },
            human_duration(d.downtime_seconds),
            human_duration(d.maintenance_seconds),
            human_duration(d.nodata_seconds),
        );
    }
    out.push_str("</tbody></table></div></section>\n");
}

#[cfg(test)]
mod tests;
