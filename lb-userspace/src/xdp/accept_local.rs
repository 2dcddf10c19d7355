//! `net.ipv4.conf.<interface>.accept_local` on the interfaces the program
//! is attached to.
//!
//! When the program has translated a reply (source now the VIP) but the
//! kernel has not resolved the client's MAC yet, it hands the packet to
//! the kernel to forward, which resolves the neighbour and sends it. The
//! kernel drops a packet arriving with one of its own addresses as source
//! as a martian, unless `accept_local` is set. A node that just took a VIP
//! over has never heard an ARP request from the clients (their caches
//! pointed at the old MASTER until the gratuitous ARP), so without it every
//! established flow through the new MASTER stalls until each client's
//! cache happens to probe it, seconds later. IPv6 has no such check.
//!
//! The value is left set at exit: the program, and flows, may outlive the
//! process (restart), and the setting only relaxes the source check for
//! the interfaces lbd was told to own.

use std::{fs, io, path::PathBuf};

use tracing::info;

fn path(interface: &str, flag: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{interface}/{flag}"))
}

/// Sets `accept_local` to 1 on `interface` (in this process's network
/// namespace), logging when it changes.
pub fn enable(interface: &str) -> io::Result<()> {
    enable_flag(
        interface,
        "accept_local",
        "translated replies to a client whose MAC is not resolved yet go through the kernel \
         with the VIP as source",
    )
}

/// Sets `net.ipv4.conf.<interface>.<flag>` to 1, logging `why` when it
/// changes (also for `route_localnet`, see `super::local_reals`).
pub(crate) fn enable_flag(interface: &str, flag: &str, why: &str) -> io::Result<()> {
    let path = path(interface, flag);
    let before = fs::read_to_string(&path)?;
    if before.trim() != "1" {
        fs::write(&path, "1")?;
        info!(
            interface,
            before = before.trim(),
            "net.ipv4.conf.{interface}.{flag} set to 1: {why}"
        );
    }
    Ok(())
}
