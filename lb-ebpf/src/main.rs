//! The balancer's XDP program.
//!
//! Everything it does not own goes to the kernel with `XDP_PASS`: a frame it
//! cannot parse is counted as malformed and passed, never dropped by accident.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![allow(
    clippy::inline_always,
    reason = "BPF code inlines its helpers so the verifier sees one function with known bounds"
)]

mod headers;
mod parse;
mod ptr;
mod stats;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use lb_common::counters::Counter;

#[xdp]
#[expect(
    clippy::needless_pass_by_value,
    reason = "the #[xdp] macro hands the context over by value"
)]
fn lb_xdp(ctx: XdpContext) -> u32 {
    stats::count(Counter::RxFrames);
    stats::add(Counter::RxBytes, (ctx.data_end() - ctx.data()) as u64);
    // Nothing is balanced yet: every parsed frame goes on to the kernel.
    let action = xdp_action::XDP_PASS;
    if parse::parse(&ctx).is_err() {
        // Not ours to judge: the kernel's own stack decides what to do with it.
        stats::count(Counter::Malformed);
    }
    stats::count(if action == xdp_action::XDP_DROP {
        Counter::Drop
    } else {
        Counter::Pass
    });
    action
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
