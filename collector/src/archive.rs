//! Evidence out of the store (issue 12): the canonical JSONL behind a
//! report's digest (`slaprobe-collector evidence`), self-contained month
//! bundles that verify offline (`archive`, `verify-archive`), and the
//! retention that drops evidence only for archived months. The compactor
//! thread of a running collector is started here too ([`start_compactor`]).
//!
//! # The archive's month
//! A bundle for month `M` holds every result that **started in `M` in any
//! time zone**: from the first day of `M` at 00:00 in UTC+14:00 to the first
//! day of the next month at 00:00 in UTC−12:00 ([`span`]), so every
//! contract's month (whatever its zone) lies inside it. Adjacent bundles
//! overlap by those 26 hours. Retention drops a UTC day only when every
//! month whose span touches that day is archived.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jiff::Timestamp;
use jiff::tz::{TimeZone, offset};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::CollectorConfig;
use crate::render::{self, Format};
use crate::sla::{Contract, Month, MonthEvaluator, MonthReport, Observation};
use crate::sla_service::report_from_store;
use crate::store::compact::{DAY_MS, day_of};
use crate::store::{ArchiveRecord, Maintenance, Reader, Store};

/// `format` of a bundle's manifest.
pub const FORMAT: &str = "slaprobe-archive/1";

/// The manifest's file name inside a bundle.
pub const MANIFEST: &str = "manifest.json";

/// zstd level of a bundle's files: a month is gigabytes of JSON, so a
/// level that keeps ~40 MB/s on one core.
const BUNDLE_ZSTD_LEVEL: i32 = 9;

/// How often the compactor of a running collector makes a pass.
pub const COMPACT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// `[from, to)` of the archive's month `m`: its start in UTC+14:00 to its end in UTC−12:00.
pub fn span(m: Month) -> (Timestamp, Timestamp) {
    let east = TimeZone::fixed(offset(14));
    let west = TimeZone::fixed(offset(-12));
    (m.period(&east).0, m.period(&west).1)
}

fn span_ms(m: Month) -> (i64, i64) {
    let (a, b) = span(m);
    (a.as_millisecond(), b.as_millisecond())
}

/// Count and SHA-256 (hex) of lines written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest256 {
    pub results: u64,
    pub sha256: String,
}

/// Writes each raw result then `\n`, hashing the same bytes.
struct Canonical<W> {
    out: W,
    hasher: Sha256,
    n: u64,
    error: Option<std::io::Error>,
}

impl<W: Write> Canonical<W> {
    fn new(out: W) -> Self {
        Canonical {
            out,
            hasher: Sha256::new(),
            n: 0,
            error: None,
        }
    }

    fn add(&mut self, raw: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self
            .out
            .write_all(raw)
            .and_then(|()| self.out.write_all(b"\n"))
        {
            self.error = Some(e);
            return;
        }
        self.hasher.update(raw);
        self.hasher.update(b"\n");
        self.n += 1;
    }

    fn finish(self) -> std::io::Result<(W, Digest256)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok((
            self.out,
            Digest256 {
                results: self.n,
                sha256: hex::encode(self.hasher.finalize()),
            },
        ))
    }
}

/// Writes the canonical evidence of `contract`'s `month` to `out`: every
/// stored result (compacted or not) of its checks and of the canaries
/// (rule 1a) started in the period,
/// in (agent, seq) order, each result's bytes then `\n`. Its `sha256sum` is
/// the report's `evidence.sha256`.
pub fn write_evidence(
    reader: &Reader,
    contract: &Contract,
    month: Month,
    out: &mut dyn Write,
) -> anyhow::Result<Digest256> {
    let (from, to) = month.period(&contract.tz);
    let mut c = Canonical::new(out);
    reader
        .for_each_result(
            &contract.evidence_checks(),
            from.as_millisecond(),
            to.as_millisecond(),
            |r| c.add(r.raw.as_bytes()),
        )
        .context("reading the store")?;
    let (out, d) = c.finish().context("writing the evidence")?;
    out.flush().context("writing the evidence")?;
    Ok(d)
}

fn file_name(contract: &str) -> String {
    contract
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn zstd_writer(
    path: &Path,
) -> anyhow::Result<zstd::stream::write::Encoder<'static, std::fs::File>> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    zstd::stream::write::Encoder::new(f, BUNDLE_ZSTD_LEVEL)
        .with_context(|| format!("compressing {}", path.display()))
}

/// What [`archive_month`] wrote.
#[derive(Debug, Clone)]
pub struct ArchiveSummary {
    pub dir: PathBuf,
    pub results: Digest256,
    pub contracts: usize,
}

/// Writes the bundle of `month` into `dir` (created; must be empty) and
/// records the month as archived. Refused while results for the month may
/// still arrive (until `max_result_age` after its span's end) and for a
/// month whose evidence retention already dropped (its first bundle stands).
pub fn archive_month(
    config: &CollectorConfig,
    month: Month,
    dir: &Path,
    now: Timestamp,
) -> anyhow::Result<ArchiveSummary> {
    let (from, to) = span(month);
    let settled = to
        .checked_add(jiff::SignedDuration::try_from(
            config.collector.max_result_age,
        )?)
        .unwrap_or(Timestamp::MAX);
    if now < settled {
        bail!(
            "month {month} can be archived from {settled} on: results started in it are accepted until max_result_age ({}) after its end in UTC-12:00 ({to})",
            crate::config::format_duration(config.collector.max_result_age)
        );
    }
    let address = config.collector.store_address();
    let reader = Reader::open(address).context("opening the store")?;
    if let Some(a) = reader
        .archives()?
        .into_iter()
        .find(|a| a.month == month.to_string() && a.pruned > 0)
    {
        bail!(
            "month {month} was archived on {} and {} of its results were dropped by retention since: keep that bundle",
            Timestamp::from_millisecond(a.archived_at_ms).unwrap_or(Timestamp::UNIX_EPOCH),
            a.pruned
        );
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    std::fs::create_dir_all(dir.join("reports"))
        .and_then(|()| std::fs::create_dir_all(dir.join("evidence")))
        .with_context(|| format!("creating {}", dir.display()))?;

    let results = write_results(&reader, config, dir, from, to)?;
    let mut contracts = Vec::new();
    for contract in &config.contracts {
        // A month that has not started in the contract's zone has no report.
        if month.period(&contract.tz).0 > now {
            continue;
        }
        contracts.push(write_contract(&reader, contract, month, now, dir)?);
    }
    let files = manifest_files(dir, &contracts)?;
    let manifest = json!({
        "format": FORMAT,
        "month": month.to_string(),
        "span": {
            "from": from.to_string(), "to": to.to_string(),
            "from_ms": from.as_millisecond(), "to_ms": to.as_millisecond(),
            "rule": "results started in [from, to): the month in every time zone (UTC+14:00 to UTC-12:00)",
        },
        "created_at": now.to_string(),
        "results": {
            "file": "results.jsonl.zst",
            "order": "check (bytewise), then agent (bytewise), then seq",
            "results": results.results,
            "sha256": results.sha256,
        },
        "contracts": contracts,
        "files": files,
    });
    let body = serde_json::to_string_pretty(&manifest)? + "\n";
    std::fs::write(dir.join(MANIFEST), body).context("writing manifest.json")?;

    let mut m = Maintenance::open(address).context("opening the store to record the archive")?;
    m.record_archive(&ArchiveRecord {
        month: month.to_string(),
        archived_at_ms: now.as_millisecond(),
        results: results.results,
        sha256: results.sha256.clone(),
        pruned: 0,
    })?;
    Ok(ArchiveSummary {
        dir: dir.to_path_buf(),
        results,
        contracts: contracts.len(),
    })
}
/// `results.jsonl.zst`: every result started in [`from`, `to`) of every
/// check the store has results of and every contract's, in canonical order.
fn write_results(
    reader: &Reader,
    config: &CollectorConfig,
    dir: &Path,
    from: Timestamp,
    to: Timestamp,
) -> anyhow::Result<Digest256> {
    // Every check the store has results of, and every contract's.
    let mut checks: BTreeSet<String> = reader
        .probe_counts()?
        .into_iter()
        .map(|c| c.check)
        .collect();
    for c in &config.contracts {
        checks.extend(c.evidence_checks());
    }
    let mut c = Canonical::new(zstd_writer(&dir.join("results.jsonl.zst"))?);
    for check in &checks {
        reader.for_each_result(
            std::slice::from_ref(check),
            from.as_millisecond(),
            to.as_millisecond(),
            |r| c.add(r.raw.as_bytes()),
        )?;
    }
    let (enc, results) = c.finish().context("writing results.jsonl.zst")?;
    enc.finish().context("writing results.jsonl.zst")?;

    Ok(results)
}

/// One contract's evidence and reports in the bundle; its manifest entry.
fn write_contract(
    reader: &Reader,
    contract: &Contract,
    month: Month,
    now: Timestamp,
    dir: &Path,
) -> anyhow::Result<Value> {
    let name = file_name(&contract.name);
    let ev_path = format!("evidence/{name}.jsonl.zst");
    let mut enc = zstd_writer(&dir.join(&ev_path))?;
    let evidence = write_evidence(reader, contract, month, &mut enc)?;
    enc.finish().with_context(|| format!("writing {ev_path}"))?;
    let report = report_from_store(reader, contract, month, now)?;
    if report.evidence.sha256 != evidence.sha256 {
        bail!(
            "the store changed while {} was archived; run archive again",
            contract.name
        );
    }
    let mut reports = serde_json::Map::new();
    for (fmt, ext) in [
        (Format::Json, "json"),
        (Format::Csv, "csv"),
        (Format::Html, "html"),
    ] {
        let path = format!("reports/{name}.{ext}");
        std::fs::write(dir.join(&path), render::render(&report, fmt))
            .with_context(|| format!("writing {path}"))?;
        reports.insert(ext.into(), Value::String(path));
    }
    Ok(json!({
        "name": contract.name,
        "timezone": contract.timezone,
        "checks": contract.checks,
        "period_start": report.period_start.to_string(),
        "period_end": report.period_end.to_string(),
        "evidence": { "file": ev_path, "results": evidence.results, "sha256": evidence.sha256 },
        "reports": reports,
    }))
}

/// The manifest's `files`: the SHA-256 of every file of the bundle.
fn manifest_files(
    dir: &Path,
    contracts: &[Value],
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut files = serde_json::Map::new();
    let mut paths = vec!["results.jsonl.zst".to_string()];
    for c in contracts {
        paths.push(
            c["evidence"]["file"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        if let Some(r) = c["reports"].as_object() {
            paths.extend(r.values().filter_map(|v| v.as_str().map(str::to_string)));
        }
    }
    for p in paths {
        files.insert(p.clone(), Value::String(sha256_file(&dir.join(&p))?));
    }
    Ok(files)
}

/// Streams the lines of a `.jsonl.zst` file (each without its `\n`) and
/// returns their count and canonical digest.
fn for_each_line(path: &Path, mut f: impl FnMut(&[u8])) -> anyhow::Result<Digest256> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let dec = zstd::stream::read::Decoder::new(file)?;
    let mut r = BufReader::new(dec);
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let k = r
            .read_until(b'\n', &mut line)
            .with_context(|| format!("decompressing {}", path.display()))?;
        if k == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            bail!("{}: the last line has no newline", path.display());
        }
        h.update(&line);
        n += 1;
        f(&line[..line.len() - 1]);
    }
    Ok(Digest256 {
        results: n,
        sha256: hex::encode(h.finalize()),
    })
}

fn line_key(line: &[u8]) -> u64 {
    let d = Sha256::digest(line);
    u64::from_le_bytes(d[..8].try_into().unwrap_or_default())
}

/// What [`verify_bundle`] checked.
#[derive(Debug, Clone)]
pub struct Verified {
    pub month: String,
    pub results: Digest256,
    pub contracts: Vec<String>,
    /// Contracts whose report was re-evaluated from the bundle and matched.
    pub reproduced: Vec<String>,
}

/// Verifies a bundle offline: every file's SHA-256 as in the manifest;
/// `results.jsonl.zst` decompresses to the count and digest the manifest
/// states; each contract's evidence file decompresses to its report's
/// `evidence` (count and digest) and holds only lines of `results.jsonl`;
/// with `contracts` (from a config), each report is evaluated again from
/// the bundle's evidence and must equal the bundled JSON report.
pub fn verify_bundle(dir: &Path, contracts: Option<&[Contract]>) -> anyhow::Result<Verified> {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join(MANIFEST)).with_context(|| format!("reading {MANIFEST}"))?,
    )
    .context("manifest.json is not JSON")?;
    if manifest["format"] != FORMAT {
        bail!("not a {FORMAT} bundle (format {})", manifest["format"]);
    }
    let Some(files) = manifest["files"].as_object() else {
        bail!("manifest.json lists no files");
    };
    for (path, want) in files {
        let got = sha256_file(&dir.join(path))?;
        if Some(got.as_str()) != want.as_str() {
            bail!("{path}: SHA-256 {got}, the manifest says {want}");
        }
    }
    let mut keys = HashSet::new();
    let results = for_each_line(&dir.join("results.jsonl.zst"), |l| {
        keys.insert(line_key(l));
    })?;
    let want = &manifest["results"];
    if want["results"].as_u64() != Some(results.results)
        || want["sha256"].as_str() != Some(results.sha256.as_str())
    {
        bail!(
            "results.jsonl: {} results, SHA-256 {}; the manifest says {} and {}",
            results.results,
            results.sha256,
            want["results"],
            want["sha256"]
        );
    }
    let month: Month = manifest["month"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow::anyhow!("manifest month: {e}"))?;
    let mut names = Vec::new();
    let mut reproduced = Vec::new();
    for c in manifest["contracts"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let ev_file = c["evidence"]["file"].as_str().unwrap_or_default();
        let report_file = c["reports"]["json"].as_str().unwrap_or_default();
        if !files.contains_key(ev_file) || !files.contains_key(report_file) {
            bail!("{name}: its files are not covered by the manifest's digests");
        }
        let report: Value = serde_json::from_slice(&std::fs::read(dir.join(report_file))?)
            .with_context(|| format!("{report_file} is not JSON"))?;
        let contract = contracts.and_then(|cs| cs.iter().find(|k| k.name == name));
        let created: Timestamp = manifest["created_at"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .context("manifest created_at")?;
        let mut ev = contract.map(|k| MonthEvaluator::new(k, month, created));
        let mut foreign = 0u64;
        let got = for_each_line(&dir.join(ev_file), |l| {
            if !keys.contains(&line_key(l)) {
                foreign += 1;
            }
            if let Some(ev) = ev.as_mut()
                && let Ok(r) = serde_json::from_slice::<slaprobe_wire::ProbeResult>(l)
            {
                ev.observe(&Observation::from_result(&r));
            }
        })?;
        if foreign > 0 {
            bail!("{ev_file}: {foreign} results are not in results.jsonl");
        }
        let stated = &report["evidence"];
        if stated["results"].as_u64() != Some(got.results)
            || stated["sha256"].as_str() != Some(got.sha256.as_str())
        {
            bail!(
                "{name}: its evidence has {} results with SHA-256 {}; the report says {} and {}",
                got.results,
                got.sha256,
                stated["results"],
                stated["sha256"]
            );
        }
        if let Some(mut ev) = ev {
            // The exact percentiles take more passes over the same file.
            while ev
                .end_pass()
                .map_err(|_| anyhow::anyhow!("{ev_file}: changed while it was read"))?
            {
                for_each_line(&dir.join(ev_file), |l| {
                    if let Ok(r) = serde_json::from_slice::<slaprobe_wire::ProbeResult>(l) {
                        ev.resample(&Observation::from_result(&r));
                    }
                })?;
            }
            let mut again: MonthReport = ev.report();
            again.evidence.results = got.results;
            again.evidence.sha256 = got.sha256.clone();
            let bundled = std::fs::read_to_string(dir.join(report_file))?;
            if render::render(&again, Format::Json) != bundled {
                bail!(
                    "{name}: the report evaluated again from the bundle differs from {report_file}"
                );
            }
            reproduced.push(name.clone());
        }
        names.push(name);
    }
    Ok(Verified {
        month: month.to_string(),
        results,
        contracts: names,
        reproduced,
    })
}

/// The UTC month of a day (days since the epoch).
fn month_of_day(day: i64) -> Option<Month> {
    let ts = Timestamp::from_millisecond(day.checked_mul(DAY_MS)?).ok()?;
    Month::containing(ts, &TimeZone::UTC)
}

/// True when every month whose [`span`] touches UTC `day` is in `archived`.
fn day_archived(day: i64, archived: &HashSet<Month>) -> bool {
    let (a, b) = (day * DAY_MS, (day + 1) * DAY_MS);
    let Some(mut m) = month_of_day(day).map(Month::prev) else {
        return false;
    };
    for _ in 0..3 {
        let (s, e) = span_ms(m);
        if s < b && a < e && !archived.contains(&m) {
            return false;
        }
        m = m.next();
    }
    true
}

/// Retention: drops the compacted evidence of every UTC day entirely older
/// than `now_ms - retention_ms` whose months are all archived (see the module
/// docs), counted per archived month (`archives.pruned`) and logged. Never
/// an unarchived month's. Returns the results dropped.
pub fn prune_expired(
    m: &mut Maintenance,
    archives: &[ArchiveRecord],
    now_ms: i64,
    retention_ms: i64,
) -> anyhow::Result<u64> {
    let archived: HashSet<Month> = archives
        .iter()
        .filter_map(|a| a.month.parse().ok())
        .collect();
    let before_day = day_of(now_ms.saturating_sub(retention_ms));
    let mut total = 0;
    for month in &archived {
        let keep = |d: i64| month_of_day(d) != Some(*month) || !day_archived(d, &archived);
        let n = m.prune_days(before_day, &keep)?;
        if n > 0 {
            m.mark_pruned(&month.to_string(), now_ms, n)?;
            tracing::info!(%month, results = n, "retention dropped archived evidence");
            total += n;
        }
    }
    Ok(total)
}

/// Starts the compactor of a running collector (`[collector] compact_after`,
/// `retention`) on the store; it stops when the store closes.
pub fn start_compactor(store: &Store, config: &CollectorConfig) -> anyhow::Result<()> {
    let address = config.collector.store_address().clone();
    let retention = config.collector.retention;
    let for_retention = address.clone();
    store.start_compactor(
        address,
        COMPACT_EVERY,
        config.collector.compact_after,
        Box::new(move |m, now_ms| {
            let Some(retention) = retention else { return };
            let ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            let archives = match Reader::open(&for_retention).and_then(|r| r.archives()) {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "retention: cannot read the archived months");
                    return;
                }
            };
            if let Err(e) = prune_expired(m, &archives, now_ms, ms) {
                tracing::warn!(error = %e, "retention failed; retrying at the next pass");
            }
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_covers_the_month_in_every_zone() {
        let m: Month = "2026-02".parse().unwrap();
        let (a, b) = span(m);
        assert_eq!(a.to_string(), "2026-01-31T10:00:00Z");
        assert_eq!(b.to_string(), "2026-03-01T12:00:00Z");
    }

    #[test]
    fn a_day_is_archived_only_with_every_month_it_touches() {
        let feb: Month = "2026-02".parse().unwrap();
        let mar: Month = "2026-03".parse().unwrap();
        let day = |s: &str| day_of(s.parse::<Timestamp>().unwrap().as_millisecond());
        let only_feb: HashSet<Month> = [feb].into();
        // Mid-February: only February's span.
        assert!(day_archived(day("2026-02-14T00:00:00Z"), &only_feb));
        // 28 February (UTC) is in March's span too (from 28 Feb 10:00 UTC).
        assert!(!day_archived(day("2026-02-28T00:00:00Z"), &only_feb));
        assert!(day_archived(
            day("2026-02-28T00:00:00Z"),
            &[feb, mar].into()
        ));
        // 1 February is in January's span too (until 1 Feb 12:00 UTC).
        assert!(!day_archived(day("2026-02-01T00:00:00Z"), &only_feb));
        assert!(day_archived(day("2026-02-02T00:00:00Z"), &only_feb));
    }
}
