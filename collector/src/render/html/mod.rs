//! The monthly evidence report as one self-contained HTML file: inline CSS
//! and inline SVG, no script, no external request (no font, image or style
//! by URL), readable on screen and printable to A4 without cut tables or
//! charts, readable in greyscale (badges carry words, charts carry patterns
//! and shapes, not colour alone).
//!
//! Sections, in order: header (contract, vendor, month, zone, period, "as
//! of"), verdict per objective, key figures (availability, downtime, coverage,
//! credit owed), availability by day (SVG bars with the target line),
//! incidents (SVG timeline of the month with incidents and maintenance, then
//! the table), latency by day per latency objective, maintenance windows,
//! method (the §6 rules in plain words, how to recompute the digest),
//! evidence (digest, result count), and an appendix with the daily figures.
//!
//! Every value from the report goes through [`Esc`] (contract and vendor
//! names, check and location names and error messages are user or peer
//! input). Shown figures are never better than measured: percentages are
//! truncated to three decimals, latencies rounded up to 0.1 ms.
//!
//! # Layout
//! - here: [`html()`], the context every section reads, the page around the
//!   sections; the style sheet is `report.css` beside this file, included at
//!   build time.
//! - `format`: escaping ([`Esc`]) and the figures as shown.
//! - `chart`: the SVG chart builder (day-column geometry, grid, axis,
//!   threshold line) the charts share.
//! - `charts`: availability by day, the incident timeline, latency and Web
//!   Vitals by day.
//! - `sections`: every other section (header, verdict, key figures, tables,
//!   method, evidence, appendix).

mod chart;
mod charts;
mod format;
mod sections;

use std::collections::HashMap;
use std::fmt::{self, Write};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

pub use self::format::Esc;
use self::format::css_string;
use super::zone;
use crate::sla::report::DayFigures;
use crate::sla::{MonthReport, ObjectiveKind};

/// Sample error messages longer than this (in characters) are cut in the HTML
/// (the CSV and JSON carry the full text).
pub const MESSAGE_MAX_CHARS: usize = 300;

/// The report as one HTML document (UTF-8). Deterministic: the same report
/// gives the same bytes.
pub fn html(r: &MonthReport) -> String {
    let ctx = Ctx::new(r);
    let mut out = String::with_capacity(48 * 1024 + r.incidents.len() * 700 + r.days.len() * 400);
    // Writing into a String cannot fail; the fmt::Result only threads `?` through.
    let _ = page(&mut out, &ctx);
    out
}

/// What every section needs besides the report.
struct Ctx<'a> {
    r: &'a MonthReport,
    tz: TimeZone,
    /// The report's zone name resolved (else times are shown in UTC, and the header says so).
    tz_known: bool,
    /// The availability objective's target, percent.
    target: Option<f64>,
    /// Days of the calendar month (the chart shows them all, even month to date).
    month_days: Vec<Date>,
    /// Counted days' figures by date.
    days: HashMap<Date, &'a DayFigures>,
}

impl<'a> Ctx<'a> {
    fn new(r: &'a MonthReport) -> Ctx<'a> {
        let (tz, tz_known) = zone(&r.timezone);
        let target = r
            .objectives
            .iter()
            .find(|o| o.kind == ObjectiveKind::Availability)
            .map(|o| o.target);
        let first = r.month.first_day();
        let month_days = (1..=first.days_in_month())
            .filter_map(|d| Date::new(first.year(), first.month(), d).ok())
            .collect();
        let days = r.days.iter().map(|d| (d.date, d)).collect();
        Ctx {
            r,
            tz,
            tz_known,
            target,
            month_days,
            days,
        }
    }

    /// `2026-10-03 14:05 +02:00` (seconds shown when not zero).
    fn when(&self, ts: Timestamp) -> String {
        let z = ts.to_zoned(self.tz.clone());
        if z.second() == 0 && z.subsec_nanosecond() == 0 {
            z.strftime("%Y-%m-%d %H:%M %:z").to_string()
        } else {
            z.strftime("%Y-%m-%d %H:%M:%S %:z").to_string()
        }
    }

    /// Seconds actually counted (the whole period, or up to the as-of slot).
    fn counted_seconds(&self) -> u64 {
        let r = self.r;
        if r.as_of.is_none() {
            r.period_end.duration_since(r.period_start).as_secs().max(0) as u64
        } else {
            // Month to date never counts the (possibly shorter) last slot.
            let s = &r.slots;
            u64::from(s.up + s.down + s.maintenance + s.nodata) * r.slot_seconds
        }
    }

    fn month_title(&self) -> String {
        self.r.month.first_day().strftime("%B %Y").to_string()
    }
}

fn page(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n\
         <meta name=\"generator\" content=\"slaprobe-collector {}\">\n\
         <title>SLA evidence report: {} ({}), {}</title>\n<style>",
        env!("CARGO_PKG_VERSION"),
        Esc(&r.contract),
        Esc(&r.vendor),
        r.month
    )?;
    out.push_str(CSS);
    // The running footer of printed pages names the document (CSS-escaped: user input).
    writeln!(
        out,
        "@page {{ @bottom-left {{ content: \"{} \\00b7  {}\"; font: 7.5pt sans-serif; color: #555; }} \
         @bottom-right {{ content: \"Page \" counter(page) \" of \" counter(pages); font: 7.5pt sans-serif; color: #555; }} }}",
        css_string(&r.contract),
        r.month
    )?;
    out.push_str("</style>\n</head>\n<body>\n");
    sections::header(out, c)?;
    out.push_str("<main>\n");
    sections::verdict(out, c)?;
    sections::figures(out, c)?;
    charts::availability_by_day(out, c)?;
    sections::incidents(out, c)?;
    charts::percentiles_by_day(out, c, ObjectiveKind::Latency, "latency", "Latency by day")?;
    charts::percentiles_by_day(
        out,
        c,
        ObjectiveKind::WebVital,
        "web-vitals",
        "Web Vitals by day",
    )?;
    sections::maintenance(out, c)?;
    sections::coverage(out, c)?;
    sections::method(out, c)?;
    sections::evidence(out, c)?;
    sections::appendix(out, c)?;
    out.push_str("</main>\n");
    writeln!(
        out,
        "<footer><p>Rendered by slaprobe-collector {} from the report of contract <b>{}</b> for {}. \
         The CSV and JSON exports of the same report carry every figure at full precision.</p></footer>",
        env!("CARGO_PKG_VERSION"),
        Esc(&r.contract),
        r.month
    )?;
    out.push_str("</body>\n</html>\n");
    Ok(())
}

/// The style sheet: system fonts only, A4 print rules, greyscale-safe marks.
const CSS: &str = include_str!("report.css");
