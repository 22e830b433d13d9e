//! The `browser` probe: load the page in headless Chromium and report what a
//! visitor's browser sees: Core Web Vitals (LCP, CLS, FCP, TTFB, TBT), the
//! `DOMContentLoaded` and `load` times, requests, failed requests, bytes and
//! uncaught JavaScript errors, plus a screenshot when the probe fails.
//!
//! One long-lived Chromium per agent ([`Browser`], started on the first
//! browser probe), a fresh incognito browser context per probe, at most
//! `browser_concurrency` probes at once. The browser is replaced when it
//! crashed, stopped answering or grew past `browser_max_rss`.
//!
//! How a probe ends: after the `load` event, once the network has been idle
//! for [`QUIET`] (or [`SETTLE_MAX`] after load at the latest), so that late
//! layout shifts, LCP candidates and long tasks are seen; a page that never
//! loads is given up at the check's timeout less a reserve for reading the
//! figures and taking the screenshot. The Web Vitals themselves are measured
//! inside the page by `vitals.js` (PerformanceObserver, as the web-vitals
//! library does); requests, bytes and errors come from the DevTools
//! protocol's Network and Runtime events.

pub mod cdp;
pub mod process;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use slaprobe_wire::{BrowserDetail, Failure, FailureClass, RequestFailure};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use self::cdp::{Cdp, CdpError, Event};
use self::process::{BrowserProcess, LaunchError, VIEWPORT};
use super::Outcome;
use super::bound;
use crate::config::{BrowserSettings, BrowserSpec};

/// The in-page observers, injected before the page's own scripts.
const VITALS_JS: &str = include_str!("vitals.js");
/// Network quiet after `load` that ends a probe.
pub const QUIET: Duration = Duration::from_secs(1);
/// Longest wait for the page to render a frame before its figures are read.
const FRAME_WAIT: Duration = Duration::from_millis(500);
/// Longest wait after `load` for the network to go quiet.
pub const SETTLE_MAX: Duration = Duration::from_secs(5);
/// Largest screenshot kept (decoded PNG bytes).
pub const MAX_SCREENSHOT: usize = 200_000;
/// Failed requests listed (all are counted).
const MAX_FAILURES: usize = 20;
/// Exception messages listed (all are counted).
const MAX_JS_MESSAGES: usize = 5;
/// Requests tracked by id for one page; past this they are only counted.
const MAX_TRACKED: usize = 50_000;
/// How long a browser-level command may take before the browser counts as hung.
const BROWSER_ANSWER: Duration = Duration::from_secs(10);

/// The agent's Chromium: started on first use, shared by every browser probe.
pub struct Browser {
    settings: BrowserSettings,
    permits: Arc<Semaphore>,
    /// The running browser. A launch holds the lock from a task of its
    /// own, so a probe that times out while Chromium starts does not throw
    /// the half-started browser away (it would never start under a timeout
    /// shorter than its start-up).
    slot: Arc<tokio::sync::Mutex<Option<Arc<Instance>>>>,
    restarts: AtomicU64,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One running browser. Replaced (and, once its last probe let go, killed)
/// when [`Instance::unhealthy`] says so.
struct Instance {
    process: Mutex<BrowserProcess>,
    cdp: Arc<Cdp>,
    /// Set when a command timed out: the browser is hung.
    hung: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Instance {
    /// Why this browser must be replaced, if it must.
    fn unhealthy(&self, max_rss: u64) -> Option<String> {
        if let Some(why) = lock(&self.hung).clone() {
            return Some(why);
        }
        let mut p = lock(&self.process);
        if !p.alive() {
            return Some(format!(
                "it exited or its connection closed ({})",
                self.cdp.closed().unwrap_or_else(|| "process gone".into())
            ));
        }
        let mem = p.memory_bytes();
        (mem > max_rss).then(|| format!("it uses {mem} bytes, over browser_max_rss {max_rss}"))
    }

    fn mark_hung(&self, why: String) {
        lock(&self.hung).get_or_insert(why);
    }
}

impl Browser {
    /// A browser with these settings; nothing starts until the first probe.
    pub fn new(settings: BrowserSettings) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(settings.concurrency)),
            settings,
            slot: Arc::new(tokio::sync::Mutex::new(None)),
            restarts: AtomicU64::new(0),
        }
    }

    /// How many times the browser was replaced (crash, hang, memory).
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// The running browser's main pid and its process tree's memory (bytes).
    pub async fn current(&self) -> Option<(u32, u64)> {
        let slot = self.slot.lock().await;
        let inst = slot.as_ref()?;
        let p = lock(&inst.process);
        Some((p.pid()?, p.memory_bytes()))
    }

    /// Stops the browser now (it restarts on the next probe).
    pub async fn stop(&self) {
        self.slot.lock().await.take();
    }

    async fn instance(&self) -> Result<Arc<Instance>, LaunchError> {
        let mut slot = self.slot.clone().lock_owned().await;
        if let Some(inst) = slot.as_ref() {
            match inst.unhealthy(self.settings.max_rss) {
                None => return Ok(inst.clone()),
                Some(why) => {
                    tracing::warn!("restarting Chromium: {why}");
                    self.restarts.fetch_add(1, Ordering::Relaxed);
                    slot.take();
                }
            }
        }
        let settings = self.settings.clone();
        let launch = tokio::spawn(async move {
            let p = process::launch(&settings).await?;
            let inst = Arc::new(Instance {
                cdp: p.cdp.clone(),
                process: Mutex::new(p),
                hung: Mutex::new(None),
            });
            *slot = Some(inst.clone());
            Ok(inst)
        });
        match launch.await {
            Ok(r) => r,
            Err(e) => Err(LaunchError::NoAnswer {
                why: format!("the launch task failed: {e}"),
                stderr: String::new(),
            }),
        }
    }
}

/// Why a step of the probe did not complete.
#[derive(Debug)]
enum StepError {
    Cdp(CdpError),
    /// The step's time ran out.
    Late,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cdp(e) => e.fmt(f),
            Self::Late => f.write_str("no answer in time"),
        }
    }
}

async fn call_by(
    cdp: &Cdp,
    by: Instant,
    session: Option<&str>,
    method: &str,
    params: Value,
) -> Result<Value, StepError> {
    match tokio::time::timeout_at(by, cdp.call(session, method, params)).await {
        Ok(r) => r.map_err(StepError::Cdp),
        Err(_) => Err(StepError::Late),
    }
}

/// Disposes of a probe's browser context when the probe ends, however it
/// ends (also when the probe's future is dropped at the check's timeout),
/// and only then lets the next probe in.
struct ContextGuard {
    inst: Arc<Instance>,
    context: String,
    session: Option<String>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let inst = self.inst.clone();
        let context = std::mem::take(&mut self.context);
        let session = self.session.take();
        let permit = self.permit.take();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // the runtime is going away, and the browser with it
        };
        rt.spawn(async move {
            if let Some(s) = &session {
                inst.cdp.unsubscribe(s);
            }
            let by = Instant::now() + BROWSER_ANSWER;
            let r = call_by(
                &inst.cdp,
                by,
                None,
                "Target.disposeBrowserContext",
                json!({"browserContextId": context}),
            )
            .await;
            if let Err(e) = r
                && inst.cdp.closed().is_none()
            {
                inst.mark_hung(format!("Target.disposeBrowserContext: {e}"));
            }
            drop(permit);
        });
    }
}

/// Everything the event stream told about the page.
#[derive(Debug)]
struct Watch {
    main_frame: String,
    doc_request: Option<String>,
    doc_status: Option<u16>,
    doc_url: Option<String>,
    doc_error: Option<String>,
    /// Request id → (url, already counted as failed).
    tracked: HashMap<String, (String, bool)>,
    in_flight: HashSet<String>,
    requests: u32,
    failed: u32,
    failures: Vec<RequestFailure>,
    transfer_bytes: u64,
    last_activity: Instant,
    load_at: Option<Instant>,
    js_errors: u32,
    js_messages: Vec<String>,
    crashed: bool,
}

impl Watch {
    fn new(main_frame: String) -> Self {
        Self {
            main_frame,
            doc_request: None,
            doc_status: None,
            doc_url: None,
            doc_error: None,
            tracked: HashMap::new(),
            in_flight: HashSet::new(),
            requests: 0,
            failed: 0,
            failures: Vec::new(),
            transfer_bytes: 0,
            last_activity: Instant::now(),
            load_at: None,
            js_errors: 0,
            js_messages: Vec::new(),
            crashed: false,
        }
    }

    fn fail(&mut self, id: &str, status: Option<u16>, error: Option<String>) {
        let Some((url, failed)) = self.tracked.get_mut(id) else {
            return;
        };
        if *failed {
            return;
        }
        *failed = true;
        self.failed += 1;
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(RequestFailure {
                url: bound::cut_owned(url.clone(), bound::MAX_URL),
                status,
                error,
            });
        }
    }

    fn on_event(&mut self, ev: Event, cdp: &Arc<Cdp>, session: &str) {
        let p = &ev.params;
        let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let id = str_of(&p["requestId"]);
        match ev.method.as_str() {
            "Network.requestWillBeSent" => {
                let url = str_of(&p["request"]["url"]);
                if url.starts_with("data:") || url.starts_with("blob:") {
                    return; // not a network request
                }
                // The browser's own favicon fetch (not the page's, which has
                // a type of its own): whether and when it happens varies, and
                // a missing favicon is nothing a visitor sees.
                if p["type"] == "Other"
                    && url::Url::parse(&url).is_ok_and(|u| u.path() == "/favicon.ico")
                {
                    return;
                }
                self.last_activity = Instant::now();
                if p["type"] == "Document" && p["frameId"] == self.main_frame.as_str() {
                    self.doc_request = Some(id.clone());
                    self.doc_url = Some(url.clone());
                }
                if !self.tracked.contains_key(&id) {
                    self.requests += 1;
                    if self.tracked.len() < MAX_TRACKED {
                        self.in_flight.insert(id.clone());
                        self.tracked.insert(id, (url, false));
                    }
                } else if let Some(entry) = self.tracked.get_mut(&id) {
                    entry.0 = url; // a redirect: same request, next URL
                }
            }
            "Network.responseReceived" => {
                self.last_activity = Instant::now();
                let status = p["response"]["status"]
                    .as_f64()
                    .map(|s| s as u16)
                    .filter(|s| *s > 0);
                if self.doc_request.as_deref() == Some(id.as_str()) {
                    self.doc_status = status;
                    self.doc_url = Some(str_of(&p["response"]["url"]));
                }
                if let Some(s) = status.filter(|s| *s >= 400) {
                    self.fail(&id, Some(s), None);
                }
            }
            "Network.dataReceived" => self.last_activity = Instant::now(),
            "Network.loadingFinished" => {
                self.last_activity = Instant::now();
                self.transfer_bytes += p["encodedDataLength"].as_f64().unwrap_or(0.0) as u64;
                self.in_flight.remove(&id);
            }
            "Network.loadingFailed" => {
                self.last_activity = Instant::now();
                self.in_flight.remove(&id);
                let error = str_of(&p["errorText"]);
                if self.doc_request.as_deref() == Some(id.as_str()) {
                    self.doc_error = Some(error.clone());
                }
                // Cancelled by the page or by the navigation: not a failure.
                if p["canceled"] != true {
                    self.fail(&id, None, Some(bound::cut_owned(error, 256)));
                }
            }
            "Page.loadEventFired" => {
                self.load_at.get_or_insert_with(Instant::now);
            }
            "Runtime.exceptionThrown" => {
                self.js_errors += 1;
                if self.js_messages.len() < MAX_JS_MESSAGES {
                    let d = &p["exceptionDetails"];
                    let msg = d["exception"]["description"]
                        .as_str()
                        .or_else(|| d["text"].as_str())
                        .unwrap_or("(no message)");
                    self.js_messages
                        .push(bound::cut_owned(msg.to_string(), bound::MAX_MESSAGE));
                }
            }
            // A dialog blocks the page until answered; a visitor would dismiss it.
            "Page.javascriptDialogOpening" => {
                let (cdp, session) = (cdp.clone(), session.to_string());
                tokio::spawn(async move {
                    let _ = cdp
                        .call(
                            Some(&session),
                            "Page.handleJavaScriptDialog",
                            json!({"accept": true}),
                        )
                        .await;
                });
            }
            "Inspector.targetCrashed" => self.crashed = true,
            _ => {}
        }
    }

    /// When to stop watching: quiet after load, else `give_up`.
    fn settle_at(&self, give_up: Instant) -> Instant {
        let Some(load) = self.load_at else {
            return give_up;
        };
        let mut at = (load + SETTLE_MAX).min(give_up);
        if self.in_flight.is_empty() {
            at = at.min(self.last_activity.max(load) + QUIET);
        }
        at
    }
}

/// What `vitals.js` reports (milliseconds).
#[derive(Debug, Default, Deserialize)]
struct PageFigures {
    ttfb: Option<f64>,
    fcp: Option<f64>,
    lcp: Option<f64>,
    cls: Option<f64>,
    tbt: Option<f64>,
    dom_content_loaded: Option<f64>,
    load: Option<f64>,
    /// true / false, or the error of an invalid selector.
    selector: Option<Value>,
    url: Option<String>,
}

fn seconds(ms: Option<f64>) -> Option<f64> {
    ms.filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| (v * 1000.0).round() / 1_000_000.0)
}

/// Maps Chromium's navigation error to a failure class.
fn nav_class(error: &str) -> FailureClass {
    let e = error.trim_start_matches("net::");
    match e {
        "ERR_NAME_NOT_RESOLVED" | "ERR_NAME_RESOLUTION_FAILED" | "ERR_DNS_TIMED_OUT" => {
            FailureClass::DnsError
        }
        "ERR_CONNECTION_REFUSED" | "ERR_ADDRESS_UNREACHABLE" => FailureClass::ConnectRefused,
        "ERR_CONNECTION_TIMED_OUT" => FailureClass::ConnectTimeout,
        "ERR_TIMED_OUT" => FailureClass::Timeout,
        "ERR_CERT_DATE_INVALID" => FailureClass::TlsCertExpired,
        "ERR_CERT_AUTHORITY_INVALID" => FailureClass::TlsCertUntrusted,
        "ERR_CERT_COMMON_NAME_INVALID" => FailureClass::TlsHostnameMismatch,
        "ERR_TOO_MANY_REDIRECTS" => FailureClass::TooManyRedirects,
        _ if e.starts_with("ERR_SSL") || e.starts_with("ERR_CERT") => FailureClass::TlsHandshake,
        _ => FailureClass::Protocol,
    }
}

/// The `browser` probe, bounded by `deadline`.
pub async fn probe(browser: &Browser, spec: &BrowserSpec, deadline: Instant) -> Outcome {
    let permit = browser
        .permits
        .clone()
        .acquire_owned()
        .await
        .expect("the browser semaphore is never closed");
    // Chromium's start-up is the agent's business, not the site's: a probe
    // whose time runs out before the browser is up is no data.
    let up_by = deadline
        .checked_sub(Duration::from_millis(20))
        .unwrap_or(deadline);
    let inst = match tokio::time::timeout_at(up_by, browser.instance()).await {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Outcome::failed(FailureClass::AgentError, e.to_string()),
        Err(_) => {
            return Outcome::failed(
                FailureClass::AgentError,
                "Chromium was still starting when the probe's time ran out",
            );
        }
    };
    let now = Instant::now();
    let budget = deadline.saturating_duration_since(now);
    // Reading the figures and a screenshot take a little time of their own.
    let reserve = (budget / 5).clamp(Duration::from_millis(300), Duration::from_secs(3));
    let give_up = deadline.checked_sub(reserve).unwrap_or(now);
    let cdp = inst.cdp.clone();

    // Browser-level setup: a browser that does not answer these is hung.
    let setup_by = give_up.min(now + BROWSER_ANSWER);
    let context = match call_by(
        &cdp,
        setup_by,
        None,
        "Target.createBrowserContext",
        json!({"disposeOnDetach": true}),
    )
    .await
    {
        Ok(v) => str_field(&v, "browserContextId"),
        Err(e) => return browser_fault(&inst, "Target.createBrowserContext", e),
    };
    let mut guard = ContextGuard {
        inst: inst.clone(),
        context: context.clone(),
        session: None,
        permit: Some(permit),
    };
    let target = match call_by(
        &cdp,
        setup_by,
        None,
        "Target.createTarget",
        json!({"url": "about:blank", "browserContextId": context}),
    )
    .await
    {
        Ok(v) => str_field(&v, "targetId"),
        Err(e) => return browser_fault(&inst, "Target.createTarget", e),
    };
    let session = match call_by(
        &cdp,
        setup_by,
        None,
        "Target.attachToTarget",
        json!({"targetId": target, "flatten": true}),
    )
    .await
    {
        Ok(v) => str_field(&v, "sessionId"),
        Err(e) => return browser_fault(&inst, "Target.attachToTarget", e),
    };
    let mut events = cdp.subscribe(&session);
    guard.session = Some(session.clone());
    let s = Some(session.as_str());
    let (w, h) = VIEWPORT;
    for (method, params) in [
        ("Page.enable", json!({})),
        ("Network.enable", json!({})),
        ("Runtime.enable", json!({})),
        (
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": VITALS_JS}),
        ),
        (
            "Emulation.setDeviceMetricsOverride",
            json!({"width": w, "height": h, "deviceScaleFactor": 1, "mobile": false}),
        ),
    ] {
        if let Err(e) = call_by(&cdp, setup_by, s, method, params).await {
            return browser_fault(&inst, method, e);
        }
    }

    // Navigate, and follow the page until it is quiet after load.
    let mut watch = Watch::new(target.clone());
    let nav = cdp.call(s, "Page.navigate", json!({"url": spec.url.as_str()}));
    tokio::pin!(nav);
    let mut nav_answer: Option<Result<Value, CdpError>> = None;
    let mut nav_error: Option<String> = None;
    let mut browser_gone = None;
    loop {
        let until = watch.settle_at(give_up);
        tokio::select! {
            r = &mut nav, if nav_answer.is_none() => {
                if let Ok(v) = &r
                    && let Some(e) = v["errorText"].as_str().filter(|e| !e.is_empty())
                {
                    nav_error = Some(e.to_string());
                }
                if let Err(e) = &r {
                    nav_error = Some(e.to_string());
                }
                nav_answer = Some(r);
                if nav_error.is_some() {
                    break;
                }
            }
            ev = events.recv() => match ev {
                Some(ev) => {
                    watch.on_event(ev, &cdp, &session);
                    if watch.crashed {
                        break;
                    }
                }
                None => {
                    browser_gone = cdp.closed();
                    break;
                }
            },
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    // Events already queued still count (the last loadingFinished of a quiet page).
    while let Ok(ev) = events.try_recv() {
        watch.on_event(ev, &cdp, &session);
    }
    if let Some(why) = browser_gone.or_else(|| cdp.closed()) {
        return Outcome::failed(
            FailureClass::AgentError,
            format!("Chromium went away during the probe: {why}"),
        );
    }

    // Let the page render a frame first (two animation frames): on a
    // loaded machine the first paint of a page that just loaded can trail
    // its `load` event. Bounded, and nothing is lost if it does not come.
    if !watch.crashed {
        let frame_by = (Instant::now() + FRAME_WAIT).min(give_up + reserve / 4);
        let _ = call_by(
            &cdp,
            frame_by,
            s,
            "Runtime.evaluate",
            json!({
                "expression": "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
                "awaitPromise": true,
                "returnByValue": true,
            }),
        )
        .await;
    }

    // Read the figures from the page.
    let figures_by = give_up + reserve / 2;
    let arg = match &spec.selector_present {
        Some(sel) => serde_json::to_string(sel).expect("a string serializes"),
        None => "undefined".into(),
    };
    let expr = format!("typeof __slaprobeVitals === 'function' ? __slaprobeVitals({arg}) : null");
    let figures: PageFigures = if watch.crashed {
        PageFigures::default()
    } else {
        match call_by(
            &cdp,
            figures_by,
            s,
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        )
        .await
        {
            Ok(v) => v["result"]["value"]
                .as_str()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
            Err(e) => {
                tracing::debug!("reading the page's figures: {e}");
                PageFigures::default()
            }
        }
    };

    let mut detail = BrowserDetail {
        ttfb: seconds(figures.ttfb),
        fcp: seconds(figures.fcp),
        lcp: seconds(figures.lcp),
        cls: figures
            .cls
            .filter(|v| v.is_finite())
            .map(|v| (v * 1e6).round() / 1e6),
        tbt: seconds(figures.tbt),
        dom_content_loaded: seconds(figures.dom_content_loaded),
        load: seconds(figures.load),
        status: watch.doc_status,
        requests: watch.requests,
        failed_requests: watch.failed,
        failures: std::mem::take(&mut watch.failures),
        transfer_bytes: watch.transfer_bytes,
        js_errors: watch.js_errors,
        js_error_messages: std::mem::take(&mut watch.js_messages),
        final_url: figures
            .url
            .clone()
            .filter(|u| u != "about:blank")
            .or_else(|| watch.doc_url.clone()),
        screenshot: None,
        screenshot_note: None,
    };
    let failure = judge(
        spec,
        &watch,
        &detail,
        nav_error.as_deref(),
        &figures,
        budget,
    );
    if failure.is_some() && !watch.crashed {
        let shot_by = deadline
            .checked_sub(Duration::from_millis(20))
            .unwrap_or(deadline);
        match call_by(
            &cdp,
            shot_by,
            s,
            "Page.captureScreenshot",
            json!({"format": "png"}),
        )
        .await
        {
            Ok(v) => {
                let b64 = str_field(&v, "data");
                let size = decoded_len(&b64);
                if size > MAX_SCREENSHOT {
                    detail.screenshot_note = Some(format!(
                        "screenshot dropped: {size} bytes is over the {MAX_SCREENSHOT}-byte limit"
                    ));
                } else if !b64.is_empty() {
                    detail.screenshot = Some(b64);
                }
            }
            Err(e) => detail.screenshot_note = Some(format!("no screenshot: {e}")),
        }
    }
    drop(guard);
    Outcome {
        failure,
        browser: Some(detail),
        ..Default::default()
    }
}

/// Decides whether the probe failed, in order: the navigation, the
/// document's status, the load, the selector, JavaScript errors.
fn judge(
    spec: &BrowserSpec,
    watch: &Watch,
    detail: &BrowserDetail,
    nav_error: Option<&str>,
    figures: &PageFigures,
    budget: Duration,
) -> Option<Failure> {
    if watch.crashed {
        return Some(Failure::new(
            FailureClass::Protocol,
            "the page's renderer crashed",
        ));
    }
    let status_ok = |code: u16| match &spec.expect_status {
        Some(list) => list.contains(&code),
        None => (200..400).contains(&code),
    };
    if let Some(code) = watch.doc_status
        && !status_ok(code)
    {
        return Some(Failure::new(
            FailureClass::HttpStatus,
            format!("the document answered {code}"),
        ));
    }
    if let Some(e) = nav_error.or(watch.doc_error.as_deref()) {
        return Some(Failure::new(
            nav_class(e),
            format!("navigation failed: {e}"),
        ));
    }
    if watch.load_at.is_none() && detail.load.is_none() {
        let what = if watch.doc_status.is_none() {
            "no answer to the document request"
        } else {
            "the page did not finish loading (no load event)"
        };
        return Some(Failure::new(
            FailureClass::Timeout,
            format!(
                "{what} within {}",
                humantime::format_duration(round_ms(budget))
            ),
        ));
    }
    if let Some(sel) = &spec.selector_present {
        match &figures.selector {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => {
                return Some(Failure::new(
                    FailureClass::ContentMismatch,
                    format!("no element matches selector {sel:?}"),
                ));
            }
            Some(Value::String(e)) => {
                return Some(Failure::new(
                    FailureClass::ContentMismatch,
                    format!("selector {sel:?} is invalid: {e}"),
                ));
            }
            _ => {
                return Some(Failure::new(
                    FailureClass::ContentMismatch,
                    format!("selector {sel:?} could not be checked (the page did not answer)"),
                ));
            }
        }
    }
    if spec.fail_on_js_error && detail.js_errors > 0 {
        let first = detail
            .js_error_messages
            .first()
            .map(|m| m.lines().next().unwrap_or_default().to_string())
            .unwrap_or_default();
        return Some(Failure::new(
            FailureClass::PageJsError,
            format!(
                "{} uncaught JavaScript error(s); first: {first}",
                detail.js_errors
            ),
        ));
    }
    None
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

fn str_field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// Bytes a base64 string decodes to.
fn decoded_len(b64: &str) -> usize {
    let pad = b64.bytes().rev().take_while(|b| *b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(pad)
}

/// A browser that failed a setup command: the agent's fault, not the site's.
fn browser_fault(inst: &Instance, method: &str, e: StepError) -> Outcome {
    if matches!(e, StepError::Late) {
        inst.mark_hung(format!("{method} got no answer"));
    }
    Outcome::failed(
        FailureClass::AgentError,
        format!("Chromium failed {method}: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigation_errors_map_to_classes() {
        for (e, class) in [
            ("net::ERR_NAME_NOT_RESOLVED", FailureClass::DnsError),
            ("net::ERR_CONNECTION_REFUSED", FailureClass::ConnectRefused),
            ("net::ERR_CERT_DATE_INVALID", FailureClass::TlsCertExpired),
            (
                "net::ERR_CERT_AUTHORITY_INVALID",
                FailureClass::TlsCertUntrusted,
            ),
            (
                "net::ERR_CERT_COMMON_NAME_INVALID",
                FailureClass::TlsHostnameMismatch,
            ),
            ("net::ERR_SSL_PROTOCOL_ERROR", FailureClass::TlsHandshake),
            (
                "net::ERR_TOO_MANY_REDIRECTS",
                FailureClass::TooManyRedirects,
            ),
            ("net::ERR_EMPTY_RESPONSE", FailureClass::Protocol),
        ] {
            assert_eq!(nav_class(e), class, "{e}");
        }
    }

    #[test]
    fn base64_sizes() {
        assert_eq!(decoded_len("TWFu"), 3);
        assert_eq!(decoded_len("TWE="), 2);
        assert_eq!(decoded_len("TQ=="), 1);
        assert_eq!(decoded_len(""), 0);
    }

    #[test]
    fn settles_after_quiet_or_at_the_cap() {
        let mut w = Watch::new("F".into());
        let give_up = Instant::now() + Duration::from_secs(30);
        assert_eq!(w.settle_at(give_up), give_up, "no load yet");
        let load = Instant::now();
        w.load_at = Some(load);
        w.last_activity = load;
        assert_eq!(w.settle_at(give_up), load + QUIET);
        w.in_flight.insert("1".into());
        assert_eq!(
            w.settle_at(give_up),
            load + SETTLE_MAX,
            "a request still open"
        );
        assert_eq!(w.settle_at(load), load, "never past give_up");
    }
}
