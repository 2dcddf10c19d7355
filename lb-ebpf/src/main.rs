//! The balancer's XDP program.
//!
//! Everything it does not own goes to the kernel with `XDP_PASS`: a frame it
//! cannot parse is counted as malformed and passed, never dropped by accident.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

mod headers;
mod parse;
mod ptr;
mod stats;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use lb_common::counters::Counter;

#[xdp]
fn lb_xdp(ctx: XdpContext) -> u32 {
    stats::count(Counter::RxFrames);
    stats::add(Counter::RxBytes, (ctx.data_end() - ctx.data()) as u64);
    let action = match parse::parse(&ctx) {
        Ok(_packet) => xdp_action::XDP_PASS,
        // Not ours to judge: the kernel's own stack decides what to do with it.
        Err(parse::Malformed) => {
            stats::count(Counter::Malformed);
            xdp_action::XDP_PASS
        }
    };
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
