//! The TC egress program: the replies of real servers on this host.
//!
//! The XDP program translates a client's packet for a local real server
//! (a sorry page on 127.0.0.1:80, a service on one of the node's
//! addresses) and hands it to the kernel, which delivers it to the
//! server's socket. The socket answers from its own address and port,
//! and those replies leave through the kernel's output path, where no XDP
//! program runs. This program, on the egress of the same interfaces,
//! translates them back to come from the VIP, without kernel conntrack:
//! a packet whose source is a real server (`REALS`) and whose flow lbd
//! tracks (`CONNTRACK`, client -> VIP) is rewritten; anything else (the
//! node's own traffic, a direct connection to the server's address) is
//! left alone. The kernel's checksum helpers keep offloaded (partial)
//! checksums right.

use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR},
    helpers::bpf_ktime_get_ns,
    macros::classifier,
    programs::TcContext,
};
use lb_common::{
    counters::Counter,
    maps::{FAMILY_IPV4, FAMILY_IPV6, FlowKey, RealKey},
};

use crate::{
    conntrack,
    headers::{ETH_P_IPV4, ETH_P_IPV6, IPPROTO_TCP, IPPROTO_UDP},
    maps::{BACKEND_STATS, CONNTRACK, REALS, REVERSE, SERVICE_STATS},
    stats::{self, Direction},
};

/// `TCX_NEXT` / `TC_ACT_UNSPEC`: let the next program or the qdisc decide.
const NEXT: i32 = -1;
const ETH_LEN: usize = 14;

#[classifier]
#[expect(
    clippy::needless_pass_by_value,
    reason = "the #[classifier] macro hands the context over by value"
)]
fn lb_tc_egress(ctx: TcContext) -> i32 {
    let _ = translate(&ctx);
    NEXT
}

/// Where the fields of a TCP or UDP packet are.
struct Layout {
    family: u8,
    /// Offset of the source address; the destination follows it.
    addr: usize,
    addr_len: usize,
    /// Offset of the IPv4 header checksum (IPv6 has none).
    ip_check: Option<usize>,
    l4: usize,
    l4_check: usize,
    proto: u8,
}

/// The packet's layout, when it is an unfragmented TCP or UDP packet.
#[inline(always)]
fn layout(ctx: &TcContext) -> Option<Layout> {
    let ether_type = u16::from_be_bytes(ctx.load::<[u8; 2]>(12).ok()?);
    let (family, addr, addr_len, ip_check, l4, proto) = match ether_type {
        ETH_P_IPV4 => {
            let version_ihl: u8 = ctx.load(ETH_LEN).ok()?;
            let frag: [u8; 2] = ctx.load(ETH_LEN + 6).ok()?;
            // A fragment (more fragments, or an offset) is not ours.
            if frag[0] & 0x3f != 0 || frag[1] != 0 {
                return None;
            }
            let ihl = usize::from(version_ihl & 0x0f) * 4;
            if ihl < 20 {
                return None;
            }
            let proto: u8 = ctx.load(ETH_LEN + 9).ok()?;
            (
                FAMILY_IPV4,
                ETH_LEN + 12,
                4,
                Some(ETH_LEN + 10),
                ETH_LEN + ihl,
                proto,
            )
        }
        // Extension headers are not walked: a local server's replies
        // carry none.
        ETH_P_IPV6 => {
            let proto: u8 = ctx.load(ETH_LEN + 6).ok()?;
            (FAMILY_IPV6, ETH_LEN + 8, 16, None, ETH_LEN + 40, proto)
        }
        _ => return None,
    };
    let l4_check = match proto {
        IPPROTO_TCP => l4 + 16,
        IPPROTO_UDP => l4 + 6,
        _ => return None,
    };
    Some(Layout {
        family,
        addr,
        addr_len,
        ip_check,
        l4,
        l4_check,
        proto,
    })
}

/// Reads `len` (4 or 16) address bytes at `offset` into a 16-byte key field.
#[inline(always)]
fn load_addr(ctx: &TcContext, offset: usize, len: usize) -> Option<[u8; 16]> {
    let mut addr = [0u8; 16];
    if len == 4 {
        let a: [u8; 4] = ctx.load(offset).ok()?;
        addr[..4].copy_from_slice(&a);
    } else {
        addr = ctx.load(offset).ok()?;
    }
    Some(addr)
}

#[inline(always)]
fn translate(ctx: &TcContext) -> Option<()> {
    let l = layout(ctx)?;
    let src = load_addr(ctx, l.addr, l.addr_len)?;
    let sport: [u8; 2] = ctx.load(l.l4).ok()?;
    let real_key = RealKey {
        addr: src,
        port: sport,
        proto: l.proto,
        family: l.family,
    };
    // SAFETY: a map value pointer stays valid for this program run.
    let real = unsafe { *REALS.get_ptr(&real_key)? };
    let dst = load_addr(ctx, l.addr + l.addr_len, l.addr_len)?;
    let dport: [u8; 2] = ctx.load(l.l4 + 2).ok()?;
    let reply = FlowKey {
        src,
        dst,
        sport,
        dport,
        proto: l.proto,
        family: l.family,
        _pad: [0; 2],
    };
    let (vip, vport) = if real.ambiguous == 0 {
        (real.vip, real.vport)
    } else {
        // SAFETY: as above.
        let reverse = unsafe { *REVERSE.get_ptr(&reply)? };
        (reverse.vip, reverse.vport)
    };
    let client = FlowKey {
        src: dst,
        dst: vip,
        sport: dport,
        dport: vport,
        proto: l.proto,
        family: l.family,
        _pad: [0; 2],
    };
    // Only flows lbd balanced: the server's own traffic stays as it is.
    let flow = CONNTRACK.get_ptr_mut(&client)?;
    let tcp_flags: u8 = if l.proto == IPPROTO_TCP {
        ctx.load(l.l4 + 13).ok()?
    } else {
        0
    };
    // SAFETY: valid for this run; a race with the XDP program updating the
    // same flow only touches its state and timestamp.
    let (service, backend) = unsafe {
        (*flow).state = conntrack::next_state((*flow).state, tcp_flags);
        (*flow).last_seen_ns = bpf_ktime_get_ns();
        ((*flow).service, (*flow).backend)
    };
    rewrite_source(ctx, &l, &src, &vip, sport, vport)?;
    let bytes = u64::from(ctx.len());
    stats::traffic(&SERVICE_STATS, service, Direction::Out, bytes, false);
    stats::traffic(&BACKEND_STATS, backend, Direction::Out, bytes, false);
    stats::count(Counter::FromBackend);
    Some(())
}

/// Rewrites the source address and port, with the IPv4 header checksum
/// and the TCP / UDP checksum (whose pseudo-header covers the address).
#[inline(always)]
fn rewrite_source(
    ctx: &TcContext,
    l: &Layout,
    old: &[u8; 16],
    new: &[u8; 16],
    old_port: [u8; 2],
    new_port: [u8; 2],
) -> Option<()> {
    // A UDP checksum of 0 means none: keep it so (MARK_MANGLED_0).
    let l4_flags = if l.proto == IPPROTO_UDP {
        u64::from(BPF_F_MARK_MANGLED_0)
    } else {
        0
    };
    let words = l.addr_len / 4;
    for i in 0..4 {
        if i >= words {
            break;
        }
        let from = u32::from_ne_bytes([old[i * 4], old[i * 4 + 1], old[i * 4 + 2], old[i * 4 + 3]]);
        let to = u32::from_ne_bytes([new[i * 4], new[i * 4 + 1], new[i * 4 + 2], new[i * 4 + 3]]);
        if let Some(ip_check) = l.ip_check {
            ctx.l3_csum_replace(ip_check, u64::from(from), u64::from(to), 4)
                .ok()?;
        }
        ctx.l4_csum_replace(
            l.l4_check,
            u64::from(from),
            u64::from(to),
            u64::from(BPF_F_PSEUDO_HDR) | l4_flags | 4,
        )
        .ok()?;
        ctx.store(l.addr + i * 4, &to, 0).ok()?;
    }
    let from = u16::from_ne_bytes(old_port);
    let to = u16::from_ne_bytes(new_port);
    if from != to {
        ctx.l4_csum_replace(l.l4_check, u64::from(from), u64::from(to), l4_flags | 2)
            .ok()?;
        ctx.store(l.l4, &to, 0).ok()?;
    }
    Some(())
}
