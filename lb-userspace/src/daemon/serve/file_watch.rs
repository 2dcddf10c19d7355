//! `autoreload`: when the configuration file changed. An editor or a
//! deployment tool writes a file in several steps; reloading at the first
//! change can load half a file (refused, at best, and logged as a failed
//! reload). A change is acted on once the file has stayed the same for one
//! whole tick, i.e. one to two seconds after its last write.

use std::{path::Path, time::SystemTime};

/// What tells the file changed: its modification time, size and inode (a
/// rename-over keeps the time coarse but changes the inode).
pub(super) type FileStamp = (SystemTime, u64, u64);

pub(super) fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

#[derive(Debug)]
pub(super) struct FileWatch {
    /// The file as last loaded.
    loaded: Option<FileStamp>,
    /// A change seen at the previous tick, not acted on yet.
    pending: Option<FileStamp>,
}

impl FileWatch {
    pub(super) fn new(loaded: Option<FileStamp>) -> Self {
        Self {
            loaded,
            pending: None,
        }
    }

    /// A reload (whatever asked for it) read the file as it is now.
    pub(super) fn loaded(&mut self, now: Option<FileStamp>) {
        self.loaded = now;
        self.pending = None;
    }

    /// One tick: `true` when the file changed and has stayed the same
    /// since the previous tick.
    pub(super) fn settled_change(&mut self, now: Option<FileStamp>) -> bool {
        if now.is_none() || now == self.loaded {
            self.pending = None;
            return false;
        }
        if now == self.pending {
            self.pending = None;
            return true;
        }
        self.pending = now;
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[expect(
        clippy::unnecessary_wraps,
        reason = "reads like the stamps the watch gets"
    )]
    fn at(secs: u64, len: u64) -> Option<FileStamp> {
        Some((SystemTime::UNIX_EPOCH + Duration::from_secs(secs), len, 7))
    }

    #[test]
    fn a_file_still_being_written_is_not_reloaded_until_it_settles() {
        let mut watch = FileWatch::new(at(100, 500));
        assert!(!watch.settled_change(at(100, 500)), "unchanged");
        // Written in steps: truncated, then half, then whole.
        assert!(!watch.settled_change(at(101, 0)));
        assert!(!watch.settled_change(at(101, 250)));
        assert!(!watch.settled_change(at(102, 600)));
        // The same for a whole tick: now.
        assert!(watch.settled_change(at(102, 600)));
        watch.loaded(at(102, 600));
        assert!(!watch.settled_change(at(102, 600)));
    }

    #[test]
    fn a_missing_file_or_a_change_back_is_no_change() {
        let mut watch = FileWatch::new(at(100, 500));
        assert!(!watch.settled_change(None));
        assert!(!watch.settled_change(None));
        assert!(!watch.settled_change(at(101, 10)));
        assert!(!watch.settled_change(at(100, 500)), "back as loaded");
        assert!(!watch.settled_change(at(100, 500)));
    }
}
