//! What the DevTools event stream tells about one page load: the document
//! request and its answer, every request (counted, the failed ones listed),
//! bytes, uncaught JavaScript errors, `load`, and when the page went quiet
//! (its network, and what `vitals.js` reports through the activity binding),
//! which decides when a probe stops watching.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use slaprobe_wire::RequestFailure;
use tokio::time::Instant;

use super::cdp::{Cdp, Event};
use super::{ACTIVITY_BINDING, QUIET, SETTLE_MAX};
use crate::probe::bound;

/// Failed requests listed (all are counted).
const MAX_FAILURES: usize = 20;
/// Exception messages listed (all are counted).
const MAX_JS_MESSAGES: usize = 5;
/// Requests tracked by id for one page; past this they are only counted.
const MAX_TRACKED: usize = 50_000;

/// Everything the event stream told about the page.
#[derive(Debug)]
pub(super) struct Watch {
    pub(super) main_frame: String,
    pub(super) doc_request: Option<String>,
    pub(super) doc_status: Option<u16>,
    pub(super) doc_url: Option<String>,
    pub(super) doc_error: Option<String>,
    /// Request id → (url, already counted as failed).
    pub(super) tracked: HashMap<String, (String, bool)>,
    pub(super) in_flight: HashSet<String>,
    pub(super) requests: u32,
    pub(super) failed: u32,
    pub(super) failures: Vec<RequestFailure>,
    pub(super) transfer_bytes: u64,
    pub(super) last_activity: Instant,
    pub(super) load_at: Option<Instant>,
    pub(super) js_errors: u32,
    pub(super) js_messages: Vec<String>,
    pub(super) crashed: bool,
}

impl Watch {
    pub(super) fn new(main_frame: String) -> Self {
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

    pub(super) fn on_event(&mut self, ev: Event, cdp: &Arc<Cdp>, session: &str) {
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
            // vitals.js: the page painted, shifted or ran a long task.
            "Runtime.bindingCalled" if p["name"] == ACTIVITY_BINDING => {
                self.last_activity = Instant::now();
            }
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
    pub(super) fn settle_at(&self, give_up: Instant) -> Instant {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
