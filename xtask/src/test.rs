//! `cargo xtask test`: the whole suite, in the order that fails fastest.
//! Ends with the test runner's summary line.

use std::process::Command;

use anyhow::Result;

use crate::{
    build::{self, BuildArgs},
    cmd::{self, step},
    setup,
};

#[derive(clap::Args)]
pub(crate) struct TestArgs {
    /// Only run tests whose name matches (passed to nextest); lints still run.
    pub(crate) filter: Option<String>,
}

pub(crate) fn test(args: &TestArgs) -> Result<()> {
    setup::setup()?;
    step("cargo fmt --check", || {
        cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))
    })?;
    step(
        "clippy (host crates, and lb-ebpf built for the host)",
        || {
            cmd::run(cmd::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        },
    )?;
    step("clippy (lb-ebpf for bpfel-unknown-none)", clippy_bpf)?;
    // The end-to-end tests start the real `lbd` binary.
    build::build(&BuildArgs { release: false })?;
    // Not wrapped in `step`: the runner's own summary line stays the last
    // thing printed.
    eprintln!("[xtask] tests (unit, XDP fixtures, network namespaces) ...");
    let mut nextest = cmd::cargo();
    nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    if let Some(filter) = &args.filter {
        nextest.arg(filter);
    }
    cmd::run(&mut nextest)
}

/// Lints the eBPF crate for its real target with Debian's clippy, whose
/// sysroot has `core` for BPF (rustup's has not).
fn clippy_bpf() -> Result<()> {
    let root = cmd::workspace_root();
    let path = format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default());
    let mut clippy = Command::new("/usr/bin/cargo");
    clippy
        .current_dir(&root)
        .env("PATH", path)
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .args(["clippy", "--release", "--locked", "--package", "lb-ebpf"])
        .args(["--target", "bpfel-unknown-none", "--target-dir"])
        .arg(root.join("target").join("bpf-clippy"))
        .args(["--", "-D", "warnings"]);
    cmd::run(&mut clippy)
}
