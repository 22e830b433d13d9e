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

use std::collections::HashMap;
use std::fmt::{self, Write};

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::{human_duration, truncate_chars, zone};
use crate::sla::report::{DayFigures, ObjectiveResult};
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

/// HTML-escapes text for element content and quoted attribute values.
/// Control characters other than TAB and LF show as U+FFFD.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut last = 0;
        for (i, ch) in s.char_indices() {
            let rep = match ch {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                c if c.is_control() && c != '\n' && c != '\t' => "\u{FFFD}",
                _ => continue,
            };
            f.write_str(&s[last..i])?;
            f.write_str(rep)?;
            last = i + ch.len_utf8();
        }
        f.write_str(&s[last..])
    }
}

/// A CSS string literal's content: everything but plain ASCII letters, digits
/// and a few safe marks as `\XXXXXX` escapes (so no `"`, `\`, `<` or newline
/// can end the string or the `<style>` element).
fn css_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric()
            || matches!(ch, ' ' | '-' | '_' | '.' | ':' | ',' | '/' | '(' | ')')
        {
            out.push(ch);
        } else if !ch.is_control() {
            let _ = write!(out, "\\{:06x}", ch as u32);
        }
    }
    out
}

/// Percent truncated (never rounded up) to three decimals: `99.873`. The tiny
/// epsilon keeps binary noise (99.89999999999999 for 99.9) from losing a digit.
fn pct(v: f64) -> String {
    let t = ((v * 1000.0) + 1e-6).floor() / 1000.0;
    format!("{t:.3}")
}

/// A config-given decimal as written: `99.9`, `10`, `12.5`.
fn dec(v: f64) -> String {
    format!("{v}")
}

/// An objective's value for reading: a CLS score as a plain number
/// (`0.117`), any other value as a [`latency`].
fn value_text(o: &ObjectiveResult, v: f64) -> String {
    if o.metric.as_deref() == Some("cls") {
        if !v.is_finite() {
            return "–".to_string();
        }
        let s = format!("{:.3}", (v * 1000.0 - 1e-9).ceil() / 1000.0);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        latency(v)
    }
}

/// Seconds of latency for reading, rounded **up** to 0.1 ms below 10 s
/// (`812.4 ms`, `800 ms`) and to 0.01 s above (`12.35 s`).
fn latency(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    if v < 10.0 {
        let ms = (v * 10_000.0 - 1e-6).ceil() / 10.0;
        // No "-0 ms" for a zero (ceil of a tiny negative is -0.0).
        let ms = if ms > 0.0 { ms } else { 0.0 };
        let s = format!("{ms:.1}");
        format!("{} ms", s.strip_suffix(".0").unwrap_or(&s))
    } else {
        let s = (v * 100.0 - 1e-6).ceil() / 100.0;
        format!("{s:.2} s")
    }
}

/// Integer with narrow no-break spaces between thousands: `44 570`.
fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(ch);
    }
    out
}

fn badge(out: &mut String, met: bool) -> fmt::Result {
    if met {
        out.push_str(r#"<span class="badge met">✔&nbsp;MET</span>"#);
    } else {
        out.push_str(r#"<span class="badge breached">✘&nbsp;BREACHED</span>"#);
    }
    Ok(())
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
    header(out, c)?;
    out.push_str("<main>\n");
    verdict(out, c)?;
    figures(out, c)?;
    day_chart(out, c)?;
    incidents(out, c)?;
    latency_section(out, c, ObjectiveKind::Latency, "latency", "Latency by day")?;
    latency_section(
        out,
        c,
        ObjectiveKind::WebVital,
        "web-vitals",
        "Web Vitals by day",
    )?;
    maintenance(out, c)?;
    coverage(out, c)?;
    method(out, c)?;
    evidence(out, c)?;
    appendix(out, c)?;
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

fn header(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    let hours = r.period_end.duration_since(r.period_start).as_secs().max(0) / 3600;
    writeln!(
        out,
        "<header class=\"top\">\n<p class=\"kicker\">SLA evidence report · {}</p>\n<h1>{}</h1>\n<dl class=\"meta\">",
        Esc(&c.month_title()),
        Esc(&r.contract)
    )?;
    writeln!(
        out,
        "<div><dt>Contract</dt><dd>{}</dd></div>",
        Esc(&r.contract)
    )?;
    writeln!(out, "<div><dt>Vendor</dt><dd>{}</dd></div>", Esc(&r.vendor))?;
    writeln!(
        out,
        "<div><dt>Month</dt><dd>{} ({})</dd></div>",
        Esc(&c.month_title()),
        r.month
    )?;
    write!(out, "<div><dt>Time zone</dt><dd>{}", Esc(&r.timezone))?;
    if !c.tz_known {
        out.push_str(" <em>(unknown here: times are shown in UTC)</em>");
    }
    out.push_str("</dd></div>\n");
    writeln!(
        out,
        "<div class=\"wide\"><dt>Period</dt><dd><span class=\"nw\">{}</span> to <span class=\"nw\">{}</span> ({hours} h)</dd></div>",
        Esc(&c.when(r.period_start)),
        Esc(&c.when(r.period_end))
    )?;
    match r.as_of {
        None => {
            out.push_str("<div class=\"full\"><dt>Status</dt><dd>Complete month: every slot is counted</dd></div>\n")
        }
        Some(t) => writeln!(
            out,
            "<div class=\"full\"><dt>Status</dt><dd><b>Month to date</b>, as of <span class=\"nw\">{}</span></dd></div>",
            Esc(&c.when(t))
        )?,
    }
    out.push_str("</dl>\n");
    if let Some(t) = r.as_of {
        writeln!(
            out,
            "<p class=\"notice\"><b>Provisional: month to date.</b> Figures count the slots that started by {} \
             ({} UTC). Later slots are not counted; the month's verdict and credit may still change.</p>",
            Esc(&c.when(t)),
            Esc(&t.to_string())
        )?;
    }
    out.push_str("</header>\n");
    Ok(())
}

/// `Availability`, `Latency: processing p95`.
fn objective_name(o: &ObjectiveResult) -> String {
    match (o.kind, &o.phase, o.percentile) {
        (ObjectiveKind::Availability, _, _) => "Availability".to_string(),
        (ObjectiveKind::Latency, Some(phase), Some(p)) => {
            format!("Latency: {phase}, {}th percentile", dec(p))
        }
        (ObjectiveKind::WebVital, _, Some(p)) => format!(
            "Web Vital: {}, {}th percentile",
            o.metric.as_deref().unwrap_or("").to_ascii_uppercase(),
            dec(p)
        ),
        _ => o.objective.clone(),
    }
}

fn verdict(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    out.push_str("<section id=\"verdict\">\n<h2>Verdict</h2>\n");
    if r.objectives.is_empty() {
        out.push_str("<p>This contract sets no objective: the figures below are for information.</p>\n</section>\n");
        return Ok(());
    }
    let breached = r.objectives.iter().filter(|o| !o.met).count();
    let unmeasured = r.objectives.iter().filter(|o| o.attained.is_none()).count();
    let n = r.objectives.len();
    if breached == 0 && unmeasured > 0 {
        // "Met" without data only means no breach was seen: say so up front.
        writeln!(
            out,
            "<p class=\"overall\">No objective was breached{}, but {} of {n} could not be measured: no data.</p>",
            if r.as_of.is_some() { " so far" } else { "" },
            unmeasured
        )?;
    } else if breached == 0 {
        writeln!(
            out,
            "<p class=\"overall\">{} met{}.</p>",
            match n {
                1 => "The objective was".to_string(),
                2 => "Both objectives were".to_string(),
                _ => format!("All {n} objectives were"),
            },
            if r.as_of.is_some() { " so far" } else { "" }
        )?;
    } else {
        writeln!(
            out,
            "<p class=\"overall breached\">{breached} of {n} objective{} <b>breached</b>{}.</p>",
            if n == 1 { "" } else { "s" },
            if r.as_of.is_some() { " so far" } else { "" }
        )?;
    }
    out.push_str(
        "<table class=\"verdict small\">\n<colgroup><col style=\"width:34%\"><col style=\"width:16%\">\
         <col style=\"width:30%\"><col style=\"width:20%\"></colgroup>\n\
         <thead><tr><th>Objective</th><th class=\"num\">Target</th><th class=\"num\">Attained</th><th>Result</th></tr></thead>\n<tbody>\n",
    );
    for o in &r.objectives {
        let is_latency = o.is_sampled();
        let target = if is_latency {
            format!("≤ {}", value_text(o, o.target))
        } else {
            format!("≥ {} %", dec(o.target))
        };
        let attained = match (o.attained, is_latency) {
            (None, _) => "no data".to_string(),
            (Some(v), true) => value_text(o, v),
            (Some(v), false) => format!("{} %", pct(v)),
        };
        write!(out, "<tr><td>{}", Esc(&objective_name(o)),)?;
        if is_latency {
            // The machine label, as in the CSV, JSON and metrics.
            write!(out, "<div class=\"sub mono\">{}</div>", Esc(&o.objective))?;
        }
        write!(
            out,
            "</td><td class=\"num\">{}</td><td class=\"num big\">{}",
            Esc(&target),
            Esc(&attained)
        )?;
        if let (true, Some(n), Some(_)) = (is_latency, o.samples, o.attained) {
            write!(out, "<div class=\"sub\">over {} samples</div>", int(n))?;
        }
        out.push_str("</td><td>");
        badge(out, o.met)?;
        if o.attained.is_none() {
            out.push_str("<div class=\"sub\">nothing measured: no breach observed</div>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    Ok(())
}

fn figures(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    let counted = c.counted_seconds();
    let share = |s: u64| {
        if counted > 0 {
            format!("{:.1} %", s as f64 / counted as f64 * 100.0)
        } else {
            "–".into()
        }
    };
    out.push_str("<section id=\"figures\">\n<h2>Key figures</h2>\n<div class=\"cards\">\n");

    // Availability.
    out.push_str("<div class=\"card\"><h3>Availability</h3>");
    match r.availability_percent {
        Some(a) => write!(out, "<p class=\"value\">{} %</p>", pct(a))?,
        None => out.push_str("<p class=\"value muted\">no data</p>"),
    }
    write!(
        out,
        "<p>{} slots UP, {} DOWN (slot {}).</p>",
        int(u64::from(r.slots.up)),
        int(u64::from(r.slots.down)),
        Esc(&human_duration(r.slot_seconds))
    )?;
    if let Some(t) = c.target {
        write!(out, "<p>Target ≥ {} %.</p>", dec(t))?;
    }
    if r.availability_percent.is_none() {
        out.push_str("<p>No slot was UP or DOWN: nothing could be measured.</p>");
    }
    out.push_str("</div>\n");

    // Downtime.
    write!(
        out,
        "<div class=\"card\"><h3>Downtime</h3><p class=\"value\">{}</p><p>{} s confirmed DOWN in {} incident{}.</p>",
        Esc(&human_duration(r.downtime_seconds)),
        int(r.downtime_seconds),
        int(r.incidents.len() as u64),
        if r.incidents.len() == 1 { "" } else { "s" }
    )?;
    match r.error_budget_remaining {
        Some(b) if b < 0.0 => write!(
            out,
            "<p>Error budget: <b>overspent</b> ({:.1} % remaining).</p>",
            b * 100.0
        )?,
        Some(b) => write!(out, "<p>Error budget remaining: {:.1} %.</p>", b * 100.0)?,
        None if c.target.is_some() => {
            out.push_str("<p>Error budget: none allowed, and some was spent.</p>")
        }
        None => {}
    }
    out.push_str("</div>\n");

    // Coverage.
    let eligible = counted.saturating_sub(r.maintenance_seconds + r.nodata_seconds);
    writeln!(
        out,
        "<div class=\"card\"><h3>Coverage</h3><p class=\"value\">{}</p><p>of the {} time measured (UP or DOWN).</p>\
         <p>Maintenance: {} ({}).<br>No data: {} ({}).</p></div>",
        share(eligible),
        if r.as_of.is_some() {
            "counted"
        } else {
            "month's"
        },
        Esc(&human_duration(r.maintenance_seconds)),
        share(r.maintenance_seconds),
        Esc(&human_duration(r.nodata_seconds)),
        share(r.nodata_seconds)
    )?;

    // Credit.
    write!(
        out,
        "<div class=\"card credit\"><h3>Credit owed</h3><p class=\"value\">{} %</p>",
        dec(r.credit_percent)
    )?;
    if r.credit_percent > 0.0 {
        out.push_str("<p>of the monthly fee, by the contract's credit tiers.</p>");
    } else {
        out.push_str("<p>of the monthly fee: no credit tier applies.</p>");
    }
    if r.as_of.is_some() {
        out.push_str("<p>Provisional until the month ends.</p>");
    }
    out.push_str("</div>\n</div>\n</section>\n");
    Ok(())
}

// --- SVG charts -------------------------------------------------------------

/// Chart geometry shared by the day-based charts: 720 user units wide.
const W: f64 = 720.0;
const PLOT_L: f64 = 52.0;
const PLOT_R: f64 = 10.0;

fn weekday_short(d: Date) -> &'static str {
    match d.weekday() {
        Weekday::Monday => "Mo",
        Weekday::Tuesday => "Tu",
        Weekday::Wednesday => "We",
        Weekday::Thursday => "Th",
        Weekday::Friday => "Fr",
        Weekday::Saturday => "Sa",
        Weekday::Sunday => "Su",
    }
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// Weekend shading and the day labels (number, weekday) under a day-column plot.
fn day_columns(out: &mut String, c: &Ctx<'_>, top: f64, bottom: f64) -> fmt::Result {
    let n = c.month_days.len().max(1) as f64;
    let bw = (W - PLOT_L - PLOT_R) / n;
    for (i, d) in c.month_days.iter().enumerate() {
        let x = PLOT_L + bw * i as f64;
        let counted = c.days.contains_key(d);
        if is_weekend(*d) {
            write!(
                out,
                "<rect class=\"wkend\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bw:.1}\" height=\"{:.1}\"/>",
                bottom - top
            )?;
        }
        let cls = if counted { "dl" } else { "dl future" };
        write!(
            out,
            "<text class=\"{cls}\" x=\"{:.1}\" y=\"{:.1}\">{}</text><text class=\"{cls} wd\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x + bw / 2.0,
            bottom + 12.0,
            d.day(),
            x + bw / 2.0,
            bottom + 22.0,
            weekday_short(*d)
        )?;
    }
    Ok(())
}

/// The floor of the availability axis: the largest of a few round values
/// below every day's availability and the target, so both stay visible.
fn axis_floor(c: &Ctx<'_>) -> f64 {
    let mut m = c.target.unwrap_or(100.0);
    for d in c.days.values() {
        if let Some(a) = d.availability_percent {
            m = m.min(a);
        }
    }
    const FLOORS: [f64; 9] = [99.9, 99.5, 99.0, 98.0, 95.0, 90.0, 80.0, 50.0, 0.0];
    FLOORS.into_iter().find(|&f| f < m).unwrap_or(0.0)
}

/// Round ticks from `lo` to 100: the smallest 1, 2, 2.5 or 5 × 10ⁿ step that
/// divides the span into at most five parts.
fn availability_ticks(lo: f64) -> Vec<f64> {
    let span = 100.0 - lo;
    if span <= 0.0 {
        return vec![100.0];
    }
    let mag = 10f64.powf((span / 5.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|st| span / st <= 5.0 + 1e-9 && ((span / st) - (span / st).round()).abs() < 1e-9)
        .unwrap_or(span);
    let n = (span / step).round() as usize;
    (0..=n).map(|k| lo + step * k as f64).collect()
}

/// A tick or bound as short as it can be: `99.925`, `97.5`, `100`.
fn axis_label(v: f64) -> String {
    format!("{}", (v * 1e6).round() / 1e6)
}

fn day_chart(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let (top, bottom, h) = (30.0, 196.0, 228.0);
    let lo = axis_floor(c);
    let span = (100.0 - lo).max(1e-9);
    let y = |v: f64| bottom - (bottom - top) * ((v - lo) / span).clamp(0.0, 1.0);
    let n = c.month_days.len().max(1) as f64;
    let bw = (W - PLOT_L - PLOT_R) / n;

    out.push_str("<section id=\"daily\">\n<h2>Availability by day</h2>\n<figure>\n");
    writeln!(
        out,
        "<svg viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"Availability per day of {}\">",
        Esc(&c.month_title())
    )?;
    out.push_str(
        "<defs><pattern id=\"hatch-bad\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <rect width=\"5\" height=\"5\" fill=\"#f4d3d0\"/><rect width=\"2.2\" height=\"5\" fill=\"#9b1c1c\"/></pattern></defs>\n",
    );
    // Legend.
    out.push_str(
        "<g class=\"legend\"><rect class=\"bar ok\" x=\"52\" y=\"6\" width=\"12\" height=\"10\"/><text x=\"68\" y=\"15\">at or above target</text>\
         <rect class=\"bar bad\" x=\"180\" y=\"6\" width=\"12\" height=\"10\"/><text x=\"196\" y=\"15\">below target</text>\
         <line class=\"target\" x1=\"282\" y1=\"11\" x2=\"306\" y2=\"11\"/><text x=\"310\" y=\"15\">target</text>\
         <text x=\"360\" y=\"15\">n/a = nothing measured (maintenance or no data)</text></g>\n",
    );
    day_columns(out, c, top, bottom)?;
    // Grid and axis labels.
    for v in availability_ticks(lo) {
        let yy = y(v);
        write!(
            out,
            "<line class=\"grid\" x1=\"{PLOT_L}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text class=\"yl\" x=\"{:.1}\" y=\"{:.1}\">{} %</text>",
            W - PLOT_R,
            PLOT_L - 4.0,
            yy + 3.0,
            axis_label(v)
        )?;
    }
    // Bars.
    for (i, d) in c.month_days.iter().enumerate() {
        let Some(fig) = c.days.get(d) else { continue };
        let cx = PLOT_L + bw * (i as f64 + 0.5);
        let bar_w = bw * 0.7;
        match fig.availability_percent {
            None => write!(
                out,
                "<text class=\"na\" x=\"{cx:.1}\" y=\"{:.1}\">n/a</text>",
                bottom - 4.0
            )?,
            Some(a) => {
                let ok = c.target.is_none_or(|t| a >= t);
                let yt = y(a);
                write!(
                    out,
                    "<rect class=\"bar {}\" x=\"{:.1}\" y=\"{yt:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\"><title>{}: {} %</title></rect>",
                    if ok { "ok" } else { "bad" },
                    cx - bar_w / 2.0,
                    (bottom - yt).max(0.0),
                    d,
                    pct(a)
                )?;
                if !ok {
                    // The value, written upwards: above a short bar, or inside a tall one
                    // from just below its top (a white halo keeps it readable on the hatch).
                    let (ty, anchor) = if yt - top > 34.0 {
                        (yt - 3.0, "start")
                    } else {
                        (yt + 4.0, "end")
                    };
                    write!(
                        out,
                        "<text class=\"val\" text-anchor=\"{anchor}\" transform=\"translate({:.1} {ty:.1}) rotate(-90)\">{}</text>",
                        cx + 3.0,
                        axis_label_value(a)
                    )?;
                }
            }
        }
    }
    if !c.days.values().any(|d| d.availability_percent.is_some()) {
        write!(
            out,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\">No day could be measured</text>",
            PLOT_L + (W - PLOT_L - PLOT_R) / 2.0,
            (top + bottom) / 2.0
        )?;
    }
    // Axis line and the target on top of the bars.
    write!(
        out,
        "<line class=\"axis\" x1=\"{PLOT_L}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\"/>",
        W - PLOT_R
    )?;
    if let Some(t) = c.target {
        let yt = y(t);
        write!(
            out,
            "<line class=\"target\" x1=\"{PLOT_L}\" y1=\"{yt:.1}\" x2=\"{:.1}\" y2=\"{yt:.1}\"/>\
             <text class=\"tl\" x=\"{:.1}\" y=\"{:.1}\">target {} %</text>",
            W - PLOT_R,
            W - PLOT_R - 2.0,
            yt - 3.0,
            dec(t)
        )?;
    }
    out.push_str("\n</svg>\n");
    let below: Vec<String> = c
        .month_days
        .iter()
        .filter_map(|d| {
            let a = c.days.get(d)?.availability_percent?;
            (c.target.is_some_and(|t| a < t)).then(|| d.day().to_string())
        })
        .collect();
    write!(
        out,
        "<figcaption>Availability of each local day ({}), axis from {} % to 100 %. ",
        Esc(&c.r.timezone),
        axis_label(lo)
    )?;
    let measured = c.days.values().any(|d| d.availability_percent.is_some());
    match (c.target, below.is_empty()) {
        _ if !measured => out.push_str("No day could be measured."),
        (None, _) => {}
        (Some(_), true) => out.push_str("No day was below the target."),
        (Some(_), false) => write!(out, "Days below the target: {}.", below.join(", "))?,
    }
    if c.r.as_of.is_some() {
        out.push_str(" Grey day numbers are not counted yet.");
    }
    out.push_str("</figcaption>\n</figure>\n</section>\n");
    Ok(())
}

/// A bar's value label: two decimals (truncated) fit a rotated label.
fn axis_label_value(a: f64) -> String {
    let t = ((a * 100.0) + 1e-6).floor() / 100.0;
    format!("{t:.2}")
}

fn timeline(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    let (left, right) = (84.0, W - PLOT_R);
    let (s0, s1) = (
        r.period_start.as_second() as f64,
        r.period_end.as_second() as f64,
    );
    let len = (s1 - s0).max(1.0);
    let x =
        |t: Timestamp| left + (right - left) * ((t.as_second() as f64 - s0) / len).clamp(0.0, 1.0);
    let (inc_y, maint_y, row_h, axis_y) = (24.0, 56.0, 24.0, 86.0);

    out.push_str("<figure class=\"timeline\">\n");
    writeln!(
        out,
        "<svg viewBox=\"0 0 {W} 112\" role=\"img\" aria-label=\"Incidents and maintenance over {}\">",
        Esc(&c.month_title())
    )?;
    out.push_str(
        "<defs><pattern id=\"hatch-maint\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\">\
         <rect width=\"5\" height=\"5\" fill=\"#e6e6e6\"/><rect width=\"1.6\" height=\"5\" fill=\"#555\"/></pattern>\
         <pattern id=\"dots-future\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\">\
         <rect width=\"4\" height=\"4\" fill=\"#fff\"/><circle cx=\"2\" cy=\"2\" r=\"0.7\" fill=\"#999\"/></pattern></defs>\n",
    );
    out.push_str(
        "<g class=\"legend\"><rect class=\"inc\" x=\"84\" y=\"4\" width=\"12\" height=\"10\"/><text x=\"100\" y=\"13\">incident (confirmed DOWN)</text>\
         <rect class=\"maint\" x=\"250\" y=\"4\" width=\"12\" height=\"10\"/><text x=\"266\" y=\"13\">maintenance window</text>",
    );
    if r.as_of.is_some() {
        out.push_str("<rect class=\"future\" x=\"400\" y=\"4\" width=\"12\" height=\"10\"/><text x=\"416\" y=\"13\">not counted yet</text>");
    }
    out.push_str("</g>\n");
    // Rows.
    for (label, yy) in [("Incidents", inc_y), ("Maintenance", maint_y)] {
        write!(
            out,
            "<rect class=\"row\" x=\"{left}\" y=\"{yy}\" width=\"{:.1}\" height=\"{row_h}\"/><text class=\"rl\" x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            right - left,
            left - 6.0,
            yy + row_h / 2.0 + 3.5
        )?;
    }
    // Local midnights: a tick per day, the day number in the middle of its day.
    let mut prev: Option<(f64, Date)> = None;
    let mut ticks: Vec<(f64, Date)> = Vec::with_capacity(c.month_days.len() + 1);
    for d in &c.month_days {
        if let Ok(z) = d.to_zoned(c.tz.clone()) {
            ticks.push((x(z.timestamp()), *d));
        }
    }
    for &(tx, d) in &ticks {
        let weekly = d.weekday() == Weekday::Monday;
        write!(
            out,
            "<line class=\"{}\" x1=\"{tx:.1}\" y1=\"{inc_y}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>",
            if weekly { "tick wk" } else { "tick" },
            axis_y + 2.0
        )?;
        if let Some((px, pd)) = prev {
            write!(
                out,
                "<text class=\"dl\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                (px + tx) / 2.0,
                axis_y + 12.0,
                pd.day()
            )?;
        }
        prev = Some((tx, d));
    }
    if let Some((px, pd)) = prev {
        write!(
            out,
            "<text class=\"dl\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            (px + right) / 2.0,
            axis_y + 12.0,
            pd.day()
        )?;
    }
    write!(
        out,
        "<text class=\"ax\" x=\"{left}\" y=\"{:.1}\">{}</text><text class=\"ax end\" x=\"{right}\" y=\"{:.1}\">{}</text>",
        axis_y + 24.0,
        Esc(&c.when(r.period_start)),
        axis_y + 24.0,
        Esc(&c.when(r.period_end))
    )?;
    // Maintenance windows, clipped to the month.
    for m in &r.maintenance {
        let (a, b) = (x(m.start), x(m.end));
        write!(
            out,
            "<rect class=\"maint\" x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{} to {}</title></rect>",
            maint_y + 2.0,
            (b - a).max(1.5),
            row_h - 4.0,
            Esc(&c.when(m.start)),
            Esc(&c.when(m.end))
        )?;
    }
    // Not counted yet.
    if let Some(t) = r.as_of {
        let a = x(t);
        if right - a > 0.5 {
            for yy in [inc_y, maint_y] {
                write!(
                    out,
                    "<rect class=\"future\" x=\"{a:.1}\" y=\"{yy}\" width=\"{:.1}\" height=\"{row_h}\"/>",
                    right - a
                )?;
            }
        }
    }
    // Incidents: at least 1.5 units wide so a one-minute outage stays visible.
    for (i, inc) in r.incidents.iter().enumerate() {
        let (a, b) = (x(inc.start), x(inc.end));
        write!(
            out,
            "<rect class=\"inc\" x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>#{}: {} to {}</title></rect>",
            inc_y + 2.0,
            (b - a).max(1.5),
            row_h - 4.0,
            i + 1,
            Esc(&c.when(inc.start)),
            Esc(&c.when(inc.end))
        )?;
    }
    out.push_str("\n</svg>\n");
    writeln!(
        out,
        "<figcaption>The month from local midnight of day 1 to local midnight of the next month ({}); \
         ticks at local midnights, longer ticks on Mondays. Short incidents are drawn at a minimum width.</figcaption>\n</figure>",
        Esc(&c.r.timezone)
    )?;
    Ok(())
}

fn incidents(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    writeln!(
        out,
        "<section id=\"incidents\">\n<h2>Incidents ({})</h2>",
        r.incidents.len()
    )?;
    timeline(out, c)?;
    if r.incidents.is_empty() {
        out.push_str("<p class=\"none\">No incident: no slot was confirmed DOWN");
        out.push_str(if r.as_of.is_some() {
            " so far this month.</p>\n"
        } else {
            " this month.</p>\n"
        });
        out.push_str("</section>\n");
        return Ok(());
    }
    writeln!(
        out,
        "<p class=\"lead\">An incident is a run of consecutive DOWN slots. Times are local ({}) with their UTC offset; \
         the end is exclusive. Messages longer than {MESSAGE_MAX_CHARS} characters are cut (…): the CSV export has them in full.</p>",
        Esc(&r.timezone)
    )?;
    out.push_str(
        "<table class=\"incidents\">\n<colgroup><col style=\"width:4.5%\"><col style=\"width:12%\"><col style=\"width:12%\">\
         <col style=\"width:9%\"><col style=\"width:10%\"><col style=\"width:10%\"><col style=\"width:13.5%\"><col style=\"width:29%\"></colgroup>\n\
         <thead><tr><th class=\"num\">#</th><th>Start</th><th>End</th><th class=\"num\">Duration</th><th>Checks</th>\
         <th>Locations</th><th>Failure classes</th><th>Sample error message</th></tr></thead>\n<tbody>\n",
    );
    for (i, inc) in r.incidents.iter().enumerate() {
        write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"msg\">",
            i + 1,
            two_line_time(c, inc.start),
            two_line_time(c, inc.end),
            Esc(&human_duration(inc.duration_seconds)),
            list(&inc.checks),
            list(&inc.locations),
            list(&inc.classes),
        )?;
        match inc.sample_message.as_deref() {
            None => out.push_str("<span class=\"muted\">–</span>"),
            Some(m) => {
                let (shown, cut) = truncate_chars(m, MESSAGE_MAX_CHARS);
                write!(out, "{}", Esc(shown))?;
                if cut {
                    out.push_str("<span class=\"muted\">…</span>");
                }
            }
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    Ok(())
}

/// `2026-10-03` over `14:05 +02:00`, escaped.
fn two_line_time(c: &Ctx<'_>, ts: Timestamp) -> String {
    let s = c.when(ts);
    match s.split_once(' ') {
        Some((d, t)) => format!("{}<br><span class=\"t\">{}</span>", Esc(d), Esc(t)),
        None => Esc(&s).to_string(),
    }
}

/// An escaped, comma-separated list (wraps between items first).
fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "<span class=\"muted\">–</span>".to_string();
    }
    let mut s = String::new();
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}", Esc(it));
    }
    s
}

/// A round axis maximum and step above `v` (1, 2, 2.5 or 5 × 10ⁿ steps, four of them or so).
fn nice_axis(v: f64) -> (f64, f64) {
    let v = if v.is_finite() && v > 0.0 { v } else { 1.0 };
    let raw = v / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((v / step).ceil() * step, step)
}

/// The daily chart of each percentile objective of `kind` (latency or
/// web_vital), under heading `title` in section `id`.
fn latency_section(
    out: &mut String,
    c: &Ctx<'_>,
    kind: ObjectiveKind,
    id: &str,
    title: &str,
) -> fmt::Result {
    let r = c.r;
    let objectives: Vec<(usize, &ObjectiveResult)> = r
        .objectives
        .iter()
        .filter(|o| o.kind == kind)
        .enumerate()
        .collect();
    if objectives.is_empty() {
        return Ok(());
    }
    writeln!(out, "<section id=\"{id}\">\n<h2>{title}</h2>")?;
    for (k, o) in objectives {
        let latency = |v: f64| value_text(o, v);
        let max = o.max.unwrap_or(o.target);
        // This objective's value per counted day (matched by label, else by position).
        let value_of = |d: &DayFigures| {
            d.latency
                .iter()
                .find(|l| l.objective == o.objective)
                .or_else(|| d.latency.get(k))
                .and_then(|l| l.value)
        };
        let peak = c
            .days
            .values()
            .filter_map(|d| value_of(d))
            .fold(0.0f64, f64::max);
        let (ymax, step) = nice_axis(peak.max(max * 1.25));
        let (top, bottom, h) = (30.0, 176.0, 208.0);
        let y = |v: f64| bottom - (bottom - top) * (v / ymax).clamp(0.0, 1.0);
        let n = c.month_days.len().max(1) as f64;
        let bw = (W - PLOT_L - PLOT_R) / n;

        writeln!(out, "<figure>\n<h3>{}</h3>", Esc(&objective_name(o)))?;
        writeln!(
            out,
            "<svg viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"{} per day\">",
            Esc(&objective_name(o))
        )?;
        out.push_str(
            "<g class=\"legend\"><circle class=\"pt ok\" cx=\"58\" cy=\"11\" r=\"3.2\"/><text x=\"66\" y=\"15\">within max</text>\
             <rect class=\"pt bad\" x=\"150\" y=\"7\" width=\"8\" height=\"8\"/><text x=\"162\" y=\"15\">over max</text>\
             <line class=\"target\" x1=\"230\" y1=\"11\" x2=\"254\" y2=\"11\"/><text x=\"258\" y=\"15\">max</text>\
             <text x=\"300\" y=\"15\">no mark = no sample that day</text></g>\n",
        );
        day_columns(out, c, top, bottom)?;
        let mut v = 0.0;
        while v <= ymax + step / 1000.0 {
            let yy = y(v);
            write!(
                out,
                "<line class=\"grid\" x1=\"{PLOT_L}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text class=\"yl\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                W - PLOT_R,
                PLOT_L - 4.0,
                yy + 3.0,
                Esc(&latency(v))
            )?;
            v += step;
        }
        write!(
            out,
            "<line class=\"axis\" x1=\"{PLOT_L}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\"/>",
            W - PLOT_R
        )?;
        // The line through consecutive days with a value, then the marks on top.
        let points: Vec<(f64, Option<f64>, Date)> = c
            .month_days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    PLOT_L + bw * (i as f64 + 0.5),
                    c.days.get(d).and_then(|f| value_of(f)),
                    *d,
                )
            })
            .collect();
        let mut path = String::new();
        let mut pen_down = false;
        for &(px, val, _) in &points {
            match val {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{px:.1} {:.1} ",
                        if pen_down { "L" } else { "M" },
                        y(v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            write!(out, "<path class=\"lat\" d=\"{}\"/>", path.trim_end())?;
        }
        let ym = y(max);
        write!(
            out,
            "<line class=\"target\" x1=\"{PLOT_L}\" y1=\"{ym:.1}\" x2=\"{:.1}\" y2=\"{ym:.1}\"/>\
             <text class=\"tl\" x=\"{:.1}\" y=\"{:.1}\">max {}</text>",
            W - PLOT_R,
            W - PLOT_R - 2.0,
            ym - 3.0,
            Esc(&latency(max))
        )?;
        for &(px, val, d) in &points {
            let Some(v) = val else { continue };
            let py = y(v);
            if v <= max {
                write!(
                    out,
                    "<circle class=\"pt ok\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3.2\"><title>{d}: {}</title></circle>",
                    Esc(&latency(v))
                )?;
            } else {
                // The value written upwards above the mark, or downwards below it near the top.
                let (ty, anchor) = if py - top > 48.0 {
                    (py - 7.0, "start")
                } else {
                    (py + 7.0, "end")
                };
                write!(
                    out,
                    "<rect class=\"pt bad\" x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\"><title>{d}: {}</title></rect>\
                     <text class=\"val\" text-anchor=\"{anchor}\" transform=\"translate({:.1} {ty:.1}) rotate(-90)\">{}</text>",
                    px - 4.0,
                    py - 4.0,
                    Esc(&latency(v)),
                    px + 3.0,
                    Esc(&latency(v))
                )?;
            }
        }
        out.push_str("\n</svg>\n");
        writeln!(
            out,
            "<figcaption>The {}th percentile (nearest rank) of {} over each day's successful results \
             outside maintenance; the month's value is {} over {} samples (max {}).</figcaption>\n</figure>",
            o.percentile.map(dec).unwrap_or_default(),
            match (&o.phase, &o.metric) {
                (Some(p), _) => format!("the <b>{}</b> phase", Esc(p)),
                (None, Some(m)) =>
                    format!("<b>{}</b> in the browser", Esc(&m.to_ascii_uppercase())),
                _ => String::new(),
            },
            Esc(&o
                .attained
                .map(&latency)
                .unwrap_or_else(|| "not measured".into())),
            int(o.samples.unwrap_or(0)),
            Esc(&latency(max))
        )?;
    }
    out.push_str("</section>\n");
    Ok(())
}

fn maintenance(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    out.push_str("<section id=\"maintenance\">\n<h2>Maintenance windows applied</h2>\n");
    if r.maintenance.is_empty() {
        out.push_str(
            "<p class=\"none\">No maintenance window overlaps this month.</p>\n</section>\n",
        );
        return Ok(());
    }
    writeln!(
        out,
        "<p class=\"lead\">Slots that start inside a window count as maintenance whatever the probes saw: {} in total this month{}.</p>",
        Esc(&human_duration(r.maintenance_seconds)),
        if r.as_of.is_some() { " so far" } else { "" }
    )?;
    out.push_str(
        "<table class=\"small\">\n<colgroup><col style=\"width:26%\"><col style=\"width:26%\"><col style=\"width:16%\"><col style=\"width:32%\"></colgroup>\n\
         <thead><tr><th>Start</th><th>End</th><th class=\"num\">Duration</th><th>Rule</th></tr></thead>\n<tbody>\n",
    );
    for m in &r.maintenance {
        let secs = m.end.duration_since(m.start).as_secs().max(0) as u64;
        let mut note = String::new();
        if m.start < r.period_start {
            note.push_str(" (starts in the previous month)");
        }
        if m.end > r.period_end {
            note.push_str(" (ends in the next month)");
        }
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><span class=\"mono\">{}</span>{}</td></tr>",
            Esc(&c.when(m.start)),
            Esc(&c.when(m.end)),
            Esc(&human_duration(secs)),
            Esc(&m.rule),
            Esc(&note)
        )?;
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    Ok(())
}

/// Monitoring coverage per location (rule 1a): impaired and silent time,
/// and the failures impairment kept from being confirmed.
fn coverage(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    out.push_str("<section id=\"coverage\">\n<h2>Monitoring coverage</h2>\n");
    if r.locations.is_empty() {
        out.push_str("<p class=\"none\">No location had results.</p>\n</section>\n");
        return Ok(());
    }
    out.push_str(
        "<p class=\"lead\">Impaired: the location's canaries all failed, or one of its results was the agent's own \
         fault (<code>agent_error</code>); its results then counted as no data (see Method). Silent: no result at all \
         from the location. Excluded failures: stretches the contract would have been DOWN had the impaired \
         location's results counted.</p>\n\
         <table class=\"coverage\">\n<thead><tr><th>Location</th><th class=\"num\">Impaired</th>\
         <th class=\"num\">Silent</th><th class=\"num\">Excluded failures</th></tr></thead>\n<tbody>\n",
    );
    for l in &r.locations {
        writeln!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            Esc(&l.location),
            Esc(&human_duration(l.impaired_seconds)),
            Esc(&human_duration(l.silent_seconds)),
            l.excluded_failures.len()
        )?;
    }
    out.push_str("</tbody>\n</table>\n");
    let any = r.locations.iter().any(|l| !l.excluded_failures.is_empty());
    if any {
        out.push_str(
            "<table class=\"excluded\">\n<thead><tr><th>Location</th><th>Start</th><th>End</th>\
             <th class=\"num\">Duration</th><th>Checks</th><th>Failure classes</th><th>Why excluded</th></tr></thead>\n<tbody>\n",
        );
        for l in &r.locations {
            for x in &l.excluded_failures {
                writeln!(
                    out,
                    "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    Esc(&l.location),
                    two_line_time(c, x.start),
                    two_line_time(c, x.end),
                    Esc(&human_duration(x.duration_seconds)),
                    list(&x.checks),
                    list(&x.classes),
                    list(&x.reasons),
                )?;
            }
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
    Ok(())
}

fn method(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    let q = r.quorum;
    out.push_str("<section id=\"method\">\n<h2>Method</h2>\n<dl class=\"facts\">\n");
    writeln!(
        out,
        "<div><dt>Slot length</dt><dd>{} ({} s), from {}</dd></div>",
        Esc(&human_duration(r.slot_seconds)),
        r.slot_seconds,
        Esc(&c.when(r.period_start))
    )?;
    writeln!(
        out,
        "<div><dt>Quorum</dt><dd>{q} failing location{} confirm DOWN</dd></div>",
        if q == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "<div><dt>Locations</dt><dd>{}</dd></div>",
        inline_list(
            &r.locations
                .iter()
                .map(|l| l.location.clone())
                .collect::<Vec<_>>(),
            "none had results"
        )
    )?;
    writeln!(
        out,
        "<div><dt>Checks</dt><dd>{}</dd></div>",
        inline_list(&r.checks, "none")
    )?;
    writeln!(
        out,
        "<div><dt>Canaries</dt><dd>{}</dd></div>",
        inline_list(&r.canaries, "none configured")
    )?;
    out.push_str("</dl>\n<ol class=\"rules\">\n");
    writeln!(
        out,
        "<li><b>Slots.</b> The month, in the contract's time zone, is cut into slots of {} starting at local midnight of day 1. \
         When the month is not a whole number of slots, the last slot is shorter and counts with its real length.</li>",
        Esc(&human_duration(r.slot_seconds))
    )?;
    out.push_str(
        "<li><b>Each location.</b> A location's state for a check in a slot is the outcome of its <em>last</em> result \
         started in that slot: pass or fail. No result in the slot means no data from that location.</li>\n\
         <li><b>Impaired locations.</b> A location is impaired in a slot when it has at least one canary result (a check \
         independent of every vendor, part of no contract) started in that slot and every one of them failed, or when any \
         of its results in the slot has class <code>agent_error</code>. An impaired location's results in that slot count \
         as no data for that location; the next rule then applies to the other locations. A location without canary \
         results in a slot is not impaired by the first clause. The monitor's own faults are never the vendor's downtime.</li>\n",
    );
    writeln!(
        out,
        "<li><b>Each check.</b> A check is DOWN in a slot when at least {q} location{} fail (or, when fewer than {q} \
         locations have data, all of them fail), UP when it has data and is not DOWN, and without data otherwise.</li>",
        if q == 1 { "" } else { "s" }
    )?;
    out.push_str(
        "<li><b>The contract.</b> DOWN in a slot when any covered check is DOWN; UP when at least one check is UP and none \
         is DOWN; otherwise no data. A slot that <em>starts</em> inside a maintenance window is maintenance, whatever the data says.</li>\n\
         <li><b>Availability</b> = UP time ÷ (UP + DOWN time) × 100. <b>Downtime</b> = the DOWN slots' time. Maintenance and \
         no-data time count in neither; they are reported as coverage.</li>\n\
         <li><b>Incidents.</b> An incident is a run of consecutive DOWN slots. Its locations are those whose deciding result \
         failed in one of its slots, its classes those results' failure classes, its sample message the first of them.</li>\n\
         <li><b>Latency.</b> Over every successful result of the covered checks started in the month outside maintenance, \
         the nearest-rank percentile of the named phase (rank ⌈p/100 × N⌉ of the N values sorted ascending) must not \
         exceed the maximum.</li>\n\
         <li><b>Credit.</b> The largest percentage among the contract's credit tiers whose threshold is above the attained \
         availability; 0 when none applies or nothing was measured.</li>\n\
         <li><b>Error budget remaining</b> = 1 − downtime ÷ ((1 − target/100) × (month length − scheduled maintenance)).</li>\n\
         <li><b>Rounding.</b> This document never shows a figure better than measured: percentages are truncated to three \
         decimals, latencies rounded up to 0.1 ms. The CSV and JSON exports carry full precision.</li>\n</ol>\n",
    );
    writeln!(
        out,
        "<h3>Recomputing the evidence digest</h3>\n<p>The digest in the next section is SHA-256 over the stored results the \
         figures were computed from: every result of the checks and the canaries above whose <code>started_at</code> lies in the period \
         [{}, {}) UTC, ordered by agent id (bytewise) and then by <code>seq</code>, each result's JSON exactly as stored \
         followed by one newline. Export them one per line in that order to <code>results.jsonl</code> and run \
         <code>sha256sum results.jsonl</code>: it prints this digest, and <code>wc -l</code> gives the result count. \
         The slaprobe README, section <q>Recomputing the evidence digest</q>, gives the commands step by step. \
         Anyone holding the same results gets the same figures: the rules above are the whole computation.</p>\n</section>",
        Esc(&r.period_start.to_string()),
        Esc(&r.period_end.to_string())
    )?;
    Ok(())
}

fn inline_list(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        return format!("<span class=\"muted\">{}</span>", Esc(empty));
    }
    items
        .iter()
        .map(|i| format!("<span class=\"mono\">{}</span>", Esc(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn evidence(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let e = &c.r.evidence;
    out.push_str("<section id=\"evidence\">\n<h2>Evidence</h2>\n<dl class=\"facts\">\n");
    if e.sha256.is_empty() {
        out.push_str("<div><dt>SHA-256</dt><dd><em>not computed</em> (the report was rendered without its stored results)</dd></div>\n");
    } else {
        writeln!(
            out,
            "<div><dt>SHA-256</dt><dd><code class=\"digest\">{}</code></dd></div>",
            Esc(&e.sha256)
        )?;
    }
    writeln!(
        out,
        "<div><dt>Results</dt><dd>{} stored probe results</dd></div>\n</dl>\n</section>",
        int(e.results)
    )?;
    Ok(())
}

fn appendix(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    let lat: Vec<&ObjectiveResult> = r.objectives.iter().filter(|o| o.is_sampled()).collect();
    out.push_str("<section id=\"days\" class=\"appendix\">\n<h2>Appendix: daily figures</h2>\n");
    if r.days.is_empty() {
        out.push_str("<p class=\"none\">No day of the month is counted yet.</p>\n</section>\n");
        return Ok(());
    }
    out.push_str("<table class=\"days\">\n<thead><tr><th>Date</th><th class=\"num\">Availability</th><th class=\"num\">Downtime</th>\
                  <th class=\"num\">Maintenance</th><th class=\"num\">No data</th>");
    for o in &lat {
        write!(
            out,
            "<th class=\"num\">{}</th>",
            Esc(&format!(
                "{} p{}",
                o.quantity().unwrap_or(""),
                o.percentile.map(dec).unwrap_or_default()
            ))
        )?;
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for d in &r.days {
        let below = matches!((d.availability_percent, c.target), (Some(a), Some(t)) if a < t);
        write!(
            out,
            "<tr{}><td>{} {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            if below { " class=\"below\"" } else { "" },
            d.date,
            weekday_short(d.date),
            match d.availability_percent {
                Some(a) => format!("{} %{}", pct(a), if below { " ▼" } else { "" }),
                None => "n/a".into(),
            },
            day_duration(d.downtime_seconds),
            day_duration(d.maintenance_seconds),
            day_duration(d.nodata_seconds),
        )?;
        for (k, o) in lat.iter().enumerate() {
            let l = d
                .latency
                .iter()
                .find(|l| l.objective == o.objective)
                .or_else(|| d.latency.get(k));
            let over = matches!((l.and_then(|l| l.value), o.max), (Some(v), Some(m)) if v > m);
            write!(
                out,
                "<td class=\"num\">{}{}</td>",
                Esc(&l
                    .and_then(|l| l.value)
                    .map(|v| value_text(o, v))
                    .unwrap_or_else(|| "–".into())),
                if over { " ▲" } else { "" }
            )?;
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n<p class=\"sub\">▼ below the availability target; ▲ over the latency maximum.</p>\n</section>\n");
    Ok(())
}

/// A daily duration; zero as a muted dash so the days with something stand out.
fn day_duration(secs: u64) -> String {
    if secs == 0 {
        "<span class=\"muted\">–</span>".to_string()
    } else {
        Esc(&human_duration(secs)).to_string()
    }
}

/// The style sheet: system fonts only, A4 print rules, greyscale-safe marks.
const CSS: &str = r#"@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; background: #fff; }
body { margin: 0 auto; max-width: 186mm; padding: 0; color: #141414; background: #fff;
  font: 9.5pt/1.42 "Liberation Sans", "Helvetica Neue", Helvetica, Arial, "DejaVu Sans", sans-serif; }
@media screen { html { background: #e8eaed; } body { margin: 16px auto; padding: 12mm 12mm 10mm; max-width: 210mm; box-shadow: 0 1px 6px rgba(0,0,0,.25); } }
h1 { font-size: 19pt; line-height: 1.15; margin: 0 0 3mm; overflow-wrap: anywhere; }
h2 { font-size: 12.5pt; margin: 7mm 0 2.5mm; padding-bottom: 1mm; border-bottom: 1.5px solid #141414; break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10pt; margin: 3mm 0 1.5mm; break-after: avoid; }
p { margin: 1.5mm 0; }
.kicker { text-transform: uppercase; letter-spacing: .08em; font-size: 8.5pt; color: #444; margin: 0 0 1mm; }
.mono, code { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: .92em; }
.muted { color: #666; }
.sub { font-size: 8pt; color: #444; }
dl.meta { display: grid; grid-template-columns: repeat(3, 1fr); gap: 1.5mm 6mm; margin: 0 0 2mm; }
dl.meta .wide { grid-column: span 2; }
dl.meta .full { grid-column: 1 / -1; }
.nw { white-space: nowrap; }
p.lead, .overall { break-after: avoid; page-break-after: avoid; }
table.small { break-inside: avoid; page-break-inside: avoid; }
dl.meta div, dl.facts div { break-inside: avoid; }
dl.meta dt, dl.facts dt { font-size: 7.5pt; text-transform: uppercase; letter-spacing: .06em; color: #555; }
dl.meta dd, dl.facts dd { margin: 0; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: 28mm 1fr; gap: 1mm 4mm; margin: 0 0 2mm; }
dl.facts div { display: contents; }
.notice { border: 1.5px solid #8a5a00; background: #fff4d6; padding: 2mm 3mm; break-inside: avoid; }
.overall { font-size: 11pt; margin: 0 0 2mm; }
.overall.breached { font-weight: 600; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; margin: 1mm 0 2mm; }
thead { display: table-header-group; }
tr, figure, .card, .notice, svg { break-inside: avoid; page-break-inside: avoid; }
th, td { text-align: left; vertical-align: top; padding: 1.1mm 1.6mm; border-bottom: 0.6pt solid #bbb; overflow-wrap: anywhere; }
th { background: #ececec; font-size: 8pt; font-weight: 700; border-bottom: 1pt solid #141414; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.big { font-size: 11pt; font-weight: 600; }
table.verdict td { vertical-align: middle; padding: 2mm 1.6mm; }
.badge { display: inline-block; padding: 0.6mm 2.4mm; border: 1.5pt solid; border-radius: 2mm; font-weight: 800; letter-spacing: .04em; white-space: nowrap; }
.badge.met { color: #0c4a1c; background: #dff1e3; border-color: #0c4a1c; }
.badge.breached { color: #fff; background: #9b1c1c; border-color: #5f0d0d; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 3mm; }
.card { border: 0.8pt solid #999; border-top: 2.5pt solid #141414; padding: 2mm 2.5mm; }
.card h3 { margin: 0 0 1mm; font-size: 8pt; text-transform: uppercase; letter-spacing: .06em; color: #333; }
.card p { margin: 0.8mm 0; font-size: 8.5pt; }
.card p.value { font-size: 16pt; font-weight: 700; margin: 0 0 1mm; line-height: 1.2; }
figure { margin: 2mm 0 3mm; }
figcaption { font-size: 8pt; color: #333; margin-top: 1mm; }
svg { display: block; width: 100%; height: auto; font-family: "Liberation Sans", Arial, "DejaVu Sans", sans-serif; }
svg text { font-size: 9px; fill: #222; }
svg .legend text { font-size: 9.5px; }
svg .dl { text-anchor: middle; font-size: 8.5px; }
svg .dl.wd { font-size: 7px; fill: #555; }
svg .dl.future { fill: #aaa; }
svg .yl { text-anchor: end; font-size: 8.5px; }
svg .tl { text-anchor: end; font-size: 9px; font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .val { font-size: 8px; font-weight: 700; fill: #5f0d0d; paint-order: stroke; stroke: #fff; stroke-width: 2.5px; }
svg .na { text-anchor: middle; font-size: 7px; fill: #666; }
svg .empty { text-anchor: middle; font-size: 13px; fill: #555; paint-order: stroke; stroke: #fff; stroke-width: 4px; }
svg .wkend { fill: #f2f2f2; }
svg .grid { stroke: #d4d4d4; stroke-width: .6; }
svg .axis { stroke: #141414; stroke-width: 1; }
svg .target { stroke: #141414; stroke-width: 1.4; stroke-dasharray: 6 3; }
svg .bar.ok { fill: #5a7fb0; stroke: #2c4a73; stroke-width: .6; }
svg .bar.bad { fill: url(#hatch-bad); stroke: #5f0d0d; stroke-width: 1; }
svg .row { fill: #fafafa; stroke: #999; stroke-width: .6; }
svg .rl { text-anchor: end; font-size: 9.5px; font-weight: 700; }
svg .tick { stroke: #ccc; stroke-width: .5; }
svg .tick.wk { stroke: #777; stroke-width: .8; }
svg .ax { font-size: 8px; fill: #444; }
svg .ax.end { text-anchor: end; }
svg .inc { fill: #9b1c1c; stroke: #5f0d0d; stroke-width: .5; }
svg .maint { fill: url(#hatch-maint); stroke: #444; stroke-width: .6; }
svg .future { fill: url(#dots-future); stroke: #bbb; stroke-width: .5; }
svg .lat { fill: none; stroke: #1f4e8c; stroke-width: 1.4; }
svg .pt.ok { fill: #1f4e8c; stroke: #fff; stroke-width: .8; }
svg .pt.bad { fill: #9b1c1c; stroke: #5f0d0d; stroke-width: .8; }
table.incidents { font-size: 8pt; }
table.incidents td { padding: 0.8mm 1.4mm; }
table.incidents td.msg { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 7.2pt; white-space: pre-wrap; }
table.incidents .t { color: #333; }
table.days { font-size: 8pt; }
table.days td, table.days th { padding: 0.5mm 1.6mm; }
table.days tr.below td { font-weight: 700; background: #f7e4e2; }
ol.rules { padding-left: 5mm; margin: 2mm 0; }
ol.rules li { margin: 0.8mm 0; break-inside: avoid; }
code.digest { font-size: 9.5pt; overflow-wrap: anywhere; background: #f1f1f1; padding: 0.5mm 1.2mm; }
.none { font-style: italic; }
footer { margin-top: 8mm; padding-top: 2mm; border-top: 0.6pt solid #999; font-size: 7.5pt; color: #555; }
@media print { body { max-width: none; } h2 { margin-top: 5mm; } section#days { break-before: page; } }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dangerous() {
        assert_eq!(
            Esc("<b>&\"x\"'</b>").to_string(),
            "&lt;b&gt;&amp;&quot;x&quot;&#39;&lt;/b&gt;"
        );
        assert_eq!(Esc("a\u{0}b\nc").to_string(), "a\u{FFFD}b\nc");
        assert_eq!(
            css_string("a\"b</style>"),
            "a\\000022b\\00003c/style\\00003e"
        );
    }

    #[test]
    fn figures_never_look_better() {
        assert_eq!(pct(99.8999), "99.899");
        assert_eq!(pct(99.9), "99.900");
        assert_eq!(pct(99.89999999999999), "99.900");
        assert_eq!(pct(100.0), "100.000");
        assert_eq!(latency(0.8), "800 ms");
        assert_eq!(latency(0.80004), "800.1 ms");
        assert_eq!(latency(0.0123), "12.3 ms");
        assert_eq!(latency(12.341), "12.35 s");
        assert_eq!(int(1_234_567), "1\u{202F}234\u{202F}567");
        assert_eq!(int(12), "12");
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(availability_ticks(80.0), [80.0, 85.0, 90.0, 95.0, 100.0]);
        assert_eq!(
            availability_ticks(95.0),
            [95.0, 96.0, 97.0, 98.0, 99.0, 100.0]
        );
        assert_eq!(
            availability_ticks(50.0),
            [50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
        );
        assert_eq!(
            availability_ticks(0.0),
            [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(
            availability_ticks(99.5)
                .iter()
                .map(|v| axis_label(*v))
                .collect::<Vec<_>>(),
            ["99.5", "99.6", "99.7", "99.8", "99.9", "100"]
        );
        assert_eq!(
            availability_ticks(99.9)
                .iter()
                .map(|v| axis_label(*v))
                .collect::<Vec<_>>(),
            ["99.9", "99.92", "99.94", "99.96", "99.98", "100"]
        );
        assert_eq!(nice_axis(1.0), (1.0, 0.25));
        assert_eq!(nice_axis(0.9), (1.0, 0.25));
        assert_eq!(nice_axis(3.7), (4.0, 1.0));
    }
}
