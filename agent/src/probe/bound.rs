//! Bounds on everything a probed site controls, applied to every outcome in
//! one place ([`outcome`]) so that a result line stays under
//! [`MAX_RESULT_BYTES`] whatever the target sends: a certificate with 9,000
//! SANs, a 400 KB `Location`, 2,000 TXT answers, a page of broken resources.
//!
//! Cut strings end on a char boundary with a marker saying how much was cut;
//! cut lists keep their first entries and report the full count next to
//! them (`tls.sans_total`, `dns.answers_total`, `page.failed_resources`).

use slaprobe_wire::{BrowserDetail, DnsDetail, HttpDetail, PageDetail, TlsDetail};

use super::Outcome;

/// The promise: a whole result line (JSON) is smaller than this.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;
/// Failure messages.
pub const MAX_MESSAGE: usize = 1024;
/// Certificate subject and issuer.
pub const MAX_NAME: usize = 1024;
/// `final_url` and any URL or header echoed from the target.
pub const MAX_URL: usize = 2048;
/// Entries of `tls.sans`, and the bytes they may take together.
pub const MAX_SANS: usize = 100;
const SANS_BYTES: usize = 3 * 1024;
/// One SAN or one DNS answer (a DNS name is at most 253 characters).
const MAX_ITEM: usize = 256;
/// Entries of each DNS answer list.
pub const MAX_ANSWERS: usize = 100;
/// Bytes all DNS answer lists of one result may take together, shared
/// between the top-level list and each server's.
const DNS_ANSWER_BYTES: usize = 8 * 1024;
/// Bytes all per-server DNS failure messages may take together.
const DNS_MESSAGE_BYTES: usize = 4 * 1024;
/// Entries of `page.failures`, and the bytes they may take together.
pub const MAX_PAGE_FAILURES: usize = 20;
const PAGE_FAILURE_BYTES: usize = 4 * 1024;

/// Cuts `s` to at most `max` bytes (marker included) on a char boundary.
pub fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let total = s.len();
    let marker = format!("…[cut, {total} bytes]");
    let mut at = max.saturating_sub(marker.len());
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push_str(&marker);
}

/// [`cut`] on an owned string.
pub fn cut_owned(mut s: String, max: usize) -> String {
    cut(&mut s, max);
    s
}

/// Keeps the first entries of `list` that fit `max_entries` and `budget`
/// bytes (each entry cut to `max_item` first); returns the original length.
fn cut_list(list: &mut Vec<String>, max_entries: usize, max_item: usize, budget: usize) -> usize {
    let total = list.len();
    let mut used = 0usize;
    let mut keep = 0usize;
    for item in list.iter_mut() {
        if keep == max_entries {
            break;
        }
        cut(item, max_item);
        // 3: quotes and comma in the JSON.
        if used + item.len() + 3 > budget {
            break;
        }
        used += item.len() + 3;
        keep += 1;
    }
    list.truncate(keep);
    total
}

/// Applies every bound to `o`.
pub fn outcome(o: &mut Outcome) {
    if let Some(f) = &mut o.failure {
        cut(&mut f.message, MAX_MESSAGE);
    }
    if let Some(h) = &mut o.http {
        http(h);
    }
    if let Some(t) = &mut o.tls {
        tls(t);
    }
    if let Some(d) = &mut o.dns {
        dns(d);
    }
    if let Some(p) = &mut o.page {
        page(p);
    }
    if let Some(d) = &mut o.domain {
        cut(&mut d.domain, 256);
        if let Some(u) = &mut d.rdap_url {
            cut(u, MAX_URL);
        }
    }
    if let Some(b) = &mut o.browser {
        browser(b);
    }
}

/// A browser result's lists and URLs. Its `screenshot` (failed probes only,
/// at most 200 KB) is the one field outside [`MAX_RESULT_BYTES`].
fn browser(b: &mut BrowserDetail) {
    if let Some(u) = &mut b.final_url {
        cut(u, MAX_URL);
    }
    let mut used = 0usize;
    let mut keep = 0usize;
    for f in b.failures.iter_mut() {
        if keep == MAX_PAGE_FAILURES {
            break;
        }
        cut(&mut f.url, MAX_URL);
        if let Some(e) = &mut f.error {
            cut(e, 256);
        }
        let size = f.url.len() + f.error.as_ref().map_or(0, String::len) + 40;
        if used + size > PAGE_FAILURE_BYTES {
            break;
        }
        used += size;
        keep += 1;
    }
    b.failures.truncate(keep);
    b.js_error_messages.truncate(5);
    for m in &mut b.js_error_messages {
        cut(m, MAX_MESSAGE);
    }
}

fn http(h: &mut HttpDetail) {
    if let Some(u) = &mut h.final_url {
        cut(u, MAX_URL);
    }
    if let Some(v) = &mut h.version {
        cut(v, 32);
    }
}

fn tls(t: &mut TlsDetail) {
    for s in [&mut t.subject, &mut t.issuer].into_iter().flatten() {
        cut(s, MAX_NAME);
    }
    if !t.sans.is_empty() || t.sans_total.is_some() {
        let total = cut_list(&mut t.sans, MAX_SANS, MAX_ITEM, SANS_BYTES);
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        t.sans_total = Some(t.sans_total.unwrap_or(0).max(total));
    }
    if let Some(r) = &mut t.revocation {
        // Names responder and CRL URLs, which the certificate chooses.
        if let Some(d) = &mut r.detail {
            cut(d, MAX_MESSAGE);
        }
        if let Some(reason) = &mut r.reason {
            cut(reason, 64);
        }
    }
}

fn dns(d: &mut DnsDetail) {
    let lists = d.servers.len() + 1;
    let list_budget = (DNS_ANSWER_BYTES / lists).max(512);
    let message_budget = (DNS_MESSAGE_BYTES / lists).clamp(256, MAX_MESSAGE);
    let total = cut_list(&mut d.answers, MAX_ANSWERS, MAX_ITEM, list_budget);
    d.answers_total = Some(u32::try_from(total).unwrap_or(u32::MAX));
    cut(&mut d.nameserver, 64);
    for s in &mut d.servers {
        let total = cut_list(&mut s.answers, MAX_ANSWERS, MAX_ITEM, list_budget);
        s.answers_total = Some(u32::try_from(total).unwrap_or(u32::MAX));
        if let Some(f) = &mut s.failure {
            cut(&mut f.message, message_budget);
        }
        if let Some(r) = s.dnssec.as_mut().and_then(|d| d.reason.as_mut()) {
            cut(r, message_budget);
        }
    }
    if let Some(r) = d.dnssec.as_mut().and_then(|d| d.reason.as_mut()) {
        cut(r, MAX_MESSAGE);
    }
}

fn page(p: &mut PageDetail) {
    let mut used = 0usize;
    let mut keep = 0usize;
    for f in p.failures.iter_mut() {
        if keep == MAX_PAGE_FAILURES {
            break;
        }
        cut(&mut f.url, MAX_URL);
        cut(&mut f.message, MAX_MESSAGE);
        let size = f.url.len() + f.message.len() + 24;
        if used + size > PAGE_FAILURE_BYTES {
            break;
        }
        used += size;
        keep += 1;
    }
    p.failures.truncate(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_char_boundaries_and_says_so() {
        let mut s = "é".repeat(2000);
        cut(&mut s, 1024);
        assert!(s.len() <= 1024, "{}", s.len());
        assert!(s.ends_with("…[cut, 4000 bytes]"), "{s}");
        let mut short = "fine".to_string();
        cut(&mut short, 10);
        assert_eq!(short, "fine");
    }

    #[test]
    fn revocation_details_are_cut() {
        let mut t = TlsDetail {
            revocation: Some(slaprobe_wire::Revocation::without_source(
                slaprobe_wire::RevocationStatus::Unknown,
                format!("OCSP responder http://{}/: refused", "a".repeat(50_000)),
            )),
            ..Default::default()
        };
        tls(&mut t);
        let d = t.revocation.unwrap().detail.unwrap();
        assert!(
            d.len() <= MAX_MESSAGE && d.ends_with("bytes]"),
            "{}",
            d.len()
        );
    }

    #[test]
    fn lists_keep_a_prefix_and_the_total() {
        let mut v: Vec<String> = (0..9000)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let total = cut_list(&mut v, MAX_SANS, MAX_ITEM, SANS_BYTES);
        assert_eq!(total, 9000);
        assert!(v.len() <= MAX_SANS && !v.is_empty());
        assert_eq!(v[0], "10.0.0.0");
        let mut long: Vec<String> = vec!["x".repeat(100_000); 50];
        cut_list(&mut long, MAX_SANS, MAX_ITEM, SANS_BYTES);
        assert!(long.iter().map(String::len).sum::<usize>() <= SANS_BYTES);
    }
}
