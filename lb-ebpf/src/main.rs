//! The balancer's XDP program.
//!
//! Everything it does not own goes to the kernel with `XDP_PASS`: a frame it
//! cannot parse is counted as malformed and passed, never dropped by accident.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![allow(
    clippy::needless_borrows_for_generic_args,
    reason = "map keys are passed by reference so they are never copied onto the 512-byte BPF stack"
)]
#![allow(
    clippy::inline_always,
    reason = "BPF code inlines its helpers so the verifier sees one function with known bounds"
)]

mod balance;
mod conntrack;
mod egress;
mod flow;
mod forward;
mod headers;
mod icmp;
mod ingress;
mod ipv4_options;
mod maps;
mod nat;
mod parse;
mod ptr;
mod reply;
mod schedule;
mod stats;
mod sync;
mod time_exceeded;
mod words;

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_get_prandom_u32, macros::xdp, programs::XdpContext,
};
use lb_common::{counters::Counter, generator};

#[xdp]
#[expect(
    clippy::needless_pass_by_value,
    reason = "the #[xdp] macro hands the context over by value"
)]
fn lb_xdp(ctx: XdpContext) -> u32 {
    stats::count(Counter::RxFrames);
    stats::add(Counter::RxBytes, (ctx.data_end() - ctx.data()) as u64);
    let action = process(&ctx).unwrap_or_else(|parse::Malformed| {
        // Not ours to judge: the kernel's own stack decides what to do with it.
        stats::count(Counter::Malformed);
        xdp_action::XDP_PASS
    });
    match action {
        xdp_action::XDP_PASS => stats::count(Counter::Pass),
        xdp_action::XDP_DROP => stats::count(Counter::Drop),
        _ => {}
    }
    action
}

/// Parses the frame and balances it if it is ours; everything else passes.
#[inline(always)]
fn process(ctx: &XdpContext) -> Result<u32, parse::Malformed> {
    if !parse::parse_into(ctx) {
        return Err(parse::Malformed);
    }
    let mut packet = parse::Packet::from_parsed()?;
    packet.ingress_ifindex = ctx.ingress_ifindex() as u32;
    if loopback_destination(ctx, &packet)? {
        stats::count(Counter::LoopbackDestination);
        return Ok(xdp_action::XDP_DROP);
    }
    if packet.later_fragment {
        return Ok(xdp_action::XDP_PASS);
    }
    if packet.transport == parse::Transport::Icmp {
        let action = icmp::translate(ctx, &packet);
        if action != icmp::NOT_OURS {
            return Ok(action);
        }
    } else if let Some(flow) = flow::read(ctx, &packet)?
        && let Some(action) = balance::balance(ctx, &packet, flow)
    {
        return Ok(action);
    }
    Ok(xdp_action::XDP_PASS)
}

/// Whether an IPv4 packet is addressed to 127.0.0.0/8. No router accepts
/// one from a link, and the kernel drops it as a martian unless
/// `route_localnet` is set, which lbd sets where a real server listens on
/// 127.0.0.0/8: then only the program's own translations may reach it.
#[inline(always)]
fn loopback_destination(
    ctx: &XdpContext,
    packet: &parse::Packet,
) -> Result<bool, parse::Malformed> {
    if packet.ip != Some(parse::Family::Ipv4) {
        return Ok(false);
    }
    let ip = ptr::ptr_at::<headers::Ipv4Hdr>(ctx, packet.l3_offset)?;
    // SAFETY: ptr_at checked the header lies in the frame.
    Ok(unsafe { (*ip).dst[0] } == 127)
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic; this only satisfies no_std.
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {}

/// The reference for benchmarks: a program that does nothing but pass.
#[xdp]
fn lb_bare_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// The packet-rate benchmark's baseline: drops every frame at the first hop,
/// so what remains is the generator's and the veth's own cost.
#[xdp]
fn lb_bare_drop(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

/// The packet-rate benchmark's traffic generator, run by
/// `BPF_PROG_TEST_RUN` in live-frames mode: each frame is sent back out of
/// the generator's interface in batches, as a NIC would deliver them.
/// Recycled frames keep what the data planes wrote into them, so the
/// header is restored first; the source port picks one of the flows.
#[xdp]
#[expect(
    clippy::needless_pass_by_value,
    reason = "the #[xdp] macro hands the context over by value"
)]
fn lb_bench_generate(ctx: XdpContext) -> u32 {
    let Ok(header) = ptr::ptr_at::<[u8; generator::HEADER_LEN]>(&ctx, 0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: ptr_at checked the header lies in the frame.
    unsafe {
        let template = &*generator::FRAME
            .as_ptr()
            .cast::<[u8; generator::HEADER_LEN]>();
        core::ptr::write_unaligned(header, *template);
        // SAFETY: a helper without arguments.
        let n = bpf_get_prandom_u32() % u32::from(generator::FLOWS);
        #[expect(clippy::cast_possible_truncation, reason = "n < FLOWS")]
        let port = (generator::FIRST_PORT + n as u16).to_be_bytes();
        (*header)[generator::SOURCE_PORT_OFFSET] = port[0];
        (*header)[generator::SOURCE_PORT_OFFSET + 1] = port[1];
    }
    xdp_action::XDP_TX
}
