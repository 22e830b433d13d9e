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
//! How a probe ends: after the `load` event, once the page has been quiet
//! for [`QUIET`]: no network activity, and no paint, LCP candidate, layout
//! shift or long task reported by `vitals.js` (or [`SETTLE_MAX`] after load
//! at the latest), so that late layout shifts, LCP candidates and long tasks
//! are seen, and a second shift or task that follows the first within
//! [`QUIET`] too; a page that never
//! loads is given up at the check's timeout less a reserve for reading the
//! figures and taking the screenshot. The Web Vitals themselves are measured
//! inside the page by `vitals.js` (PerformanceObserver, as the web-vitals
//! library does); requests, bytes and errors come from the DevTools
//! protocol's Network and Runtime events.
//!
//! # Layout
//! - this module: the shared [`Browser`] and [`probe`], the steps of one probe in order;
//! - `session`: the DevTools side (context, page, commands, screenshot);
//! - `watch`: what the event stream tells about the page load;
//! - `verdict`: the figures, the result's `browser` section and whether it failed;
//! - [`cdp`]: the DevTools protocol connection; [`process`]: the Chromium process.

pub mod cdp;
pub mod process;
mod session;
mod verdict;
mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use slaprobe_wire::FailureClass;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use self::cdp::{Cdp, CdpError};
use self::process::{BrowserProcess, LaunchError};
use self::session::{OpenPage, call_by};
use self::verdict::{PageFigures, judge, page_detail};
use self::watch::Watch;
use super::Outcome;
use crate::config::{BrowserSettings, BrowserSpec};

/// The in-page observers, injected before the page's own scripts.
const VITALS_JS: &str = include_str!("vitals.js");
/// Quiet after `load` that ends a probe: no network activity and nothing
/// painted, shifted or blocking the page's main thread for this long.
pub const QUIET: Duration = Duration::from_secs(1);
/// The binding through which `vitals.js` reports that the page changed
/// (a paint, an LCP candidate, a layout shift, a long task).
const ACTIVITY_BINDING: &str = "__slaprobeActivity";
/// Longest wait for the page to render a frame before its figures are read.
const FRAME_WAIT: Duration = Duration::from_millis(500);
/// Longest wait after `load` for the network to go quiet.
pub const SETTLE_MAX: Duration = Duration::from_secs(5);
/// Largest screenshot kept (decoded PNG bytes).
pub const MAX_SCREENSHOT: usize = 200_000;
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

    /// Stops the browser and waits (at most [`process::REAP_WITHIN`]) until
    /// every one of its processes is gone and reaped, so that none is left,
    /// not even as `<defunct>`, once the agent exits. For the agent's end.
    pub async fn shutdown(&self) {
        let Some(inst) = self.slot.lock().await.take() else {
            return;
        };
        let pgid = {
            let mut p = lock(&inst.process);
            p.kill();
            p.pgid()
        };
        let by = Instant::now() + process::REAP_WITHIN;
        loop {
            let main_done = lock(&inst.process).reaped();
            let left = pgid.map_or(0, |g| process::reap_group(g, true));
            if main_done && left == 0 {
                break;
            }
            if Instant::now() >= by {
                tracing::warn!(left, "Chromium's processes were still not gone at shutdown");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
    // How long the page was given to load (what a timeout's message says).
    let waited = give_up.saturating_duration_since(now);
    let cdp = inst.cdp.clone();

    // Browser-level setup: a browser that does not answer these is hung.
    // A browser that does not answer within BROWSER_ANSWER is hung; one
    // that only ran out of the probe's (shorter) time is not.
    let setup_by = give_up.min(now + BROWSER_ANSWER);
    let hung_if_late = setup_by == now + BROWSER_ANSWER;
    let mut page = match session::open_page(&inst, permit, setup_by, hung_if_late).await {
        Ok(page) => page,
        Err(fault) => return fault,
    };
    let (mut watch, nav_error) = match follow(&cdp, &mut page, spec, give_up).await {
        Ok(seen) => seen,
        Err(gone) => return gone,
    };
    let s = Some(page.session.as_str());
    if !watch.crashed {
        let frame_by = (Instant::now() + FRAME_WAIT).min(give_up + reserve / 4);
        wait_for_a_frame(&cdp, s, frame_by).await;
    }
    let figures = if watch.crashed {
        PageFigures::default()
    } else {
        read_figures(&cdp, s, spec, give_up + reserve / 2).await
    };
    let mut detail = page_detail(&figures, &mut watch);
    let failure = judge(
        spec,
        &watch,
        &detail,
        nav_error.as_deref(),
        &figures,
        waited,
    );
    if failure.is_some() && !watch.crashed {
        let shot_by = deadline
            .checked_sub(Duration::from_millis(20))
            .unwrap_or(deadline);
        session::screenshot(&cdp, s, shot_by, &mut detail).await;
    }
    drop(page);
    Outcome {
        failure,
        browser: Some(detail),
        ..Default::default()
    }
}

/// Navigates `page` to the check's URL and follows its events until it is
/// quiet after load (or `give_up`): what was seen, and the navigation's
/// error. A browser that went away meanwhile is the agent's fault.
async fn follow(
    cdp: &Arc<Cdp>,
    page: &mut OpenPage,
    spec: &BrowserSpec,
    give_up: Instant,
) -> Result<(Watch, Option<String>), Outcome> {
    let session = page.session.as_str();
    let mut watch = Watch::new(page.target.clone());
    let nav = cdp.call(
        Some(session),
        "Page.navigate",
        json!({"url": spec.url.as_str()}),
    );
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
            ev = page.events.recv() => match ev {
                Some(ev) => {
                    watch.on_event(ev, cdp, session);
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
    while let Ok(ev) = page.events.try_recv() {
        watch.on_event(ev, cdp, session);
    }
    if let Some(why) = browser_gone.or_else(|| cdp.closed()) {
        return Err(Outcome::failed(
            FailureClass::AgentError,
            format!("Chromium went away during the probe: {why}"),
        ));
    }
    Ok((watch, nav_error))
}

/// Lets the page render a frame first (two animation frames): on a loaded
/// machine the first paint of a page that just loaded can trail its `load`
/// event. Bounded by `by`, and nothing is lost if it does not come.
async fn wait_for_a_frame(cdp: &Cdp, session: Option<&str>, by: Instant) {
    let _ = call_by(
        cdp,
        by,
        session,
        "Runtime.evaluate",
        json!({
            "expression": "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
            "awaitPromise": true,
            "returnByValue": true,
        }),
    )
    .await;
}

/// Reads what `vitals.js` measured in the page (and whether the check's
/// selector matches), answered by `by`; nothing when the page does not answer.
async fn read_figures(
    cdp: &Cdp,
    session: Option<&str>,
    spec: &BrowserSpec,
    by: Instant,
) -> PageFigures {
    let arg = match &spec.selector_present {
        Some(sel) => serde_json::to_string(sel).expect("a string serializes"),
        None => "undefined".into(),
    };
    let expr = format!("typeof __slaprobeVitals === 'function' ? __slaprobeVitals({arg}) : null");
    match call_by(
        cdp,
        by,
        session,
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
}
