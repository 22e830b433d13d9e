//! From what a page load showed to a result: the figures `vitals.js`
//! reported, the [`BrowserDetail`] they and the event stream make, and the
//! verdict (navigation, document status, load, selector, JavaScript errors).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use slaprobe_wire::{BrowserDetail, Failure, FailureClass};

use super::watch::Watch;
use crate::config::BrowserSpec;

/// What `vitals.js` reports (milliseconds).
#[derive(Debug, Default, Deserialize)]
pub(super) struct PageFigures {
    pub(super) ttfb: Option<f64>,
    pub(super) fcp: Option<f64>,
    pub(super) lcp: Option<f64>,
    pub(super) cls: Option<f64>,
    pub(super) tbt: Option<f64>,
    pub(super) dom_content_loaded: Option<f64>,
    pub(super) load: Option<f64>,
    /// true / false, or the error of an invalid selector.
    pub(super) selector: Option<Value>,
    pub(super) url: Option<String>,
}

fn seconds(ms: Option<f64>) -> Option<f64> {
    ms.filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| (v * 1000.0).round() / 1_000_000.0)
}

/// Maps Chromium's navigation error to a failure class.
pub(super) fn nav_class(error: &str) -> FailureClass {
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

/// The result's `browser` section: the page's figures and what the event
/// stream counted (its lists are taken out of `watch`); no screenshot yet.
pub(super) fn page_detail(figures: &PageFigures, watch: &mut Watch) -> BrowserDetail {
    BrowserDetail {
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
    }
}

/// Decides whether the probe failed, in order: the navigation, the
/// document's status, the load, the selector, JavaScript errors. `waited`
/// is how long the page was given to load (the timeout less the reserve).
pub(super) fn judge(
    spec: &BrowserSpec,
    watch: &Watch,
    detail: &BrowserDetail,
    nav_error: Option<&str>,
    figures: &PageFigures,
    waited: Duration,
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
                humantime::format_duration(round_ms(waited))
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
}
