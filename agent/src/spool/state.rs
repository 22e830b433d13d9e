//! The `state` file: the acked mark and last seq, replaced atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::{STATE, STATE_TMP, Spool, SpoolError, State, io_err, sync_dir};

impl Spool {
    /// Replaces `state` atomically: write, fsync, rename, fsync the directory.
    /// The marks written never go below those persisted before.
    pub(super) fn write_state(&mut self) -> Result<(), SpoolError> {
        let tmp = self.dir.join(STATE_TMP);
        let path = self.dir.join(STATE);
        let next = State {
            acked: self.acked.max(self.persisted.acked),
            last_seq: self.last_seq.max(self.persisted.last_seq),
        };
        let body = serde_json::to_vec(&next)?;
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&body).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
        sync_dir(&self.dir)?;
        self.dir_dirty = false;
        self.persisted = next;
        Ok(())
    }
}

/// The persisted marks. A missing `state` (a new spool) is all zeros;
/// `None` when it exists but cannot be read, in which case a complete
/// `state.tmp` (fsynced before the rename that a crash interrupted) is used
/// if there is one, else the caller derives the marks from the segments.
pub(super) fn read_state(dir: &Path) -> Option<State> {
    let path = dir.join(STATE);
    let problem = match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(s) => return Some(s),
            Err(e) => e.to_string(),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !dir.join(STATE_TMP).exists() {
                return Some(State::default());
            }
            e.to_string()
        }
        Err(e) => e.to_string(),
    };
    let tmp = dir.join(STATE_TMP);
    if let Some(s) = fs::read(&tmp)
        .ok()
        .and_then(|b| serde_json::from_slice::<State>(&b).ok())
    {
        tracing::warn!(path = %path.display(), "spool state unreadable ({problem}); using the complete {STATE_TMP}");
        return Some(s);
    }
    tracing::warn!(path = %path.display(), "spool state unreadable ({problem}); deriving the seq from the segments and replaying every record on disk");
    None
}
