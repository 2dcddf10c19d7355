//! The ingress policy for packets addressed to a service: what a router's
//! input path (`ip_rcv_core`, `ip_options_compile`, the martian checks of
//! `ip_route_input_slow`, `ipv6_rcv`) and IPVS behind netfilter conntrack
//! (`tcp_error`) would discard is dropped here, and counted by reason,
//! before it can be translated and forwarded to a real server.
//!
//! Only service traffic is judged: everything else still reaches the
//! kernel untouched, and the kernel applies its own rules.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    counters::Counter,
    maps::{FAMILY_IPV4, FlowKey},
};

use crate::{
    flow::PacketFlow,
    headers::{Ipv4Hdr, Ipv6Hdr, TcpHdr, UdpHdr, be16},
    ipv4_options,
    parse::{Family, Malformed, Packet, Transport},
    ptr::ptr_at,
};

/// What becomes of a packet to a service.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Balance it.
    Admit,
    /// Drop it, counted under this reason.
    Drop(Counter),
    /// Its TTL / hop limit would expire on the balancer: answer with Time
    /// Exceeded about the packet as the client sent it, as IPVS does
    /// before it translates (`decrement_ttl` in `ip_vs_xmit.c`).
    Expired,
}

/// TCP flag bits, as in the header's 14th byte (the first three are the
/// conntrack rules' own).
const FIN: u8 = crate::flow::TCP_FIN;
const SYN: u8 = crate::flow::TCP_SYN;
const RST: u8 = crate::flow::TCP_RST;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// Bit `f` is set for each combination `f` of FIN, SYN, RST, ACK and URG
/// (PSH, ECE and CWR masked off) a connection can have: netfilter's
/// `tcp_valid_flags`, which IPVS sees through conntrack. Everything else
/// (null, FIN alone, SYN+RST, SYN+FIN, ...) is invalid.
const VALID_TCP_FLAGS: u64 = 1 << SYN
    | 1 << (SYN | URG)
    | 1 << (SYN | ACK)
    | 1 << RST
    | 1 << (RST | ACK)
    | 1 << (FIN | ACK)
    | 1 << (FIN | ACK | URG)
    | 1 << ACK
    | 1 << (ACK | URG);

/// Judges a TCP or UDP packet to a service.
#[inline(always)]
pub(crate) fn admit(
    ctx: &XdpContext,
    packet: &Packet,
    flow: &PacketFlow,
) -> Result<Admission, Malformed> {
    let key = &flow.key;
    if martian_source(key) {
        return Ok(Admission::Drop(Counter::MartianSource));
    }
    // A land attack: source = destination (= the VIP). Linux drops it as a
    // martian too, the source being one of its own addresses.
    if key.src == key.dst {
        return Ok(Admission::Drop(Counter::Land));
    }
    let (l4_len, ttl) = match packet.ip {
        Some(Family::Ipv4) => match ipv4(ctx, packet)? {
            Ok(found) => found,
            Err(reason) => return Ok(Admission::Drop(reason)),
        },
        Some(Family::Ipv6) => {
            let ip = ptr_at::<Ipv6Hdr>(ctx, packet.l3_offset)?;
            // SAFETY: ptr_at checked the header is in the frame.
            let payload = usize::from(be16(unsafe { (*ip).payload_len }));
            let ext = packet.l4_offset - packet.l3_offset - core::mem::size_of::<Ipv6Hdr>();
            (payload.wrapping_sub(ext), unsafe { (*ip).hop_limit })
        }
        None => return Err(Malformed),
    };
    if let Some(reason) = l4(ctx, packet, flow, l4_len)? {
        return Ok(Admission::Drop(reason));
    }
    Ok(if ttl <= 1 {
        Admission::Expired
    } else {
        Admission::Admit
    })
}

/// 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 and 255.255.255.255 as an IPv4
/// source; ::, ::1, ff00::/8 and IPv4-mapped ::ffff:0:0/96 as an IPv6 one.
#[inline(always)]
fn martian_source(key: &FlowKey) -> bool {
    let s = &key.src;
    if key.family == FAMILY_IPV4 {
        return s[0] == 0
            || s[0] == 127
            || s[0] & 0xf0 == 0xe0
            || (s[0] & s[1] & s[2] & s[3]) == 0xff;
    }
    if s[0] == 0xff {
        return true;
    }
    let head = u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
    let mid = u32::from_be_bytes([s[8], s[9], s[10], s[11]]);
    let last = u32::from_be_bytes([s[12], s[13], s[14], s[15]]);
    head == 0 && ((mid == 0 && last <= 1) || mid == 0x0000_ffff)
}

/// Checks the IPv4 header; returns the L4 length and the TTL, or why the
/// packet is dropped.
#[inline(always)]
fn ipv4(ctx: &XdpContext, packet: &Packet) -> Result<Result<(usize, u8), Counter>, Malformed> {
    let l3 = packet.l3_offset;
    let header = ptr_at::<[u8; 20]>(ctx, l3)?;
    // SAFETY: ptr_at checked the 20 bytes are in the frame.
    let h = unsafe { &*header };
    let mut sum = 0u32;
    for i in 0..10 {
        sum += u32::from(u16::from_be_bytes([h[2 * i], h[2 * i + 1]]));
    }
    let header_len = packet.l4_offset - l3;
    if header_len > core::mem::size_of::<Ipv4Hdr>() {
        match ipv4_options::check(ctx, l3, header_len) {
            Ok(options_sum) => sum += options_sum,
            Err(reason) => return Ok(Err(reason)),
        }
    }
    // A header whose checksum verifies sums to all ones (RFC 1071).
    if lb_common::csum::fold(sum) != 0xffff {
        return Ok(Err(Counter::BadIpChecksum));
    }
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    Ok(Ok((total_len.wrapping_sub(header_len), h[8])))
}

/// Checks the L4 header against the length the IP header gives it.
#[inline(always)]
fn l4(
    ctx: &XdpContext,
    packet: &Packet,
    flow: &PacketFlow,
    l4_len: usize,
) -> Result<Option<Counter>, Malformed> {
    // The L4 header must lie inside the IP packet, not in the Ethernet
    // padding after it (a first fragment included: RFC 1858's tiny
    // fragments). A wrapped subtraction above is huge and is caught later.
    let (header_min, tcp) = match packet.transport {
        Transport::Tcp => (core::mem::size_of::<TcpHdr>(), true),
        Transport::Udp => (core::mem::size_of::<UdpHdr>(), false),
        _ => return Err(Malformed),
    };
    if l4_len < header_min || l4_len > u16::MAX as usize {
        return Ok(Some(Counter::BadLength));
    }
    if tcp {
        let masked = flow.tcp_flags & !PSH & (FIN | SYN | RST | ACK | URG);
        if VALID_TCP_FLAGS >> masked & 1 == 0 {
            return Ok(Some(Counter::BadTcpFlags));
        }
        let th = ptr_at::<TcpHdr>(ctx, packet.l4_offset)?;
        // SAFETY: ptr_at checked the header is in the frame.
        let data_offset = usize::from(unsafe { (*th).doff_flags[0] } >> 4) * 4;
        // A fragment's segment continues in later fragments.
        if data_offset < header_min || (!packet.fragment && data_offset > l4_len) {
            return Ok(Some(Counter::BadTcpOffset));
        }
    } else if !packet.fragment {
        let uh = ptr_at::<UdpHdr>(ctx, packet.l4_offset)?;
        // SAFETY: as above.
        let udp_len = usize::from(be16(unsafe { (*uh).len }));
        // As `__udp4_lib_rcv`: shorter than its header or longer than the
        // packet is an impossible datagram (a shorter one is trimmed).
        if udp_len < header_min || udp_len > l4_len {
            return Ok(Some(Counter::BadLength));
        }
    }
    Ok(None)
}
