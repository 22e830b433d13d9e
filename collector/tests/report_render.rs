//! The monthly evidence report's renderings, from reports built by the real
//! SLA engine over a synthetic month (incidents from two and three locations,
//! a sub-quorum failure, failures inside maintenance, a silent period, a slow
//! day): the HTML is self-contained, complete, escaped and balanced; real
//! headless Chromium draws it on screen and prints it to A4; the CSV parses
//! back (RFC 4180) to every figure of the JSON report.
//!
//! Set `SLAPROBE_RENDER_KEEP=DIR` to keep the HTML, CSV, PNG and PDFs for a look.

mod render_support;

use std::collections::HashMap;
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use render_support::markup::{check_html, parse_csv};
use render_support::tools::{self, Output};
use render_support::{
    acme_contract, acme_outages, after_month, contract, long_message, many_outages,
    month_of_results, report_of, ts,
};
use serde_json::Value;
use slaprobe_collector::render::{self, Format};
use slaprobe_collector::sla::MonthReport;

/// The realistic month, evaluated once for every test.
fn acme() -> &'static MonthReport {
    static R: OnceLock<MonthReport> = OnceLock::new();
    R.get_or_init(|| {
        let obs = month_of_results(&["www", "api"], &["ams", "fra", "nyc"], &acme_outages());
        report_of(&acme_contract(), &obs, after_month())
    })
}

/// The same month as of Saturday 17 October, 12:00 local.
fn acme_to_date() -> &'static MonthReport {
    static R: OnceLock<MonthReport> = OnceLock::new();
    R.get_or_init(|| {
        let obs = month_of_results(&["www", "api"], &["ams", "fra", "nyc"], &acme_outages());
        report_of(&acme_contract(), &obs, ts("2026-10-17T10:00:00Z"))
    })
}

/// No result at all.
fn silent() -> MonthReport {
    report_of(&acme_contract(), &[], after_month())
}

/// Hundreds of short incidents, one check.
fn stormy() -> &'static MonthReport {
    static R: OnceLock<MonthReport> = OnceLock::new();
    R.get_or_init(|| {
        let c = contract(
            r#"name = "cdnco-acme"
vendor = "CDNco"
timezone = "Europe/Amsterdam"
checks = ["www"]
quorum = 2
objectives = [{ kind = "availability", target = 99.5 }]
maintenance = [{ weekly = "Sun 03:00", duration = "1h" }]
credits = [{ below = 99.5, percent = 10 }, { below = 99.0, percent = 25 }, { below = 95.0, percent = 50 }]
"#,
        );
        let obs = month_of_results(&["www"], &["ams", "fra", "nyc"], &many_outages());
        report_of(&c, &obs, after_month())
    })
}

fn amsterdam() -> TimeZone {
    TimeZone::get("Europe/Amsterdam").unwrap()
}

/// How the HTML shows a percentage: truncated to three decimals.
fn shown_pct(v: f64) -> String {
    format!("{:.3}", ((v * 1000.0) + 1e-6).floor() / 1000.0)
}

/// `2026-10-03` and `14:05 +02:00`, computed here independently of the renderer.
fn local_parts(t: Timestamp) -> (String, String) {
    let z = t.to_zoned(amsterdam());
    (
        z.strftime("%Y-%m-%d").to_string(),
        z.strftime("%H:%M %:z").to_string(),
    )
}

#[test]
fn the_synthetic_month_is_what_the_tests_expect() {
    // Guards the fixtures: if the engine changes, the assertions below must be revisited.
    let r = acme();
    assert_eq!(r.incidents.len(), 4, "{:#?}", r.incidents);
    assert_eq!(r.downtime_seconds, (18 + 45 + 1 + 210) * 60);
    assert_eq!(r.maintenance_seconds, 6 * 3600);
    assert_eq!(r.nodata_seconds, 2 * 3600);
    assert_eq!(r.credit_percent, 10.0);
    assert!(
        !r.objectives[0].met && r.objectives[1].met,
        "{:?}",
        r.objectives
    );
    let names: Vec<&str> = r.locations.iter().map(|l| l.location.as_str()).collect();
    assert_eq!(names, ["ams", "fra", "nyc"]);
    assert!(r.as_of.is_none());
    assert!(acme_to_date().as_of.is_some());
    assert!(
        stormy().incidents.len() > 300,
        "{}",
        stormy().incidents.len()
    );
}

#[test]
fn html_is_self_contained_balanced_and_complete() {
    let r = acme();
    let html = render::html(r);
    let facts = check_html(&html).unwrap_or_else(|e| panic!("HTML not well formed: {e}"));

    // Self-contained: no script, no element that loads anything, no reference by URL.
    for banned in [
        "script", "img", "link", "iframe", "object", "embed", "image", "use", "audio", "video",
        "base",
    ] {
        assert!(
            !facts.tags.iter().any(|t| t == banned),
            "<{banned}> present"
        );
    }
    assert!(!html.to_ascii_lowercase().contains("<script"));
    for src in facts.tag_sources.iter().chain(&facts.styles) {
        let low = src.to_ascii_lowercase();
        for bad in [
            "http://",
            "https://",
            "@import",
            "src=",
            "href=",
            "javascript:",
        ] {
            assert!(!low.contains(bad), "{bad:?} in {src:?}");
        }
        // No event handler attribute (onload=, onclick=, …).
        assert!(
            !low.split_whitespace()
                .any(|w| w.starts_with("on") && w.contains('=')),
            "handler in {src:?}"
        );
        for (i, _) in low.match_indices("url(") {
            assert!(low[i + 4..].starts_with('#'), "external url( in {src:?}");
        }
    }
    // A URL inside a sample message is text, and stays text.
    assert!(facts.text.contains("https://api.acme.example/v2/health"));

    // Print rules.
    let css = facts.styles.concat();
    for rule in [
        "@page { size: A4",
        "break-inside: avoid",
        "thead { display: table-header-group; }",
        "table-layout: fixed",
    ] {
        assert!(css.contains(rule), "CSS lacks {rule:?}");
    }

    // Sections in order.
    let order = [
        "id=\"verdict\"",
        "id=\"figures\"",
        "id=\"daily\"",
        "id=\"incidents\"",
        "id=\"latency\"",
        "id=\"maintenance\"",
        "id=\"method\"",
        "id=\"evidence\"",
    ];
    let pos: Vec<usize> = order
        .iter()
        .map(|s| html.find(s).unwrap_or_else(|| panic!("no {s}")))
        .collect();
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "sections out of order: {pos:?}"
    );
    assert!(html.find("<h1>").unwrap() < pos[0], "header first");

    // Header.
    for s in [
        "hostco-acme",
        "HostCo &quot;Premium&quot; &lt;Hosting&gt; &amp; Co",
        "October 2026",
        "Europe/Amsterdam",
        "2026-10-01 00:00 +02:00",
        "2026-11-01 00:00 +01:00",
        "(745 h)",
        "Complete month",
    ] {
        assert!(html.contains(s), "header lacks {s:?}");
    }
    // Verdict: words, not colour alone.
    assert!(html.contains("✘&nbsp;BREACHED") && html.contains("✔&nbsp;MET"));
    assert!(html.contains("1 of 2 objectives <b>breached</b>"));
    // Key figures.
    let a = r.availability_percent.unwrap();
    assert!(
        html.contains(&format!("{} %", shown_pct(a))),
        "availability {} not shown",
        shown_pct(a)
    );
    assert!(html.contains("<p class=\"value\">10 %</p>"), "credit");
    assert!(html.contains("4 h 34 min"), "downtime 274 min");
    assert!(html.contains("≥ 99.9 %") && html.contains("≤ 800 ms"));
    // Every incident's start and end, local with offset.
    for inc in &r.incidents {
        for t in [inc.start, inc.end] {
            let (d, hm) = local_parts(t);
            assert!(
                html.contains(&format!("{d}<br><span class=\"t\">{hm}</span>")),
                "incident time {d} {hm} missing"
            );
        }
    }
    assert!(html.contains("Incidents (4)"));
    // The long message is escaped and cut to 300 characters.
    let msg = long_message();
    let cut: String = msg.chars().take(300).collect();
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    };
    assert!(
        html.contains(&format!("{}<span class=\"muted\">…</span>", esc(&cut))),
        "cut message"
    );
    assert!(!html.contains(&esc(msg)), "full message present");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    // Charts: day chart with every day labelled, timeline, latency with its max line.
    assert_eq!(html.matches("<svg ").count(), 3);
    for d in 1..=31 {
        assert!(
            html.contains(&format!("\">{d}</text>")),
            "day {d} unlabelled"
        );
    }
    assert!(html.contains("target 99.9 %") && html.contains("max 800 ms"));
    assert_eq!(
        html.matches("class=\"bar bad\" x=").count(),
        1 + 3,
        "legend + days below target: 3, 12, 28"
    );
    assert_eq!(
        html.matches("class=\"inc\" x=").count(),
        5,
        "4 incidents + legend"
    );
    // Maintenance, method, evidence.
    assert!(html.contains("weekly Sun 03:00:00") && html.contains("2026-10-14T22:00:00"));
    assert!(html.contains("2026-10-14 22:00 +02:00"));
    assert!(html.contains("Recomputing the evidence digest"));
    assert!(
        html.contains(
            "<span class=\"mono\">ams</span>, <span class=\"mono\">fra</span>, <span class=\"mono\">nyc</span>"
        )
    );
    assert!(html.contains(&format!(
        "<code class=\"digest\">{}</code>",
        r.evidence.sha256
    )));
    assert!(html.contains(&format!(
        "{} stored probe results",
        grouped(r.evidence.results, "\u{202F}")
    )));
    // Deterministic.
    assert_eq!(html, render::html(r));
}

/// The monitoring coverage (rule 1a) in both renderings: a table per
/// location in the HTML, `location` and `excluded_failure` rows in the CSV
/// equal to the JSON, user text escaped and guarded.
#[test]
fn coverage_renders_in_html_and_csv() {
    use slaprobe_collector::sla::report::{ExcludedFailure, ImpairedStretch, LocationCoverage};
    let mut r = acme().clone();
    r.canaries = vec!["canary-dns".into()];
    let start = ts("2026-10-03T10:00:00Z");
    r.locations.push(LocationCoverage {
        location: "=<b>zrh</b>".into(),
        impaired_seconds: 5400,
        silent_seconds: 60,
        excluded_failures: vec![ExcludedFailure {
            start,
            end: ts("2026-10-03T11:30:00Z"),
            duration_seconds: 5400,
            slots: 90,
            checks: vec!["www".into()],
            classes: vec!["connect_timeout".into()],
            reasons: vec!["canaries_failed".into()],
        }],
        impaired_stretches: vec![ImpairedStretch {
            start,
            end: ts("2026-10-03T11:30:00Z"),
            duration_seconds: 5400,
            slots: 90,
            reasons: vec!["agent_error".into(), "canaries_failed".into()],
        }],
    });
    check_csv_against_json(&r);
    let csv = render::csv(&r);
    assert!(
        csv.contains("\r\nlocation,'=<b>zrh</b>,5400,60,1\r\n"),
        "{csv}"
    );
    let html = render::html(&r);
    check_html(&html).unwrap_or_else(|e| panic!("HTML not well formed: {e}"));
    assert!(html.contains("<section id=\"coverage\">"));
    assert!(html.contains("=&lt;b&gt;zrh&lt;/b&gt;") && !html.contains("<b>zrh"));
    assert!(html.contains("canaries_failed") && html.contains("1 h 30 min"));
    assert!(
        html.contains("<caption>Impaired stretches</caption>")
            && html.contains("agent_error, canaries_failed"),
        "{html}"
    );
    assert!(
        csv.contains(
            "\r\nimpaired_stretch,'=<b>zrh</b>,2026-10-03T10:00:00Z,2026-10-03T11:30:00Z,"
        )
    );
    // The status page's contract view: the same coverage, a row per location.
    let page =
        slaprobe_collector::http::status_page::render_contract(&r, ts("2026-11-02T00:00:00Z"));
    assert!(page.contains("<h2>Monitoring coverage</h2>"), "{page}");
    let at = page
        .find("<tr class=\"coverage\" data-location=\"=&lt;b&gt;zrh&lt;/b&gt;\">")
        .expect("a coverage row for zrh, escaped");
    let row = &page[at..at + page[at..].find("</tr>").unwrap()];
    assert!(!page.contains("<b>zrh"));
    assert!(
        row.contains("<td class=\"bad\">1 h 30 min</td><td>1 min</td><td>1 h 30 min</td>"),
        "{row}"
    );
    assert!(row.contains("(agent_error, canaries_failed)"), "{row}");
    assert_eq!(
        page.matches("<tr class=\"coverage\"").count(),
        r.locations.len(),
        "one row per location"
    );
    assert!(html.contains("canary-dns"), "the method lists the canaries");
}

#[test]
fn html_escapes_user_input() {
    let mut r = acme().clone();
    r.contract = "<b>&\"x\"".into();
    r.vendor = "Vendor's <i>\"best\"</i>".into();
    r.incidents[0]
        .locations
        .push("<img src=x onerror=alert(1)>".into());
    r.incidents[0].sample_message = Some("</td></tr></table><script>alert(1)</script>\u{0}".into());
    let html = render::html(&r);
    check_html(&html).unwrap_or_else(|e| panic!("HTML not well formed: {e}"));
    assert!(html.contains("<h1>&lt;b&gt;&amp;&quot;x&quot;</h1>"));
    assert!(html.contains("Vendor&#39;s &lt;i&gt;&quot;best&quot;&lt;/i&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains(
        "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(1)&lt;/script&gt;\u{FFFD}"
    ));
    assert!(!html.contains("<b>&\"x\"") && !html.contains("<script") && !html.contains("<img"));
    // The printed footer names the contract through a CSS escape, never raw.
    assert!(
        html.contains("content: \"\\00003cb\\00003e\\000026\\000022x\\000022 \\00b7  2026-10\"")
    );
}

#[test]
fn html_edge_cases() {
    // No data at all.
    let r = silent();
    assert!(r.availability_percent.is_none() && r.incidents.is_empty());
    let html = render::html(&r);
    tools::keep_text("silent.html", &html);
    check_html(&html).unwrap_or_else(|e| panic!("silent month: {e}"));
    assert!(html.contains("<p class=\"value muted\">no data</p>"));
    assert!(html.contains("No slot was UP or DOWN"));
    assert!(html.contains("nothing measured: no breach observed"));
    assert!(html.contains("No incident: no slot was confirmed DOWN this month."));
    assert_eq!(html.matches(">n/a</text>").count(), 31, "every day n/a");
    assert!(html.contains("<p class=\"value\">0 %</p>"));

    // Month to date.
    let r = acme_to_date();
    let html = render::html(r);
    tools::keep_text("to-date.html", &html);
    check_html(&html).unwrap_or_else(|e| panic!("month to date: {e}"));
    assert!(html.contains("Provisional: month to date."));
    assert!(html.contains("as of <span class=\"nw\">2026-10-17 12:00 +02:00</span>"));
    assert!(
        html.contains("class=\"future\""),
        "uncounted part of the month marked"
    );
    assert_eq!(
        html.matches("class=\"dl future\"").count(),
        14 * 2,
        "days 18-31 greyed (number + weekday)"
    );
    // By the 17th: the 3rd and 12th's downtime, and the slow 16th weighs 1/17 of the latency samples.
    assert!(html.contains("2 of 2 objectives <b>breached</b> so far"));
    assert!(html.contains("Incidents (2)"));

    // Hundreds of incidents: every row, still balanced.
    let r = stormy();
    let html = render::html(r);
    check_html(&html).unwrap_or_else(|e| panic!("stormy month: {e}"));
    let table = &html[html.find("<table class=\"incidents\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr>").count(), r.incidents.len() + 1);
    let last = r.incidents.last().unwrap();
    assert!(html.contains(&format!(">{}</td>", r.incidents.len())));
    let (d, hm) = local_parts(last.start);
    assert!(html.contains(&format!("{d}<br><span class=\"t\">{hm}</span>")));
    assert!(
        !html.contains("id=\"latency\""),
        "no latency objective, no latency section"
    );

    // No digest yet.
    let mut r = acme().clone();
    r.evidence = Default::default();
    assert!(render::html(&r).contains("<em>not computed</em>"));
}

/// One leading `'` guards text a spreadsheet would run as a formula.
fn unguard(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest)
            if rest.trim_start().starts_with(['=', '+', '-', '@'])
                || rest.starts_with(['\t', '\r']) =>
        {
            rest
        }
        _ => s,
    }
}

/// A CSV field equals a JSON value: null ↔ empty, numbers exactly, strings (unguarded), bools.
fn same(field: &str, v: &Value, what: &str) {
    let ok = match v {
        Value::Null => field.is_empty(),
        Value::Bool(b) => field == b.to_string(),
        Value::Number(n) => field.parse::<f64>().ok() == n.as_f64(),
        Value::String(s) => unguard(field) == s,
        Value::Array(items) => {
            unguard(field)
                == items
                    .iter()
                    .map(|i| i.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(";")
        }
        Value::Object(_) => false,
    };
    assert!(ok, "{what}: CSV {field:?} != JSON {v}");
}

/// The CSV's records grouped by kind, each row as column → field (via the kind's header).
/// A kind's rows, each as column name → field.
type Rows = Vec<HashMap<String, String>>;

fn csv_tables(text: &str) -> (Vec<String>, HashMap<String, Rows>) {
    let rows = parse_csv(text).unwrap_or_else(|e| panic!("CSV does not parse: {e}"));
    let mut kinds: Vec<String> = Vec::new();
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    let mut tables: HashMap<String, Rows> = HashMap::new();
    for row in rows {
        let kind = row[0].clone();
        match headers.get(&kind) {
            None => {
                assert_eq!(row[0], kind);
                kinds.push(kind.clone());
                headers.insert(kind.clone(), row);
                tables.insert(kind, Vec::new());
            }
            Some(h) => {
                assert_eq!(
                    row.len(),
                    h.len(),
                    "{kind} row has {} fields, header {}",
                    row.len(),
                    h.len()
                );
                tables
                    .get_mut(&kind)
                    .unwrap()
                    .push(h.iter().cloned().zip(row).collect());
            }
        }
    }
    (kinds, tables)
}

fn check_csv_against_json(r: &MonthReport) {
    let text = render::csv(r);
    let json = serde_json::to_value(r).unwrap();
    let (kinds, t) = csv_tables(&text);
    assert_eq!(
        kinds,
        [
            "summary",
            "objective",
            "day",
            "incident",
            "maintenance",
            "location",
            "excluded_failure",
            "impaired_stretch"
        ]
    );

    // Summary: the documented keys, in order, each equal to the JSON.
    let keys: Vec<&str> = t["summary"].iter().map(|row| row["key"].as_str()).collect();
    let expected: [(&str, &str); 24] = [
        ("contract", "/contract"),
        ("vendor", "/vendor"),
        ("month", "/month"),
        ("timezone", "/timezone"),
        ("period_start", "/period_start"),
        ("period_end", "/period_end"),
        ("as_of", "/as_of"),
        ("slot_seconds", "/slot_seconds"),
        ("quorum", "/quorum"),
        ("slots_up", "/slots/up"),
        ("slots_down", "/slots/down"),
        ("slots_maintenance", "/slots/maintenance"),
        ("slots_nodata", "/slots/nodata"),
        ("availability_percent", "/availability_percent"),
        ("downtime_seconds", "/downtime_seconds"),
        ("maintenance_seconds", "/maintenance_seconds"),
        ("nodata_seconds", "/nodata_seconds"),
        ("credit_percent", "/credit_percent"),
        ("error_budget_remaining", "/error_budget_remaining"),
        ("incidents", ""),
        ("locations", "/locations"),
        ("checks", "/checks"),
        ("evidence_results", "/evidence/results"),
        ("evidence_sha256", "/evidence/sha256"),
    ];
    assert_eq!(keys, expected.iter().map(|(k, _)| *k).collect::<Vec<_>>());
    for (row, (key, ptr)) in t["summary"].iter().zip(expected) {
        if key == "locations" {
            let names: Vec<&str> = json["locations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["location"].as_str().unwrap())
                .collect();
            assert_eq!(unguard(&row["value"]), names.join(";"), "locations");
        } else if key == "incidents" {
            assert_eq!(
                row["value"],
                json["incidents"].as_array().unwrap().len().to_string()
            );
        } else {
            same(
                &row["value"],
                json.pointer(ptr).unwrap_or(&Value::Null),
                key,
            );
        }
    }

    // Objectives.
    let objs = json["objectives"].as_array().unwrap();
    assert_eq!(t["objective"].len(), objs.len());
    for (row, o) in t["objective"].iter().zip(objs) {
        same(&row["name"], &o["objective"], "objective");
        for col in [
            "kind",
            "target",
            "attained",
            "met",
            "phase",
            "percentile",
            "max",
            "samples",
        ] {
            same(&row[col], o.get(col).unwrap_or(&Value::Null), col);
        }
    }

    // Days, with every latency figure.
    let days = json["days"].as_array().unwrap();
    assert_eq!(t["day"].len(), days.len());
    for (row, d) in t["day"].iter().zip(days) {
        let date = d["date"].as_str().unwrap();
        same(&row["date"], &d["date"], "date");
        for s in ["up", "down", "maintenance", "nodata"] {
            same(
                &row[&format!("{s}_slots")],
                &d["slots"][s],
                &format!("{date} {s}_slots"),
            );
        }
        for col in [
            "availability_percent",
            "downtime_seconds",
            "maintenance_seconds",
            "nodata_seconds",
        ] {
            same(&row[col], &d[col], &format!("{date} {col}"));
        }
        for l in d["latency"].as_array().unwrap() {
            let name = l["objective"].as_str().unwrap();
            same(
                &row[&format!("{name}_seconds")],
                &l["value"],
                &format!("{date} {name}"),
            );
            same(
                &row[&format!("{name}_samples")],
                &l["samples"],
                &format!("{date} {name} samples"),
            );
        }
    }

    // Incidents.
    let incs = json["incidents"].as_array().unwrap();
    assert_eq!(t["incident"].len(), incs.len());
    for (i, (row, inc)) in t["incident"].iter().zip(incs).enumerate() {
        assert_eq!(row["number"], (i + 1).to_string());
        for col in [
            "start",
            "end",
            "duration_seconds",
            "slots",
            "checks",
            "locations",
            "classes",
            "sample_message",
        ] {
            same(&row[col], &inc[col], &format!("incident {} {col}", i + 1));
        }
        for (local, utc) in [("start_local", "start"), ("end_local", "end")] {
            let l: Timestamp = row[local].parse().unwrap();
            assert_eq!(l.to_string(), inc[utc].as_str().unwrap(), "{local}");
            assert!(
                row[local].ends_with("+02:00") || row[local].ends_with("+01:00"),
                "{}",
                row[local]
            );
        }
    }

    // Maintenance windows.
    let ms = json["maintenance"].as_array().unwrap();
    assert_eq!(t["maintenance"].len(), ms.len());
    for (row, m) in t["maintenance"].iter().zip(ms) {
        for col in ["start", "end", "rule"] {
            same(&row[col], &m[col], col);
        }
        let (s, e): (Timestamp, Timestamp) = (
            m["start"].as_str().unwrap().parse().unwrap(),
            m["end"].as_str().unwrap().parse().unwrap(),
        );
        assert_eq!(
            row["duration_seconds"],
            e.duration_since(s).as_secs().to_string()
        );
        assert_eq!(row["start_local"].parse::<Timestamp>().unwrap(), s);
    }

    // Monitoring coverage (rule 1a).
    let locs = json["locations"].as_array().unwrap();
    assert_eq!(t["location"].len(), locs.len());
    let mut excluded = Vec::new();
    for (row, l) in t["location"].iter().zip(locs) {
        for col in ["location", "impaired_seconds", "silent_seconds"] {
            same(&row[col], &l[col], col);
        }
        let x = l["excluded_failures"].as_array().unwrap();
        assert_eq!(row["excluded_failures"], x.len().to_string());
        excluded.extend(x.iter().map(|x| (l["location"].clone(), x.clone())));
    }
    assert_eq!(t["excluded_failure"].len(), excluded.len());
    for (row, (loc, x)) in t["excluded_failure"].iter().zip(&excluded) {
        same(&row["location"], loc, "excluded location");
        for col in [
            "start",
            "end",
            "duration_seconds",
            "slots",
            "checks",
            "classes",
            "reasons",
        ] {
            same(&row[col], &x[col], &format!("excluded {col}"));
        }
    }
    let stretches: Vec<(Value, Value)> = json["locations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            l["impaired_stretches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| (l["location"].clone(), x.clone()))
        })
        .collect();
    assert_eq!(t["impaired_stretch"].len(), stretches.len());
    for (row, (loc, x)) in t["impaired_stretch"].iter().zip(&stretches) {
        same(&row["location"], loc, "impaired location");
        for col in ["start", "end", "duration_seconds", "slots", "reasons"] {
            same(&row[col], &x[col], &format!("impaired {col}"));
        }
    }
}

#[test]
fn csv_round_trips_every_figure() {
    check_csv_against_json(acme());
    check_csv_against_json(acme_to_date());
    check_csv_against_json(&silent());
    check_csv_against_json(stormy());

    let text = render::csv(acme());
    // The hostile multi-line message survives quoting; the formula-like one is guarded.
    assert!(text.contains("\"timeout after 10s waiting for response headers from https://api.acme.example/v2/health?probe=1, phase \"\"processing\"\";"));
    assert!(text.contains(",'=cmd|' /C calc'!A0\r\n"));
    assert!(text.starts_with("summary,key,value\r\nsummary,contract,hostco-acme\r\n"));
    assert!(text.contains("\r\nday,date,up_slots,down_slots,maintenance_slots,nodata_slots,availability_percent,downtime_seconds,maintenance_seconds,nodata_seconds,latency_processing_p95_seconds,latency_processing_p95_samples\r\n"));
    assert!(text.ends_with("\r\n"));
    assert_eq!(render::render(acme(), Format::Csv), text);
    assert_eq!(
        "html".parse::<Format>().unwrap().content_type(),
        "text/html; charset=utf-8"
    );
    assert_eq!(Format::Csv.file_name(acme()), "hostco-acme-2026-10.csv");
}

/// Collapses pdftotext's spacing (and the narrow no-break spaces between thousands).
fn squash(s: &str) -> String {
    s.replace('\u{202F}', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `267480` as `267 480` (thousands apart, as the HTML shows them).
fn grouped(n: u64, sep: &str) -> String {
    let d = n.to_string();
    let mut parts: Vec<&str> = d
        .as_bytes()
        .rchunks(3)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    parts.reverse();
    parts.join(sep)
}

#[test]
fn chromium_draws_the_page_and_prints_a4() {
    let dir = tempfile::tempdir().unwrap();
    let (r, storm) = (acme(), stormy());
    let html_path = dir.path().join("hostco-acme-2026-10.html");
    std::fs::write(&html_path, render::html(r)).unwrap();
    let storm_path = dir.path().join("cdnco-acme-2026-10.html");
    std::fs::write(&storm_path, render::html(storm)).unwrap();
    let csv_path = dir.path().join("hostco-acme-2026-10.csv");
    std::fs::write(&csv_path, render::csv(r)).unwrap();
    let png = dir.path().join("screen.png");
    let pdf = dir.path().join("print.pdf");
    let storm_pdf = dir.path().join("storm.pdf");

    // Three Chromiums side by side: each spends most of its time starting up.
    std::thread::scope(|s| {
        s.spawn(|| tools::chromium(&html_path, Output::Screenshot(&png), dir.path()));
        s.spawn(|| tools::chromium(&html_path, Output::Pdf(&pdf), dir.path()));
        s.spawn(|| tools::chromium(&storm_path, Output::Pdf(&storm_pdf), dir.path()));
    });
    tools::keep(&[&html_path, &storm_path, &csv_path, &png, &pdf, &storm_pdf]);

    // The screenshot is a drawn page: text, charts, the red of the breach.
    let img = render_support::png::decode(&std::fs::read(&png).unwrap()).unwrap();
    assert_eq!((img.width, img.height), (1240, 1754));
    let dark = img
        .rgb
        .iter()
        .filter(|p| p.iter().map(|&c| u32::from(c)).sum::<u32>() < 3 * 100)
        .count();
    let white = img
        .rgb
        .iter()
        .filter(|p| p.iter().all(|&c| c >= 250))
        .count();
    let reddish = img
        .rgb
        .iter()
        .filter(|p| p[0] > 120 && p[1] < 60 && p[2] < 60)
        .count();
    let colours: std::collections::HashSet<[u8; 3]> = img
        .rgb
        .iter()
        .map(|p| [p[0] & 0xf0, p[1] & 0xf0, p[2] & 0xf0])
        .collect();
    assert!(dark > 20_000, "only {dark} dark pixels: no text drawn?");
    assert!(
        white > img.rgb.len() / 4,
        "only {white} white pixels: no page?"
    );
    assert!(
        reddish > 300,
        "only {reddish} red pixels: no BREACHED badge / bars?"
    );
    assert!(
        colours.len() > 40,
        "only {} distinct colours",
        colours.len()
    );

    // The print: A4, a sensible number of pages, the key figures as text.
    let (pages, size) = tools::pdf_info(&pdf);
    assert!(size.contains("(A4)"), "{size}");
    assert!((3..=8).contains(&pages), "{pages} pages");
    let text = squash(&tools::pdf_text(&pdf));
    for s in [
        "hostco-acme".to_string(),
        "HostCo \"Premium\" <Hosting> & Co".to_string(),
        format!("{} %", shown_pct(r.availability_percent.unwrap())),
        "10 %".to_string(),
        "BREACHED".to_string(),
        r.evidence.sha256.clone(),
        grouped(r.evidence.results, " "),
        "Recomputing the evidence digest".to_string(),
        format!("Page 1 of {pages}"),
    ] {
        assert!(text.contains(&s), "PDF text lacks {s:?}:\n{text}");
    }

    // Hundreds of incidents: A4 pages, the table header repeated on each page it spans.
    let (storm_pages, storm_size) = tools::pdf_info(&storm_pdf);
    assert!(storm_size.contains("A4"), "{storm_size}");
    assert!(
        (6..=60).contains(&storm_pages),
        "{storm_pages} pages for {} incidents",
        storm.incidents.len()
    );
    let storm_text = squash(&tools::pdf_text(&storm_pdf));
    let headers = storm_text.matches("Sample error message").count();
    assert!(
        headers >= 4,
        "incident table header printed {headers} times over {storm_pages} pages"
    );
    let (d, hm) = local_parts(storm.incidents.last().unwrap().start);
    assert!(
        storm_text.contains(&d) && storm_text.contains(&hm),
        "last incident {d} {hm} not printed"
    );
}

/// Every field of `text` as a spreadsheet splits it with `sep` as the field
/// separator (quotes honoured, `""` inside quotes is a quote).
fn fields_split_by(text: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if !quoted && (c == sep || c == '\r' || c == '\n') => {
                out.push(std::mem::take(&mut cur));
            }
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[test]
fn csv_has_no_formula_whichever_separator_a_spreadsheet_uses() {
    let mut r = acme().clone();
    r.incidents[0].sample_message = Some("302 to /x;=1+1".into());
    r.incidents[1].sample_message = Some("  @SUM(A1:A9)\tand\t-2+3".into());
    let text = render::csv(&r);
    assert!(text.contains("\"302 to /x;=1+1\""), "{text}");
    for sep in [',', ';', '\t'] {
        // A negative number is a number, not a formula.
        for f in fields_split_by(&text, sep)
            .into_iter()
            .filter(|f| f.parse::<f64>().is_err())
        {
            assert!(
                !f.trim_start().starts_with(['=', '+', '-', '@']),
                "with {sep:?} as separator, {f:?} would be a formula"
            );
        }
    }
    // And the comma reading still round-trips the message.
    check_csv_against_json(&r);
}
