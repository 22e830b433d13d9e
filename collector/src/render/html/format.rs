//! Text for the report's reader: HTML escaping ([`Esc`]) and the figures as
//! shown (percentages truncated, latencies rounded up, integers grouped),
//! never better than measured.

use std::fmt::{self, Write};

use jiff::civil::{Date, Weekday};

use crate::render::human_duration;
use crate::sla::ObjectiveKind;
use crate::sla::report::ObjectiveResult;

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
pub(super) fn css_string(s: &str) -> String {
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
pub(super) fn pct(v: f64) -> String {
    let t = ((v * 1000.0) + 1e-6).floor() / 1000.0;
    format!("{t:.3}")
}

/// A config-given decimal as written: `99.9`, `10`, `12.5`.
pub(super) fn dec(v: f64) -> String {
    format!("{v}")
}

/// An objective's value for reading: a CLS score as a plain number
/// (`0.117`), any other value as a [`latency`].
pub(super) fn value_text(o: &ObjectiveResult, v: f64) -> String {
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
pub(super) fn latency(v: f64) -> String {
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
pub(super) fn int(n: u64) -> String {
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

/// An escaped, comma-separated list (wraps between items first).
pub(super) fn list(items: &[String]) -> String {
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

pub(super) fn inline_list(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        return format!("<span class=\"muted\">{}</span>", Esc(empty));
    }
    items
        .iter()
        .map(|i| format!("<span class=\"mono\">{}</span>", Esc(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A daily duration; zero as a muted dash so the days with something stand out.
pub(super) fn day_duration(secs: u64) -> String {
    if secs == 0 {
        "<span class=\"muted\">–</span>".to_string()
    } else {
        Esc(&human_duration(secs)).to_string()
    }
}

pub(super) fn weekday_short(d: Date) -> &'static str {
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

pub(super) fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// A tick or bound as short as it can be: `99.925`, `97.5`, `100`.
pub(super) fn axis_label(v: f64) -> String {
    format!("{}", (v * 1e6).round() / 1e6)
}

/// A bar's value label: two decimals (truncated) fit a rotated label.
pub(super) fn axis_label_value(a: f64) -> String {
    let t = ((a * 100.0) + 1e-6).floor() / 100.0;
    format!("{t:.2}")
}

/// `Availability`, `Latency: processing p95`.
pub(super) fn objective_name(o: &ObjectiveResult) -> String {
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
}
