//! The page sections of a result: a page load with its resources, and a
//! page load in headless Chromium (Web Vitals, requests, errors).

use serde::{Deserialize, Serialize};

/// A page load: the document plus the resources it references.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageDetail {
    pub document_bytes: u64,
    /// Document plus every resource received.
    pub total_bytes: u64,
    /// Resources referenced and requested (the document not counted).
    pub resources: u32,
    pub failed_resources: u32,
    /// Time from the start until the document and every resource had arrived.
    pub load_seconds: f64,
    /// The first failed resources (at most 20, and a few KiB), for the
    /// report's "sample error"; `failed_resources` counts them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ResourceFailure>,
}

/// One resource of a page that could not be loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceFailure {
    pub url: String,
    pub message: String,
}

/// A page load in headless Chromium (the `browser` check kind). Times are
/// seconds from the start of the navigation (the page's time origin); a
/// point the page never reached is `null`. `cls` is unitless.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrowserDetail {
    /// Time to first byte of the document (`responseStart`).
    pub ttfb: Option<f64>,
    /// First Contentful Paint.
    pub fcp: Option<f64>,
    /// Largest Contentful Paint (the last candidate before the probe ended).
    pub lcp: Option<f64>,
    /// Cumulative Layout Shift: the largest session window (web-vitals).
    pub cls: Option<f64>,
    /// Total Blocking Time: long tasks' time over 50 ms after FCP.
    pub tbt: Option<f64>,
    /// `DOMContentLoaded` fired (`domContentLoadedEventStart`).
    pub dom_content_loaded: Option<f64>,
    /// `load` fired (`loadEventStart`).
    pub load: Option<f64>,
    /// HTTP status of the document (after redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Requests the page made, the document included.
    pub requests: u32,
    /// Requests that failed (network error, or status 400 and above).
    pub failed_requests: u32,
    /// The first failed requests (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<RequestFailure>,
    /// Bytes received over the network (encoded, headers included).
    pub transfer_bytes: u64,
    /// Uncaught JavaScript exceptions.
    pub js_errors: u32,
    /// The first uncaught exceptions' messages (at most 5, each at most 1 KiB).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub js_error_messages: Vec<String>,
    /// The document's URL after redirects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    /// Failed probes only: a PNG of the viewport, base64, at most 200 KB decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot: Option<String>,
    /// Why there is no screenshot on a failed probe (too big, capture failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshot_note: Option<String>,
}

impl BrowserDetail {
    /// The Web Vitals a contract objective may name.
    pub const VITALS: [&'static str; 5] = ["lcp", "cls", "fcp", "ttfb", "tbt"];

    /// A Web Vital or timing by its name (`lcp`, `cls`, `fcp`, `ttfb`, `tbt`,
    /// `dom_content_loaded`, `load`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "lcp" => self.lcp,
            "cls" => self.cls,
            "fcp" => self.fcp,
            "ttfb" => self.ttfb,
            "tbt" => self.tbt,
            "dom_content_loaded" => self.dom_content_loaded,
            "load" => self.load,
            _ => None,
        }
    }
}

/// One request of a browser probe that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFailure {
    pub url: String,
    /// The HTTP status, when one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Chromium's network error (`net::ERR_…`), when no status arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
