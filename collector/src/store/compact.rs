//! Compacted evidence: settled results moved out of `results` into
//! zstd-compressed chunks, each agent's bytes kept exactly. Shared by both
//! backends: the on-disk encoding, the plan of one compaction transaction,
//! the per-agent seq ranges that keep dedup exact, and the lazy merge that
//! makes reads return compacted and uncompacted results together in
//! (agent, seq) order.
//!
//! # On-disk format (documented in the README, read by `scripts/evidence_digest.py`)
//! One row of `evidence_chunks` per (check, agent, location, UTC day of
//! `started_at`): `day` is `floor(started_at / 86_400_000)`. Its `data` is a
//! concatenation of independent zstd frames (one per compaction pass that
//! touched the key, usually one per hour); `frames` is a JSON array
//! `[[len, n, seq_min, seq_max], …]` describing them in `data` order (frame
//! `i` starts at the sum of the lengths before it). A frame decompresses to
//! `n` records in ascending seq, each:
//!
//! ```text
//! seq         u64 little-endian
//! started_at  i64 little-endian, ms since the Unix epoch
//! success     u8 (0 or 1)
//! class_len   u8, then class_len bytes of the failure class (0: none)
//! raw_len     u32 little-endian, then raw_len bytes: the JSON exactly as the agent sent it
//! ```
//!
//! Frames of one row may overlap in seq (late results for a compacted hour
//! get a frame of their own), so readers treat every frame as one sorted run.
//!
//! `compacted_seqs (agent, lo, hi)` holds, per agent, disjoint inclusive
//! ranges of the seqs that were compacted: a seq is stored when it is in
//! `results` or in one of these ranges (each seq is in at most one).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;

use super::{StoreError, StoredResult};

/// zstd level of the frames. Measured on ~110 agent-like results (70 KB):
/// level 15 compresses to 39.9 B a result at ~7 MB/s on a loaded core,
/// level 19 to 39.4 B at 1.4 MB/s, level 9 to 44.9 B at 74 MB/s.
pub const ZSTD_LEVEL: i32 = 15;

/// One UTC day in milliseconds: the span of a chunk row.
pub const DAY_MS: i64 = 86_400_000;

/// One hour in milliseconds: results are compacted once their hour is over.
pub const HOUR_MS: i64 = 3_600_000;

/// Rows one compaction step moves at most. The rows are read and
/// compressed outside any write transaction ([`encode_groups`]); the write
/// transaction only deletes the rows, writes the frames and the seq ranges
/// (milliseconds for 5,000 rows), so ingest's writer never waits behind
/// zstd. (Compressing inside it, 20,000 rows held SQLite's write lock past
/// the writer's 10 s busy timeout in the month bench on a loaded box.)
pub const ROWS_PER_TX: usize = 5_000;

/// The day (chunk key) of a start time.
pub fn day_of(started_at_ms: i64) -> i64 {
    started_at_ms.div_euclid(DAY_MS)
}

/// A result as it is compacted (a `results` row).
#[derive(Debug, Clone)]
pub struct Row {
    /// The row's id in `results` (deleted when compacted).
    pub id: i64,
    pub agent: String,
    pub seq: u64,
    pub check: String,
    pub location: String,
    pub started_at_ms: i64,
    pub success: bool,
    pub class: Option<String>,
    pub raw: Vec<u8>,
}

/// One frame's descriptor as kept in `evidence_chunks.frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameMeta(pub u64, pub u64, pub u64, pub u64);

impl FrameMeta {
    /// Compressed length in `data`.
    #[allow(clippy::len_without_is_empty)] // a frame's byte length, not a collection
    pub fn len(&self) -> u64 {
        self.0
    }
    /// Results in the frame.
    pub fn n(&self) -> u64 {
        self.1
    }
    pub fn seq_min(&self) -> u64 {
        self.2
    }
    pub fn seq_max(&self) -> u64 {
        self.3
    }
}

/// Parses a `frames` column.
pub fn parse_frames(json: &str) -> Result<Vec<FrameMeta>, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("evidence_chunks.frames: {e}")))
}

/// Serialises a `frames` column.
pub fn frames_json(frames: &[FrameMeta]) -> String {
    serde_json::to_string(frames).unwrap_or_else(|_| "[]".into())
}

/// Encodes `rows` (one key, sorted by seq) as one compressed frame.
pub fn encode_frame(rows: &[&Row]) -> Result<(Vec<u8>, FrameMeta), StoreError> {
    let mut buf = Vec::with_capacity(rows.iter().map(|r| r.raw.len() + 32).sum());
    for r in rows {
        buf.extend_from_slice(&r.seq.to_le_bytes());
        buf.extend_from_slice(&r.started_at_ms.to_le_bytes());
        buf.push(u8::from(r.success));
        let class = r.class.as_deref().unwrap_or("").as_bytes();
        let class_len = u8::try_from(class.len())
            .map_err(|_| StoreError::Corrupt("failure class longer than 255 bytes".into()))?;
        buf.push(class_len);
        buf.extend_from_slice(class);
        let raw_len = u32::try_from(r.raw.len())
            .map_err(|_| StoreError::Corrupt("result larger than 4 GiB".into()))?;
        buf.extend_from_slice(&raw_len.to_le_bytes());
        buf.extend_from_slice(&r.raw);
    }
    let data = zstd::bulk::compress(&buf, ZSTD_LEVEL)
        .map_err(|e| StoreError::Corrupt(format!("zstd: {e}")))?;
    let meta = FrameMeta(
        data.len() as u64,
        rows.len() as u64,
        rows.first().map_or(0, |r| r.seq),
        rows.last().map_or(0, |r| r.seq),
    );
    Ok((data, meta))
}

/// Re-encodes every frame of a chunk row as one frame (records merged by
/// seq): a finished day compresses ~15% better in one frame than in hourly ones.
pub fn reseal(data: &[u8], frames: &[FrameMeta]) -> Result<(Vec<u8>, FrameMeta), StoreError> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    for f in frames {
        let end = offset + usize::try_from(f.len()).unwrap_or(usize::MAX);
        let bytes = data
            .get(offset..end)
            .ok_or_else(|| StoreError::Corrupt("frame beyond its chunk".into()))?;
        records.extend(decode_frame(bytes)?);
        offset = end;
    }
    records.sort_by_key(|r| r.seq);
    let rows: Vec<Row> = records
        .into_iter()
        .map(|r| Row {
            id: 0,
            agent: String::new(),
            seq: r.seq,
            check: String::new(),
            location: String::new(),
            started_at_ms: r.started_at_ms,
            success: r.success,
            class: r.class,
            raw: r.raw,
        })
        .collect();
    let refs: Vec<&Row> = rows.iter().collect();
    encode_frame(&refs)
}

/// Chunk rows one sealing transaction re-encodes at most (each is a day of
/// one check from one agent: tens of KB to decompress and compress again).
pub const SEAL_PER_TX: i64 = 4;

/// One decoded record of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub started_at_ms: i64,
    pub success: bool,
    pub class: Option<String>,
    pub raw: Vec<u8>,
}

/// Decompresses and decodes one frame.
pub fn decode_frame(data: &[u8]) -> Result<Vec<Record>, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("evidence frame: {what}"));
    let buf = zstd::decode_all(data).map_err(|e| bad(&e.to_string()))?;
    let mut out = Vec::new();
    let mut p = 0usize;
    let take = |p: &mut usize, n: usize| -> Result<&[u8], StoreError> {
        let s = buf.get(*p..*p + n).ok_or_else(|| bad("truncated"))?;
        *p += n;
        Ok(s)
    };
    while p < buf.len() {
        let seq = u64::from_le_bytes(take(&mut p, 8)?.try_into().map_err(|_| bad("seq"))?);
        let started =
            i64::from_le_bytes(take(&mut p, 8)?.try_into().map_err(|_| bad("started_at"))?);
        let success = take(&mut p, 1)?[0] != 0;
        let class_len = take(&mut p, 1)?[0] as usize;
        let class = take(&mut p, class_len)?;
        let class = (!class.is_empty()).then(|| String::from_utf8_lossy(class).into_owned());
        let raw_len =
            u32::from_le_bytes(take(&mut p, 4)?.try_into().map_err(|_| bad("raw_len"))?) as usize;
        let raw = take(&mut p, raw_len)?.to_vec();
        out.push(Record {
            seq,
            started_at_ms: started,
            success,
            class,
            raw,
        });
    }
    Ok(out)
}

/// One chunk key's rows of a compaction transaction.
pub struct Group<'a> {
    pub check: &'a str,
    pub agent: &'a str,
    pub location: &'a str,
    pub day: i64,
    /// Sorted by seq.
    pub rows: Vec<&'a Row>,
}

/// One group's frame, compressed: what a compaction write transaction stores.
#[derive(Debug)]
pub struct Encoded<'a> {
    pub check: &'a str,
    pub agent: &'a str,
    pub location: &'a str,
    pub day: i64,
    pub data: Vec<u8>,
    pub meta: FrameMeta,
}

/// Groups `rows` by chunk key and compresses each group into a frame (the
/// CPU part of compaction, done before the write transaction opens).
pub fn encode_groups(rows: &[Row]) -> Result<Vec<Encoded<'_>>, StoreError> {
    group(rows)
        .into_iter()
        .map(|g| {
            let (data, meta) = encode_frame(&g.rows)?;
            Ok(Encoded {
                check: g.check,
                agent: g.agent,
                location: g.location,
                day: g.day,
                data,
                meta,
            })
        })
        .collect()
}

/// Groups rows by chunk key (check, agent, location, day), each sorted by seq.
pub fn group(rows: &[Row]) -> Vec<Group<'_>> {
    let mut by_key: BTreeMap<(&str, &str, &str, i64), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_key
            .entry((&r.check, &r.agent, &r.location, day_of(r.started_at_ms)))
            .or_default()
            .push(r);
    }
    by_key
        .into_iter()
        .map(|((check, agent, location, day), mut rows)| {
            rows.sort_by_key(|r| r.seq);
            Group {
                check,
                agent,
                location,
                day,
                rows,
            }
        })
        .collect()
}

/// The seqs of `rows` per agent as sorted inclusive runs `[lo, hi]`.
pub fn seq_runs(rows: &[Row]) -> BTreeMap<&str, Vec<(u64, u64)>> {
    let mut seqs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in rows {
        seqs.entry(&r.agent).or_default().push(r.seq);
    }
    seqs.into_iter()
        .map(|(agent, mut s)| {
            s.sort_unstable();
            s.dedup();
            let mut runs: Vec<(u64, u64)> = Vec::new();
            for q in s {
                match runs.last_mut() {
                    Some((_, hi)) if *hi + 1 == q => *hi = q,
                    _ => runs.push((q, q)),
                }
            }
            (agent, runs)
        })
        .collect()
}

/// True when `seq` lies in one of `ranges` (sorted by `lo`, disjoint).
pub fn in_ranges(ranges: &[(u64, u64)], seq: u64) -> bool {
    let i = ranges.partition_point(|&(lo, _)| lo <= seq);
    i > 0 && ranges[i - 1].1 >= seq
}

/// A frame of a read, before it is loaded.
#[derive(Debug, Clone)]
pub struct FrameRef {
    pub agent: Arc<str>,
    pub check: Arc<str>,
    pub location: Arc<str>,
    /// The chunk row (`evidence_chunks.id`).
    pub chunk_id: i64,
    pub offset: u64,
    pub len: u64,
    pub seq_min: u64,
}

/// Turns chunk rows of a read into frame references.
pub fn frame_refs(
    out: &mut Vec<FrameRef>,
    chunk_id: i64,
    agent: Arc<str>,
    check: Arc<str>,
    location: Arc<str>,
    frames: &str,
) -> Result<(), StoreError> {
    let mut offset = 0;
    for f in parse_frames(frames)? {
        out.push(FrameRef {
            agent: agent.clone(),
            check: check.clone(),
            location: location.clone(),
            chunk_id,
            offset,
            len: f.len(),
            seq_min: f.seq_min(),
        });
        offset += f.len();
    }
    Ok(())
}

/// Interns the strings of chunk rows (a month of frames names the same few agents and checks).
#[derive(Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

/// Merges compacted frames with the uncompacted rows of a read into one
/// (agent, seq) ordered stream, opening (decompressing) a frame only when
/// the merge reaches its first seq: memory holds the frames that overlap in
/// seq at one point (about one per check of the read), never a month.
pub struct Merge {
    /// Frames per agent, sorted by seq_min; consumed from the front.
    pending: BTreeMap<Arc<str>, VecDeque<FrameRef>>,
    /// The agent whose frames are open (drained up to the last row pushed).
    current: Option<Arc<str>>,
    /// Open frames of the current agent: (next seq, slot) and their records.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    open: Vec<VecDeque<StoredResult>>,
    from_ms: i64,
    to_ms: i64,
}

/// Fetches a frame's compressed bytes for [`Merge`].
pub trait LoadFrame {
    fn load(&mut self, frame: &FrameRef) -> Result<Vec<u8>, StoreError>;
}

impl<F: FnMut(&FrameRef) -> Result<Vec<u8>, StoreError>> LoadFrame for F {
    fn load(&mut self, frame: &FrameRef) -> Result<Vec<u8>, StoreError> {
        self(frame)
    }
}

impl Merge {
    /// `frames` of the read (any order), results started in `[from_ms, to_ms)`.
    pub fn new(frames: Vec<FrameRef>, from_ms: i64, to_ms: i64) -> Self {
        let mut pending: BTreeMap<Arc<str>, Vec<FrameRef>> = BTreeMap::new();
        for f in frames {
            pending.entry(f.agent.clone()).or_default().push(f);
        }
        let pending = pending
            .into_iter()
            .map(|(a, mut v)| {
                v.sort_by_key(|f| f.seq_min);
                (a, v.into())
            })
            .collect();
        Merge {
            pending,
            current: None,
            heap: BinaryHeap::new(),
            open: Vec::new(),
            from_ms,
            to_ms,
        }
    }

    /// Emits every compacted result ordered before `(agent, seq)`, then the row itself.
    /// Rows must come in (agent, seq) order.
    pub fn push_row<F: FnMut(StoredResult)>(
        &mut self,
        row: StoredResult,
        load: &mut impl LoadFrame,
        f: &mut F,
    ) -> Result<(), StoreError> {
        // Agents before this one are finished.
        if let Some(c) = self.current.clone()
            && *c < *row.agent
        {
            self.drain_agent(&c, None, load, f)?;
            self.current = None;
        }
        while let Some(first) = self.pending.keys().next().cloned() {
            if *first >= *row.agent {
                break;
            }
            self.drain_agent(&first, None, load, f)?;
        }
        let is_current = self.current.as_deref() == Some(row.agent.as_str());
        if is_current || self.pending.contains_key(row.agent.as_str()) {
            let agent: Arc<str> = Arc::from(row.agent.as_str());
            self.drain_agent(&agent, Some(row.seq), load, f)?;
            self.current = Some(agent);
        }
        f(row);
        Ok(())
    }

    /// Emits what is left.
    pub fn finish<F: FnMut(StoredResult)>(
        mut self,
        load: &mut impl LoadFrame,
        f: &mut F,
    ) -> Result<(), StoreError> {
        if let Some(c) = self.current.take() {
            self.drain_agent(&c, None, load, f)?;
        }
        while let Some(first) = self.pending.keys().next().cloned() {
            self.drain_agent(&first, None, load, f)?;
        }
        Ok(())
    }

    /// Emits `agent`'s compacted results with seq below `bound` (all: `None`).
    fn drain_agent<F: FnMut(StoredResult)>(
        &mut self,
        agent: &Arc<str>,
        bound: Option<u64>,
        load: &mut impl LoadFrame,
        f: &mut F,
    ) -> Result<(), StoreError> {
        loop {
            // Open every frame that could hold the smallest seq left.
            loop {
                let head = self.heap.peek().map(|Reverse((s, _))| *s);
                let Some(q) = self.pending.get_mut(agent) else {
                    break;
                };
                let Some(next) = q.front() else {
                    self.pending.remove(agent);
                    break;
                };
                let needed = match head {
                    Some(h) => next.seq_min <= h,
                    None => bound.is_none_or(|b| next.seq_min < b),
                };
                if !needed {
                    break;
                }
                let fr = q.pop_front().expect("front exists");
                self.open_frame(&fr, load)?;
            }
            let Some(&Reverse((seq, slot))) = self.heap.peek() else {
                return Ok(());
            };
            if bound.is_some_and(|b| seq >= b) {
                return Ok(());
            }
            self.heap.pop();
            let q = &mut self.open[slot];
            let r = q.pop_front().expect("heap entry has a record");
            if let Some(next) = q.front() {
                self.heap.push(Reverse((next.seq, slot)));
            }
            f(r);
        }
    }

    fn open_frame(&mut self, fr: &FrameRef, load: &mut impl LoadFrame) -> Result<(), StoreError> {
        let data = load.load(fr)?;
        let records: VecDeque<StoredResult> = decode_frame(&data)?
            .into_iter()
            .filter(|r| r.started_at_ms >= self.from_ms && r.started_at_ms < self.to_ms)
            .map(|r| StoredResult {
                agent: fr.agent.to_string(),
                seq: r.seq,
                check: fr.check.to_string(),
                location: fr.location.to_string(),
                started_at_ms: r.started_at_ms,
                success: r.success,
                class: r.class,
                raw: String::from_utf8(r.raw)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                batch_no: 0,
            })
            .collect();
        let Some(first) = records.front().map(|r| r.seq) else {
            return Ok(());
        };
        let slot = match self.open.iter().position(VecDeque::is_empty) {
            Some(s) => {
                self.open[s] = records;
                s
            }
            None => {
                self.open.push(records);
                self.open.len() - 1
            }
        };
        self.heap.push(Reverse((first, slot)));
        Ok(())
    }
}

/// What one compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Results moved into chunks.
    pub results: u64,
    /// Frames written.
    pub frames: u64,
    /// Transactions committed.
    pub transactions: u64,
    /// Chunk rows of finished days re-encoded as one frame.
    pub sealed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(agent: &str, seq: u64, check: &str, t: i64) -> Row {
        Row {
            id: seq as i64,
            agent: agent.into(),
            seq,
            check: check.into(),
            location: "ams".into(),
            started_at_ms: t,
            success: !seq.is_multiple_of(3),
            class: seq.is_multiple_of(3).then(|| "timeout".to_string()),
            raw: format!("{{\"seq\":{seq},\n \"caf\u{e9}\":1}}").into_bytes(),
        }
    }

    #[test]
    fn frames_round_trip_exactly() {
        let rows = [
            row("a", 1, "w", 5),
            row("a", 3, "w", -7),
            row("a", 9, "w", 1),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let (data, meta) = encode_frame(&refs).unwrap();
        assert_eq!(meta, FrameMeta(data.len() as u64, 3, 1, 9));
        let back = decode_frame(&data).unwrap();
        // Two frames resealed as one: the same records, merged by seq.
        let (d2, m2) = encode_frame(&[&rows[1]]).unwrap();
        let both = [data.clone(), d2].concat();
        let (one, meta1) = reseal(&both, &[meta, m2]).unwrap();
        let seqs: Vec<u64> = decode_frame(&one).unwrap().iter().map(|r| r.seq).collect();
        assert_eq!((seqs, meta1.n()), (vec![1, 3, 3, 9], 4));
        for (r, b) in rows.iter().zip(&back) {
            assert_eq!(
                (r.seq, r.started_at_ms, r.success, &r.class, &r.raw),
                (b.seq, b.started_at_ms, b.success, &b.class, &b.raw)
            );
        }
        assert!(decode_frame(&data[..data.len() - 1]).is_err());
    }

    #[test]
    fn runs_and_ranges() {
        let rows = [
            row("a", 5, "w", 0),
            row("a", 1, "w", 0),
            row("a", 2, "x", 0),
            row("b", 7, "w", 0),
            row("a", 4, "w", 0),
        ];
        let runs = seq_runs(&rows);
        assert_eq!(runs["a"], vec![(1, 2), (4, 5)]);
        assert_eq!(runs["b"], vec![(7, 7)]);
        let r = [(1, 2), (4, 5), (9, 9)];
        let hits: Vec<u64> = (0..11).filter(|&s| in_ranges(&r, s)).collect();
        assert_eq!(hits, vec![1, 2, 4, 5, 9]);
    }

    /// Overlapping frames of two agents and raw rows in between come out in (agent, seq) order.
    #[test]
    fn merge_orders_frames_and_rows() {
        let frames_rows: Vec<Vec<Row>> = vec![
            vec![
                row("a", 1, "w", 10),
                row("a", 4, "w", 20),
                row("a", 8, "w", 30),
            ],
            vec![
                row("a", 2, "x", 10),
                row("a", 3, "x", 99),
                row("a", 9, "x", 30),
            ],
            vec![row("a", 5, "w", 40)],
            vec![row("c", 1, "w", 10)],
        ];
        let mut blobs = Vec::new();
        let mut refs = Vec::new();
        for (i, rs) in frames_rows.iter().enumerate() {
            let r: Vec<&Row> = rs.iter().collect();
            let (data, meta) = encode_frame(&r).unwrap();
            refs.push(FrameRef {
                agent: Arc::from(rs[0].agent.as_str()),
                check: Arc::from(rs[0].check.as_str()),
                location: Arc::from("ams"),
                chunk_id: i as i64,
                offset: 0,
                len: meta.len(),
                seq_min: meta.seq_min(),
            });
            blobs.push(data);
        }
        let raw = |agent: &str, seq: u64| StoredResult {
            agent: agent.into(),
            seq,
            check: "w".into(),
            location: "ams".into(),
            started_at_ms: 50,
            success: true,
            class: None,
            raw: String::new(),
            batch_no: 7,
        };
        let mut loads = 0;
        let mut out = Vec::new();
        let mut f = |r: StoredResult| out.push((r.agent, r.seq));
        // [0, 90): seq 3 of "a" (started 99) is outside the period.
        let mut load = |fr: &FrameRef| {
            loads += 1;
            Ok(blobs[fr.chunk_id as usize].clone())
        };
        let mut m = Merge::new(refs, 0, 90);
        m.push_row(raw("a", 6), &mut load, &mut f).unwrap();
        m.push_row(raw("b", 1), &mut load, &mut f).unwrap();
        m.finish(&mut load, &mut f).unwrap();
        let want: Vec<(String, u64)> = [
            ("a", 1),
            ("a", 2),
            ("a", 4),
            ("a", 5),
            ("a", 6),
            ("a", 8),
            ("a", 9),
            ("b", 1),
            ("c", 1),
        ]
        .iter()
        .map(|(a, s)| (a.to_string(), *s))
        .collect();
        assert_eq!(out, want);
        assert_eq!(loads, 4);
    }
}
