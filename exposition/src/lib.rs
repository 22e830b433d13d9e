//! The Prometheus text exposition format (version 0.0.4), written one way for
//! the collector's `/metrics` and the agent's.
//!
//! Every family is declared once, by name, as a [`Family`] const: its name,
//! type, help and label names. A page is an [`Exposition`]: each
//! [`Exposition::family`] call writes one family's `# HELP` and `# TYPE`
//! lines and the samples its closure adds, with label values given in the
//! order of the family's label names. A family that gets no samples is left
//! out.
//!
//! The writer is plain string building, no library: the collector writes
//! ~300,000 series a scrape at 10,000 checks × 3 locations, and building a
//! protobuf message per series (the `prometheus` crate's way) cost five times
//! as long. Values are written as Rust's `Display` for `f64` writes them
//! (`0.5`, `1800014400.25`, `inf`, `NaN`), label values and help text escaped
//! as the format requires.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::ops::Range;

/// What a family's samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (a reset is a restart).
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    /// The word on the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One metric family as declared: what `/metrics` promises about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The metric name (`slaprobe_probe_success`).
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// The `# HELP` text (escaped when written).
    pub help: &'static str,
    /// The label names every sample carries, in the order samples give their values.
    pub labels: &'static [&'static str],
}

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    /// Where each written family's text is, for [`Exposition::append_by_name`].
    families: Vec<(&'static str, Range<usize>)>,
}

impl Exposition {
    /// An empty page with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            out: String::with_capacity(bytes),
            families: Vec::new(),
        }
    }

    /// Writes `family`: its header, then every sample `samples` adds. A
    /// family without samples is left out of the page.
    pub fn family(&mut self, family: &'static Family, samples: impl FnOnce(&mut Samples<'_>)) {
        let start = self.out.len();
        self.out.push_str("# HELP ");
        self.out.push_str(family.name);
        self.out.push(' ');
        escape(&mut self.out, family.help, false);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(family.name);
        self.out.push(' ');
        self.out.push_str(family.kind.as_str());
        self.out.push('\n');
        let head = self.out.len();
        samples(&mut Samples {
            out: &mut self.out,
            family,
        });
        if self.out.len() == head {
            self.out.truncate(start);
        } else {
            self.families.push((family.name, start..self.out.len()));
        }
    }

    /// Appends the families written into `other`, ordered by name (the
    /// order the collector's page has always had after its per-check
    /// families).
    pub fn append_by_name(&mut self, other: Exposition) {
        let mut families = other.families;
        families.sort_by_key(|(name, _)| *name);
        debug_assert!(
            families.windows(2).all(|w| w[0].0 != w[1].0),
            "a family written twice"
        );
        self.out.reserve(other.out.len());
        for (name, range) in families {
            let start = self.out.len();
            self.out.push_str(&other.out[range]);
            self.families.push((name, start..self.out.len()));
        }
    }

    /// The page so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The page.
    pub fn into_string(self) -> String {
        self.out
    }
}

/// The samples of the family being written.
#[derive(Debug)]
pub struct Samples<'a> {
    out: &'a mut String,
    family: &'static Family,
}

impl Samples<'_> {
    /// One sample: `values` are the label values in the order of the
    /// family's [`Family::labels`].
    #[inline]
    pub fn add(&mut self, values: &[&str], value: f64) {
        debug_assert_eq!(
            values.len(),
            self.family.labels.len(),
            "label values of {}",
            self.family.name
        );
        let out = &mut *self.out;
        out.push_str(self.family.name);
        let mut sep = '{';
        for (name, v) in self.family.labels.iter().zip(values) {
            out.push(sep);
            out.push_str(name);
            out.push_str("=\"");
            escape(out, v, true);
            out.push('"');
            sep = ',';
        }
        if sep == ',' {
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }
}

/// `value` as `f64`'s `Display` writes it. Whole numbers (counts, status
/// codes, most timestamps: the bulk of a page) go through the integer
/// formatter, which is several times cheaper and writes the same digits.
#[inline]
fn write_value(out: &mut String, value: f64) {
    // Below 2^53 every whole f64 is an exact i64; -0.0 keeps its sign ("-0").
    if value.fract() == 0.0 && value.abs() < 9.0e15 && !(value == 0.0 && value.is_sign_negative()) {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Escapes backslash and newline (and, in label values, the double quote).
#[inline]
fn escape(out: &mut String, v: &str, quote: bool) {
    // Bytes, not chars: the three are ASCII, and no byte of a multi-byte
    // UTF-8 character is.
    let special = |b: &u8| *b == b'\\' || *b == b'\n' || (quote && *b == b'"');
    if !v.as_bytes().iter().any(special) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Family = Family {
        name: "x_up",
        kind: Kind::Gauge,
        help: "Up (1) or not.\nSecond \\ line \"quoted\".",
        labels: &["check", "location"],
    };
    const HITS: Family = Family {
        name: "a_hits_total",
        kind: Kind::Counter,
        help: "Hits.",
        labels: &[],
    };
    const LAST: Family = Family {
        name: "b_last",
        kind: Kind::Gauge,
        help: "Last.",
        labels: &[],
    };
    const EMPTY: Family = Family {
        name: "m_empty",
        kind: Kind::Gauge,
        help: "Never has samples.",
        labels: &["x"],
    };

    #[test]
    fn writes_headers_samples_and_escapes() {
        let mut e = Exposition::default();
        e.family(&UP, |s| {
            s.add(&["www", "ams"], 1.0);
            s.add(&["a\"b\\c\nd", "nyc"], 0.5);
        });
        e.family(&HITS, |s| s.add(&[], 3.0));
        assert_eq!(
            e.into_string(),
            "# HELP x_up Up (1) or not.\\nSecond \\\\ line \"quoted\".\n\
             # TYPE x_up gauge\n\
             x_up{check=\"www\",location=\"ams\"} 1\n\
             x_up{check=\"a\\\"b\\\\c\\nd\",location=\"nyc\"} 0.5\n\
             # HELP a_hits_total Hits.\n\
             # TYPE a_hits_total counter\n\
             a_hits_total 3\n"
        );
    }

    #[test]
    fn values_as_display_writes_them() {
        let mut e = Exposition::default();
        e.family(&HITS, |s| {
            for v in [
                1800014400.25,
                -89.90000000000009,
                1e21,
                f64::INFINITY,
                f64::NAN,
            ] {
                s.add(&[], v);
            }
        });
        let values: Vec<&str> = e
            .as_str()
            .lines()
            .skip(2)
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            values,
            [
                "1800014400.25",
                "-89.90000000000009",
                "1000000000000000000000",
                "inf",
                "NaN"
            ]
        );
    }

    #[test]
    fn whole_numbers_are_written_as_display_writes_them() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i % 4 {
                0 => (x % 10_000) as f64,
                1 => -((x >> 11) as f64),
                2 => f64::from_bits(x),
                _ => (x >> 11) as f64 / 1000.0,
            };
            let mut out = String::new();
            write_value(&mut out, v);
            assert_eq!(out, format!("{v}"), "{v:?}");
        }
    }

    #[test]
    fn empty_families_are_left_out() {
        let mut e = Exposition::default();
        e.family(&EMPTY, |_| {});
        e.family(&HITS, |s| s.add(&[], 1.0));
        e.family(&EMPTY, |_| {});
        assert_eq!(
            e.as_str(),
            "# HELP a_hits_total Hits.\n# TYPE a_hits_total counter\na_hits_total 1\n"
        );
    }

    #[test]
    fn append_by_name_orders_families_by_name() {
        let mut first = Exposition::default();
        first.family(&UP, |s| s.add(&["c", "l"], 1.0));
        let mut rest = Exposition::default();
        rest.family(&LAST, |s| s.add(&[], 2.0));
        rest.family(&EMPTY, |_| {});
        rest.family(&HITS, |s| s.add(&[], 1.0));
        first.append_by_name(rest);
        let names: Vec<&str> = first
            .as_str()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        // `first`'s family stays first; `rest`'s follow by name.
        assert_eq!(
            names,
            ["x_up gauge", "a_hits_total counter", "b_last gauge"]
        );
        assert!(
            first
                .as_str()
                .ends_with("a_hits_total 1\n# HELP b_last Last.\n# TYPE b_last gauge\nb_last 2\n")
        );
    }
}
