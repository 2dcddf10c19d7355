//! The open-files limit. Services start with a soft limit of 1024 (the
//! kernel's and systemd's default, kept low for programs using select()):
//! a daemon holding health-check sockets, scripts' pipes, GARP sockets and
//! clients must not run out, so it raises the soft limit to the hard one
//! (systemd's own advice), capped where more would only waste memory.

/// More descriptors than lbd could use.
const CAP: libc::rlim_t = 1 << 20;

/// The soft limit before and after.
pub fn raise_open_files() -> std::io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit` only.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = limit.rlim_cur;
    let wanted = limit.rlim_max.min(CAP).max(before);
    if wanted > before {
        limit.rlim_cur = wanted;
        // SAFETY: setrlimit reads `limit` only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, wanted))
}
