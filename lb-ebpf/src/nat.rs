//! Address and port rewriting with incremental checksum updates (RFC 1624):
//! the IPv4 header checksum, and the TCP / UDP checksum whose pseudo-header
//! covers the addresses. IPv6 has no header checksum.
//!
//! Each header is reached through one bounds-checked pointer and its fields
//! through that pointer, a shape the verifier always follows.

use aya_ebpf::programs::XdpContext;
use lb_common::csum;

use crate::{
    headers::{Ipv4Hdr, Ipv6Hdr, TcpHdr, UdpHdr, be16},
    parse::{Family, Malformed, Packet, Transport},
    ptr::ptr_at,
    words::put_addr16,
};

/// Which end of the packet to rewrite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Client -> VIP becomes client -> backend.
    Destination,
    /// Backend -> client becomes VIP -> client.
    Source,
}

/// An address (first 4 bytes for IPv4) and a port in network order.
pub(crate) struct Endpoint<'a> {
    pub(crate) addr: &'a [u8; 16],
    pub(crate) port: &'a [u8; 2],
}

/// Rewrites one endpoint of a TCP or UDP packet from `old` to `new`.
#[inline(always)]
pub(crate) fn rewrite(
    ctx: &XdpContext,
    packet: &Packet,
    side: Side,
    old: &Endpoint<'_>,
    new: &Endpoint<'_>,
) -> Result<(), Malformed> {
    // The L4 checksum field and the port, per protocol.
    let (check_field, port_field): (*mut [u8; 2], *mut [u8; 2]) = match packet.transport {
        Transport::Tcp => {
            let tcp = ptr_at::<TcpHdr>(ctx, packet.l4_offset)?;
            // SAFETY: ptr_at checked the header lies in the frame.
            unsafe {
                let port = if side == Side::Source {
                    &raw mut (*tcp).src_port
                } else {
                    &raw mut (*tcp).dst_port
                };
                (&raw mut (*tcp).check, port)
            }
        }
        Transport::Udp => {
            let udp = ptr_at::<UdpHdr>(ctx, packet.l4_offset)?;
            // SAFETY: as above.
            unsafe {
                let port = if side == Side::Source {
                    &raw mut (*udp).src_port
                } else {
                    &raw mut (*udp).dst_port
                };
                (&raw mut (*udp).check, port)
            }
        }
        _ => return Err(Malformed),
    };
    // SAFETY: the pointers above point into the checked headers.
    let mut check = be16(unsafe { *check_field });
    // An IPv4 UDP checksum of zero means "none" and must stay zero.
    let l4_checksummed =
        !(packet.transport == Transport::Udp && packet.ip == Some(Family::Ipv4) && check == 0);

    match packet.ip {
        Some(Family::Ipv4) => {
            let ip = ptr_at::<Ipv4Hdr>(ctx, packet.l3_offset)?;
            let old4 = [old.addr[0], old.addr[1], old.addr[2], old.addr[3]];
            let new4 = [new.addr[0], new.addr[1], new.addr[2], new.addr[3]];
            // SAFETY: ptr_at checked the header lies in the frame.
            unsafe {
                if side == Side::Source {
                    (*ip).src = new4;
                } else {
                    (*ip).dst = new4;
                }
                (*ip).check = csum::replace(be16((*ip).check), &old4, &new4).to_be_bytes();
            }
            check = csum::replace(check, &old4, &new4);
        }
        Some(Family::Ipv6) => {
            let ip = ptr_at::<Ipv6Hdr>(ctx, packet.l3_offset)?;
            // SAFETY: as above.
            unsafe {
                if side == Side::Source {
                    put_addr16(&raw mut (*ip).src, new.addr);
                } else {
                    put_addr16(&raw mut (*ip).dst, new.addr);
                }
            }
            check = csum::replace(check, old.addr, new.addr);
        }
        None => return Err(Malformed),
    }
    // SAFETY: pointers into the checked L4 header.
    unsafe { *port_field = *new.port };
    if l4_checksummed {
        check = csum::replace(check, old.port, new.port);
        if packet.transport == Transport::Udp {
            check = csum::udp_nonzero(check);
        }
        unsafe { *check_field = check.to_be_bytes() };
    }
    Ok(())
}
