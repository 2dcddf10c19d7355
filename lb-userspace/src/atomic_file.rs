//! Replacing a small file (a state file, a record) so that a reader sees
//! the old contents or the new, never half, and so that nobody else can
//! steer the write: the temporary file is new (`O_EXCL`), not a symlink
//! (`O_NOFOLLOW`), and named for this process, so two daemons (one per
//! network namespace, say) writing beside each other never share one.

use std::{
    fs,
    io::{self, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

/// Replaces `path` with `contents` (mode 0644) in one rename.
pub fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = temporary_beside(path);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut file| file.write_all(contents))
        .and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// `.NAME.PID.N.tmp` in the same directory (a rename is atomic only
/// within one file system).
fn temporary_beside(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-atomic-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = dir("whole");
        let path = dir.join("VI_1.state");
        replace(&path, b"STATE=BACKUP\n").unwrap();
        replace(&path, b"STATE=MASTER\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "STATE=MASTER\n");
        let entries: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1, "only the file itself");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_planted_symlink_at_the_temporary_name_is_not_followed() {
        let dir = dir("symlink");
        let path = dir.join("record");
        let victim = dir.join("victim");
        fs::write(&victim, "precious").unwrap();
        // Someone who could predict the temporary name plants a symlink.
        for n in 0..64 {
            let planted = path.with_file_name(format!(".record.{}.{n}.tmp", std::process::id()));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        let refused = (0..64).filter(|_| replace(&path, b"new").is_err()).count();
        assert!(refused > 0, "no write met a planted name");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        let _ = fs::remove_dir_all(&dir);
    }
}
