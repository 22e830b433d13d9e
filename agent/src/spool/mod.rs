//! The agent's disk spool: every result is appended here before it is shipped,
//! replayed in seq order after an outage or a restart, and trimmed once the
//! collector has acked it. The spool also assigns each result its `seq`.
//!
//! # On disk (`spool_dir`)
//! - `seg-<first seq, 20 digits>.log`: segments, appended to in seq order and
//!   rolled at `segment_bytes`. Each record is
//!   `len: u32 LE | crc32: u32 LE | seq: u64 LE | payload (len bytes)`, the CRC
//!   covering `len`, `seq` and the payload; the payload is the JSON of one
//!   `ProbeResult` whose `seq` is already set. Seqs within a segment are
//!   consecutive (a jump starts a new segment).
//! - `state`: `{"acked": N, "last_seq": M}`, replaced atomically (write,
//!   fsync, rename, fsync dir) on every ack. It keeps the seq going after every
//!   segment was trimmed, and replay starting after the acked mark.
//!
//! # Guarantees
//! - `seq`: 1 for the first result ever, then +1, across restarts. On open,
//!   the next seq follows the highest of the last good record, the persisted
//!   `last_seq` and the acked mark.
//! - Durability: appends are fsynced every `fsync_every` (zero: each append),
//!   on [`Spool::sync`], on rolling a segment, and **before [`Spool::read_from`]
//!   hands out a record not yet fsynced**: a result that left the agent is
//!   always on disk, so a power loss can never make the spool reuse the seq of
//!   a result the collector already holds.
//! - A torn or corrupt record (power loss mid-write, flipped bits) is found on
//!   open and logged with `tracing::warn!`; the spool resynchronises on the
//!   next valid frame (checksum, a JSON payload, a plausible seq) and keeps
//!   every intact record around it: the segment is cut at the damage and each
//!   later stretch of good records gets a segment file of its own, so seqs stay
//!   consecutive per segment. Every result lost this way is counted
//!   ([`Spool::dropped_corrupt`], `slaprobe_agent_spool_dropped_total{reason="corrupt"}`).
//!   A length field is bounded (1 MiB; a result line is under 16 KiB) before
//!   anything is allocated for it, also when reading a segment that changed
//!   under an open spool.
//! - Acks persist `state` before any segment is unlinked, and `state` never
//!   goes below what it held: a crash between the two can never make the
//!   spool reuse a seq. When the last segment goes, an empty
//!   `seg-<next seq>.log` stays as the seq floor, so an unreadable `state`
//!   still cannot bring seqs back (a complete `state.tmp` is used first).
//! - Bounded: when an append would take the spool over `max_bytes`, the oldest
//!   segments are deleted, their unacked results counted in
//!   [`Spool::dropped_total`] (`reason="full"`) and logged; an append never fails or waits
//!   because the spool is full. (A single record larger than `max_bytes` is
//!   still written.)
//! - Memory: a few words per segment, never the records; [`Spool::read_from`]
//!   keeps a cursor so that a shipper reading forward (from its acked mark) does
//!   not rescan segments.
//!
//! One process per directory: nothing stops two agents sharing a `spool_dir`
//! from corrupting it.

mod recover;
mod segments;
mod state;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use slaprobe_wire::ProbeResult;

use recover::Recovered;
use state::read_state;

/// Bytes before a record's payload: len (4), crc (4), seq (8).
const HEADER: u64 = 16;
/// A longer length field can only be corruption (a result line is under
/// 16 KiB); checked before anything is allocated for a record.
const MAX_RECORD: u32 = 1024 * 1024;
/// How far past the last good seq a resynchronised frame may claim to be.
const MAX_SEQ_JUMP: u64 = 1 << 24;
const STATE: &str = "state";
const STATE_TMP: &str = "state.tmp";

/// How the spool bounds and syncs itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Upper bound of the segments' total size; the oldest go first.
    pub max_bytes: u64,
    /// Longest time an append may wait for its fsync (zero: fsync each append).
    pub fsync_every: Duration,
    /// Size at which the current segment is closed and a new one started.
    pub segment_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        Self {
            max_bytes: 512 * 1024 * 1024,
            fsync_every: Duration::from_secs(1),
            segment_bytes: 8 * 1024 * 1024,
        }
    }
}

/// What can go wrong with the spool itself (disk errors, not a full spool).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file operation failed.
    #[error("spool: cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A result could not be encoded as JSON.
    #[error("spool: cannot encode result: {0}")]
    Encode(#[from] serde_json::Error),
    /// Another process (an agent with the same `spool_dir`) holds the spool.
    #[error("spool: {} is in use by another process (two agents must not share a spool_dir)", path.display())]
    Locked { path: PathBuf },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One segment file, known by its bounds only (records stay on disk).
#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    /// Seq of its first record (also in the file name).
    first: u64,
    /// Records it holds; their seqs are `first .. first + count`.
    count: u64,
    /// File size.
    bytes: u64,
}

impl Segment {
    /// Seq of its last record (`first - 1` when empty).
    fn last(&self) -> u64 {
        self.first + self.count - 1
    }
}

/// Where the previous `read_from` stopped, so the next one reading on from
/// there need not scan for its start.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The last seq handed out.
    after: u64,
    /// The segment (by first seq) and byte offset of the record after it.
    segment: u64,
    offset: u64,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct State {
    acked: u64,
    last_seq: u64,
}

/// The spool of one agent. Synchronous (std::fs) and cheap per call; share it
/// behind a mutex.
#[derive(Debug)]
pub struct Spool {
    /// Held (advisory lock) while the spool is open: two agents writing one
    /// spool would interleave seqs and corrupt it.
    _lock: File,
    dir: PathBuf,
    opts: SpoolOptions,
    /// Every segment on disk, by first seq.
    segments: BTreeMap<u64, Segment>,
    /// The segment being appended to (the last one), once opened for writing.
    active: Option<File>,
    last_seq: u64,
    acked: u64,
    /// The marks as last made durable in `state`: segments are deleted only
    /// up to `persisted.acked`, and `state` never goes below it.
    persisted: State,
    /// Every seq up to here is fsynced.
    synced: u64,
    /// Bytes written since the last fsync of the active segment.
    dirty: bool,
    /// A segment was created since the directory was last fsynced.
    dir_dirty: bool,
    last_sync: Instant,
    bytes: u64,
    dropped: u64,
    dropped_corrupt: u64,
    /// Segments whose damage found by `read_from` was already counted.
    corrupt_seen: std::collections::HashSet<u64>,
    cursor: Option<Cursor>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, checking every record: a torn
    /// or corrupt tail is logged and cut off, the rest replays.
    pub fn open(dir: &Path, opts: SpoolOptions) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let lock = lock_dir(dir)?;
        let state = read_state(dir);
        let _ = fs::remove_file(dir.join(STATE_TMP));
        let state_lost = state.is_none();
        let state = state.unwrap_or_default();

        let Recovered {
            segments,
            named_floor,
            dropped_corrupt,
        } = recover::recover_all(segment_files(dir)?)?;
        if dropped_corrupt > 0 {
            tracing::warn!(
                dropped_corrupt,
                "spool: results lost to corrupt records (counted in slaprobe_agent_spool_dropped_total{{reason=\"corrupt\"}})"
            );
        }

        let max_on_disk = segments.values().next_back().map_or(0, Segment::last);
        let acked = state.acked;
        let last_seq = max_on_disk.max(named_floor).max(state.last_seq).max(acked);
        if state_lost {
            tracing::warn!(
                dir = %dir.display(),
                last_seq,
                "spool state lost: seq continues after the highest seq the segments show; every record on disk replays (the collector stores a seq once)"
            );
        }
        let bytes = segments.values().map(|s| s.bytes).sum();
        let mut spool = Spool {
            _lock: lock,
            dir: dir.to_path_buf(),
            opts,
            segments,
            active: None,
            last_seq,
            acked,
            persisted: state,
            synced: last_seq,
            dirty: false,
            dir_dirty: false,
            last_sync: Instant::now(),
            bytes,
            dropped: 0,
            dropped_corrupt,
            corrupt_seen: std::collections::HashSet::new(),
            cursor: None,
        };
        // Segments wholly acked (a delete that failed or was lost in a crash).
        spool.trim()?;
        Ok(spool)
    }

    /// Appends `result`, setting its `seq` (and returning it). Makes room by
    /// dropping the oldest segments when the spool is full; fails only on a
    /// disk error, in which case nothing was added.
    pub fn append(&mut self, result: &mut ProbeResult) -> Result<u64, SpoolError> {
        let seq = self.last_seq + 1;
        result.seq = seq;
        let payload = serde_json::to_vec(result)?;
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD);
        let Some(len) = len else {
            return Err(SpoolError::Io {
                op: "append a record this large to",
                path: self.dir.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} bytes", payload.len()),
                ),
            });
        };
        let mut rec = Vec::with_capacity(HEADER as usize + payload.len());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&crc(len, seq, &payload).to_le_bytes());
        rec.extend_from_slice(&seq.to_le_bytes());
        rec.extend_from_slice(&payload);
        let need = rec.len() as u64;

        self.prepare_active(seq, need)?;
        self.make_room(seq, need)?;
        let (Some(seg), Some(file)) =
            (self.segments.values_mut().next_back(), self.active.as_mut())
        else {
            return unreachable_active(&self.dir);
        };
        if let Err(e) = file.write_all(&rec) {
            // Cut a partial record off so later appends stay readable.
            let _ = file.set_len(seg.bytes);
            return Err(io_err("append to", &seg.path)(e));
        }
        seg.count += 1;
        seg.bytes += need;
        self.bytes += need;
        self.last_seq = seq;
        self.dirty = true;
        if self.opts.fsync_every.is_zero() || self.last_sync.elapsed() >= self.opts.fsync_every {
            self.sync()?;
        }
        Ok(seq)
    }

    /// Up to `max` unacked records after `after_seq`, in seq order, as the raw
    /// JSON of each result. Whatever it returns is fsynced first.
    pub fn read_from(
        &mut self,
        after_seq: u64,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, SpoolError> {
        let after = after_seq.max(self.acked);
        let mut out = Vec::new();
        if max == 0 || after >= self.last_seq {
            return Ok(out);
        }
        // Where to start: the cursor if it is exactly there, else the first
        // segment holding a seq after `after`, scanned for it.
        let start = match self.cursor {
            Some(c) if c.after == after && self.segments.contains_key(&c.segment) => {
                Some((c.segment, c.offset, after))
            }
            _ => None,
        };
        let mut next = match start {
            Some(s) => s,
            None => match self
                .segments
                .values()
                .find(|s| s.count > 0 && s.last() > after)
            {
                Some(s) => (s.first, 0, after),
                None => return Ok(out),
            },
        };

        let mut cursor = None;
        'segments: loop {
            let (first, mut offset, skip_upto) = next;
            let Some(seg) = self.segments.get(&first) else {
                break;
            };
            let path = seg.path.clone();
            let seg_bytes = seg.bytes;
            let file = File::open(&path).map_err(io_err("open", &path))?;
            let mut r = BufReader::with_capacity(64 * 1024, file);
            r.seek(SeekFrom::Start(offset))
                .map_err(io_err("seek in", &path))?;
            while offset + HEADER <= seg_bytes {
                let mut h = [0u8; HEADER as usize];
                r.read_exact(&mut h).map_err(io_err("read", &path))?;
                let (len, sum, seq) = parse_header(&h);
                if len > MAX_RECORD || offset + HEADER + u64::from(len) > seg_bytes {
                    // Checked on open, so the disk changed under us; never
                    // allocate what a damaged length field claims.
                    let before = out.last().map_or(skip_upto, |(s, _)| *s);
                    self.count_runtime_loss(first, before);
                    tracing::warn!(path = %path.display(), offset, "spool record has an impossible length; skipping the rest of the segment");
                    break;
                }
                if seq <= skip_upto {
                    r.seek_relative(i64::from(len))
                        .map_err(io_err("seek in", &path))?;
                    offset += HEADER + u64::from(len);
                    continue;
                }
                let mut payload = vec![0u8; len as usize];
                r.read_exact(&mut payload).map_err(io_err("read", &path))?;
                if crc(len, seq, &payload) != sum {
                    // Checked on open, so the disk changed under us: skip the
                    // rest of this segment rather than hand out garbage.
                    let before = out.last().map_or(skip_upto, |(s, _)| *s);
                    self.count_runtime_loss(first, before);
                    tracing::warn!(path = %path.display(), offset, seq, "spool record fails its checksum; skipping the rest of the segment");
                    break;
                }
                offset += HEADER + u64::from(len);
                out.push((seq, payload));
                cursor = Some(Cursor {
                    after: seq,
                    segment: first,
                    offset,
                });
                if out.len() >= max {
                    break 'segments;
                }
            }
            match self.segments.range(first + 1..).next() {
                Some((&f, _)) => next = (f, 0, after),
                None => break,
            }
        }
        if cursor.is_some() {
            self.cursor = cursor;
        }
        if out.last().is_some_and(|(seq, _)| *seq > self.synced) {
            self.sync()?;
        }
        Ok(out)
    }

    /// Records that the collector holds every seq up to `upto`: deletes the
    /// segments wholly at or below it and persists the mark.
    ///
    /// Order matters: the mark is persisted **before** any segment is
    /// unlinked. Deleting first and crashing before the state was renamed
    /// into place would restart the spool with an old `last_seq` and reuse
    /// seqs the collector already holds (it would ack them as duplicates: an
    /// invisible loss). If persisting fails, nothing is deleted.
    pub fn ack(&mut self, upto: u64) -> Result<(), SpoolError> {
        let upto = upto.min(self.last_seq);
        if upto <= self.acked {
            return Ok(());
        }
        self.acked = upto;
        self.write_state()?;
        self.trim()
    }

    /// After the collector answered 409 (it holds other bytes under one of
    /// our seqs, up to `collector_max_seq`): moves `last_seq` past
    /// `collector_max_seq` and re-appends every unacked record at or below it
    /// under a new seq, then acks up to it, so the stream goes on and nothing
    /// the collector holds is overwritten. A record that cannot be parsed
    /// back is dropped and counted (reason `corrupt`). Returns how many
    /// records were re-appended.
    ///
    /// Crash-safe in the sense that matters: the copies are appended and
    /// fsynced before the originals are acked, so a crash in between can
    /// duplicate a result under two seqs but never lose one.
    pub fn move_past(&mut self, collector_max_seq: u64) -> Result<u64, SpoolError> {
        let upto = collector_max_seq.min(self.last_seq);
        if collector_max_seq > self.last_seq {
            self.last_seq = collector_max_seq;
            self.synced = self.synced.max(self.last_seq);
        }
        let mut moved = 0u64;
        let mut after = self.acked;
        while after < upto {
            let records = self.read_from(after, 500)?;
            let mut any = false;
            for (seq, raw) in records {
                if seq > upto {
                    break;
                }
                any = true;
                after = seq;
                match serde_json::from_slice::<ProbeResult>(&raw) {
                    Ok(mut r) => {
                        self.append(&mut r)?;
                        moved += 1;
                    }
                    Err(e) => {
                        self.dropped_corrupt += 1;
                        tracing::error!(
                            seq,
                            "spooled result cannot be re-read to move it past a seq conflict; dropped: {e}"
                        );
                    }
                }
            }
            if !any {
                break;
            }
        }
        self.sync()?;
        self.write_state()?;
        // Every seq up to the collector's mark is taken there.
        self.ack(collector_max_seq)?;
        Ok(moved)
    }

    /// Everything up to this seq is held by the collector.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The last seq assigned (0 before the first result ever).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Results on disk not yet acked.
    pub fn unacked(&self) -> u64 {
        self.segments
            .values()
            .filter(|s| s.count > 0)
            .map(|s| s.last().saturating_sub(self.acked.max(s.first - 1)))
            .sum()
    }

    /// Size of the segments on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Unacked results deleted to stay under `max_bytes`, since open.
    pub fn dropped_total(&self) -> u64 {
        self.dropped
    }

    /// Results lost to corruption (records that fail their checksum, skipped
    /// up to the next valid frame), since open.
    pub fn dropped_corrupt(&self) -> u64 {
        self.dropped_corrupt
    }

    /// Fsyncs what was appended (and a new segment's directory entry).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if self.dirty {
            if let Some(f) = &self.active {
                f.sync_data().map_err(io_err("fsync", &self.dir))?;
            }
            self.dirty = false;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.synced = self.last_seq;
        self.last_sync = Instant::now();
        Ok(())
    }
}

/// Takes the advisory lock on `dir/lock`, held for the spool's lifetime.
fn lock_dir(dir: &Path) -> Result<File, SpoolError> {
    let lock_path = dir.join("lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("open", &lock_path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(SpoolError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(io_err("lock", &lock_path)(e)),
    }
}

/// The segment files in `dir` (`seg-<first seq>.log`), by first seq.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = name
            .strip_prefix("seg-")
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            names.push((first, entry.path()));
        }
    }
    names.sort();
    Ok(names)
}

fn parse_header(h: &[u8; HEADER as usize]) -> (u32, u32, u64) {
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let seq = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    (word(0), word(4), seq)
}

fn crc(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// `prepare_active` always leaves an open last segment; reaching this is a bug,
/// reported as an error rather than a panic.
fn unreachable_active<T>(dir: &Path) -> Result<T, SpoolError> {
    Err(SpoolError::Io {
        op: "find the active segment in",
        path: dir.to_path_buf(),
        source: io::Error::other("no active segment after prepare (bug)"),
    })
}
