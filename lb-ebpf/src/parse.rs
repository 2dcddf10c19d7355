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
#[derive(Clone, Copy)]
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
    /// Read from the context once, in the entry function: in a BPF
    /// subprogram the compiler may turn the context access into pointer
    /// arithmetic the verifier rejects.
    pub(crate) ingress_ifindex: u32,
}

/// The parse result as it crosses from the parser to the rest of the
/// program: plain integers in a per-CPU map slot.
///
/// Going through map memory is deliberate. The verifier tracks stack values
/// exactly, so every distinct parse outcome (VLAN depth, IPv4 header length,
/// IPv6 extension chain) would reach the balancing code as a separate state
/// and be verified again, multiplying verification time. Values loaded from
/// a map are opaque to it: all outcomes meet in one state, and
/// [`Packet::from_parsed`] re-establishes the bounds the rest relies on.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct Parsed {
    l3_offset: u32,
    l4_offset: u32,
    /// 0: not IP; 4 or 6.
    family: u8,
    /// 0 other, 1 TCP, 2 UDP, 3 ICMP.
    transport: u8,
    /// Bit 0: fragment; bit 1: later fragment; bit 2: VLAN-tagged.
    flags: u8,
    _pad: u8,
}

/// Largest L3 offset: Ethernet plus two VLAN tags.
const MAX_L3_OFFSET: usize = 14 + 2 * 4;
/// Largest L4 offset: an IPv6 header and the extension bytes we walk, or
/// an IPv4 header with the most options.
const MAX_L4_OFFSET: usize = MAX_L3_OFFSET + 40 + MAX_IPV6_EXT_BYTES;

#[aya_ebpf::macros::map(name = "PARSED")]
static PARSED: aya_ebpf::maps::PerCpuArray<Parsed> =
    aya_ebpf::maps::PerCpuArray::with_max_entries(1, 0);

/// Parses the frame into this CPU's `PARSED` slot; `false` when it is
/// malformed. Inlined: a BPF-to-BPF call costs more than the parse of a
/// plain TCP/IPv4 frame on CPUs whose return instructions are mitigated.
/// Its result still goes through the per-CPU slot, which keeps the
/// verifier's state small for the code that follows.
#[inline(always)]
pub(crate) fn parse_into(ctx: &XdpContext) -> bool {
    let Some(slot) = PARSED.get_ptr_mut(0) else {
        return false;
    };
    match parse(ctx) {
        Ok(p) => {
            let parsed = Parsed {
                l3_offset: p.l3_offset as u32,
                l4_offset: p.l4_offset as u32,
                family: match p.ip {
                    None => 0,
                    Some(Family::Ipv4) => 4,
                    Some(Family::Ipv6) => 6,
                },
                transport: match p.transport {
                    Transport::Other => 0,
                    Transport::Tcp => 1,
                    Transport::Udp => 2,
                    Transport::Icmp => 3,
                },
                flags: u8::from(p.fragment)
                    | u8::from(p.later_fragment) << 1
                    | u8::from(p.vlan) << 2,
                _pad: 0,
            };
            // SAFETY: this CPU's slot, used by this run only.
            unsafe { *slot = parsed };
            true
        }
        Err(Malformed) => false,
    }
}

impl Packet {
    /// Reads back what [`parse_into`] stored, with explicit bounds.
    #[inline(always)]
    pub(crate) fn from_parsed() -> Result<Packet, Malformed> {
        let slot = PARSED.get_ptr(0).ok_or(Malformed)?;
        // SAFETY: this CPU's slot, written by parse_into in this run.
        let parsed = unsafe { *slot };
        let l3_offset = parsed.l3_offset as usize;
        let l4_offset = parsed.l4_offset as usize;
        if l3_offset > MAX_L3_OFFSET || l4_offset > MAX_L4_OFFSET {
            return Err(Malformed);
        }
        Ok(Packet {
            l3_offset,
            l4_offset,
            ip: match parsed.family {
                4 => Some(Family::Ipv4),
                6 => Some(Family::Ipv6),
                _ => None,
            },
            transport: match parsed.transport {
                1 => Transport::Tcp,
                2 => Transport::Udp,
                3 => Transport::Icmp,
                _ => Transport::Other,
            },
            fragment: parsed.flags & 1 != 0,
            later_fragment: parsed.flags & 2 != 0,
            vlan: parsed.flags & 4 != 0,
            ingress_ifindex: 0,
        })
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
        ingress_ifindex: 0,
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
            // The ports and flags are all the balancer reads; a data offset
            // that cannot hold the header is judged by the ingress policy
            // when the segment is for a service (and by the kernel if not).
            ptr_at::<TcpHdr>(ctx, l4_offset)?;
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
