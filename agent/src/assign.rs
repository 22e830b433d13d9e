//! Check assignments pulled from the collector, merged with the local checks.
//!
//! An assignment of 10,000 checks, each carrying the collector's CA inline
//! (`ca_pem`), is ~9 MB of JSON. Parsing it into a `Vec<CheckSpec>` and then
//! building the checks held the body, every spec and every check at once:
//! most of the agent's peak memory. Here the body streams from the network
//! into the parser (a blocking thread fed chunk by chunk over a small
//! channel), and each check is built (trust sets and `resolve` maps shared
//! through one [`Interner`]) as soon as its entry is parsed, so a few chunks
//! and one `CheckSpec` are alive at a time. The cached copy on disk is
//! written while parsing, and only when the assignment changed.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::Hasher as _;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::body::Bytes;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use slaprobe_wire::CheckSpec;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{Check, Interner, Secret};
use crate::ship;

/// File in the spool dir caching the collector's last check assignment, so
/// that an agent restarted during a collector outage keeps probing.
pub const ASSIGNED_CACHE: &str = "assigned-checks.json";

/// Local checks plus assigned ones, built one assigned entry at a time.
struct Merge {
    local_names: HashSet<String>,
    base: PathBuf,
    shared: Interner,
    out: Vec<Check>,
    /// Entries seen (for messages).
    seen: usize,
}

impl Merge {
    fn new(local: &[Check], file: &Path) -> Self {
        Self {
            local_names: local.iter().map(|c| c.name.clone()).collect(),
            base: file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            shared: Interner::default(),
            out: local.to_vec(),
            seen: 0,
        }
    }

    /// Adds one assigned entry; a local check wins a name clash, an invalid
    /// entry is logged and skipped.
    fn add(&mut self, mut spec: CheckSpec) {
        let i = self.seen;
        self.seen += 1;
        if self.local_names.contains(spec.name.as_str()) {
            tracing::warn!(check = %spec.name, "collector assigns a check with the name of a local one; the local one runs");
            return;
        }
        if spec.ca_pem.is_some() {
            // The collector inlined its CA; its path means nothing here.
            spec.ca_file = None;
        }
        // Which locations run it is the collector's business.
        spec.locations = None;
        let file = Path::new("<collector assignment>");
        match Check::from_spec_in(&spec, i, file, &self.base, &mut self.shared) {
            Ok(c) => self.out.push(c),
            Err(e) => tracing::error!("skipping assigned check: {e}"),
        }
    }
}

/// Parses `{"checks": [...]}` from `reader` into `merge`, entry by entry.
fn parse_into(reader: impl Read, merge: &mut Merge) -> serde_json::Result<usize> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let n = Assignment(merge).deserialize(&mut de)?;
    de.end()?;
    Ok(n)
}

/// The assignment object; only `checks` is read.
struct Assignment<'m>(&'m mut Merge);

impl<'de> DeserializeSeed<'de> for Assignment<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Assignment<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a `checks` array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let merge = self.0;
        let mut n = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "checks" {
                n = Some(map.next_value_seed(Entries(&mut *merge))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        n.ok_or_else(|| serde::de::Error::missing_field("checks"))
    }
}

/// The `checks` array: each entry handed to [`Merge::add`] as it is parsed.
struct Entries<'m>(&'m mut Merge);

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of checks")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while let Some(spec) = seq.next_element::<CheckSpec>()? {
            self.0.add(spec);
            n += 1;
        }
        Ok(n)
    }
}

/// Reads the body chunk by chunk as the network delivers it (`more`: `Some`
/// per chunk, `None` once the body is complete), dropping each chunk once
/// read and copying what it reads into `tee` (the cache file being written).
/// A body cut short (the channel closed without the end mark) is an error,
/// so a truncated assignment is never taken.
struct Chunks<W> {
    parts: VecDeque<Bytes>,
    more: Option<mpsc::Receiver<Option<Bytes>>>,
    tee: W,
}

impl<W: Write> Read for Chunks<W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(front) = self.parts.front_mut() {
                if front.is_empty() {
                    self.parts.pop_front();
                    continue;
                }
                let n = front.len().min(buf.len());
                buf[..n].copy_from_slice(&front[..n]);
                self.tee.write_all(&buf[..n])?;
                let _ = front.split_to(n);
                return Ok(n);
            }
            let Some(rx) = &mut self.more else {
                return Ok(0);
            };
            match rx.blocking_recv() {
                Some(Some(chunk)) => self.parts.push_back(chunk),
                Some(None) => self.more = None,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the assignment's body was cut short",
                    ));
                }
            }
        }
    }
}

/// The checks to start with: local ones plus the cached assignment, if any.
pub fn initial_checks(local: &[Check], spool_dir: &Path, file: &Path) -> Vec<Check> {
    let path = spool_dir.join(ASSIGNED_CACHE);
    let Ok(f) = std::fs::File::open(&path) else {
        return local.to_vec();
    };
    let mut m = Merge::new(local, file);
    match parse_into(io::BufReader::new(f), &mut m) {
        Ok(n) => {
            tracing::info!(
                checks = n,
                "using the cached check assignment until the collector answers"
            );
            m.out
        }
        Err(e) => {
            tracing::warn!("ignoring unreadable {}: {e}", path.display());
            local.to_vec()
        }
    }
}

/// Parses a body into local + assigned checks as it arrives, writing it to
/// the cache file as it goes (renamed into place only when it parsed).
/// Blocking: runs on its own thread while the body streams in.
fn apply(
    body: mpsc::Receiver<Option<Bytes>>,
    local: &[Check],
    spool_dir: &Path,
    file: &Path,
) -> Option<Vec<Check>> {
    let path = spool_dir.join(ASSIGNED_CACHE);
    let tmp = spool_dir.join(format!("{ASSIGNED_CACHE}.tmp"));
    let cache = match std::fs::File::create(&tmp) {
        Ok(f) => Some(io::BufWriter::new(f)),
        Err(e) => {
            tracing::warn!(
                "cannot cache the check assignment in {}: {e}",
                tmp.display()
            );
            None
        }
    };
    let caching = cache.is_some();
    let mut reader = Chunks {
        parts: VecDeque::new(),
        more: Some(body),
        tee: CacheSink(cache),
    };
    let mut m = Merge::new(local, file);
    let parsed = parse_into(&mut reader, &mut m);
    let sink = reader.tee.0.take();
    match parsed {
        Ok(n) => {
            tracing::info!(checks = n, "check assignment received");
            if caching {
                let stored = sink
                    .map(|w| w.into_inner().map_err(|e| e.into_error()))
                    .transpose()
                    .and_then(|_| std::fs::rename(&tmp, &path));
                if let Err(e) = stored {
                    tracing::warn!(
                        "cannot cache the check assignment in {}: {e}",
                        path.display()
                    );
                }
            }
            Some(m.out)
        }
        Err(e) => {
            drop(sink);
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("ignoring an invalid check assignment from the collector: {e}");
            None
        }
    }
}

/// Where [`Chunks`] copies the body: the cache file, or nowhere when it
/// could not be created (probing matters more than the cache).
struct CacheSink(Option<io::BufWriter<std::fs::File>>);

impl Write for CacheSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(w) = &mut self.0
            && let Err(e) = w.write_all(buf)
        {
            tracing::warn!("cannot cache the check assignment: {e}");
            self.0 = None;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What [`pull_checks`] needs besides the channel.
pub struct Pull {
    pub client: reqwest::Client,
    pub url: Url,
    pub token: Secret,
    pub local: Vec<Check>,
    pub spool_dir: PathBuf,
    /// The agent's config file (relative paths).
    pub file: PathBuf,
    pub refresh: Duration,
}

/// Pulls the assignment every `refresh` (sooner while it keeps failing at
/// first) and publishes local + assigned checks when they change.
pub async fn pull_checks(p: Pull, tx: watch::Sender<Arc<Vec<Check>>>, shutdown: CancellationToken) {
    let mut last: Option<u64> = None;
    let mut backoff = ship::Backoff::new();
    loop {
        let wait = match refresh(&p, last).await {
            Ok(changed) => {
                backoff.reset();
                if let Some((merged, hash)) = changed {
                    let _ = tx.send(Arc::new(merged));
                    last = Some(hash);
                }
                p.refresh
            }
            Err(e) => {
                tracing::warn!("cannot fetch checks from the collector: {e:#}");
                backoff.next_delay().min(p.refresh)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One refresh. The assignment is compared by a hash of its body, read and
/// dropped chunk by chunk (the usual case: unchanged, nothing parsed). Only
/// when it changed (or nothing was taken yet) is it fetched again and
/// streamed into the parser, so the body is never held whole. Returns the
/// new checks and their body's hash; `None` when unchanged or invalid.
async fn refresh(p: &Pull, last: Option<u64>) -> anyhow::Result<Option<(Vec<Check>, u64)>> {
    if let Some(prev) = last {
        let mut resp = get_assignment(p).await?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        while let Some(chunk) = resp.chunk().await.context("reading the check assignment")? {
            h.write(&chunk);
        }
        if h.finish() == prev {
            return Ok(None);
        }
    }
    let mut resp = get_assignment(p).await?;
    let (tx, rx) = mpsc::channel::<Option<Bytes>>(8);
    let (local, dir, file) = (p.local.clone(), p.spool_dir.clone(), p.file.clone());
    let parser = tokio::task::spawn_blocking(move || apply(rx, &local, &dir, &file));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let read = async {
        while let Some(chunk) = resp.chunk().await? {
            h.write(&chunk);
            if tx.send(Some(chunk)).await.is_err() {
                // The parser stopped: the body is invalid; it says why.
                return Ok(());
            }
        }
        let _ = tx.send(None).await;
        Ok::<(), reqwest::Error>(())
    }
    .await;
    drop(tx);
    let applied = parser.await.context("the assignment parser failed")?;
    read.context("reading the check assignment")?;
    Ok(applied.map(|checks| (checks, h.finish())))
}

/// `GET /api/v1/checks`, its status checked; the body is left to read.
async fn get_assignment(p: &Pull) -> anyhow::Result<reqwest::Response> {
    let resp = p
        .client
        .get(p.url.clone())
        .bearer_auth(p.token.expose())
        .send()
        .await
        .context("request failed")?;
    let status = resp.status();
    if !status.is_success() {
        let text: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        anyhow::bail!("collector answered {status}: {text}");
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json(name: &str) -> String {
        format!(
            r#"{{"name":"{name}","kind":"http","url":"https://localhost/","resolve":{{"localhost":"127.0.0.1"}}}}"#
        )
    }

    #[test]
    fn streamed_parse_builds_every_check_and_shares_resolve_maps() {
        let body = format!(
            r#"{{"future_key":1,"checks":[{},{}]}}"#,
            spec_json("a"),
            spec_json("b")
        );
        // Split mid-token: the reader must carry on across chunks.
        let (x, y) = body.split_at(37);
        let parts = VecDeque::from([
            Bytes::from(x.to_string()),
            Bytes::new(),
            Bytes::from(y.to_string()),
        ]);
        let mut out = Vec::new();
        let mut r = Chunks {
            parts,
            more: None,
            tee: &mut out,
        };
        let mut m = Merge::new(&[], Path::new("agent.toml"));
        assert_eq!(parse_into(&mut r, &mut m).unwrap(), 2);
        assert_eq!(out, body.as_bytes(), "the cache gets the exact body");
        let names: Vec<&str> = m.out.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let net = |c: &Check| match &c.probe {
            crate::config::ProbeSpec::Http(h) => h.net.resolve.clone(),
            _ => unreachable!(),
        };
        assert!(Arc::ptr_eq(&net(&m.out[0]), &net(&m.out[1])));
    }

    #[test]
    fn a_broken_assignment_is_refused_whole() {
        let mut m = Merge::new(&[], Path::new("agent.toml"));
        let body = format!(r#"{{"checks":[{},{{"name":"#, spec_json("a"));
        assert!(parse_into(body.as_bytes(), &mut m).is_err());
        let mut m = Merge::new(&[], Path::new("agent.toml"));
        assert!(parse_into(&b"{}"[..], &mut m).is_err(), "no checks key");
    }

    #[test]
    fn a_body_cut_short_is_refused_and_a_complete_one_taken() {
        let body = format!(r#"{{"checks":[{}]}}"#, spec_json("a"));
        let run = |end_mark: bool| {
            let (tx, rx) = mpsc::channel(4);
            for part in [&body[..10], &body[10..]] {
                tx.blocking_send(Some(Bytes::from(part.to_string())))
                    .unwrap();
            }
            if end_mark {
                tx.blocking_send(None).unwrap();
            }
            drop(tx);
            let r = Chunks {
                parts: VecDeque::new(),
                more: Some(rx),
                tee: io::sink(),
            };
            let mut m = Merge::new(&[], Path::new("agent.toml"));
            parse_into(r, &mut m).map(|n| (n, m.out.len()))
        };
        assert_eq!(run(true).unwrap(), (1, 1));
        // Every byte arrived, but not the end mark: the read was cut short.
        assert!(run(false).is_err());
    }
}
