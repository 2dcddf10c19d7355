//! One lbd at a time: the claims a process takes before it touches
//! anything (addresses, maps, sockets, XDP), held for its whole life and
//! released by the kernel when it dies, however it dies.
//!
//! - The state directory: an exclusive `flock` on `<state-dir>/lbd.pid`,
//!   which also holds the owner's pid (keepalived refuses a second
//!   instance from its pid file the same way, but a pid file alone can be
//!   stale; a lock cannot).
//! - Every interface whose VRRP addresses or XDP program lbd manages, in
//!   this network namespace: a listening Unix socket with an abstract name
//!   (`@lbd/vrrp/eth0`, `@lbd/xdp/eth0`). Abstract names are per network
//!   namespace, exactly the scope of an interface, and vanish with the
//!   process; the holder's pid comes from `SO_PEERCRED`. So two lbds with
//!   different state directories still cannot run VRRP on the same link,
//!   where the crash cleanup of one would remove the other's VIPs.
//!
//! The crash cleanup (marked VIPs, recorded IPVS services) runs only while
//! these are held, so it only ever cleans up after a process that is gone.

use std::{
    collections::BTreeSet,
    fs::{File, OpenOptions},
    io::{self, Read as _, Seek as _, Write as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        linux::net::SocketAddrExt as _,
        unix::{
            fs::OpenOptionsExt as _,
            net::{SocketAddr, UnixListener},
        },
    },
    path::{Path, PathBuf},
};

use crate::{config::Config, vrrp::io::vip};

/// The file in the state directory that is locked and names the owner.
pub const PID_FILE: &str = "lbd.pid";

/// Why lbd cannot take its claims.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another lbd (pid {}) is running with state directory {}; \
         stop it first (nothing was changed)",
        pid_text(*pid),
        dir.display()
    )]
    StateDirBusy { dir: PathBuf, pid: Option<u32> },
    #[error(
        "another lbd (pid {}) manages {what} on interface {interface} in this network \
         namespace; stop it first (nothing was changed)",
        pid_text(*pid)
    )]
    InterfaceBusy {
        what: &'static str,
        interface: String,
        pid: Option<u32>,
    },
    #[error("cannot use state directory {}: {source}", dir.display())]
    StateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot claim {what} on interface {interface}: {source}")]
    Claim {
        what: &'static str,
        interface: String,
        #[source]
        source: io::Error,
    },
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
}

/// The claims of one lbd process; dropping it (or dying) releases them.
#[derive(Debug)]
pub struct Claims {
    _pid_file: File,
    _interfaces: Vec<UnixListener>,
}

impl Claims {
    /// Takes every claim `config` needs with `state_dir`, or none: on
    /// failure whatever was taken is released and nothing else changed.
    pub fn acquire(config: &Config, state_dir: &Path) -> Result<Self, LockError> {
        let pid_file = lock_state_dir(state_dir)?;
        let mut interfaces = Vec::new();
        for (what, interface) in interface_claims(config) {
            interfaces.push(claim_interface(what, &interface)?);
        }
        Ok(Self {
            _pid_file: pid_file,
            _interfaces: interfaces,
        })
    }
}

/// What lbd claims per interface: VRRP on every interface an instance or
/// its addresses use (the cleanup's scope), XDP on every attached one.
fn interface_claims(config: &Config) -> BTreeSet<(&'static str, String)> {
    let vrrp = vip::managed_interfaces(config)
        .into_iter()
        .map(|i| ("VRRP addresses", i));
    let xdp = config
        .interfaces
        .iter()
        .map(|i| ("the XDP program", i.name.clone()));
    vrrp.chain(xdp).collect()
}

fn abstract_name(what: &str, interface: &str) -> String {
    let kind = if what.starts_with("VRRP") {
        "vrrp"
    } else {
        "xdp"
    };
    format!("lbd/{kind}/{interface}")
}

fn claim_interface(what: &'static str, interface: &str) -> Result<UnixListener, LockError> {
    let name = abstract_name(what, interface);
    let addr =
        SocketAddr::from_abstract_name(name.as_bytes()).map_err(|source| LockError::Claim {
            what,
            interface: interface.to_owned(),
            source,
        })?;
    match UnixListener::bind_addr(&addr) {
        Ok(listener) => Ok(listener),
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => Err(LockError::InterfaceBusy {
            what,
            interface: interface.to_owned(),
            pid: holder_pid(&name),
        }),
        Err(source) => Err(LockError::Claim {
            what,
            interface: interface.to_owned(),
            source,
        }),
    }
}

/// The pid of the process listening on the abstract name `name` (the
/// credentials a listening socket hands to whoever connects are its own).
/// The connect does not block: nobody accepts on a claim, so each refused
/// start leaves a connection queued, and once the queue is full the pid is
/// just not known.
fn holder_pid(name: &str) -> Option<u32> {
    // SAFETY: plain socket call.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: we own the new descriptor; the OwnedFd closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain data; zero is a valid start.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = name.as_bytes();
    // Abstract: a leading NUL, then the name, not NUL-terminated.
    if bytes.len() + 1 > addr.sun_path.len() {
        return None;
    }
    for (slot, b) in addr.sun_path[1..].iter_mut().zip(bytes) {
        *slot = *b as libc::c_char;
    }
    let len = (size_of::<libc::sa_family_t>() + 1 + bytes.len()) as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un and len does not exceed it.
    if unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) } != 0 {
        return None;
    }
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes passed.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    (rc == 0 && cred.pid > 0).then_some(cred.pid as u32)
}

/// Locks `<state_dir>/lbd.pid` and writes our pid into it.
fn lock_state_dir(dir: &Path) -> Result<File, LockError> {
    let io_err = |source| LockError::StateDir {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let path = dir.join(PID_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(io_err)?;
    // SAFETY: flock on an fd we own; no memory involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(LockError::StateDirBusy {
                dir: dir.to_owned(),
                pid,
            });
        }
        return Err(io_err(err));
    }
    // Ours now: the previous owner (if any) is gone, its pid is stale.
    file.set_len(0).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    writeln!(file, "{}", std::process::id()).map_err(io_err)?;
    Ok(file)
}

/// The pid recorded in `state_dir`'s pid file while its owner runs.
pub fn running_pid(state_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(state_dir.join(PID_FILE)).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        crate::config::load_str(yaml, "test.yaml")
            .expect("valid test config")
            .config
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_claim_on_the_same_state_dir_names_the_holder() {
        let dir = temp_dir("state");
        let empty = config("interfaces: []\n");
        let first = Claims::acquire(&empty, &dir).expect("first claim");
        assert_eq!(running_pid(&dir), Some(std::process::id()));
        // flock locks belong to the open file description: a second open
        // in the same process conflicts just as another process would.
        let err = Claims::acquire(&empty, &dir).expect_err("second claim must fail");
        assert!(
            matches!(err, LockError::StateDirBusy { pid: Some(p), .. } if p == std::process::id()),
            "{err}"
        );
        drop(first);
        Claims::acquire(&empty, &dir).expect("released on drop");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_interface_is_claimed_once_per_namespace_whatever_the_state_dir() {
        // A name no real interface has: abstract names are shared by every
        // test in this namespace.
        let yaml = "interfaces: [{ name: lbdlocktest0 }]\n";
        let (a, b) = (temp_dir("if-a"), temp_dir("if-b"));
        let first = Claims::acquire(&config(yaml), &a).expect("first claim");
        let err = Claims::acquire(&config(yaml), &b).expect_err("same interface must fail");
        match &err {
            LockError::InterfaceBusy { interface, pid, .. } => {
                assert_eq!(interface, "lbdlocktest0");
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("expected InterfaceBusy, got {other}"),
        }
        // Failing on the interface released the state dir it had taken.
        drop(Claims::acquire(&config("interfaces: []\n"), &b).expect("b is free"));
        // Refused starts leave connections queued on the claim; asking
        // again and again never blocks, whatever the queue holds.
        for _ in 0..5000 {
            let _ = Claims::acquire(&config(yaml), &b);
        }
        drop(first);
        drop(Claims::acquire(&config(yaml), &b).expect("released on drop"));
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
}
