//! Header parsing: Ethernet (with up to two VLAN tags), IPv4 (any IHL), IPv6
//! (walking extension headers), then TCP / UDP / ICMP.
//!
//! Lengths always come from the headers themselves, and every length a header
//! claims is checked against the frame before it is trusted.

use aya_ebpf::programs::XdpContext;
use lb_common::counters::Counter;

use crate::{
    headers::{
        ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, EthHdr, IPPROTO_DSTOPTS,
        IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_ROUTING,
        IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr, Ipv6ExtHdr, Ipv6FragHdr, Ipv6Hdr, TcpHdr, UdpHdr,
        VlanHdr, be16,
    },
    ptr::{ptr_at, read_at},
    stats,
};

/// The frame ends inside a header, or a header's own length field is
/// impossible. The caller passes such frames to the kernel.
pub(crate) struct Malformed;

/// VLAN tags we look through (802.1ad outer + 802.1Q inner).
const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers we walk before giving up on finding L4.
const MAX_IPV6_EXT_HEADERS: usize = 4;
/// Extension headers longer than this in total are not worth parsing.
const MAX_IPV6_EXT_BYTES: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Udp,
    Icmp,
    /// Another IP protocol, or a later fragment whose L4 header is elsewhere.
    #[default]
    Other,
}

/// What the parser learned about a frame.
#[derive(Clone, Copy, Default)]
pub(crate) struct Packet {
    pub(crate) l3_offset: usize,
    /// Meaningful when `ip` is set and the packet is not a later fragment.
    pub(crate) l4_offset: usize,
    pub(crate) ip: Option<Family>,
    pub(crate) transport: Transport,
    pub(crate) fragment: bool,
    /// Only the first fragment carries the L4 header.
    pub(crate) later_fragment: bool,
    /// The frame carries VLAN tags (forwarded by the kernel, which knows the
    /// VLAN devices, rather than redirected).
    pub(crate) vlan: bool,
}

/// Parses the frame into `out`; `false` when it is malformed.
///
/// A BPF function of its own: the unrolled header walk spills many
/// registers, and its frame is gone before the balancing path runs, so the
/// two never add up against the 512-byte stack limit.
#[inline(never)]
pub(crate) fn parse_into(ctx: &XdpContext, out: &mut Packet) -> bool {
    match parse(ctx) {
        Ok(packet) => {
            *out = packet;
            true
        }
        Err(Malformed) => false,
    }
}

/// Parses the frame's headers and counts what it saw.
#[inline(always)]
fn parse(ctx: &XdpContext) -> Result<Packet, Malformed> {
    // One bounds-checked pointer per header, fields read through it: copying
    // whole headers would fill the stack, and separate checks per field can
    // be merged by the compiler into a shape the verifier cannot follow.
    let eth = ptr_at::<EthHdr>(ctx, 0)?;
    // SAFETY (all header reads below): ptr_at checked the header is in the frame.
    let mut ether_type = be16(unsafe { (*eth).ether_type });
    let mut offset = core::mem::size_of::<EthHdr>();

    let mut tagged = false;
    for _ in 0..MAX_VLAN_TAGS {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        let tag = ptr_at::<VlanHdr>(ctx, offset)?;
        ether_type = be16(unsafe { (*tag).ether_type });
        offset += core::mem::size_of::<VlanHdr>();
        tagged = true;
    }
    if tagged {
        stats::count(Counter::Vlan);
    }

    let mut packet = Packet {
        l3_offset: offset,
        l4_offset: 0,
        ip: None,
        transport: Transport::Other,
        fragment: false,
        later_fragment: false,
        vlan: tagged,
    };
    let (protocol, later_fragment) = match ether_type {
        ETH_P_IPV4 => parse_ipv4(ctx, &mut packet)?,
        ETH_P_IPV6 => parse_ipv6(ctx, &mut packet)?,
        _ => {
            stats::count(Counter::NonIp);
            return Ok(packet);
        }
    };
    if packet.fragment {
        stats::count(Counter::Fragment);
    }
    if later_fragment {
        packet.later_fragment = true;
        return Ok(packet);
    }
    packet.transport = parse_l4(ctx, packet.l4_offset, protocol)?;
    Ok(packet)
}

/// Returns the L4 protocol and whether this is a later (non-first) fragment.
#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, packet: &mut Packet) -> Result<(u8, bool), Malformed> {
    let l3 = packet.l3_offset;
    let ip = ptr_at::<Ipv4Hdr>(ctx, l3)?;
    let version_ihl = unsafe { (*ip).version_ihl };
    if version_ihl >> 4 != 4 {
        return Err(Malformed);
    }
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    if header_len < core::mem::size_of::<Ipv4Hdr>() {
        return Err(Malformed);
    }
    let total_len = usize::from(be16(unsafe { (*ip).total_len }));
    let frame_left = ctx.data_end() - ctx.data() - packet.l3_offset;
    // A total length beyond the frame, or shorter than the header, is a lie;
    // a frame longer than total length is just Ethernet padding.
    if total_len < header_len || total_len > frame_left {
        return Err(Malformed);
    }
    let frag = be16(unsafe { (*ip).frag_off });
    let more_fragments = frag & 0x2000 != 0;
    let frag_offset = frag & 0x1fff;
    packet.fragment = more_fragments || frag_offset != 0;
    packet.ip = Some(Family::Ipv4);
    packet.l4_offset = packet.l3_offset + header_len;
    stats::count(Counter::Ipv4);
    Ok((unsafe { (*ip).protocol }, frag_offset != 0))
}

/// Returns the upper-layer protocol after any extension headers, and whether
/// this is a later (non-first) fragment.
#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, packet: &mut Packet) -> Result<(u8, bool), Malformed> {
    let l3 = packet.l3_offset;
    let ip = ptr_at::<Ipv6Hdr>(ctx, l3)?;
    if unsafe { (*ip).version_tc_flow[0] } >> 4 != 6 {
        return Err(Malformed);
    }
    let header_len = core::mem::size_of::<Ipv6Hdr>();
    let payload_len = usize::from(be16(unsafe { (*ip).payload_len }));
    let frame_left = ctx.data_end() - ctx.data() - packet.l3_offset;
    if header_len + payload_len > frame_left {
        return Err(Malformed);
    }
    packet.ip = Some(Family::Ipv6);
    stats::count(Counter::Ipv6);

    let mut next = unsafe { (*ip).next_header };
    let mut ext_len = 0usize;
    let mut later_fragment = false;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let at = packet.l3_offset + header_len + ext_len;
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => {
                let ext: Ipv6ExtHdr = read_at(ctx, at)?;
                next = ext.next_header;
                ext_len += (usize::from(ext.hdr_ext_len) + 1) * 8;
            }
            IPPROTO_FRAGMENT => {
                let frag = ptr_at::<Ipv6FragHdr>(ctx, at)?;
                next = unsafe { (*frag).next_header };
                ext_len += core::mem::size_of::<Ipv6FragHdr>();
                packet.fragment = true;
                later_fragment = be16(unsafe { (*frag).frag_off }) & 0xfff8 != 0;
            }
            _ => break,
        }
        // Bounds the offset for the verifier and refuses absurd chains.
        if ext_len > MAX_IPV6_EXT_BYTES {
            return Err(Malformed);
        }
    }
    if ext_len > payload_len {
        return Err(Malformed);
    }
    packet.l4_offset = packet.l3_offset + header_len + ext_len;
    Ok((next, later_fragment))
}

#[inline(always)]
fn parse_l4(ctx: &XdpContext, l4_offset: usize, protocol: u8) -> Result<Transport, Malformed> {
    match protocol {
        IPPROTO_TCP => {
            let tcp = ptr_at::<TcpHdr>(ctx, l4_offset)?;
            let data_offset = unsafe { (*tcp).doff_flags[0] };
            // Data offset counts 32-bit words; under 5 cannot hold the header.
            if usize::from(data_offset >> 4) * 4 < core::mem::size_of::<TcpHdr>() {
                return Err(Malformed);
            }
            stats::count(Counter::Tcp);
            Ok(Transport::Tcp)
        }
        IPPROTO_UDP => {
            ptr_at::<UdpHdr>(ctx, l4_offset)?;
            stats::count(Counter::Udp);
            Ok(Transport::Udp)
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            stats::count(Counter::Icmp);
            Ok(Transport::Icmp)
        }
        _ => {
            stats::count(Counter::OtherL4);
            Ok(Transport::Other)
        }
    }
}
