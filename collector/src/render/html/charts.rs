//! The report's three charts, drawn with the [`chart`](super::chart)
//! builder: availability by day, the incident timeline, and the daily series
//! of each percentile objective (latency, Web Vitals).

use std::fmt::{self, Write};

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};

use super::Ctx;
use super::chart::{DayPlot, PLOT_L, PLOT_R, Svg, W, availability_ticks, nice_axis, rotated_value};
use super::format::{Esc, axis_label, axis_label_value, dec, int, objective_name, pct, value_text};
use crate::sla::ObjectiveKind;
use crate::sla::report::{DayFigures, ObjectiveResult};

/// The hatch of a day below target (greyscale-safe: stripes, not just red).
const HATCH_BAD: &str = "<defs><pattern id=\"hatch-bad\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
     <rect width=\"5\" height=\"5\" fill=\"#f4d3d0\"/><rect width=\"2.2\" height=\"5\" fill=\"#9b1c1c\"/></pattern></defs>\n";

const AVAILABILITY_LEGEND: &str = "<g class=\"legend\"><rect class=\"bar ok\" x=\"52\" y=\"6\" width=\"12\" height=\"10\"/><text x=\"68\" y=\"15\">at or above target</text>\
     <rect class=\"bar bad\" x=\"180\" y=\"6\" width=\"12\" height=\"10\"/><text x=\"196\" y=\"15\">below target</text>\
     <line class=\"target\" x1=\"282\" y1=\"11\" x2=\"306\" y2=\"11\"/><text x=\"310\" y=\"15\">target</text>\
     <text x=\"360\" y=\"15\">n/a = nothing measured (maintenance or no data)</text></g>\n";

/// The timeline's hatch for maintenance and dots for the uncounted rest of the month.
const TIMELINE_PATTERNS: &str = "<defs><pattern id=\"hatch-maint\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\">\
     <rect width=\"5\" height=\"5\" fill=\"#e6e6e6\"/><rect width=\"1.6\" height=\"5\" fill=\"#555\"/></pattern>\
     <pattern id=\"dots-future\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\">\
     <rect width=\"4\" height=\"4\" fill=\"#fff\"/><circle cx=\"2\" cy=\"2\" r=\"0.7\" fill=\"#999\"/></pattern></defs>\n";

const TIMELINE_LEGEND: &str = "<g class=\"legend\"><rect class=\"inc\" x=\"84\" y=\"4\" width=\"12\" height=\"10\"/><text x=\"100\" y=\"13\">incident (confirmed DOWN)</text>\
     <rect class=\"maint\" x=\"250\" y=\"4\" width=\"12\" height=\"10\"/><text x=\"266\" y=\"13\">maintenance window</text>";

const TIMELINE_LEGEND_FUTURE: &str = "<rect class=\"future\" x=\"400\" y=\"4\" width=\"12\" height=\"10\"/><text x=\"416\" y=\"13\">not counted yet</text>";

const PERCENTILE_LEGEND: &str = "<g class=\"legend\"><circle class=\"pt ok\" cx=\"58\" cy=\"11\" r=\"3.2\"/><text x=\"66\" y=\"15\">within max</text>\
     <rect class=\"pt bad\" x=\"150\" y=\"7\" width=\"8\" height=\"8\"/><text x=\"162\" y=\"15\">over max</text>\
     <line class=\"target\" x1=\"230\" y1=\"11\" x2=\"254\" y2=\"11\"/><text x=\"258\" y=\"15\">max</text>\
     <text x=\"300\" y=\"15\">no mark = no sample that day</text></g>\n";

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

/// The "Availability by day" section: a bar per counted day, hatched below
/// the target, the target as a dashed line.
pub(super) fn availability_by_day(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let plot = DayPlot::new(c, 30.0, 196.0);
    let lo = axis_floor(c);
    let span = (100.0 - lo).max(1e-9);
    let y = |v: f64| plot.y((v - lo) / span);

    out.push_str("<section id=\"daily\">\n<h2>Availability by day</h2>\n<figure>\n");
    let mut svg = Svg::open(
        out,
        228.0,
        &format!("Availability per day of {}", c.month_title()),
    )?;
    svg.raw(HATCH_BAD);
    svg.raw(AVAILABILITY_LEGEND);
    plot.day_columns(&mut svg, c)?;
    for v in availability_ticks(lo) {
        plot.grid_line(&mut svg, y(v), &format!("{} %", axis_label(v)))?;
    }
    availability_bars(&mut svg, c, &plot, &y)?;
    let measured = c.days.values().any(|d| d.availability_percent.is_some());
    if !measured {
        write!(
            svg,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\">No day could be measured</text>",
            PLOT_L + (W - PLOT_L - PLOT_R) / 2.0,
            (plot.top() + plot.bottom()) / 2.0
        )?;
    }
    // Axis line and the target on top of the bars.
    plot.axis(&mut svg)?;
    if let Some(t) = c.target {
        plot.threshold(&mut svg, y(t), &format!("target {} %", dec(t)))?;
    }
    svg.close();

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

/// One bar per counted day (`n/a` when nothing was measured), with the
/// value written beside the bars below target.
fn availability_bars(
    svg: &mut Svg<'_>,
    c: &Ctx<'_>,
    plot: &DayPlot,
    y: &dyn Fn(f64) -> f64,
) -> fmt::Result {
    let (top, bottom) = (plot.top(), plot.bottom());
    for (i, d) in c.month_days.iter().enumerate() {
        let Some(fig) = c.days.get(d) else { continue };
        let cx = plot.center(i);
        let bar_w = plot.column() * 0.7;
        let Some(a) = fig.availability_percent else {
            write!(
                svg,
                "<text class=\"na\" x=\"{cx:.1}\" y=\"{:.1}\">n/a</text>",
                bottom - 4.0
            )?;
            continue;
        };
        let ok = c.target.is_none_or(|t| a >= t);
        let bar_top = y(a);
        write!(
            svg,
            "<rect class=\"bar {}\" x=\"{:.1}\" y=\"{bar_top:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\"><title>{}: {} %</title></rect>",
            if ok { "ok" } else { "bad" },
            cx - bar_w / 2.0,
            (bottom - bar_top).max(0.0),
            d,
            pct(a)
        )?;
        if !ok {
            // The value, written upwards: above a short bar, or inside a tall one
            // from just below its top (a white halo keeps it readable on the hatch).
            let (label_y, anchor) = if bar_top - top > 34.0 {
                (bar_top - 3.0, "start")
            } else {
                (bar_top + 4.0, "end")
            };
            rotated_value(svg, cx + 3.0, label_y, anchor, &axis_label_value(a))?;
        }
    }
    Ok(())
}

/// The month as a strip from local midnight of day 1 to the next month's:
/// a row of incidents, a row of maintenance windows, day ticks under them.
struct Timeline {
    left: f64,
    right: f64,
    /// The period's start and length, seconds.
    start: f64,
    length: f64,
}

impl Timeline {
    const INCIDENT_Y: f64 = 24.0;
    const MAINTENANCE_Y: f64 = 56.0;
    const ROW_H: f64 = 24.0;
    const AXIS_Y: f64 = 86.0;

    /// The x of an instant (clamped to the month).
    fn x(&self, t: Timestamp) -> f64 {
        self.left
            + (self.right - self.left)
                * ((t.as_second() as f64 - self.start) / self.length).clamp(0.0, 1.0)
    }

    /// A tick at each local midnight (longer on Mondays), the day number in
    /// the middle of its day, and the period's bounds under the axis.
    fn day_ticks(&self, svg: &mut Svg<'_>, c: &Ctx<'_>) -> fmt::Result {
        let (inc_y, axis_y) = (Self::INCIDENT_Y, Self::AXIS_Y);
        let mut prev: Option<(f64, Date)> = None;
        let mut ticks: Vec<(f64, Date)> = Vec::with_capacity(c.month_days.len() + 1);
        for d in &c.month_days {
            if let Ok(z) = d.to_zoned(c.tz.clone()) {
                ticks.push((self.x(z.timestamp()), *d));
            }
        }
        for &(tx, d) in &ticks {
            let weekly = d.weekday() == Weekday::Monday;
            write!(
                svg,
                "<line class=\"{}\" x1=\"{tx:.1}\" y1=\"{inc_y}\" x2=\"{tx:.1}\" y2=\"{:.1}\"/>",
                if weekly { "tick wk" } else { "tick" },
                axis_y + 2.0
            )?;
            if let Some((px, pd)) = prev {
                write!(
                    svg,
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
                svg,
                "<text class=\"dl\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                (px + self.right) / 2.0,
                axis_y + 12.0,
                pd.day()
            )?;
        }
        let (left, right) = (self.left, self.right);
        write!(
            svg,
            "<text class=\"ax\" x=\"{left}\" y=\"{:.1}\">{}</text><text class=\"ax end\" x=\"{right}\" y=\"{:.1}\">{}</text>",
            axis_y + 24.0,
            Esc(&c.when(c.r.period_start)),
            axis_y + 24.0,
            Esc(&c.when(c.r.period_end))
        )
    }

    /// A span of a row from `a` to `b` (at least 1.5 units wide so a
    /// one-minute outage stays visible), with its tooltip.
    fn span(
        &self,
        svg: &mut Svg<'_>,
        class: &str,
        row_y: f64,
        (a, b): (f64, f64),
        title: &str,
    ) -> fmt::Result {
        write!(
            svg,
            "<rect class=\"{class}\" x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{title}</title></rect>",
            row_y + 2.0,
            (b - a).max(1.5),
            Self::ROW_H - 4.0,
        )
    }
}

/// The incident timeline of the "Incidents" section.
pub(super) fn incident_timeline(out: &mut String, c: &Ctx<'_>) -> fmt::Result {
    let r = c.r;
    let (start, end) = (
        r.period_start.as_second() as f64,
        r.period_end.as_second() as f64,
    );
    let timeline = Timeline {
        left: 84.0,
        right: W - PLOT_R,
        start,
        length: (end - start).max(1.0),
    };
    let (left, right) = (timeline.left, timeline.right);
    let (inc_y, maint_y, row_h) = (
        Timeline::INCIDENT_Y,
        Timeline::MAINTENANCE_Y,
        Timeline::ROW_H,
    );

    out.push_str("<figure class=\"timeline\">\n");
    let mut svg = Svg::open(
        out,
        112.0,
        &format!("Incidents and maintenance over {}", c.month_title()),
    )?;
    svg.raw(TIMELINE_PATTERNS);
    svg.raw(TIMELINE_LEGEND);
    if r.as_of.is_some() {
        svg.raw(TIMELINE_LEGEND_FUTURE);
    }
    svg.raw("</g>\n");
    for (label, yy) in [("Incidents", inc_y), ("Maintenance", maint_y)] {
        write!(
            svg,
            "<rect class=\"row\" x=\"{left}\" y=\"{yy}\" width=\"{:.1}\" height=\"{row_h}\"/><text class=\"rl\" x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            right - left,
            left - 6.0,
            yy + row_h / 2.0 + 3.5
        )?;
    }
    timeline.day_ticks(&mut svg, c)?;
    // Maintenance windows, clipped to the month.
    for m in &r.maintenance {
        let title = format!("{} to {}", Esc(&c.when(m.start)), Esc(&c.when(m.end)));
        timeline.span(
            &mut svg,
            "maint",
            maint_y,
            (timeline.x(m.start), timeline.x(m.end)),
            &title,
        )?;
    }
    // Not counted yet.
    if let Some(t) = r.as_of {
        let a = timeline.x(t);
        if right - a > 0.5 {
            for yy in [inc_y, maint_y] {
                write!(
                    svg,
                    "<rect class=\"future\" x=\"{a:.1}\" y=\"{yy}\" width=\"{:.1}\" height=\"{row_h}\"/>",
                    right - a
                )?;
            }
        }
    }
    for (i, inc) in r.incidents.iter().enumerate() {
        let title = format!(
            "#{}: {} to {}",
            i + 1,
            Esc(&c.when(inc.start)),
            Esc(&c.when(inc.end))
        );
        timeline.span(
            &mut svg,
            "inc",
            inc_y,
            (timeline.x(inc.start), timeline.x(inc.end)),
            &title,
        )?;
    }
    svg.close();
    writeln!(
        out,
        "<figcaption>The month from local midnight of day 1 to local midnight of the next month ({}); \
         ticks at local midnights, longer ticks on Mondays. Short incidents are drawn at a minimum width.</figcaption>\n</figure>",
        Esc(&c.r.timezone)
    )?;
    Ok(())
}

/// The section of the percentile objectives of `kind` (latency or
/// web_vital) under heading `title` in section `id`: one daily chart each;
/// nothing when the contract has none.
pub(super) fn percentiles_by_day(
    out: &mut String,
    c: &Ctx<'_>,
    kind: ObjectiveKind,
    id: &str,
    title: &str,
) -> fmt::Result {
    let objectives: Vec<(usize, &ObjectiveResult)> =
        c.r.objectives
            .iter()
            .filter(|o| o.kind == kind)
            .enumerate()
            .collect();
    if objectives.is_empty() {
        return Ok(());
    }
    writeln!(out, "<section id=\"{id}\">\n<h2>{title}</h2>")?;
    for (k, o) in objectives {
        percentile_chart(out, c, k, o)?;
    }
    out.push_str("</section>\n");
    Ok(())
}

/// One percentile objective's value per day as a line with marks (squares
/// over the max, labelled), the max as a dashed line. `k` is its position
/// among the objectives of its kind (the days' series fallback).
fn percentile_chart(out: &mut String, c: &Ctx<'_>, k: usize, o: &ObjectiveResult) -> fmt::Result {
    let shown = |v: f64| Esc(&value_text(o, v)).to_string();
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
    let plot = DayPlot::new(c, 30.0, 176.0);
    let y = |v: f64| plot.y(v / ymax);

    writeln!(out, "<figure>\n<h3>{}</h3>", Esc(&objective_name(o)))?;
    let mut svg = Svg::open(out, 208.0, &format!("{} per day", objective_name(o)))?;
    svg.raw(PERCENTILE_LEGEND);
    plot.day_columns(&mut svg, c)?;
    let mut v = 0.0;
    while v <= ymax + step / 1000.0 {
        plot.grid_line(&mut svg, y(v), &shown(v))?;
        v += step;
    }
    plot.axis(&mut svg)?;
    // The line through consecutive days with a value, then the marks on top.
    let points: Vec<(f64, Option<f64>, Date)> = c
        .month_days
        .iter()
        .enumerate()
        .map(|(i, d)| (plot.center(i), c.days.get(d).and_then(|f| value_of(f)), *d))
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
        write!(svg, "<path class=\"lat\" d=\"{}\"/>", path.trim_end())?;
    }
    plot.threshold(&mut svg, y(max), &format!("max {}", shown(max)))?;
    for &(px, val, d) in &points {
        let Some(v) = val else { continue };
        let py = y(v);
        if v <= max {
            write!(
                svg,
                "<circle class=\"pt ok\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3.2\"><title>{d}: {}</title></circle>",
                shown(v)
            )?;
        } else {
            // The value written upwards above the mark, or downwards below it near the top.
            let (label_y, anchor) = if py - plot.top() > 48.0 {
                (py - 7.0, "start")
            } else {
                (py + 7.0, "end")
            };
            write!(
                svg,
                "<rect class=\"pt bad\" x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\"><title>{d}: {}</title></rect>",
                px - 4.0,
                py - 4.0,
                shown(v)
            )?;
            rotated_value(&mut svg, px + 3.0, label_y, anchor, &shown(v))?;
        }
    }
    svg.close();
    writeln!(
        out,
        "<figcaption>The {}th percentile (nearest rank) of {} over each day's successful results \
         outside maintenance; the month's value is {} over {} samples (max {}).</figcaption>\n</figure>",
        o.percentile.map(dec).unwrap_or_default(),
        match (&o.phase, &o.metric) {
            (Some(p), _) => format!("the <b>{}</b> phase", Esc(p)),
            (None, Some(m)) => format!("<b>{}</b> in the browser", Esc(&m.to_ascii_uppercase())),
            _ => String::new(),
        },
        Esc(&o
            .attained
            .map(|v| value_text(o, v))
            .unwrap_or_else(|| "not measured".into())),
        int(o.samples.unwrap_or(0)),
        shown(max)
    )?;
    Ok(())
}
