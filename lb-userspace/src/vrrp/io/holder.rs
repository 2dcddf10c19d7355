//! The device that holds a MASTER's IPv4 virtual addresses: a tun device
//! lbd creates per VRRP interface (`lbd-eth0` for instances on `eth0`) and
//! that the kernel destroys, with its addresses, when the process that
//! opened it is gone, however it died (SIGKILL, the OOM killer, a panic).
//! keepalived puts VIPs on the interface itself, where a crashed daemon
//! leaves them answering ARP and resetting every flow the new MASTER should
//! carry, until someone removes them.
//!
//! Linux answers ARP on any interface for any local address (with the
//! default `arp_ignore=0`), accepts packets for it whichever interface they
//! arrive on, and lbd sends its gratuitous ARPs on the instance's interface
//! itself, so to the LAN nothing changes. What does change:
//! - the VIP is a /32 on `lbd-IFACE`, not `ADDR/LEN` on the interface (no
//!   prefix route: the interface's own address already has it);
//! - with `arp_ignore` 1 or more the kernel would not answer ARP for it, so
//!   such an interface keeps its VIPs on itself, with a warning;
//! - IPv6 answers neighbour solicitations only for addresses on the
//!   receiving interface, so IPv6 VIPs stay on the interface;
//! - a VIP with its own `dev` or `label` stays where the user put it;
//! - `global.vip_device: interface` keeps keepalived's placement for all.

use std::{
    fs::{File, OpenOptions},
    io,
    os::{fd::AsRawFd as _, unix::fs::OpenOptionsExt as _},
};

use std::collections::HashMap;

use crate::config::{IpPrefix, VipDevice, VirtualAddress};

/// Creating a holder failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "creating {name}, the device that holds the virtual addresses of {interface} \
     (set global.vip_device: interface to keep them on {interface}, as keepalived does)"
)]
pub struct HolderError {
    name: String,
    interface: String,
    #[source]
    source: io::Error,
}

/// The holders of one runtime, by name; dropping them removes the
/// devices and their addresses.
#[derive(Debug, Default)]
pub struct Holders(HashMap<String, VipHolder>);

impl Holders {
    /// Where `vips` of an instance on `interface` go: on `interface`'s
    /// holder (created on first use) those it may hold, unless `mode` is
    /// `interface` or the interface's `arp_ignore` would hide them.
    pub fn place(
        &mut self,
        mode: VipDevice,
        interface: &str,
        vips: &[VirtualAddress],
    ) -> Result<Vec<VirtualAddress>, HolderError> {
        if mode == VipDevice::Interface || !vips.iter().any(holdable) {
            return Ok(vips.to_vec());
        }
        let ignore = arp_ignore(interface);
        if ignore > 0 {
            tracing::warn!(
                interface,
                arp_ignore = ignore,
                "the kernel answers ARP on {interface} only for its own addresses (arp_ignore): \
                 its virtual addresses stay on it, as keepalived puts them, and a crashed lbd \
                 leaves them there until the next start or `lbd cleanup`"
            );
            return Ok(vips.to_vec());
        }
        let name = holder_name(interface);
        if !self.0.contains_key(&name) {
            let holder = VipHolder::create(&name).map_err(|source| HolderError {
                name: name.clone(),
                interface: interface.to_owned(),
                source,
            })?;
            tracing::info!(interface, device = %name, "IPv4 virtual addresses go on a device that vanishes with lbd");
            self.0.insert(name.clone(), holder);
        }
        Ok(vips
            .iter()
            .map(|v| {
                if holdable(v) {
                    on_holder(v, &name)
                } else {
                    v.clone()
                }
            })
            .collect())
    }

    /// Whether `device` is one of these holders.
    pub fn holds(&self, device: &str) -> bool {
        self.0.contains_key(device)
    }
}

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// An open tun device: the device exists while this does.
#[derive(Debug)]
pub struct VipHolder {
    name: String,
    /// Closing it (at drop or process death) destroys the device.
    _file: File,
}

/// The holder's name for VIPs of instances on `interface`: `lbd-` and the
/// interface's name, cut to the kernel's 15 characters.
pub fn holder_name(interface: &str) -> String {
    let mut name = format!("lbd-{interface}");
    name.truncate(libc::IFNAMSIZ - 1);
    name
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    /// A request about interface `name` (cut to fit) with `flags`.
    fn new(name: &str, flags: libc::c_short) -> Self {
        let mut request = Self {
            name: [0; libc::IFNAMSIZ],
            flags,
            _pad: [0; 22],
        };
        for (slot, byte) in request
            .name
            .iter_mut()
            .zip(name.bytes().take(libc::IFNAMSIZ - 1))
        {
            *slot = byte.cast_signed();
        }
        request
    }
}

impl VipHolder {
    /// Creates the (non-persistent) tun device `name` and brings it up.
    pub fn create(name: &str) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut request = IfReq::new(name, IFF_TUN | IFF_NO_PI);
        // SAFETY: TUNSETIFF reads and writes one ifreq, which `request`
        // is (same layout: name then a short of flags, padded).
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &raw mut request) } < 0 {
            return Err(io::Error::last_os_error());
        }
        set_up(name)?;
        Ok(Self {
            name: name.to_owned(),
            _file: file,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Sets `IFF_UP` on `name` (local routes exist only for up devices).
fn set_up(name: &str) -> io::Result<()> {
    // SAFETY: a plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a socket we own; closed once on every path below.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut request = IfReq::new(name, 0);
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write one ifreq.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &raw mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &raw mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The larger of `all` and `interface`'s `arp_ignore` (the kernel uses the
/// maximum); 0 if it cannot be read.
pub fn arp_ignore(interface: &str) -> u8 {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/arp_ignore"))
            .ok()
            .and_then(|v| v.trim().parse::<u8>().ok())
            .unwrap_or(0)
    };
    read("all").max(read(interface))
}

/// Whether `vip` may live on the holder: IPv4, and neither `dev` nor
/// `label` given.
pub fn holdable(vip: &VirtualAddress) -> bool {
    vip.address.addr().is_ipv4() && vip.dev.is_none() && vip.label.is_none()
}

/// `vip` as it goes on holder `name`: a host address, no broadcast.
pub fn on_holder(vip: &VirtualAddress, name: &str) -> VirtualAddress {
    VirtualAddress {
        address: IpPrefix::host(vip.address.addr()),
        brd: None,
        dev: Some(name.to_owned()),
        label: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(text: &str) -> VirtualAddress {
        VirtualAddress::new(text.parse().unwrap())
    }

    #[test]
    fn the_holder_is_named_after_the_interface_within_ifnamsiz() {
        assert_eq!(holder_name("eth0"), "lbd-eth0");
        assert_eq!(holder_name("enp0s31f6.1234"), "lbd-enp0s31f6.1");
        assert_eq!(holder_name("enp0s31f6.1234").len(), 15);
    }

    #[test]
    fn only_plain_ipv4_vips_are_held_and_become_host_addresses() {
        let plain = vip("192.0.2.10/24");
        assert!(holdable(&plain));
        let held = on_holder(&plain, "lbd-eth0");
        assert_eq!(held.address.addr(), plain.address.addr());
        assert!(
            held.address.is_host(),
            "a /32: no prefix route on the holder"
        );
        assert_eq!(held.dev.as_deref(), Some("lbd-eth0"));
        assert!(!holdable(&vip("2001:db8::10/64")), "IPv6 stays on the link");
        let mut with_dev = vip("192.0.2.11/24");
        with_dev.dev = Some("eth1".into());
        assert!(!holdable(&with_dev), "an explicit dev is honoured");
        let mut with_label = vip("192.0.2.12/24");
        with_label.label = Some("eth0:vip".into());
        assert!(!holdable(&with_label), "a label names the interface");
    }
}
