//! The CSV export of a [`MonthReport`]: every figure of the JSON report in one
//! file that a spreadsheet opens as one sheet and a script reads with any
//! RFC 4180 reader.
//!
//! # Layout
//!
//! Syntax: RFC 4180. Fields are separated by `,`, records end with CRLF
//! (the last one too). A field is quoted with `"` when it holds `,`, `"`, CR,
//! LF, `;` or TAB, or starts with `=`, `+`, `-` or `@` after any leading
//! whitespace (spreadsheets in locales that separate fields with `;` would
//! split it otherwise), and a `"` inside is doubled; a quoted field may span
//! lines (sample messages can). UTF-8, no byte-order mark.
//!
//! Records: the **first field of every record names its kind**, and **the
//! first record of each kind is that kind's header** (its column names, the
//! first of which is the kind itself). Kinds come in this order, each as one
//! block: `summary`, `objective`, `day`, `incident`, `maintenance`,
//! `location`, `excluded_failure`, `impaired_stretch`. A kind
//! without data still has its header. A script groups records by their first
//! field and zips each group's rows with its first row; a spreadsheet user
//! filters column A on a kind and sees its header on top.
//!
//! Values: `null` in the JSON is an empty field; booleans are `true` /
//! `false`; numbers are plain decimals (no exponent, no thousands separator,
//! `.` as the decimal point) with the full precision of the JSON (the
//! shortest text that reads back to the same `f64`); instants are RFC 3339 in
//! UTC (`2026-10-03T12:05:00Z`, as in the JSON) and, in `*_local` columns, in
//! the contract's zone with its offset (`2026-10-03T14:05:00+02:00`); dates
//! are the contract zone's `YYYY-MM-DD`; lists are joined with `;`.
//! Text that comes from configs or probed sites (names, messages, rules) is
//! prefixed with `'` when it starts with `=`, `+`, `-`, `@` (after any
//! leading whitespace), TAB or CR, so
//! that a spreadsheet never runs it as a formula (OWASP "CSV injection");
//! strip one leading `'` from such a field to get the JSON's text.
//!
//! | kind | columns after the kind |
//! |---|---|
//! | `summary` | `key`, `value` |
//! | `objective` | `name` (JSON `objective`), `kind`, `target`, `attained`, `met`, `phase` (a web_vital objective's metric), `percentile`, `max`, `samples` |
//! | `day` | `date`, `up_slots`, `down_slots`, `maintenance_slots`, `nodata_slots`, `availability_percent`, `downtime_seconds`, `maintenance_seconds`, `nodata_seconds`, then per latency and web_vital objective (contract order) `<name>_seconds` (CLS: its unitless value), `<name>_samples` |
//! | `incident` | `number` (1-based), `start`, `end`, `start_local`, `end_local`, `duration_seconds`, `slots`, `checks`, `locations`, `classes`, `sample_message` (full text) |
//! | `maintenance` | `start`, `end`, `start_local`, `end_local`, `duration_seconds`, `rule` |
//! | `location` | `location`, `impaired_seconds`, `silent_seconds`, `excluded_failures` (count): the monitoring coverage (rule 1a) |
//! | `excluded_failure` | `location`, `start`, `end`, `start_local`, `end_local`, `duration_seconds`, `slots`, `checks`, `classes`, `reasons` |
//! | `impaired_stretch` | `location`, `start`, `end`, `start_local`, `end_local`, `duration_seconds`, `slots`, `reasons` |
//!
//! `summary` keys, in this order: `contract`, `vendor`, `month`, `timezone`,
//! `period_start`, `period_end`, `as_of` (empty unless month to date),
//! `slot_seconds`, `quorum`, `slots_up`, `slots_down`, `slots_maintenance`,
//! `slots_nodata`, `availability_percent`, `downtime_seconds`,
//! `maintenance_seconds`, `nodata_seconds`, `credit_percent`,
//! `error_budget_remaining` (a ratio, 1 = untouched), `incidents` (count),
//! `locations`, `checks`, `evidence_results`, `evidence_sha256`.
//!
//! `day` rows cover the counted days only (month to date: up to the `as_of`
//! day), like the JSON `days`. New columns or keys may be appended at the end
//! of a kind; existing ones keep their place and meaning.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{local_rfc3339, zone};
use crate::sla::MonthReport;

/// The report as CSV (see the [module documentation](self) for the layout).
pub fn csv(r: &MonthReport) -> String {
    let (tz, _) = zone(&r.timezone);
    let mut w = Csv {
        out: String::with_capacity(4096 + 256 * (r.days.len() + r.incidents.len())),
    };
    summary(&mut w, r);
    objectives(&mut w, r);
    days(&mut w, r);
    incidents(&mut w, r, &tz);
    maintenance(&mut w, r, &tz);
    coverage(&mut w, r, &tz);
    w.out
}

/// The `summary` block: one `key,value` record per figure.
fn summary(w: &mut Csv, r: &MonthReport) {
    w.record(&[Cell::Raw("summary"), Cell::Raw("key"), Cell::Raw("value")]);
    let mut kv =
        |key: &str, value: Cell<'_>| w.record(&[Cell::Raw("summary"), Cell::Raw(key), value]);
    kv("contract", Cell::Text(&r.contract));
    kv("vendor", Cell::Text(&r.vendor));
    kv("month", Cell::Owned(r.month.to_string()));
    kv("timezone", Cell::Text(&r.timezone));
    kv("period_start", Cell::Owned(r.period_start.to_string()));
    kv("period_end", Cell::Owned(r.period_end.to_string()));
    kv("as_of", opt_ts(r.as_of));
    kv("slot_seconds", int(r.slot_seconds));
    kv("quorum", int(r.quorum));
    kv("slots_up", int(r.slots.up));
    kv("slots_down", int(r.slots.down));
    kv("slots_maintenance", int(r.slots.maintenance));
    kv("slots_nodata", int(r.slots.nodata));
    kv("availability_percent", opt_num(r.availability_percent));
    kv("downtime_seconds", int(r.downtime_seconds));
    kv("maintenance_seconds", int(r.maintenance_seconds));
    kv("nodata_seconds", int(r.nodata_seconds));
    kv("credit_percent", num(r.credit_percent));
    kv("error_budget_remaining", opt_num(r.error_budget_remaining));
    kv("incidents", int(r.incidents.len()));
    let loc_names: Vec<&str> = r.locations.iter().map(|l| l.location.as_str()).collect();
    kv("locations", Cell::Owned(guard(&loc_names.join(";"))));
    kv("checks", Cell::Owned(guard(&r.checks.join(";"))));
    kv("evidence_results", int(r.evidence.results));
    kv("evidence_sha256", Cell::Text(&r.evidence.sha256));
}

/// The `objective` block: one record per objective, contract order.
fn objectives(w: &mut Csv, r: &MonthReport) {
    w.header(
        "objective",
        &[
            "name",
            "kind",
            "target",
            "attained",
            "met",
            "phase",
            "percentile",
            "max",
            "samples",
        ],
    );
    for o in &r.objectives {
        w.record(&[
            Cell::Raw("objective"),
            Cell::Text(&o.objective),
            Cell::Raw(o.kind.as_str()),
            num(o.target),
            opt_num(o.attained),
            Cell::Raw(if o.met { "true" } else { "false" }),
            o.quantity().map_or(Cell::Raw(""), Cell::Text),
            opt_num(o.percentile),
            opt_num(o.max),
            o.samples.map_or(Cell::Raw(""), int),
        ]);
    }
}

/// The `day` block: one record per counted day, with a value and a sample
/// count per percentile objective.
fn days(w: &mut Csv, r: &MonthReport) {
    // Latency columns are named after the objectives (from the contract, so
    // the same every day); a report without days still gets them.
    let latency_names: Vec<String> = r
        .objectives
        .iter()
        .filter(|o| o.is_sampled())
        .map(|o| o.objective.clone())
        .collect();
    let latency_names = if latency_names.is_empty() {
        r.days
            .first()
            .map(|d| d.latency.iter().map(|l| l.objective.clone()).collect())
            .unwrap_or_default()
    } else {
        latency_names
    };
    let mut day_cols: Vec<String> = [
        "date",
        "up_slots",
        "down_slots",
        "maintenance_slots",
        "nodata_slots",
        "availability_percent",
        "downtime_seconds",
        "maintenance_seconds",
        "nodata_seconds",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in &latency_names {
        day_cols.push(format!("{n}_seconds"));
        day_cols.push(format!("{n}_samples"));
    }
    let day_cols_ref: Vec<&str> = day_cols.iter().map(String::as_str).collect();
    w.header("day", &day_cols_ref);
    for d in &r.days {
        let mut row = vec![
            Cell::Raw("day"),
            Cell::Owned(d.date.to_string()),
            int(d.slots.up),
            int(d.slots.down),
            int(d.slots.maintenance),
            int(d.slots.nodata),
            opt_num(d.availability_percent),
            int(d.downtime_seconds),
            int(d.maintenance_seconds),
            int(d.nodata_seconds),
        ];
        for (k, name) in latency_names.iter().enumerate() {
            // Match by name; fall back to position (the engine keeps contract order).
            let l = d
                .latency
                .iter()
                .find(|l| &l.objective == name)
                .or_else(|| d.latency.get(k));
            row.push(l.map_or(Cell::Raw(""), |l| opt_num(l.value)));
            row.push(l.map_or(Cell::Raw(""), |l| int(l.samples)));
        }
        w.record(&row);
    }
}

/// The `incident` block, numbered from 1.
fn incidents(w: &mut Csv, r: &MonthReport, tz: &TimeZone) {
    w.header(
        "incident",
        &[
            "number",
            "start",
            "end",
            "start_local",
            "end_local",
            "duration_seconds",
            "slots",
            "checks",
            "locations",
            "classes",
            "sample_message",
        ],
    );
    for (i, inc) in r.incidents.iter().enumerate() {
        w.record(&[
            Cell::Raw("incident"),
            int(i + 1),
            Cell::Owned(inc.start.to_string()),
            Cell::Owned(inc.end.to_string()),
            local(inc.start, tz),
            local(inc.end, tz),
            int(inc.duration_seconds),
            int(inc.slots),
            Cell::Owned(guard(&inc.checks.join(";"))),
            Cell::Owned(guard(&inc.locations.join(";"))),
            Cell::Owned(guard(&inc.classes.join(";"))),
            inc.sample_message
                .as_deref()
                .map_or(Cell::Raw(""), Cell::Text),
        ]);
    }
}

/// The `maintenance` block: the windows applied, clipped to the month.
fn maintenance(w: &mut Csv, r: &MonthReport, tz: &TimeZone) {
    w.header(
        "maintenance",
        &[
            "start",
            "end",
            "start_local",
            "end_local",
            "duration_seconds",
            "rule",
        ],
    );
    for m in &r.maintenance {
        let secs = m.end.duration_since(m.start).as_secs().max(0) as u64;
        w.record(&[
            Cell::Raw("maintenance"),
            Cell::Owned(m.start.to_string()),
            Cell::Owned(m.end.to_string()),
            local(m.start, tz),
            local(m.end, tz),
            int(secs),
            Cell::Text(&m.rule),
        ]);
    }
}

/// Monitoring coverage (rule 1a): the `location` block, one record per
/// location, then the `excluded_failure` block, the failures its impairment
/// kept out of the verdict, then the `impaired_stretch` block, when each
/// location was impaired.
fn coverage(w: &mut Csv, r: &MonthReport, tz: &TimeZone) {
    w.header(
        "location",
        &[
            "location",
            "impaired_seconds",
            "silent_seconds",
            "excluded_failures",
        ],
    );
    for l in &r.locations {
        w.record(&[
            Cell::Raw("location"),
            Cell::Text(&l.location),
            int(l.impaired_seconds),
            int(l.silent_seconds),
            int(l.excluded_failures.len()),
        ]);
    }
    let span = [
        "location",
        "start",
        "end",
        "start_local",
        "end_local",
        "duration_seconds",
        "slots",
    ];
    let excluded = [&span[..], &["checks", "classes", "reasons"]].concat();
    w.header("excluded_failure", &excluded);
    for l in &r.locations {
        for x in &l.excluded_failures {
            let span = (x.start, x.end, x.duration_seconds, x.slots);
            let mut row = stretch_cells("excluded_failure", &l.location, span, tz);
            row.extend([
                Cell::Owned(guard(&x.checks.join(";"))),
                Cell::Owned(guard(&x.classes.join(";"))),
                Cell::Owned(guard(&x.reasons.join(";"))),
            ]);
            w.record(&row);
        }
    }
    w.header("impaired_stretch", &[&span[..], &["reasons"]].concat());
    for l in &r.locations {
        for x in &l.impaired_stretches {
            let span = (x.start, x.end, x.duration_seconds, x.slots);
            let mut row = stretch_cells("impaired_stretch", &l.location, span, tz);
            row.push(Cell::Owned(guard(&x.reasons.join(";"))));
            w.record(&row);
        }
    }
}

/// The first cells of a per-location stretch row (an excluded failure, an
/// impaired stretch): kind, location, start and end in UTC and local time,
/// duration and slots (the `span` columns).
fn stretch_cells<'a>(
    kind: &'a str,
    location: &'a str,
    (start, end, duration_seconds, slots): (Timestamp, Timestamp, u64, u32),
    tz: &TimeZone,
) -> Vec<Cell<'a>> {
    vec![
        Cell::Raw(kind),
        Cell::Text(location),
        Cell::Owned(start.to_string()),
        Cell::Owned(end.to_string()),
        local(start, tz),
        local(end, tz),
        int(duration_seconds),
        int(slots),
    ]
}

/// One field's content before quoting.
enum Cell<'a> {
    /// Our own text (kinds, keys, numbers): written as is (quoted if needed).
    Raw(&'a str),
    /// Text from configs or peers: formula-guarded, then quoted if needed.
    Text(&'a str),
    /// Formatted by us (numbers, instants): written as is.
    Owned(String),
}

struct Csv {
    out: String,
}

impl Csv {
    fn header(&mut self, kind: &str, cols: &[&str]) {
        let mut row = vec![Cell::Raw(kind)];
        row.extend(cols.iter().map(|c| Cell::Raw(c)));
        self.record(&row);
    }

    fn record(&mut self, cells: &[Cell<'_>]) {
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            match c {
                Cell::Raw(s) => field(&mut self.out, s),
                Cell::Text(s) => field(&mut self.out, &guard(s)),
                Cell::Owned(s) => field(&mut self.out, s),
            }
        }
        self.out.push_str("\r\n");
    }
}

/// Characters a spreadsheet may read as the start of a formula.
const FORMULA_START: [char; 4] = ['=', '+', '-', '@'];

/// RFC 4180 quoting, when needed and when a spreadsheet could misread the
/// field: it holds `;` (the field separator of many locales, so `302 to
/// /x;=1+1` would split and its second half run as a formula) or a TAB, or
/// it starts with a formula character after any leading whitespace.
fn field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\r', '\n', ';', '\t']) || s.trim_start().starts_with(FORMULA_START) {
        out.push('"');
        for ch in s.chars() {
            if ch == '"' {
                out.push('"');
            }
            out.push(ch);
        }
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// A leading `'` on text a spreadsheet would read as a formula, leading
/// whitespace or not (` =1+1` is a formula once a spreadsheet trims it).
fn guard(s: &str) -> String {
    if s.trim_start().starts_with(FORMULA_START) || s.starts_with(['\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn int<'a>(v: impl ToString) -> Cell<'a> {
    Cell::Owned(v.to_string())
}

/// `f64`'s `Display`: the shortest decimal that reads back to the same value, never an exponent.
fn num<'a>(v: f64) -> Cell<'a> {
    if v.is_finite() {
        Cell::Owned(v.to_string())
    } else {
        Cell::Raw("")
    }
}

fn opt_num<'a>(v: Option<f64>) -> Cell<'a> {
    v.map_or(Cell::Raw(""), num)
}

fn opt_ts<'a>(v: Option<Timestamp>) -> Cell<'a> {
    v.map_or(Cell::Raw(""), |t| Cell::Owned(t.to_string()))
}

fn local<'a>(ts: Timestamp, tz: &TimeZone) -> Cell<'a> {
    Cell::Owned(local_rfc3339(ts, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_guard() {
        let mut s = String::new();
        field(&mut s, "a,\"b\"\r\nc");
        assert_eq!(s, "\"a,\"\"b\"\"\r\nc\"");
        assert_eq!(guard("=1+2"), "'=1+2");
        assert_eq!(guard("HTTP 503"), "HTTP 503");
        assert_eq!(guard("  @SUM(A1)"), "'  @SUM(A1)");
        assert_eq!(guard(" \n-2"), "' \n-2");
        let quoted = |text: &str| {
            let mut s = String::new();
            field(&mut s, text);
            s
        };
        // `;` and TAB split fields in some locales: quoted.
        assert_eq!(quoted("302 to /x;=1+1"), "\"302 to /x;=1+1\"");
        assert_eq!(quoted("a\tb"), "\"a\tb\"");
        // A formula start after whitespace: quoted (and guarded as Text).
        assert_eq!(quoted(" =1"), "\" =1\"");
        assert_eq!(quoted("plain text"), "plain text");
    }
}
