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
}

pub(crate) fn bench(args: &BenchArgs) -> Result<()> {
    setup::setup()?;
    let binary = match args.which {
        Which::Dataplane => "bench-dataplane",
    };
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
