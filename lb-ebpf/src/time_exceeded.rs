//! Time Exceeded for a packet to a service whose TTL / hop limit would
//! expire on the balancer, built in place and sent back with `XDP_TX`.
//!
//! IPVS checks and decrements the TTL before it translates (`decrement_ttl`
//! in `ip_vs_xmit.c`), so the error a client gets through IPVS comes from
//! the VIP and quotes its packet as sent: client -> VIP. This does the
//! same. Translating first and leaving the expiry to the kernel would make
//! the kernel quote client -> real server, leaking the real server's
//! address (and the kernel, given the packet untranslated, would deliver it
//! locally instead: the VIP is its own address).
//!
//! The frame becomes: the link header as received with the MAC addresses
//! swapped, a new IP header (VIP -> client), the ICMP header, then the
//! original IP header with 8 bytes of its payload (IPv4, RFC 792), or as
//! much of the original as fits in 128 bytes (IPv6, RFC 4443 allows any
//! truncation). The original packet does not move: the head grows in front
//! of it and the tail is trimmed behind the quote.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{xdp_action, xdp_md},
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail, bpf_xdp_load_bytes},
    macros::map,
    maps::PerCpuArray,
    programs::XdpContext,
};
use lb_common::{csum, maps::FlowKey};

use crate::{
    headers::{EthHdr, IPPROTO_ICMP, IPPROTO_ICMPV6, IcmpHdr, Ipv4Hdr, Ipv6Hdr},
    parse::{Family, Malformed, Packet},
    ptr::ptr_at,
};

const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMPV6_TIME_EXCEEDED: u8 = 3;
/// Code 0 of both: TTL / hop limit exceeded in transit.
const EXCEEDED_IN_TRANSIT: u8 = 0;
/// What Linux sends its own ICMP errors with (the default TTL and hop
/// limit, and `IPTOS_PREC_INTERNETCONTROL`).
const ERROR_TTL: u8 = 64;
const ERROR_TOS: u8 = 0xc0;
/// Original bytes quoted after its IP header (IPv4, RFC 792) ...
const QUOTED_PAYLOAD: usize = 8;
/// ... and the most quoted in all (IPv4: a 60-byte header and 8 bytes).
const MAX_QUOTE_V4: usize = 68;
const MAX_QUOTE_V6: usize = 128;
/// The longest IP header chain the parser accepts (IPv6 and 256 bytes of
/// extension headers).
const MAX_IP_HEADERS: usize = 40 + 256;
/// The largest link header: Ethernet and two VLAN tags.
const MAX_L2: usize = 22;

/// The quote, copied out of the frame to be summed: zero-padded 32-bit
/// words summed without a branch. Summing it in place, two bytes at a time
/// behind a bounds check each, made the verifier walk over 50,000
/// instructions, as much as the whole rest of the program.
#[map(name = "QUOTE_COPY")]
static QUOTE_COPY: PerCpuArray<QuoteCopy> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
struct QuoteCopy {
    words: [u32; MAX_QUOTE_V6 / 4],
    /// The quote's length, stored and read back (see `quote_sum`).
    len: u32,
}

/// Turns the frame into a Time Exceeded about itself, addressed to the
/// flow's client; `XDP_TX`, or `XDP_DROP` if it could not be built (never
/// translated, never forwarded). Its own BPF function: only expiring
/// packets pay for its stack and verification.
#[inline(never)]
pub(crate) fn reply(ctx: &XdpContext, packet: &Packet, key: &FlowKey) -> u32 {
    match build(ctx, packet, key) {
        Ok(()) => xdp_action::XDP_TX,
        Err(Malformed) => xdp_action::XDP_DROP,
    }
}

#[inline(always)]
fn build(ctx: &XdpContext, packet: &Packet, key: &FlowKey) -> Result<(), Malformed> {
    let l2 = packet.l3_offset;
    let ip_len = packet.l4_offset.wrapping_sub(l2);
    if l2 > MAX_L2 || ip_len > MAX_IP_HEADERS {
        return Err(Malformed);
    }
    let v4 = packet.ip == Some(Family::Ipv4);
    let (outer, quote) = if v4 {
        let outer = core::mem::size_of::<Ipv4Hdr>() + core::mem::size_of::<IcmpHdr>();
        (outer, (ip_len + QUOTED_PAYLOAD).min(MAX_QUOTE_V4))
    } else {
        let outer = core::mem::size_of::<Ipv6Hdr>() + core::mem::size_of::<IcmpHdr>();
        // As much of the packet as fits (RFC 4443 2.4 (c)), within 128.
        let packet_len = (ctx.data_end() - ctx.data()).saturating_sub(l2);
        (outer, packet_len.min(MAX_QUOTE_V6))
    };
    let frame_len = ctx.data_end() - ctx.data();
    let xdp = ctx.ctx.cast::<xdp_md>();
    // SAFETY: the helpers get the program's own context.
    #[expect(clippy::cast_possible_wrap, reason = "outer is 28 or 48")]
    if unsafe { bpf_xdp_adjust_head(xdp, -(outer as i32)) } != 0 {
        return Err(Malformed);
    }
    // The received frame now starts `outer` bytes in.
    link_header(ctx, l2, outer)?;
    let keep = l2 + outer + quote;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        reason = "frame lengths fit the 16-bit range"
    )]
    let trim = keep as i32 - (frame_len + outer) as i32;
    // SAFETY: as above; a negative delta only shortens the frame.
    if trim > 0 || unsafe { bpf_xdp_adjust_tail(xdp, trim) } != 0 {
        return Err(Malformed);
    }
    // The quote's sum first, then the headers in front of it, each block
    // written through one pointer at constant offsets (an offset that
    // depends on the family makes the compiler re-derive the pointer past
    // the verifier's bounds check).
    let sum = quote_sum(ctx, l2 + outer, quote)?;
    let quote = u16::try_from(quote).map_err(|_| Malformed)?;
    if v4 {
        ipv4_headers(ctx, l2, key, quote, sum)
    } else {
        ipv6_headers(ctx, l2, key, quote, sum)
    }
}

/// The one's complement sum of the `len` bytes (1 to 128) at `at`, as
/// 16-bit words (an odd last byte padded with zero, RFC 1071).
#[inline(always)]
fn quote_sum(ctx: &XdpContext, at: usize, len: usize) -> Result<u32, Malformed> {
    if !(1..=MAX_QUOTE_V6).contains(&len) {
        return Err(Malformed);
    }
    let copy = QUOTE_COPY.get_ptr_mut(0).ok_or(Malformed)?;
    // SAFETY: this CPU's slot, used by this run only.
    let copy = unsafe { &mut *copy };
    let words = copy.words.as_mut_ptr();
    // Volatile: plain stores become a memset call BPF has not, and the
    // reads must come after the helper has written.
    for w in 0..MAX_QUOTE_V6 / 4 {
        // SAFETY: w is in range.
        unsafe { core::ptr::write_volatile(words.add(w), 0) };
    }
    // The length as the verifier can see it is 1 to 128: stored, read back
    // (volatile, so the compiler cannot fold it into the range check
    // above) and masked. Linux 6.1's verifier does not learn a lower bound
    // of 1 from the compiled range check, and the helper refuses a length
    // that may be 0.
    #[expect(clippy::cast_possible_truncation, reason = "at most 128")]
    // SAFETY: a field of this CPU's slot.
    unsafe {
        core::ptr::write_volatile(&raw mut copy.len, len as u32);
    }
    // SAFETY: as above.
    let back = unsafe { core::ptr::read_volatile(&raw const copy.len) };
    #[expect(clippy::cast_possible_truncation, reason = "128")]
    let copy_len = (back.wrapping_sub(1) & (MAX_QUOTE_V6 as u32 - 1)) + 1;
    #[expect(clippy::cast_possible_truncation, reason = "at most 22 + 48")]
    // SAFETY: the slot has room for `copy_len` (1 to 128) bytes; the helper
    // checks that the source lies in the frame.
    let copied =
        unsafe { bpf_xdp_load_bytes(ctx.ctx, at as u32, words.cast::<c_void>(), copy_len) };
    if copied != 0 {
        return Err(Malformed);
    }
    let mut sum = 0u32;
    for w in 0..MAX_QUOTE_V6 / 4 {
        // SAFETY: as above.
        let word = u32::from_be(unsafe { core::ptr::read_volatile(words.add(w)) });
        sum += (word >> 16) + (word & 0xffff);
    }
    Ok(sum)
}

/// Copies the received link header (`l2` bytes at `outer`) to the front,
/// back to where it came from: MAC addresses swapped, VLAN tags kept.
#[inline(always)]
fn link_header(ctx: &XdpContext, l2: usize, outer: usize) -> Result<(), Malformed> {
    let old = ptr_at::<EthHdr>(ctx, outer)?;
    let new = ptr_at::<EthHdr>(ctx, 0)?;
    // SAFETY: ptr_at checked both headers; they do not overlap (outer >= 28).
    unsafe {
        (*new).dst = (*old).src;
        (*new).src = (*old).dst;
        (*new).ether_type = (*old).ether_type;
    }
    let eth = core::mem::size_of::<EthHdr>();
    for tag in 0..2 {
        let at = eth + 4 * tag;
        if at >= l2 {
            break;
        }
        let from = ptr_at::<[u8; 4]>(ctx, outer + at)?;
        let to = ptr_at::<[u8; 4]>(ctx, at)?;
        // SAFETY: as above.
        unsafe { *to = *from };
    }
    Ok(())
}

/// The IPv4 header (VIP -> client) and the ICMP header in front of a
/// quote of `quote` bytes summing to `quote_sum`.
#[expect(
    clippy::manual_memcpy,
    reason = "byte stores at constant offsets: a slice copy into packet memory can become a call to a byte-loop memcpy"
)]
#[inline(always)]
fn ipv4_headers(
    ctx: &XdpContext,
    l2: usize,
    key: &FlowKey,
    quote: u16,
    quote_sum: u32,
) -> Result<(), Malformed> {
    let block = ptr_at::<[u8; 28]>(ctx, l2)?;
    // SAFETY: ptr_at checked the 28 bytes are in the frame.
    let b = unsafe { &mut *block };
    let total_len = (28 + quote).to_be_bytes();
    let header = [
        0x45,
        ERROR_TOS,
        total_len[0],
        total_len[1],
        0,
        0,
        0,
        0,
        ERROR_TTL,
        IPPROTO_ICMP,
        0,
        0,
        key.dst[0],
        key.dst[1],
        key.dst[2],
        key.dst[3],
        key.src[0],
        key.src[1],
        key.src[2],
        key.src[3],
    ];
    let mut header_sum = 0u32;
    for i in 0..10 {
        header_sum += u32::from(u16::from_be_bytes([header[2 * i], header[2 * i + 1]]));
    }
    let header_check = (!csum::fold(header_sum)).to_be_bytes();
    for i in 0..20 {
        b[i] = header[i];
    }
    b[10] = header_check[0];
    b[11] = header_check[1];
    let icmp = time_exceeded_header(ICMP_TIME_EXCEEDED, quote_sum);
    for i in 0..8 {
        b[20 + i] = icmp[i];
    }
    Ok(())
}

/// The IPv6 header (VIP -> client) and the ICMPv6 header in front of a
/// quote of `quote` bytes summing to `quote_sum`.
#[expect(
    clippy::manual_memcpy,
    reason = "byte stores at constant offsets: a slice copy into packet memory can become a call to a byte-loop memcpy"
)]
#[inline(always)]
fn ipv6_headers(
    ctx: &XdpContext,
    l2: usize,
    key: &FlowKey,
    quote: u16,
    quote_sum: u32,
) -> Result<(), Malformed> {
    let block = ptr_at::<[u8; 48]>(ctx, l2)?;
    // SAFETY: ptr_at checked the 48 bytes are in the frame.
    let b = unsafe { &mut *block };
    let icmp_len = 8 + quote;
    let payload_len = icmp_len.to_be_bytes();
    let fixed = [
        0x60,
        0,
        0,
        0,
        payload_len[0],
        payload_len[1],
        IPPROTO_ICMPV6,
        ERROR_TTL,
    ];
    for i in 0..8 {
        b[i] = fixed[i];
    }
    for i in 0..16 {
        b[8 + i] = key.dst[i];
        b[24 + i] = key.src[i];
    }
    let icmp = time_exceeded_header(
        ICMPV6_TIME_EXCEEDED,
        quote_sum + pseudo_header_sum(key, icmp_len),
    );
    for i in 0..8 {
        b[40 + i] = icmp[i];
    }
    Ok(())
}

/// An ICMP or ICMPv6 "time exceeded in transit" header of type `kind`
/// whose checksum covers `sum` (the quote's, and for ICMPv6 the
/// pseudo-header's) and the header itself.
#[inline(always)]
fn time_exceeded_header(kind: u8, sum: u32) -> [u8; 8] {
    let check = (!csum::fold(sum + u32::from(u16::from_be_bytes([kind, EXCEEDED_IN_TRANSIT]))))
        .to_be_bytes();
    [kind, EXCEEDED_IN_TRANSIT, check[0], check[1], 0, 0, 0, 0]
}

/// The ICMPv6 pseudo-header's sum (RFC 8200 8.1): VIP, client, length and
/// next header.
#[inline(always)]
fn pseudo_header_sum(key: &FlowKey, icmp_len: u16) -> u32 {
    let mut sum = u32::from(icmp_len) + u32::from(IPPROTO_ICMPV6);
    for i in 0..8 {
        sum += u32::from(u16::from_be_bytes([key.src[2 * i], key.src[2 * i + 1]]));
        sum += u32::from(u16::from_be_bytes([key.dst[2 * i], key.dst[2 * i + 1]]));
    }
    sum
}
