//! Making sure a pin directory is on a BPF filesystem (bpffs).
//!
//! systemd mounts bpffs on `/sys/fs/bpf` at boot. Where nothing is mounted
//! there (a minimal init, a container) lbd mounts it, as `bpftool` does.
//! A bpffs mounted from a private mount namespace (`ip netns exec` gives
//! its command one, with a fresh `/sys`) vanishes with that namespace, so
//! then the pins only last as long as this process: said in a warning.

use std::{
    ffi::CString,
    io,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use thiserror::Error;
use tracing::warn;

const SYS_FS_BPF: &str = "/sys/fs/bpf";

/// Why nothing can be pinned where asked.
#[derive(Debug, Error)]
pub enum BpffsError {
    #[error(
        "{path} is not on a BPF filesystem (bpffs), so the XDP program's state cannot be pinned there; mount one with `mount -t bpf bpf {mount}` or name a directory on one with --pin-dir"
    )]
    NotBpffs { path: PathBuf, mount: PathBuf },
    #[error(
        "no BPF filesystem (bpffs) is mounted on /sys/fs/bpf and mounting one failed; mount it with `mount -t bpf bpf /sys/fs/bpf` (systemd does at boot), or name a directory on a bpffs with --pin-dir"
    )]
    Mount(#[source] io::Error),
    #[error("checking the filesystem of {path} failed")]
    Statfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Whether `path` (which exists) is on bpffs.
fn is_bpffs(path: &Path) -> Result<bool, BpffsError> {
    let statfs_err = |source| BpffsError::Statfs {
        path: path.to_owned(),
        source,
    };
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| statfs_err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    // SAFETY: statfs writes into the struct we own; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &raw mut st) } != 0 {
        return Err(statfs_err(io::Error::last_os_error()));
    }
    Ok(st.f_type == libc::BPF_FS_MAGIC)
}

/// Checks that `path` is (or will be, once created) on bpffs, mounting
/// bpffs on `/sys/fs/bpf` for a path below it when none is mounted.
/// Returns whether the pins are known to outlive this process: not when
/// this process mounted the bpffs.
pub(super) fn ensure(path: &Path) -> Result<bool, BpffsError> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    if is_bpffs(existing)? {
        return Ok(true);
    }
    let sys = Path::new(SYS_FS_BPF);
    if !(path.starts_with(sys) && existing == sys) {
        return Err(BpffsError::NotBpffs {
            path: path.to_owned(),
            mount: existing.to_owned(),
        });
    }
    mount_sys_fs_bpf()?;
    // Whether the mount outlives this process cannot be told reliably from
    // inside (namespace ids differ between containers and their hosts).
    warn!(
        mount = SYS_FS_BPF,
        "mounted bpffs (nothing was mounted): if this lbd runs in a mount namespace of its own (`ip netns exec`, `unshare -m`), the mount and the pinned XDP state go with it and a restart cannot adopt them; then pin on a bpffs of the host's namespace (--pin-dir)"
    );
    Ok(false)
}

fn mount_sys_fs_bpf() -> Result<(), BpffsError> {
    let (source, target, fstype, data) = (c"bpf", c"/sys/fs/bpf", c"bpf", c"mode=0700");
    // SAFETY: all pointers are NUL-terminated C strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(BpffsError::Mount(io::Error::last_os_error()))
    }
}
