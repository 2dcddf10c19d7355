//! Whether an interface is a veth, whose native XDP mode a deployment with
//! default offloads cannot use.
//!
//! Measured in namespaces with every veth left as the kernel creates it
//! (`tests/dataplane_offloads_e2e.rs`): in native mode no connection got
//! through. A frame native XDP redirects into a veth is only delivered if
//! the peer end runs NAPI (an XDP program or GRO on it), which an untuned
//! peer does not; and a peer that leaves its checksums to offload (`tx` on,
//! the default) sends CHECKSUM_PARTIAL frames whose checksum field holds
//! only the pseudo-header sum, which native XDP forwards as a plain frame,
//! so the receiver drops it as corrupt. In generic mode the packet stays an
//! skb: the redirect goes through the peer's normal receive path and the
//! partial-checksum state travels with it, and every connection worked.

use std::ffi::CString;

/// `SIOCETHTOOL` and `ETHTOOL_GDRVINFO` from the kernel's UAPI.
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

/// `struct ethtool_drvinfo`.
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ifreq` with the `ifr_data` member.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut DrvInfo,
    _pad: [u8; 16],
}

/// Whether `interface` (in the calling thread's namespace) is driven by
/// the veth driver; `false` when that cannot be told.
pub(crate) fn is_veth(interface: &str) -> bool {
    driver(interface).as_deref() == Some("veth")
}

fn driver(interface: &str) -> Option<String> {
    let name = CString::new(interface).ok()?;
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: plain data; all-zero is a valid value of both structs.
    let mut info: DrvInfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &raw mut info,
        _pad: [0; 16],
    };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: a datagram socket only for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: req and info outlive the call and have the layout the kernel
    // expects for SIOCETHTOOL / ETHTOOL_GDRVINFO.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL, &raw mut req) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return None;
    }
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}
