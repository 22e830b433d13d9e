//! Segment bookkeeping of an open spool: which segment takes the next
//! append, rolling, making room under `max_bytes` and trimming what is acked.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::{Segment, Spool, SpoolError, io_err, sync_dir, unreachable_active};

impl Spool {
    /// Makes sure an open, fitting segment takes the record for `seq`:
    /// rolls when the current one is full or `seq` does not follow it.
    pub(super) fn prepare_active(&mut self, seq: u64, need: u64) -> Result<(), SpoolError> {
        let fits = match self.segments.values().next_back() {
            Some(s) => {
                s.last() + 1 == seq && (s.count == 0 || s.bytes + need <= self.opts.segment_bytes)
            }
            None => false,
        };
        if !fits {
            return self.roll(seq);
        }
        if self.active.is_none() {
            // The last segment found on open, reused for appending.
            let Some(seg) = self.segments.values().next_back() else {
                return unreachable_active(&self.dir);
            };
            let file = OpenOptions::new()
                .append(true)
                .open(&seg.path)
                .map_err(io_err("open", &seg.path))?;
            self.active = Some(file);
        }
        Ok(())
    }

    /// Closes the current segment (fsynced) and starts `seg-<seq>.log`.
    pub(super) fn roll(&mut self, seq: u64) -> Result<(), SpoolError> {
        if self.dirty {
            self.sync()?;
        }
        self.active = None;
        // An empty last segment (every record acked, or just created) is
        // replaced, after the new one exists: one of them always names the floor.
        let empty_last = self
            .segments
            .values()
            .next_back()
            .filter(|s| s.count == 0 && s.first != seq)
            .map(|s| (s.first, s.path.clone()));
        let path = self.dir.join(format!("seg-{seq:020}.log"));
        // Append mode: after a failed write is cut off (`set_len`), the next
        // write still lands at the end, not after a hole.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        file.set_len(0).map_err(io_err("truncate", &path))?;
        if let Some((first, old)) = empty_last {
            sync_dir(&self.dir)?;
            self.remove_segment(first, &old);
        }
        self.segments.insert(
            seq,
            Segment {
                path,
                first: seq,
                count: 0,
                bytes: 0,
            },
        );
        self.active = Some(file);
        self.dir_dirty = true;
        Ok(())
    }

    /// Drops the oldest segments until `need` more bytes fit under `max_bytes`.
    pub(super) fn make_room(&mut self, seq: u64, need: u64) -> Result<(), SpoolError> {
        let mut dropped = 0u64;
        let mut range: Option<(u64, u64)> = None;
        while self.bytes + need > self.opts.max_bytes {
            let Some((&first, seg)) = self.segments.iter().next() else {
                break;
            };
            if self.segments.len() == 1 {
                if seg.count == 0 {
                    break; // only the empty active segment is left
                }
                // The active segment is the oldest: start a new one so it can go.
                self.roll(seq)?;
                continue;
            }
            let unacked = if seg.count == 0 {
                0
            } else {
                seg.last().saturating_sub(self.acked.max(first - 1))
            };
            if unacked > 0 {
                let lo = self.acked.max(first - 1) + 1;
                range = Some((range.map_or(lo, |r| r.0), seg.last()));
            }
            dropped += unacked;
            let path = seg.path.clone();
            self.remove_segment(first, &path);
        }
        if dropped > 0 {
            self.dropped += dropped;
            let (lo, hi) = range.unwrap_or_default();
            tracing::warn!(
                dropped,
                dropped_total = self.dropped,
                max_bytes = self.opts.max_bytes,
                "spool full: dropped the oldest unacked results, seq {lo}..={hi}; they are lost"
            );
        }
        Ok(())
    }

    /// Deletes the segments wholly acked **as persisted in `state`** (an
    /// empty last one stays, reused). When the last segment goes, an empty
    /// `seg-<last_seq + 1>.log` is created (and its directory entry fsynced)
    /// first: its name keeps the seq floor on disk even if `state` is later
    /// lost or unreadable.
    pub(super) fn trim(&mut self) -> Result<(), SpoolError> {
        let mark = self.persisted.acked.min(self.acked);
        let done: Vec<(u64, PathBuf)> = self
            .segments
            .values()
            .filter(|s| s.count > 0 && s.last() <= mark)
            .map(|s| (s.first, s.path.clone()))
            .collect();
        let last_goes = self
            .segments
            .keys()
            .next_back()
            .is_some_and(|l| done.iter().any(|(f, _)| f == l));
        if last_goes {
            self.roll(self.last_seq + 1)?;
            self.sync()?;
        }
        for (first, path) in done {
            let is_last = self.segments.keys().next_back() == Some(&first);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
            if is_last {
                self.active = None;
                self.dirty = false;
            }
            self.forget_segment(first);
        }
        Ok(())
    }

    /// Counts, once per segment, the records of segment `first` after seq
    /// `good_upto` as lost to corruption found while reading.
    pub(super) fn count_runtime_loss(&mut self, first: u64, good_upto: u64) {
        if !self.corrupt_seen.insert(first) {
            return;
        }
        if let Some(seg) = self.segments.get(&first) {
            let lost = seg.last().saturating_sub(good_upto.max(first - 1));
            self.dropped_corrupt += lost;
        }
    }

    /// Deletes a segment file, never failing (the spool must not block on it).
    pub(super) fn remove_segment(&mut self, first: u64, path: &Path) {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "cannot delete spool segment: {e}");
            }
            _ => {}
        }
        if self.segments.keys().next_back() == Some(&first) {
            self.active = None;
            self.dirty = false;
        }
        self.forget_segment(first);
    }

    pub(super) fn forget_segment(&mut self, first: u64) {
        if let Some(seg) = self.segments.remove(&first) {
            self.bytes -= seg.bytes;
        }
        if self.cursor.is_some_and(|c| c.segment == first) {
            self.cursor = None;
        }
    }
}
