//! `cargo xtask bench NAME`: benchmarks that print figures and ratios
//! against a reference measured in the same invocation. Not tests: nothing
//! here passes or fails on a timing.

use anyhow::Result;

use crate::{
    cmd::{self, step},
    setup,
};

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub(crate) which: Which,
}

#[derive(clap::Subcommand)]
pub(crate) enum Which {
    /// The XDP program's cost per packet on each path, against a bare
    /// XDP_PASS program (BPF_PROG_TEST_RUN, 1,000,000 repeats).
    Dataplane,
    /// Packets per second per core through the XDP data plane against the
    /// kernel's nftables DNAT, same topology and generator.
    Pps,
    /// Client-visible outage when the VRRP MASTER stops, for lbd and for
    /// keepalived with the same settings.
    Failover,
    /// 1,000 real servers checked every second with HTTP_GET: lbd's CPU
    /// share and resident memory.
    Health,
    /// Listing a full XDP flow table (262,144 flows) as `lbd status -c`
    /// does, against a plain walk of the same map; then the stalls of 300
    /// long-lived flows through a balancer pair across failover, crash and
    /// restart, against a round where nothing happens.
    Flows,
}

pub(crate) fn bench(args: &BenchArgs) -> Result<()> {
    setup::setup()?;
    let binary = match args.which {
        Which::Dataplane => "bench-dataplane",
        Which::Pps => "bench-pps",
        Which::Failover => "bench-failover",
        Which::Health => "bench-health",
        Which::Flows => "bench-flows",
    };
    // The failover and health benches run real daemons: build lbd as it would ship.
    step("build lbd (release)", || {
        cmd::run(cmd::cargo().args(["build", "--release", "--package", "lb-userspace", "--bins"]))
    })?;
    step(&format!("build {binary} (release)"), || {
        cmd::run(cmd::cargo().args([
            "build",
            "--release",
            "--package",
            "lb-tests",
            "--bin",
            binary,
        ]))
    })?;
    let path = cmd::workspace_root()
        .join("target")
        .join("release")
        .join(binary);
    cmd::run(&mut std::process::Command::new(path))
}
