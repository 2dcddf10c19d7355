//! Packet fixtures: run the real XDP program on a frame with
//! `BPF_PROG_TEST_RUN` and compare the verdict and every output byte.

use anyhow::{Context, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use lb_userspace::xdp::XdpProgram;

use crate::hexdiff::hexdiff;

/// Room for a program that grows the frame (encapsulation, adjust_head).
const OUTPUT_SLACK: usize = 256;

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// What the program did with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: u32,
    pub output: Vec<u8>,
}

/// Runs the loaded program once on `frame`.
pub fn run_once(program: &XdpProgram, frame: &[u8]) -> Result<Verdict> {
    let xdp = program.program()?;
    run_xdp(xdp, frame)
}

/// Runs `xdp` once on `frame`.
pub fn run_xdp(xdp: &Xdp, frame: &[u8]) -> Result<Verdict> {
    run_xdp_from(xdp, frame, None)
}

/// Runs `xdp` once on `frame` as if received on interface `ingress` of the
/// calling thread's network namespace, so FIB lookups see that namespace's
/// routes and neighbours.
pub fn run_xdp_from(xdp: &Xdp, frame: &[u8], ingress: Option<u32>) -> Result<Verdict> {
    let mut output = vec![0u8; frame.len() + OUTPUT_SLACK];
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex. The kernel wants data_end == length.
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&u32::try_from(frame.len())?.to_ne_bytes());
    if let Some(ifindex) = ingress {
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    }
    let result = xdp
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut output),
            ctx_in: ingress.map(|_| &ctx[..]),
            repeat: 1,
            ..TestRunOptions::default()
        })
        .with_context(|| format!("BPF_PROG_TEST_RUN on a {}-byte frame", frame.len()))?;
    output.truncate(result.data_size_out as usize);
    Ok(Verdict {
        action: result.return_value,
        output,
    })
}

pub fn action_name(action: u32) -> &'static str {
    match action {
        XDP_ABORTED => "XDP_ABORTED",
        XDP_DROP => "XDP_DROP",
        XDP_PASS => "XDP_PASS",
        XDP_TX => "XDP_TX",
        XDP_REDIRECT => "XDP_REDIRECT",
        _ => "unknown action",
    }
}

/// Panics with a readable report unless the verdict is `action` with
/// exactly `expected` as output.
#[track_caller]
pub fn assert_verdict(fixture: &str, got: &Verdict, action: u32, expected: &[u8]) {
    assert!(
        got.action == action,
        "fixture {fixture}: the program returned {} but {} was expected",
        action_name(got.action),
        action_name(action)
    );
    assert!(
        got.output == expected,
        "fixture {fixture}: output frame differs\n{}",
        hexdiff(expected, &got.output)
    );
}
