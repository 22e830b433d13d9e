//! Segment recovery on open: every record of every segment is checked, a torn
//! or corrupt record is cut out, and the intact stretches around it are kept
//! (each in a segment file of its own, so seqs stay consecutive per segment).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{
    HEADER, MAX_RECORD, MAX_SEQ_JUMP, Segment, SpoolError, crc, io_err, parse_header, sync_dir,
};

/// What the segments on disk hold once recovered.
pub(super) struct Recovered {
    /// Every segment kept, by first seq.
    pub(super) segments: BTreeMap<u64, Segment>,
    /// The highest seq a segment's name proves was assigned (or is next):
    /// an empty last segment is the floor trim leaves behind.
    pub(super) named_floor: u64,
    /// Results lost to corrupt records.
    pub(super) dropped_corrupt: u64,
}

/// Recovers the segment files `names` (by first seq, sorted): empty ones are
/// removed except the last (the seq floor), a segment overlapping the one
/// before it is moved aside for a human.
pub(super) fn recover_all(names: Vec<(u64, PathBuf)>) -> Result<Recovered, SpoolError> {
    let mut segments = BTreeMap::new();
    let mut prev_last = 0u64;
    let mut named_floor = 0u64;
    let last_name = names.last().map(|(f, _)| *f);
    let mut dropped_corrupt = 0u64;
    for (named_first, path) in names {
        let (recovered, lost) = recover_segment(&path, named_first)?;
        dropped_corrupt += lost;
        if recovered.is_empty() {
            named_floor = named_floor.max(named_first.saturating_sub(1));
            if Some(named_first) == last_name && named_first > prev_last {
                // Kept: it is reused for the next append and keeps the floor.
                segments.insert(
                    named_first,
                    Segment {
                        path,
                        first: named_first,
                        count: 0,
                        bytes: 0,
                    },
                );
                prev_last = named_first - 1;
            } else if path.exists() {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
            continue;
        }
        for seg in recovered {
            if seg.first <= prev_last {
                // Overlaps the segment before it: cannot be ours in order.
                // Kept aside for a human rather than deleted.
                let aside = seg.path.with_extension("corrupt");
                tracing::warn!(path = %seg.path.display(), "spool segment overlaps the previous one (seq {} <= {prev_last}); moved aside", seg.first);
                fs::rename(&seg.path, &aside).map_err(io_err("rename", &seg.path))?;
                continue;
            }
            prev_last = seg.last();
            segments.insert(seg.first, seg);
        }
    }
    Ok(Recovered {
        segments,
        named_floor,
        dropped_corrupt,
    })
}

/// One stretch of consecutive good records in a segment file.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    first: u64,
    count: u64,
}

/// What a scan of one segment file found.
struct Scan {
    /// The stretches of good records, in file order.
    runs: Vec<Run>,
    /// The first damage met, if any.
    problem: Option<&'static str>,
    /// Results lost: seqs skipped between good stretches, plus a torn last
    /// record.
    lost: u64,
}

/// The frame at `pos` if it is whole and its checksum matches.
fn frame_at(buf: &[u8], pos: usize) -> Option<(u32, u64)> {
    let h: &[u8; HEADER as usize] = buf.get(pos..pos + HEADER as usize)?.try_into().ok()?;
    let (len, sum, seq) = parse_header(h);
    // The length is bounded before it is trusted for anything.
    if len > MAX_RECORD || seq == 0 {
        return None;
    }
    let body = pos + HEADER as usize;
    let payload = buf.get(body..body + len as usize)?;
    (crc(len, seq, payload) == sum).then_some((len, seq))
}

/// Checks every record of a segment. After a torn or corrupt record it
/// resynchronises on the next valid frame (checksum and a plausible seq)
/// instead of dropping the rest: the records before the damage stay in the
/// file (cut there), each later stretch of good records goes to its own
/// segment file (`seg-<its first seq>.log`, written, fsynced, renamed), so
/// seqs stay consecutive within every segment. Returns the segments and how
/// many results were lost (seqs skipped between good stretches, plus a torn
/// last record).
fn recover_segment(path: &Path, named_first: u64) -> Result<(Vec<Segment>, u64), SpoolError> {
    let buf = fs::read(path).map_err(io_err("read", path))?;
    let Scan {
        runs,
        problem,
        lost,
    } = scan(&buf, named_first);
    let Some(why) = problem else {
        return Ok((intact_segment(path, &runs, buf.len()), 0));
    };
    if runs.is_empty() {
        // Nothing intact: emptied (the caller keeps it as the seq floor or
        // removes it).
        tracing::warn!(path = %path.display(), "spool segment holds no intact record; emptied");
        truncate_synced(path, 0)?;
        return Ok((Vec::new(), lost));
    }
    let kept: u64 = runs.iter().map(|r| r.count).sum();
    tracing::warn!(
        path = %path.display(),
        good_records = kept,
        stretches = runs.len(),
        lost,
        "spool segment has a torn or corrupt record ({why}); keeping every intact record around it"
    );
    split_stretches(path, named_first, &buf, &runs, lost)
}

/// Walks the frames of `buf`, grouping consecutive seqs into runs and
/// skipping damage up to the next plausible frame.
fn scan(buf: &[u8], named_first: u64) -> Scan {
    let size = buf.len();
    let mut runs: Vec<Run> = Vec::new();
    let mut problem: Option<&'static str> = None;
    let mut lost = 0u64;
    let mut pos = 0usize;
    let mut cur: Option<Run> = None;
    while pos < size {
        let expected = cur.map(|r| r.first + r.count);
        match frame_at(buf, pos) {
            Some((len, seq)) if expected.is_none_or(|e| e == seq) => {
                let r = cur.get_or_insert(Run {
                    start: pos,
                    end: pos,
                    first: seq,
                    count: 0,
                });
                r.count += 1;
                pos += HEADER as usize + len as usize;
                r.end = pos;
                continue;
            }
            _ => {}
        }
        // Damage at `pos`: say what it is, then look for the next good frame.
        problem.get_or_insert(describe_damage(buf, pos));
        let last_good = cur.map_or(named_first.saturating_sub(1), |r| r.first + r.count - 1);
        if let Some(r) = cur.take() {
            runs.push(r);
        }
        match next_good_frame(buf, pos, last_good) {
            Some((p, seq)) => {
                lost += seq - last_good - 1;
                pos = p;
            }
            None => {
                // Nothing good after it: a torn last record (power loss
                // mid-write) or a damaged tail.
                lost += 1;
                pos = size;
            }
        }
    }
    if let Some(r) = cur.take() {
        runs.push(r);
    }
    Scan {
        runs,
        problem,
        lost,
    }
}

/// What is wrong with the frame at `pos` (for the log).
fn describe_damage(buf: &[u8], pos: usize) -> &'static str {
    let size = buf.len();
    if pos + HEADER as usize > size {
        return "partial record header";
    }
    let h: &[u8; HEADER as usize] = buf[pos..pos + HEADER as usize]
        .try_into()
        .unwrap_or(&[0; 16]);
    let (len, _, _) = parse_header(h);
    if len > MAX_RECORD || pos + (HEADER as usize) + len as usize > size {
        "partial record (length beyond the end of the file)"
    } else if frame_at(buf, pos).is_some() {
        "seq out of order"
    } else {
        "checksum mismatch"
    }
}

/// The first valid frame at or after `pos` with a plausible seq after
/// `last_good`. A valid frame right at `pos` (a seq jump) starts the next
/// stretch itself.
fn next_good_frame(buf: &[u8], pos: usize, last_good: u64) -> Option<(usize, u64)> {
    let mut p = pos;
    while p + HEADER as usize <= buf.len() {
        // Cheap filters first: a JSON payload and a plausible seq.
        if buf.get(p + HEADER as usize) == Some(&b'{')
            && let Some((_, seq)) = frame_at(buf, p)
            && seq > last_good
            && seq - last_good <= MAX_SEQ_JUMP
        {
            return Some((p, seq));
        }
        p += 1;
    }
    None
}

/// An undamaged segment file: one segment (none when the file is empty).
fn intact_segment(path: &Path, runs: &[Run], size: usize) -> Vec<Segment> {
    runs.first()
        .map(|r| Segment {
            path: path.to_path_buf(),
            first: r.first,
            count: r.count,
            bytes: size as u64,
        })
        .into_iter()
        .collect()
}

/// Cuts the file at `path` to `len` bytes and fsyncs it.
fn truncate_synced(path: &Path, len: u64) -> Result<(), SpoolError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    f.set_len(len).map_err(io_err("truncate", path))?;
    f.sync_all().map_err(io_err("fsync", path))
}

/// Gives each good stretch of a damaged segment a segment: the first one in
/// place (the file cut after it) when it starts the file under its name, the
/// others in files of their own. Removes the original when no stretch stayed
/// in it. Returns the segments and the results lost.
fn split_stretches(
    path: &Path,
    named_first: u64,
    buf: &[u8],
    runs: &[Run],
    mut lost: u64,
) -> Result<(Vec<Segment>, u64), SpoolError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut segs = Vec::new();
    let mut keep_original = false;
    for (i, r) in runs.iter().enumerate() {
        let target = if i == 0 && r.start == 0 && r.first == named_first {
            // In place: cut the file after this stretch.
            truncate_synced(path, r.end as u64)?;
            path.to_path_buf()
        } else {
            let target = dir.join(format!("seg-{:020}.log", r.first));
            if target != path && target.exists() {
                tracing::warn!(path = %target.display(), "spool: a recovered stretch of records would overwrite another segment; dropped");
                lost += r.count;
                continue;
            }
            write_stretch(dir, &target, r.first, &buf[r.start..r.end])?;
            target
        };
        if target == *path {
            keep_original = true;
        }
        segs.push(Segment {
            path: target,
            first: r.first,
            count: r.count,
            bytes: (r.end - r.start) as u64,
        });
    }
    sync_dir(dir)?;
    if !keep_original {
        fs::remove_file(path).map_err(io_err("remove", path))?;
        sync_dir(dir)?;
    }
    if segs
        .first()
        .is_some_and(|s| s.first != named_first && s.path == path)
    {
        tracing::warn!(path = %path.display(), "spool segment name does not match its first record");
    }
    Ok((segs, lost))
}

/// Writes `records` to `target` via a fsynced temporary file and a rename.
fn write_stretch(dir: &Path, target: &Path, first: u64, records: &[u8]) -> Result<(), SpoolError> {
    let tmp = dir.join(format!("seg-{first:020}.log.tmp"));
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(records).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, target).map_err(io_err("rename", &tmp))
}
