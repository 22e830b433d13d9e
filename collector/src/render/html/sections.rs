//! The report's sections in the order [`page`](super::page) writes them,
//! except the charts ([`charts`](super::charts)).

use std::fmt::{self, Write};

use jiff::Timestamp;

use super::format::{
    Esc, day_duration, dec, inline_list, int, list, objective_name, pct, value_text, weekday_short,
};
use super::{Ctx, MESSAGE_MAX_CHARS, charts};
use crate::render::{human_duration, truncate_chars};
use crate::sla::report::ObjectiveResult;

fn badge(out: &mut String, met: bool) -> fmt::Result {
    if met {
        out.push_str(r#"<span class="badge met">✔&nbsp;MET</span>"#);
    } else {
        out.push_str(r#"<span class="badge breached">✘&nbsp;BREACHED</span>"#);
    }
    Ok(())
}

pub(super) fn header(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
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

pub(super) fn verdict(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
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

pub(super) fn figures(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
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

pub(super) fn incidents(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    writeln!(
        out,
        "<section id=\"incidents\">\n<h2>Incidents ({})</h2>",
        r.incidents.len()
    )?;
    charts::incident_timeline(out, c)?;
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

pub(super) fn maintenance(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
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
/// the impaired stretches, and the failures impairment kept from being
/// confirmed.
pub(super) fn coverage(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
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
    if r.locations.iter().any(|l| !l.impaired_stretches.is_empty()) {
        out.push_str(
            "<table class=\"impaired\">\n<caption>Impaired stretches</caption>\n<thead><tr><th>Location</th><th>Start</th><th>End</th>\
             <th class=\"num\">Duration</th><th>Why impaired</th></tr></thead>\n<tbody>\n",
        );
        for l in &r.locations {
            for x in &l.impaired_stretches {
                writeln!(
                    out,
                    "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    Esc(&l.location),
                    two_line_time(c, x.start),
                    two_line_time(c, x.end),
                    Esc(&human_duration(x.duration_seconds)),
                    list(&x.reasons),
                )?;
            }
        }
        out.push_str("</tbody>\n</table>\n");
    }
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

pub(super) fn method(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
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
        "<div><dt>Quorum</dt><dd>{q} failing {} DOWN</dd></div>",
        if q == 1 {
            "location confirms"
        } else {
            "locations confirm"
        }
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

pub(super) fn evidence(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
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

pub(super) fn appendix(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    let sampled: Vec<&ObjectiveResult> = r.objectives.iter().filter(|o| o.is_sampled()).collect();
    out.push_str("<section id=\"days\" class=\"appendix\">\n<h2>Appendix: daily figures</h2>\n");
    if r.days.is_empty() {
        out.push_str("<p class=\"none\">No day of the month is counted yet.</p>\n</section>\n");
        return Ok(());
    }
    out.push_str("<table class=\"days\">\n<thead><tr><th>Date</th><th class=\"num\">Availability</th><th class=\"num\">Downtime</th>\
                  <th class=\"num\">Maintenance</th><th class=\"num\">No data</th>");
    for o in &sampled {
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
        for (k, o) in sampled.iter().enumerate() {
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
