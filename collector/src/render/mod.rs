//! Renderings of a [`MonthReport`] for people and spreadsheets: the
//! self-contained HTML evidence report ([`html()`]) and the CSV export
//! ([`csv()`]), next to the JSON report ([`json`]). Pure functions: a report
//! in, a `String` out, the same bytes for the same report (no clock, no
//! locale, no network).
//!
//! # Layout
//! - [`html`](mod@html): one HTML file, inline CSS and SVG, printable to A4.
//! - [`csv`](mod@csv): one CSV file (RFC 4180) whose layout is documented there.
//! - here: [`Format`] (`json|csv|html`), the content types, [`render`], and
//!   the formatting helpers both renderings share (local times, durations).
//!
//! Serving a report: `let f: Format = query.parse()?; (f.content_type(), render(&report, f))`.

pub mod csv;
pub mod html;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::sla::MonthReport;

pub use self::csv::csv;
pub use self::html::html;

/// Content type of [`Format::Json`].
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// Content type of [`Format::Csv`] (RFC 4180 `text/csv`, always UTF-8).
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";
/// Content type of [`Format::Html`].
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// A report rendering: `report --format json|csv|html`, `?format=json|csv|html`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// The §7 JSON report (`serde_json` of [`MonthReport`]).
    #[default]
    Json,
    /// [`csv()`].
    Csv,
    /// [`html()`].
    Html,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Format; 3] = [Format::Json, Format::Csv, Format::Html];

    /// `json`, `csv` or `html`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }

    /// The `Content-Type` to serve it with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON_CONTENT_TYPE,
            Format::Csv => CSV_CONTENT_TYPE,
            Format::Html => HTML_CONTENT_TYPE,
        }
    }

    /// A file name for a download (`Content-Disposition`) or `--output` default:
    /// `<contract>-<YYYY-MM>.<ext>`. Contract names are already URL-segment safe
    /// (letters, digits, `- _ . :`); anything else is replaced by `_` anyway.
    pub fn file_name(self, report: &MonthReport) -> String {
        let safe: String = report
            .contract
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}-{}.{}", report.month, self.as_str())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not `json`, `csv` or `html`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: use json, csv or html")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Case-insensitive, surrounding blanks ignored (`?format=HTML` is a typo, not an attack).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// The report in `format`. JSON is pretty-printed with a final newline.
pub fn render(report: &MonthReport, format: Format) -> String {
    match format {
        Format::Json => json(report),
        Format::Csv => csv(report),
        Format::Html => html(report),
    }
}

/// The §7 JSON report, pretty-printed, with a final newline.
pub fn json(report: &MonthReport) -> String {
    // The report holds only strings, numbers, lists and plain structs: serializing
    // it cannot fail (non-finite floats become `null`). Say so rather than panic.
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        format!(
            "{{\"error\": {:?}}}",
            format!("report serialization failed: {e}")
        )
    });
    s.push('\n');
    s
}

/// The contract's zone; UTC when the name does not resolve (reports built by
/// this collector always carry a zone it resolved at config load). The flag
/// says whether the fallback was taken, so the HTML can say so.
pub(crate) fn zone(name: &str) -> (TimeZone, bool) {
    match TimeZone::get(name) {
        Ok(tz) => (tz, true),
        Err(_) => (TimeZone::UTC, false),
    }
}

/// RFC 3339 with the zone's offset: `2026-10-03T14:05:00+02:00`.
pub(crate) fn local_rfc3339(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// A readable duration: `0 s`, `45 s`, `12 min`, `1 h 05 min`, `2 d 3 h 04 min`,
/// `1 min 30 s`. Exact (no rounding): seconds show whenever they are not zero.
pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    let mut parts: Vec<String> = Vec::new();
    if d > 0 {
        parts.push(format!("{d} d"));
    }
    if h > 0 || (d > 0 && m > 0) {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(if d > 0 || h > 0 {
            format!("{m:02} min")
        } else {
            format!("{m} min")
        });
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

/// At most `max` characters of `s`, with `…` appended when it was cut.
/// The flag says whether it was.
pub(crate) fn truncate_chars(s: &str, max: usize) -> (&str, bool) {
    match s.char_indices().nth(max) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse() {
        assert_eq!("html".parse::<Format>(), Ok(Format::Html));
        assert_eq!(" CSV ".parse::<Format>(), Ok(Format::Csv));
        assert_eq!("json".parse::<Format>(), Ok(Format::Json));
        assert!("pdf".parse::<Format>().is_err());
        assert_eq!(Format::Csv.content_type(), "text/csv; charset=utf-8");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0 s");
        assert_eq!(human_duration(45), "45 s");
        assert_eq!(human_duration(720), "12 min");
        assert_eq!(human_duration(90), "1 min 30 s");
        assert_eq!(human_duration(3_900), "1 h 05 min");
        assert_eq!(human_duration(3_600), "1 h");
        assert_eq!(
            human_duration(2 * 86_400 + 3 * 3_600 + 240),
            "2 d 3 h 04 min"
        );
        assert_eq!(human_duration(86_400 + 60), "1 d 0 h 01 min");
    }

    #[test]
    fn truncation_respects_chars() {
        assert_eq!(truncate_chars("héllo", 2), ("hé", true));
        assert_eq!(truncate_chars("hé", 2), ("hé", false));
    }
}
