//! Forwarding a translated packet ourselves: the next hop from the kernel's
//! FIB (`bpf_fib_lookup`), TTL / hop limit decremented as a router must, new
//! MAC addresses, then `XDP_TX` or a redirect. Whatever the FIB cannot answer
//! at once (neighbour not resolved yet, MTU exceeded, TTL expiring) goes to
//! the kernel, which resolves ARP / ND or sends the ICMP error: never dropped.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_FIB_LKUP_RET_NOT_FWDED, BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup, xdp_action},
    helpers::{bpf_fib_lookup as fib_lookup, bpf_redirect},
    programs::XdpContext,
};
use lb_common::{
    csum,
    maps::{FlowKey, NEXT_HOP_TTL_NS, NextHop},
};

use lb_common::counters::Counter;

use crate::{
    headers::{EthHdr, Ipv4Hdr, Ipv6Hdr, be16},
    parse::{Family, Malformed, Packet},
    ptr::ptr_at,
    stats,
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Where the FIB sends a packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Out of `params.ifindex` to `params.dmac`, from `params.smac`.
    Next,
    /// The destination is this host.
    Local,
    /// The kernel must handle it (no neighbour yet, MTU, unreachable...).
    Kernel,
}

/// Looks up the route of a packet that will carry `key`'s addresses and
/// ports (already translated); the next hop is left in `params`.
#[inline(always)]
pub(crate) fn route(
    ctx: &XdpContext,
    packet: &Packet,
    key: &FlowKey,
    params: &mut bpf_fib_lookup,
) -> Route {
    // All-zero is a valid bpf_fib_lookup (plain data).
    crate::words::zero(params);
    params.l4_protocol = key.proto;
    params.sport = u16::from_ne_bytes(key.sport);
    params.dport = u16::from_ne_bytes(key.dport);
    params.ifindex = packet.ingress_ifindex;
    let frame_len = (ctx.data_end() - ctx.data()) as u16;
    params.__bindgen_anon_1.tot_len = frame_len.saturating_sub(packet.l3_offset as u16);
    match packet.ip {
        Some(Family::Ipv4) => {
            params.family = AF_INET;
            params.__bindgen_anon_3.ipv4_src =
                u32::from_ne_bytes([key.src[0], key.src[1], key.src[2], key.src[3]]);
            params.__bindgen_anon_4.ipv4_dst =
                u32::from_ne_bytes([key.dst[0], key.dst[1], key.dst[2], key.dst[3]]);
        }
        Some(Family::Ipv6) => {
            params.family = AF_INET6;
            params.__bindgen_anon_3.ipv6_src = words(&key.src);
            params.__bindgen_anon_4.ipv6_dst = words(&key.dst);
        }
        None => return Route::Kernel,
    }
    // SAFETY: params is a valid, writable bpf_fib_lookup of the size passed.
    let rc = unsafe {
        fib_lookup(
            ctx.as_ptr(),
            core::ptr::from_mut(params),
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    match rc as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => Route::Next,
        BPF_FIB_LKUP_RET_NOT_FWDED => Route::Local,
        _ => Route::Kernel,
    }
}

#[inline(always)]
fn words(addr: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_ne_bytes([addr[0], addr[1], addr[2], addr[3]]),
        u32::from_ne_bytes([addr[4], addr[5], addr[6], addr[7]]),
        u32::from_ne_bytes([addr[8], addr[9], addr[10], addr[11]]),
        u32::from_ne_bytes([addr[12], addr[13], addr[14], addr[15]]),
    ]
}

/// Sends the packet to the next hop: decrements the TTL / hop limit, sets
/// the MAC addresses, and transmits. Returns `XDP_PASS` when the TTL would
/// expire, so the kernel sends Time Exceeded.
#[inline(always)]
pub(crate) fn transmit(ctx: &XdpContext, packet: &Packet, hop: &NextHop) -> Result<u32, Malformed> {
    let ifindex = hop.ifindex;
    // SAFETY (header accesses below): ptr_at checked each header is in the frame.
    match packet.ip {
        Some(Family::Ipv4) => {
            let ip = ptr_at::<Ipv4Hdr>(ctx, packet.l3_offset)?;
            let ttl_proto = unsafe { [(*ip).ttl, (*ip).protocol] };
            if ttl_proto[0] <= 1 {
                return Ok(xdp_action::XDP_PASS);
            }
            let new = [ttl_proto[0] - 1, ttl_proto[1]];
            unsafe {
                (*ip).ttl = new[0];
                (*ip).check = csum::replace(be16((*ip).check), &ttl_proto, &new).to_be_bytes();
            }
        }
        Some(Family::Ipv6) => {
            let ip = ptr_at::<Ipv6Hdr>(ctx, packet.l3_offset)?;
            let hop_limit = unsafe { (*ip).hop_limit };
            if hop_limit <= 1 {
                return Ok(xdp_action::XDP_PASS);
            }
            unsafe { (*ip).hop_limit = hop_limit - 1 };
        }
        None => return Err(Malformed),
    }
    let eth = ptr_at::<EthHdr>(ctx, 0)?;
    unsafe {
        (*eth).dst = hop.dmac;
        (*eth).src = hop.smac;
    }
    if ifindex == packet.ingress_ifindex {
        return Ok(xdp_action::XDP_TX);
    }
    // SAFETY: bpf_redirect only reads its arguments.
    Ok(unsafe { bpf_redirect(ifindex, 0) } as u32)
}

/// Whether the packet's TTL / hop limit would expire on the way through.
#[inline(always)]
pub(crate) fn expiring(ctx: &XdpContext, packet: &Packet) -> Result<bool, Malformed> {
    // SAFETY (header reads below): ptr_at checked each header is in the frame.
    let ttl = match packet.ip {
        Some(Family::Ipv4) => unsafe { (*ptr_at::<Ipv4Hdr>(ctx, packet.l3_offset)?).ttl },
        Some(Family::Ipv6) => unsafe { (*ptr_at::<Ipv6Hdr>(ctx, packet.l3_offset)?).hop_limit },
        None => return Err(Malformed),
    };
    Ok(ttl <= 1)
}

/// The next hop the last successful [`route`] left in `params`.
#[inline(always)]
pub(crate) fn next_hop(params: &bpf_fib_lookup, now: u64) -> NextHop {
    NextHop {
        ifindex: params.ifindex,
        smac: params.smac,
        dmac: params.dmac,
        looked_up_ns: now,
    }
}

/// Whether a cached next hop may still be used at `now`.
#[inline(always)]
pub(crate) fn fresh(hop: &NextHop, now: u64) -> bool {
    hop.looked_up_ns != 0 && now.saturating_sub(hop.looked_up_ns) < NEXT_HOP_TTL_NS
}

/// Sends along a cached next hop, counting the outcome.
#[inline(always)]
pub(crate) fn transmit_counted(
    ctx: &XdpContext,
    packet: &Packet,
    hop: &NextHop,
) -> Result<u32, Malformed> {
    let action = transmit(ctx, packet, hop)?;
    if action == xdp_action::XDP_PASS {
        stats::count(Counter::KernelForward);
    } else {
        stats::count(Counter::Redirect);
    }
    Ok(action)
}

/// Transmits a translated packet along `route`, or hands it to the kernel.
#[inline(always)]
pub(crate) fn send(
    ctx: &XdpContext,
    packet: &Packet,
    route: Route,
    fib: &aya_ebpf::bindings::bpf_fib_lookup,
) -> Result<u32, Malformed> {
    match route {
        // VLAN-tagged frames leave through the kernel's VLAN devices.
        Route::Next if !packet.vlan => transmit_counted(ctx, packet, &next_hop(fib, 0)),
        _ => {
            stats::count(Counter::KernelForward);
            Ok(xdp_action::XDP_PASS)
        }
    }
}
