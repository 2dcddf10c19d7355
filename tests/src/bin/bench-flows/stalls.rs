//! The second half of `cargo xtask bench flows`: what 300 long-lived TCP
//! connections and a UDP stream through a balancer pair go through when
//! something happens to the MASTER (the HA lab of the `ha_flows` tests:
//! two lbd nodes, VRRPv3 every 0.2 s, a sync group with the front VIP and
//! the backends' gateway, XDP on both LANs, three backends). Each row is a
//! fresh lab; the reference row is the same run with nothing happening, so
//! the ratio says how much longer than a quiet network the worst wait was.

use anyhow::Result;
use lb_tests::ha_lab::{Event, HaLab};

/// The schedulers measured and the configuration each needs beyond the
/// pair's own.
const SCHEDULERS: [(&str, &str); 2] = [
    ("mh", ""),
    (
        "wrr",
        "flow_sync:\n  interface: eth1\n  group: 224.0.0.81\n",
    ),
];

pub(crate) fn run() -> Result<()> {
    println!();
    println!("established flows through a pair (300 TCP every 50 ms + UDP every 20 ms):");
    for (scheduler, rest) in SCHEDULERS {
        let mut reference = None;
        for event in Event::ALL {
            let (_lab, report) = HaLab::flows_through(event, scheduler, rest)?;
            let stall = report.longest_stall.as_secs_f64() * 1e3;
            let base = *reference.get_or_insert(stall.max(1.0));
            println!(
                "  {scheduler:>3} {:<32} {}  ({:.1}x the reference's longest wait)",
                event.name(),
                report.summary(),
                stall / base
            );
        }
    }
    Ok(())
}
