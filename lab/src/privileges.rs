//! Tests that need root say so loudly instead of skipping.

/// Panics with an explanation unless the process runs as root, which loading
/// XDP programs and creating network namespaces need.
pub fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "{what} needs root (CAP_BPF, CAP_NET_ADMIN) but runs as uid {euid}: \
         run the suite as root, e.g. `sudo cargo xtask test`"
    );
}
