//! The `page` probe: fetch the document as the http probe does, find the
//! resources it references (scripts, stylesheets, preloads, icons, images)
//! and fetch them concurrently like a browser: at most
//! `max_connections_per_origin` connections per origin (default 6) and
//! `max_connections` in all (default 32), each reused for several requests
//! of its origin (keep-alive), all inside the one deadline.
//!
//! Bounds: the document and each resource are read up to `max_body_bytes`
//! (resources are counted, not kept), at most [`MAX_RESOURCES`] resources,
//! and every fetch task ends with the probe.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, MemorySettings, Settings, element};
use slaprobe_wire::{Failure, FailureClass, PageDetail, ResourceFailure};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use super::http::{self, Conn};
use super::{Outcome, Prober, net};
use crate::config::{HttpSpec, NetOptions};

/// Most resources fetched for one page; the rest are ignored.
pub const MAX_RESOURCES: usize = 200;
/// Failed resources listed in the result.
const MAX_LISTED_FAILURES: usize = super::bound::MAX_PAGE_FAILURES;
/// Memory the HTML scanner may use for its own buffers.
const SCANNER_MEMORY: usize = 8 * 1024 * 1024;

/// The `page` probe.
pub async fn probe(p: &Prober, spec: &HttpSpec, deadline: Instant) -> Outcome {
    let deadline = net::probe_deadline(deadline);
    let t0 = Instant::now();
    let doc = http::fetch(p, spec, true, deadline).await;
    let document_bytes = doc.http.body_bytes;
    let mut page = PageDetail {
        document_bytes,
        total_bytes: document_bytes,
        ..Default::default()
    };
    let mut outcome = Outcome {
        failure: doc.failure,
        http: Some(doc.http),
        tls: doc.tls,
        ..Default::default()
    };
    if outcome.failure.is_some() {
        page.load_seconds = t0.elapsed().as_secs_f64();
        outcome.page = Some(page);
        return outcome;
    }
    let doc_url = outcome
        .http
        .as_ref()
        .and_then(|h| h.final_url.as_deref())
        .and_then(|u| Url::parse(u).ok())
        .unwrap_or_else(|| spec.url.clone());
    let urls = find_resources(&doc.body, &doc_url);
    drop(doc.body);

    let n = urls.len();
    let results = fetch_all(p, spec, &urls, deadline).await;
    let mut unfinished = 0u32;
    let mut last_arrival = None;
    for (url, res) in urls.iter().zip(&results) {
        let Some(res) = res else {
            unfinished += 1;
            page.failed_resources += 1;
            if page.failures.len() < MAX_LISTED_FAILURES {
                page.failures.push(ResourceFailure {
                    url: url.to_string(),
                    message: "not loaded before the timeout".into(),
                });
            }
            continue;
        };
        page.total_bytes += res.bytes;
        if res.timed_out {
            // Ran into the page's deadline: still loading, not broken.
            unfinished += 1;
        } else {
            last_arrival = last_arrival.max(Some(res.done_at));
        }
        if let Some(msg) = &res.error {
            page.failed_resources += 1;
            if page.failures.len() < MAX_LISTED_FAILURES {
                page.failures.push(ResourceFailure {
                    url: url.to_string(),
                    message: msg.clone(),
                });
            }
        }
    }
    page.resources = u32::try_from(n).unwrap_or(u32::MAX);
    page.load_seconds = match (unfinished, last_arrival) {
        (0, Some(at)) => at.saturating_duration_since(t0).as_secs_f64(),
        (0, None) => t0.elapsed().as_secs_f64(),
        // Still loading when time ran out: the page took (at least) this long.
        _ => t0.elapsed().as_secs_f64(),
    };
    if unfinished > 0 {
        outcome.failure = Some(Failure::new(
            FailureClass::Timeout,
            format!(
                "page not loaded within the timeout: {unfinished} of {n} resources still loading"
            ),
        ));
    } else if page.failed_resources > 0 {
        let first = page
            .failures
            .first()
            .map(|f| format!("; first: {} ({})", f.url, f.message))
            .unwrap_or_default();
        outcome.failure = Some(Failure::new(
            FailureClass::PageResourceFailed,
            format!("{} of {n} resources failed{first}", page.failed_resources),
        ));
    }
    outcome.page = Some(page);
    outcome
}

/// What loading one resource gave.
#[derive(Debug, Clone)]
struct Loaded {
    /// Body bytes received (capped).
    bytes: u64,
    /// Why it counts as failed (status or network), if it does.
    error: Option<String>,
    /// It failed because the probe's deadline came.
    timed_out: bool,
    done_at: Instant,
}

/// Which URLs of each origin are still to fetch, and how many connections
/// each origin has open, shared by the page's workers.
struct Pending {
    queues: HashMap<Origin, VecDeque<(usize, Url)>>,
    open: HashMap<Origin, usize>,
    per_origin: usize,
}

type Origin = (String, String, u16);

impl Pending {
    /// The next URL for a worker on `on` (keep-alive: same origin first);
    /// else, after releasing `on`, one from an origin under its cap. `None`:
    /// nothing this worker may take (the workers already on the remaining
    /// origins finish them).
    fn next(&mut self, on: &mut Option<Origin>) -> Option<(usize, Url)> {
        if let Some(o) = on.as_ref()
            && let Some(job) = self.queues.get_mut(o).and_then(VecDeque::pop_front)
        {
            return Some(job);
        }
        if let Some(o) = on.take()
            && let Some(n) = self.open.get_mut(&o)
        {
            *n = n.saturating_sub(1);
        }
        let per_origin = self.per_origin;
        let open = &mut self.open;
        let (origin, queue) = self
            .queues
            .iter_mut()
            .find(|(o, q)| !q.is_empty() && open.get(*o).copied().unwrap_or(0) < per_origin)?;
        let job = queue.pop_front()?;
        *open.entry(origin.clone()).or_default() += 1;
        *on = Some(origin.clone());
        Some(job)
    }
}

/// Fetches every URL like a browser: at most `per_origin` connections to an
/// origin and `total` in all (one hostile page with hundreds of origins
/// cannot take the agent's file descriptors from every other check), each
/// connection reused for the next URL of its origin. Returns one entry per
/// URL in the same order; `None` for those still loading at the deadline.
async fn fetch_all(
    p: &Prober,
    spec: &HttpSpec,
    urls: &[Url],
    deadline: Instant,
) -> Vec<Option<Loaded>> {
    let mut results: Vec<Option<Loaded>> = vec![None; urls.len()];
    if urls.is_empty() {
        return results;
    }
    let mut queues: HashMap<Origin, VecDeque<(usize, Url)>> = HashMap::new();
    for (i, u) in urls.iter().enumerate() {
        let key = (
            u.scheme().to_string(),
            u.host_str().unwrap_or_default().to_string(),
            u.port_or_known_default().unwrap_or(0),
        );
        queues.entry(key).or_default().push_back((i, u.clone()));
    }
    let per_origin = spec.max_connections_per_origin.max(1);
    let workers = urls.len().min(spec.max_connections.max(1));
    let pending = Arc::new(Mutex::new(Pending {
        queues,
        open: HashMap::new(),
        per_origin,
    }));
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Loaded)>();
    // The set owns every fetch task: dropping it (on return) aborts those
    // still running, so nothing outlives the probe.
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (p, net, pending, tx) = (p.clone(), spec.net.clone(), pending.clone(), tx.clone());
        let cap = spec.max_body_bytes;
        tasks.spawn(async move {
            let mut conn: Option<Conn> = None;
            let mut on: Option<Origin> = None;
            loop {
                let (job, switched) = {
                    let mut q = pending.lock().unwrap_or_else(|e| e.into_inner());
                    let before = on.clone();
                    let job = q.next(&mut on);
                    (job, on != before)
                };
                if switched && let Some(c) = conn.take() {
                    // Another origin (or none): this connection is done, and
                    // closed before the next one opens (its descriptor freed).
                    c.close().await;
                }
                let Some((i, url)) = job else { break };
                let loaded = load(&p, &net, &mut conn, &url, cap, deadline).await;
                if tx.send((i, loaded)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut left = urls.len();
    while left > 0 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, loaded))) => {
                if results[i].is_none() {
                    left -= 1;
                }
                results[i] = Some(loaded);
            }
            // Every worker ended (cannot happen before all sent) or time is up.
            Ok(None) | Err(_) => break,
        }
    }
    tasks.abort_all();
    results
}

/// Loads one resource over the worker's connection, opening one when there
/// is none or the server closed it. A reused connection that the server
/// closed meanwhile gets one retry on a fresh connection, as browsers do.
async fn load(
    p: &Prober,
    net: &NetOptions,
    conn: &mut Option<Conn>,
    url: &Url,
    cap: u64,
    deadline: Instant,
) -> Loaded {
    let mut bytes = 0;
    for attempt in 0..2 {
        if conn.as_ref().is_some_and(|c| !c.is_open()) {
            *conn = None;
        }
        let reused = conn.is_some();
        let c = match conn {
            Some(c) => c,
            None => match Conn::open(p, url, net, deadline).await {
                Ok(c) => conn.insert(c),
                Err(f) => return failed(bytes, &f.failure),
            },
        };
        let ex = c.exchange(url, cap, false, deadline).await;
        bytes = ex.body_bytes;
        if ex.truncated {
            // hyper closes a connection whose body was not read to the end.
            *conn = None;
        }
        match ex.failure {
            None => {
                let status = ex.status.unwrap_or(0);
                let error =
                    (!(200..400).contains(&status)).then(|| format!("HTTP status {status}"));
                return Loaded {
                    bytes,
                    error,
                    timed_out: false,
                    done_at: Instant::now(),
                };
            }
            Some(f) => {
                *conn = None;
                let stale = reused
                    && attempt == 0
                    && ex.status.is_none()
                    && f.class == FailureClass::Protocol;
                if !stale {
                    return failed(bytes, &f);
                }
            }
        }
    }
    Loaded {
        bytes,
        error: Some("connection closed twice before a response".into()),
        timed_out: false,
        done_at: Instant::now(),
    }
}

fn failed(bytes: u64, f: &Failure) -> Loaded {
    // Deadline-bound classes: connect_timeout is the page's deadline too, as
    // each fetch gets all the time left.
    let timed_out = matches!(
        f.class,
        FailureClass::Timeout | FailureClass::ConnectTimeout
    );
    Loaded {
        bytes,
        error: Some(format!("{}: {}", f.class, f.message)),
        timed_out,
        done_at: Instant::now(),
    }
}

/// The resources a browser would fetch for `html`, resolved against the
/// document's URL (or its first `<base href>`), http(s) only, without
/// fragments or duplicates, in document order, at most [`MAX_RESOURCES`].
pub fn find_resources(html: &[u8], doc_url: &Url) -> Vec<Url> {
    let found: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let base: RefCell<Option<String>> = RefCell::new(None);
    // The handlers borrow `found` and `base` until the rewriter is dropped.
    {
        let push = |v: Option<String>| {
            if let Some(v) = v {
                let mut f = found.borrow_mut();
                // Stop collecting well past the cap (duplicates are removed later).
                if f.len() < MAX_RESOURCES * 4 {
                    f.push(v);
                }
            }
        };
        let settings = Settings::new()
            .with_strict(false)
            .with_memory_settings(
                MemorySettings::new().with_max_allowed_memory_usage(SCANNER_MEMORY),
            )
            .append_element_content_handler(element!("base[href]", |el: &mut Element<'_, '_>| {
                let mut b = base.borrow_mut();
                if b.is_none() {
                    *b = el.get_attribute("href");
                }
                Ok(())
            }))
            .append_element_content_handler(element!("script[src]", |el: &mut Element<'_, '_>| {
                push(el.get_attribute("src"));
                Ok(())
            }))
            .append_element_content_handler(element!("link[href]", |el: &mut Element<'_, '_>| {
                let rel = el
                    .get_attribute("rel")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let rel: Vec<&str> = rel.split_ascii_whitespace().collect();
                let wanted = rel
                    .iter()
                    .any(|r| matches!(*r, "stylesheet" | "preload" | "modulepreload" | "icon"));
                // Alternate stylesheets are not loaded until chosen.
                if wanted && !rel.contains(&"alternate") {
                    push(el.get_attribute("href"));
                }
                Ok(())
            }))
            .append_element_content_handler(element!("img", |el: &mut Element<'_, '_>| {
                // A browser loads one image per <img>: src, else srcset's first candidate.
                let src = el.get_attribute("src").filter(|s| !s.trim().is_empty());
                let from_srcset = || {
                    el.get_attribute("srcset").and_then(|s| {
                        s.split(',')
                            .next()
                            .and_then(|c| c.split_ascii_whitespace().next())
                            .map(str::to_string)
                    })
                };
                push(src.or_else(from_srcset));
                Ok(())
            }));
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        // A scanner error (memory limit, odd markup) keeps what was found so far.
        if rewriter.write(html).is_ok() {
            let _ = rewriter.end();
        }
    }

    let base_url = base
        .into_inner()
        .and_then(|b| doc_url.join(b.trim()).ok())
        .unwrap_or_else(|| doc_url.clone());
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for raw in found.into_inner() {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let Ok(mut u) = base_url.join(raw) else {
            continue;
        };
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            continue;
        }
        u.set_fragment(None);
        if seen.insert(u.to_string()) {
            out.push(u);
            if out.len() == MAX_RESOURCES {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(html: &str, doc: &str) -> Vec<String> {
        find_resources(html.as_bytes(), &Url::parse(doc).unwrap())
            .into_iter()
            .map(|u| u.to_string())
            .collect()
    }

    #[test]
    fn finds_what_a_browser_loads() {
        let html = r#"<!doctype html><html><head>
            <link rel="stylesheet" href="/css/site.css">
            <link rel="alternate stylesheet" href="/css/alt.css">
            <link rel="canonical" href="https://example.com/">
            <link rel="preload" href="font.woff2" as="font">
            <link rel="SHORTCUT ICON" href="/favicon.ico">
            <script src="https://cdn.example.net/lib.js#x"></script>
            <script>var inline = "<img src=/not-a-tag.png>";</script>
            </head><body>
            <img src="a.png"><img srcset="b-1x.png 1x, b-2x.png 2x"><img src="a.png">
            <img src="data:image/png;base64,AAAA"><script src="javascript:void(0)"></script>
            <a href="/page2">not a resource</a>
            </body></html>"#;
        assert_eq!(
            urls(html, "http://site.test/dir/index.html"),
            vec![
                "http://site.test/css/site.css",
                "http://site.test/dir/font.woff2",
                "http://site.test/favicon.ico",
                "https://cdn.example.net/lib.js",
                "http://site.test/dir/a.png",
                "http://site.test/dir/b-1x.png",
            ]
        );
    }

    #[test]
    fn base_href_applies_to_every_reference() {
        let html = r#"<script src="early.js"></script><base href="https://static.test/v2/"><img src="i.png">"#;
        assert_eq!(
            urls(html, "http://site.test/"),
            vec![
                "https://static.test/v2/early.js",
                "https://static.test/v2/i.png"
            ]
        );
    }

    #[test]
    fn capped_at_max_resources() {
        let html: String = (0..500)
            .map(|i| format!("<img src=\"/{i}.png\">"))
            .collect();
        assert_eq!(urls(&html, "http://site.test/").len(), MAX_RESOURCES);
        assert!(urls("\u{0}\u{ff}<<<>>><img src=", "http://site.test/").is_empty());
    }
}
