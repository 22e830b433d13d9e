//! The DevTools side of one probe: a fresh incognito browser context with
//! a page attached and instrumented, disposed of however the probe ends; the
//! commands sent to it (each bounded by a deadline) and the screenshot of a
//! failed page.

use std::sync::Arc;

use serde_json::{Value, json};
use slaprobe_wire::{BrowserDetail, FailureClass};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

use super::cdp::{Cdp, CdpError, Event};
use super::process::VIEWPORT;
use super::{ACTIVITY_BINDING, BROWSER_ANSWER, Instance, MAX_SCREENSHOT, VITALS_JS};
use crate::probe::Outcome;

/// Why a step of the probe did not complete.
#[derive(Debug)]
pub(super) enum StepError {
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

pub(super) async fn call_by(
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

/// A page ready to navigate: its browser context (disposed of when this is
/// dropped), its target and the DevTools session attached to it, and that
/// session's events.
pub(super) struct OpenPage {
    /// Dropped first: disposes of the context, then lets the next probe in.
    _guard: ContextGuard,
    pub(super) target: String,
    pub(super) session: String,
    pub(super) events: mpsc::Receiver<Event>,
}

/// Creates a browser context and a blank page in it, attaches to it and
/// turns on what the probe reads (Page, Network, Runtime events, the
/// in-page observers, the viewport), each command answered by `setup_by`.
/// A browser that fails one is the agent's fault: the probe's outcome; one
/// that is late counts as hung only when `hung_if_late` (it had the full
/// time a browser gets to answer, not just what was left of the probe's).
pub(super) async fn open_page(
    inst: &Arc<Instance>,
    permit: OwnedSemaphorePermit,
    setup_by: Instant,
    hung_if_late: bool,
) -> Result<OpenPage, crate::probe::Outcome> {
    let browser_fault =
        |inst: &Instance, method: &str, e: StepError| browser_fault(inst, method, e, hung_if_late);
    let cdp = &inst.cdp;
    let context = match call_by(
        cdp,
        setup_by,
        None,
        "Target.createBrowserContext",
        json!({"disposeOnDetach": true}),
    )
    .await
    {
        Ok(v) => str_field(&v, "browserContextId"),
        Err(e) => return Err(browser_fault(inst, "Target.createBrowserContext", e)),
    };
    let mut guard = ContextGuard {
        inst: inst.clone(),
        context: context.clone(),
        session: None,
        permit: Some(permit),
    };
    let target = match call_by(
        cdp,
        setup_by,
        None,
        "Target.createTarget",
        json!({"url": "about:blank", "browserContextId": context}),
    )
    .await
    {
        Ok(v) => str_field(&v, "targetId"),
        Err(e) => return Err(browser_fault(inst, "Target.createTarget", e)),
    };
    let session = match call_by(
        cdp,
        setup_by,
        None,
        "Target.attachToTarget",
        json!({"targetId": target, "flatten": true}),
    )
    .await
    {
        Ok(v) => str_field(&v, "sessionId"),
        Err(e) => return Err(browser_fault(inst, "Target.attachToTarget", e)),
    };
    let events = cdp.subscribe(&session);
    guard.session = Some(session.clone());
    let s = Some(session.as_str());
    let (w, h) = VIEWPORT;
    // Sent at once, answered in order: one round trip to a loaded browser
    // rather than six.
    let steps = [
        ("Page.enable", json!({})),
        ("Network.enable", json!({})),
        ("Runtime.enable", json!({})),
        // Before the script that takes it off the page's global object.
        ("Runtime.addBinding", json!({"name": ACTIVITY_BINDING})),
        (
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": VITALS_JS}),
        ),
        (
            "Emulation.setDeviceMetricsOverride",
            json!({"width": w, "height": h, "deviceScaleFactor": 1, "mobile": false}),
        ),
    ];
    let answers = {
        let [a, b, c, d, e, f] = steps.map(|(method, params)| async move {
            (method, call_by(cdp, setup_by, s, method, params).await)
        });
        let (a, b, c, d, e, f) = tokio::join!(a, b, c, d, e, f);
        [a, b, c, d, e, f]
    };
    for (method, r) in answers {
        if let Err(e) = r {
            return Err(browser_fault(inst, method, e));
        }
    }
    Ok(OpenPage {
        _guard: guard,
        target,
        session,
        events,
    })
}

/// Puts a PNG of the page into `detail` (or says why there is none: it
/// failed, or it is over [`MAX_SCREENSHOT`]), answered by `by`.
pub(super) async fn screenshot(
    cdp: &Cdp,
    session: Option<&str>,
    by: Instant,
    detail: &mut BrowserDetail,
) {
    match call_by(
        cdp,
        by,
        session,
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

fn str_field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// Bytes a base64 string decodes to.
fn decoded_len(b64: &str) -> usize {
    let pad = b64.bytes().rev().take_while(|b| *b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(pad)
}

/// A browser that failed a setup command: the agent's fault, not the site's.
fn browser_fault(inst: &Instance, method: &str, e: StepError, hung_if_late: bool) -> Outcome {
    if matches!(e, StepError::Late) {
        if !hung_if_late {
            return Outcome::failed(
                FailureClass::AgentError,
                format!("the probe's time ran out while Chromium set up the page ({method})"),
            );
        }
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
    fn base64_sizes() {
        assert_eq!(decoded_len("TWFu"), 3);
        assert_eq!(decoded_len("TWE="), 2);
        assert_eq!(decoded_len("TQ=="), 1);
        assert_eq!(decoded_len(""), 0);
    }
}
