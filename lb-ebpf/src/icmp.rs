//! ICMP errors about balanced flows, translated like the flows themselves so
//! path MTU discovery and unreachables work through the balancer:
//!
//! - towards a VIP (e.g. "fragmentation needed" from a router on the client
//!   side, quoting our reply VIP -> client): sent on to the flow's backend,
//!   the quoted source rewritten from VIP:port to backend:port;
//! - from the backend side, quoting client -> backend:port: sent on to the
//!   client, the quoted destination rewritten to VIP:port (and the outer
//!   source too when the backend itself sent the error).
//!
//! Every checksum that covers a changed byte is updated incrementally: the
//! outer IPv4 header, the quoted IPv4 header, the quoted TCP / UDP checksum
//! when it was quoted, and the ICMP checksum (with its pseudo-header for
//! ICMPv6).

use aya_ebpf::programs::XdpContext;
use lb_common::{
    counters::Counter,
    csum,
    maps::{BACKEND_LIVE, FAMILY_IPV4, FAMILY_IPV6, RealKey, ServiceKey},
};

use crate::{
    forward::{self, send},
    headers::{
        IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IcmpHdr, Ipv4Hdr, Ipv6Hdr, be16,
    },
    maps::{BACKENDS, CONNTRACK, REALS, REVERSE, SCRATCH, SERVICES},
    parse::{Family, Malformed, Packet},
    ptr::ptr_at,
    stats,
    words::{set_addr4, set_addr16},
};

/// Returned when the message is not an error about one of our flows.
pub(crate) const NOT_OURS: u32 = u32::MAX;

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_PACKET_TOO_BIG: u8 = 2;
const ICMPV6_TIME_EXCEEDED: u8 = 3;

/// Where the quoted packet's endpoint to rewrite is, and what becomes of it.
struct Plan {
    /// Rewrite the quoted source (towards a backend) or destination.
    quoted_source: bool,
    old_addr: [u8; 16],
    new_addr: [u8; 16],
    old_port: [u8; 2],
    new_port: [u8; 2],
    /// Also rewrite the outer destination (towards a backend) / source
    /// (an error the backend itself sent).
    outer: bool,
}

/// A BPF function of its own (own stack frame): translates an ICMP error or
/// returns [`NOT_OURS`].
#[inline(never)]
pub(crate) fn translate(ctx: &XdpContext, packet: &Packet) -> u32 {
    match try_translate(ctx, packet) {
        Ok(Some(action)) => action,
        Ok(None) => NOT_OURS,
        Err(Malformed) => {
            stats::count(Counter::Malformed);
            NOT_OURS
        }
    }
}

#[inline(always)]
fn try_translate(ctx: &XdpContext, packet: &Packet) -> Result<Option<u32>, Malformed> {
    let l4 = packet.l4_offset;
    let icmp = ptr_at::<IcmpHdr>(ctx, l4)?;
    // SAFETY (header reads and writes below): ptr_at checked each header.
    let kind = unsafe { (*icmp).kind };
    let inner_l3 = l4 + core::mem::size_of::<IcmpHdr>();
    let v4 = packet.ip == Some(Family::Ipv4);
    let is_error = if v4 {
        kind == ICMP_DEST_UNREACH || kind == ICMP_TIME_EXCEEDED
    } else {
        kind == ICMPV6_DEST_UNREACH || kind == ICMPV6_PACKET_TOO_BIG || kind == ICMPV6_TIME_EXCEEDED
    };
    if !is_error {
        return Ok(None);
    }

    // The quoted packet's addresses, ports and where its L4 header starts.
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(Malformed)?;
    // SAFETY: this CPU's slot, used by this run only.
    let scratch = unsafe { &mut *scratch };
    let quoted = &mut scratch.other;
    let inner_l4 = if v4 {
        let inner = ptr_at::<Ipv4Hdr>(ctx, inner_l3)?;
        let ihl = usize::from(unsafe { (*inner).version_ihl } & 0x0f) * 4;
        if ihl < core::mem::size_of::<Ipv4Hdr>() {
            return Ok(None);
        }
        set_addr4(&mut quoted.src, unsafe { &(*inner).src });
        set_addr4(&mut quoted.dst, unsafe { &(*inner).dst });
        quoted.proto = unsafe { (*inner).protocol };
        quoted.family = FAMILY_IPV4;
        inner_l3 + ihl
    } else {
        let inner = ptr_at::<Ipv6Hdr>(ctx, inner_l3)?;
        set_addr16(&mut quoted.src, unsafe { &(*inner).src });
        set_addr16(&mut quoted.dst, unsafe { &(*inner).dst });
        quoted.proto = unsafe { (*inner).next_header };
        quoted.family = FAMILY_IPV6;
        inner_l3 + core::mem::size_of::<Ipv6Hdr>()
    };
    if quoted.proto != IPPROTO_TCP && quoted.proto != IPPROTO_UDP {
        return Ok(None);
    }
    // RFC 792 / 4443 errors quote at least the first 8 bytes of L4.
    let ports = ptr_at::<[u8; 8]>(ctx, inner_l4)?;
    quoted.sport = unsafe { [(*ports)[0], (*ports)[1]] };
    quoted.dport = unsafe { [(*ports)[2], (*ports)[3]] };
    quoted._pad = [0; 2];

    let Some(plan) = plan(quoted) else {
        return Ok(None);
    };
    rewrite(ctx, packet, inner_l3, inner_l4, &plan)?;

    // Route the translated error by its outer addresses.
    let translated = &mut scratch.translated;
    translated.family = quoted.family;
    translated.proto = if v4 { IPPROTO_ICMP } else { IPPROTO_ICMPV6 };
    translated.sport = [0; 2];
    translated.dport = [0; 2];
    translated._pad = [0; 2];
    if v4 {
        let outer = ptr_at::<Ipv4Hdr>(ctx, packet.l3_offset)?;
        set_addr4(&mut translated.src, unsafe { &(*outer).src });
        set_addr4(&mut translated.dst, unsafe { &(*outer).dst });
    } else {
        let outer = ptr_at::<Ipv6Hdr>(ctx, packet.l3_offset)?;
        set_addr16(&mut translated.src, unsafe { &(*outer).src });
        set_addr16(&mut translated.dst, unsafe { &(*outer).dst });
    }
    let route = forward::route(ctx, packet, &scratch.translated, &mut scratch.fib);
    stats::count(Counter::IcmpTranslated);
    send(ctx, packet, route, &scratch.fib).map(Some)
}

/// Decides the translation from the quoted packet, or `None` if it is not
/// about a balanced flow.
#[inline(always)]
fn plan(quoted: &lb_common::maps::FlowKey) -> Option<Plan> {
    // Our own reply VIP:port -> client, bounced back to us: send the error
    // to the backend that sent the reply.
    let service = ServiceKey {
        addr: quoted.src,
        port: quoted.sport,
        proto: quoted.proto,
        family: quoted.family,
    };
    if SERVICES.get_ptr(&service).is_some() {
        let client_key = lb_common::maps::FlowKey {
            src: quoted.dst,
            dst: quoted.src,
            sport: quoted.dport,
            dport: quoted.sport,
            ..*quoted
        };
        let flow = CONNTRACK.get_ptr(&client_key)?;
        // SAFETY: valid for this run.
        let backend = BACKENDS.get(unsafe { (*flow).backend })?;
        if backend.flags & BACKEND_LIVE == 0 {
            return None;
        }
        return Some(Plan {
            quoted_source: true,
            old_addr: quoted.src,
            new_addr: backend.addr,
            old_port: quoted.sport,
            new_port: backend.port,
            outer: true,
        });
    }
    // Client -> backend:port, bounced by the backend or a router on its
    // side: send the error to the client as if about VIP:port.
    let real = RealKey {
        addr: quoted.dst,
        port: quoted.dport,
        proto: quoted.proto,
        family: quoted.family,
    };
    let real = REALS.get_ptr(&real)?;
    // SAFETY: valid for this run.
    let real = unsafe { *real };
    let (vip, vport) = if real.ambiguous == 0 {
        (real.vip, real.vport)
    } else {
        let reply_key = lb_common::maps::FlowKey {
            src: quoted.dst,
            dst: quoted.src,
            sport: quoted.dport,
            dport: quoted.sport,
            ..*quoted
        };
        let reverse = REVERSE.get_ptr(&reply_key)?;
        // SAFETY: valid for this run.
        unsafe { ((*reverse).vip, (*reverse).vport) }
    };
    Some(Plan {
        quoted_source: false,
        old_addr: quoted.dst,
        new_addr: vip,
        old_port: quoted.dport,
        new_port: vport,
        outer: false,
    })
}

/// Applies `plan`, keeping every checksum right.
#[inline(always)]
fn rewrite(
    ctx: &XdpContext,
    packet: &Packet,
    inner_l3: usize,
    inner_l4: usize,
    plan: &Plan,
) -> Result<(), Malformed> {
    let icmp = ptr_at::<IcmpHdr>(ctx, packet.l4_offset)?;
    // SAFETY (all header accesses below): ptr_at checked each header.
    let mut icmp_check = be16(unsafe { (*icmp).check });
    let v4 = packet.ip == Some(Family::Ipv4);
    let tcp = quoted_is_tcp(ctx, inner_l3, v4)?;

    // The quoted L4 checksum, if it was quoted at all (a TCP checksum sits
    // beyond the 8 bytes every error carries).
    let l4_check_at = inner_l4 + if tcp { 16 } else { 6 };
    if let Ok(field) = ptr_at::<[u8; 2]>(ctx, l4_check_at) {
        let old = be16(unsafe { *field });
        if tcp || old != 0 {
            let mut new = if v4 {
                csum::replace(old, &addr4(&plan.old_addr), &addr4(&plan.new_addr))
            } else {
                csum::replace(old, &plan.old_addr, &plan.new_addr)
            };
            new = csum::replace(new, &plan.old_port, &plan.new_port);
            if !tcp {
                new = csum::udp_nonzero(new);
            }
            unsafe { *field = new.to_be_bytes() };
            icmp_check = csum::replace_u16(icmp_check, old, new);
        }
    }

    // The quoted port.
    let ports = ptr_at::<[u8; 4]>(ctx, inner_l4)?;
    unsafe {
        let at = if plan.quoted_source { 0 } else { 2 };
        (*ports)[at] = plan.new_port[0];
        (*ports)[at + 1] = plan.new_port[1];
    }
    icmp_check = csum::replace(icmp_check, &plan.old_port, &plan.new_port);

    if v4 {
        let (old4, new4) = (addr4(&plan.old_addr), addr4(&plan.new_addr));
        let inner = ptr_at::<Ipv4Hdr>(ctx, inner_l3)?;
        let old_check = unsafe { (*inner).check };
        unsafe {
            if plan.quoted_source {
                (*inner).src = new4;
            } else {
                (*inner).dst = new4;
            }
            (*inner).check = csum::replace(be16(old_check), &old4, &new4).to_be_bytes();
            icmp_check = csum::replace(icmp_check, &old4, &new4);
            icmp_check = csum::replace(icmp_check, &old_check, &(*inner).check);
        }
        let outer = ptr_at::<Ipv4Hdr>(ctx, packet.l3_offset)?;
        unsafe {
            // Towards the backend the outer destination is the VIP; from the
            // backend, only an error the backend itself sent names it.
            let outer_field = if plan.outer {
                Some(&raw mut (*outer).dst)
            } else if (*outer).src == old4 {
                Some(&raw mut (*outer).src)
            } else {
                None
            };
            if let Some(field) = outer_field {
                let old = *field;
                *field = new4;
                (*outer).check = csum::replace(be16((*outer).check), &old, &new4).to_be_bytes();
            }
        }
    } else {
        let inner = ptr_at::<Ipv6Hdr>(ctx, inner_l3)?;
        unsafe {
            if plan.quoted_source {
                (*inner).src = plan.new_addr;
            } else {
                (*inner).dst = plan.new_addr;
            }
        }
        icmp_check = csum::replace(icmp_check, &plan.old_addr, &plan.new_addr);
        let outer = ptr_at::<Ipv6Hdr>(ctx, packet.l3_offset)?;
        unsafe {
            let outer_field = if plan.outer {
                Some(&raw mut (*outer).dst)
            } else if (*outer).src == plan.old_addr {
                Some(&raw mut (*outer).src)
            } else {
                None
            };
            if let Some(field) = outer_field {
                *field = plan.new_addr;
                // ICMPv6's checksum covers the outer addresses too.
                icmp_check = csum::replace(icmp_check, &plan.old_addr, &plan.new_addr);
            }
        }
    }
    unsafe { (*icmp).check = icmp_check.to_be_bytes() };
    Ok(())
}

#[inline(always)]
fn quoted_is_tcp(ctx: &XdpContext, inner_l3: usize, v4: bool) -> Result<bool, Malformed> {
    // SAFETY: ptr_at checked the header.
    Ok(if v4 {
        unsafe { (*ptr_at::<Ipv4Hdr>(ctx, inner_l3)?).protocol == IPPROTO_TCP }
    } else {
        unsafe { (*ptr_at::<Ipv6Hdr>(ctx, inner_l3)?).next_header == IPPROTO_TCP }
    })
}

#[inline(always)]
fn addr4(a: &[u8; 16]) -> [u8; 4] {
    [a[0], a[1], a[2], a[3]]
}
