//! The SVG chart builder the report's three charts share: the geometry of
//! a day-column plot and the parts every chart writes the same way.

use std::fmt::{self, Write};

use super::Ctx;
use super::format::{Esc, is_weekend, weekday_short};

/// Width of every chart, SVG user units (the height varies).
pub(super) const W: f64 = 720.0;
/// Left edge of a day-column plot (room for the y labels).
pub(super) const PLOT_L: f64 = 52.0;
/// Right margin of every plot.
pub(super) const PLOT_R: f64 = 10.0;

/// An `<svg>` element being written into the page: [`Svg::open`] writes the
/// start tag, the chart writes its parts (`write!` works on it), and
/// [`Svg::close`] ends it.
pub(super) struct Svg<'o> {
    out: &'o mut String,
}

impl<'o> Svg<'o> {
    /// A chart `height` units tall, described for screen readers by `label`
    /// (escaped here).
    pub(super) fn open(
        out: &'o mut String,
        height: f64,
        label: &str,
    ) -> Result<Svg<'o>, fmt::Error> {
        writeln!(
            out,
            "<svg viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"{}\">",
            Esc(label)
        )?;
        Ok(Svg { out })
    }

    /// Our own markup (patterns, legends), as is.
    pub(super) fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// Ends the element.
    pub(super) fn close(self) {
        self.out.push_str("\n</svg>\n");
    }
}

impl Write for Svg<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.out.write_str(s)
    }
}

/// A plot with one column per day of the month, from [`PLOT_L`] to the right
/// margin, values drawn between `top` and `bottom`.
pub(super) struct DayPlot {
    top: f64,
    bottom: f64,
    /// One day's column width.
    column: f64,
}

impl DayPlot {
    pub(super) fn new(c: &Ctx<'_>, top: f64, bottom: f64) -> DayPlot {
        let n = c.month_days.len().max(1) as f64;
        DayPlot {
            top,
            bottom,
            column: (W - PLOT_L - PLOT_R) / n,
        }
    }

    pub(super) fn top(&self) -> f64 {
        self.top
    }

    pub(super) fn bottom(&self) -> f64 {
        self.bottom
    }

    pub(super) fn column(&self) -> f64 {
        self.column
    }

    /// The x of the middle of day `i`'s column (0-based).
    pub(super) fn center(&self, i: usize) -> f64 {
        PLOT_L + self.column * (i as f64 + 0.5)
    }

    /// The y of a value at `fraction` of the axis (0 at the bottom, 1 at the
    /// top; clamped).
    pub(super) fn y(&self, fraction: f64) -> f64 {
        self.bottom - (self.bottom - self.top) * fraction.clamp(0.0, 1.0)
    }

    /// Weekend shading and the day labels (number, weekday) under the plot;
    /// days not counted yet are greyed.
    pub(super) fn day_columns(&self, svg: &mut Svg<'_>, c: &Ctx<'_>) -> fmt::Result {
        let (top, bottom, bw) = (self.top, self.bottom, self.column);
        for (i, d) in c.month_days.iter().enumerate() {
            let x = PLOT_L + bw * i as f64;
            let counted = c.days.contains_key(d);
            if is_weekend(*d) {
                write!(
                    svg,
                    "<rect class=\"wkend\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bw:.1}\" height=\"{:.1}\"/>",
                    bottom - top
                )?;
            }
            let cls = if counted { "dl" } else { "dl future" };
            write!(
                svg,
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

    /// A horizontal grid line at `y` with its axis label (markup, escaped by the caller).
    pub(super) fn grid_line(&self, svg: &mut Svg<'_>, y: f64, label: &str) -> fmt::Result {
        write!(
            svg,
            "<line class=\"grid\" x1=\"{PLOT_L}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/><text class=\"yl\" x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            W - PLOT_R,
            PLOT_L - 4.0,
            y + 3.0
        )
    }

    /// The x axis along the bottom.
    pub(super) fn axis(&self, svg: &mut Svg<'_>) -> fmt::Result {
        let bottom = self.bottom;
        write!(
            svg,
            "<line class=\"axis\" x1=\"{PLOT_L}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\"/>",
            W - PLOT_R
        )
    }

    /// The dashed line of the objective's threshold (target or max) at `y`,
    /// labelled at the right end (markup, escaped by the caller).
    pub(super) fn threshold(&self, svg: &mut Svg<'_>, y: f64, label: &str) -> fmt::Result {
        write!(
            svg,
            "<line class=\"target\" x1=\"{PLOT_L}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tl\" x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            W - PLOT_R,
            W - PLOT_R - 2.0,
            y - 3.0
        )
    }
}

/// A value written upwards (rotated) beside a mark at `x`: from `y` up when
/// `anchor` is `start`, from `y` down when `end` (markup, escaped by the caller).
pub(super) fn rotated_value(
    svg: &mut Svg<'_>,
    x: f64,
    y: f64,
    anchor: &str,
    label: &str,
) -> fmt::Result {
    write!(
        svg,
        "<text class=\"val\" text-anchor=\"{anchor}\" transform=\"translate({x:.1} {y:.1}) rotate(-90)\">{label}</text>"
    )
}

/// Round ticks from `lo` to 100: the smallest 1, 2, 2.5 or 5 × 10ⁿ step that
/// divides the span into at most five parts.
pub(super) fn availability_ticks(lo: f64) -> Vec<f64> {
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

/// A round axis maximum and step above `v` (1, 2, 2.5 or 5 × 10ⁿ steps, four of them or so).
pub(super) fn nice_axis(v: f64) -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html::format::axis_label;

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
