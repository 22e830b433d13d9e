//! Prometheus text-format helpers for tests: find a series' value, and run
//! the real `promtool check metrics` on a scrape.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The value of the one series of `name` whose labels are exactly `labels`
/// (in any order). Panics if two series match.
pub fn value_exact(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    find(text, name, |have| {
        let mut have: Vec<&str> = have.to_vec();
        have.sort();
        have == want
    })
}

/// The value of the one series of `name` whose labels include all of
/// `labels`. Panics if two series match.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    find(text, name, |have| {
        want.iter().all(|w| have.contains(&w.as_str()))
    })
}

fn find(text: &str, name: &str, matches: impl Fn(&[&str]) -> bool) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            continue;
        }
        // Label values in these tests hold no `,` or `}`; a plain split is enough.
        let have: Vec<&str> = rest
            .trim_end_matches('}')
            .split(',')
            .filter(|s| !s.is_empty())
            .collect();
        if matches(&have) {
            assert!(found.is_none(), "more than one series of {name} matches");
            found = Some(
                value
                    .parse::<f64>()
                    .unwrap_or_else(|e| panic!("{line}: {e}")),
            );
        }
    }
    found
}

/// Runs `promtool check metrics` on a scrape; panics with its output when it
/// finds a problem. promtool comes from Debian's `prometheus` package, which
/// `scripts/test.sh` installs.
pub fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package prometheus; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lowercase hex SHA-256: what `[[agents]] token_sha256` holds for a token.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data.as_ref()))
}
