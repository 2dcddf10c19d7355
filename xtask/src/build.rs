//! `cargo xtask build`: `lbd` with the XDP object embedded (lb-userspace's
//! build script compiles lb-ebpf with Debian's toolchain).

use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::{self, step};

#[derive(clap::Args)]
pub(crate) struct BuildArgs {
    /// Build with optimisations.
    #[arg(long)]
    pub(crate) release: bool,
}

/// Builds `lbd` and returns its path.
pub(crate) fn build(args: &BuildArgs) -> Result<PathBuf> {
    step("build lbd and the XDP program", || {
        let mut cargo = cmd::cargo();
        cargo.args(["build", "--package", "lb-userspace", "--bins"]);
        if args.release {
            cargo.arg("--release");
        }
        cmd::run(&mut cargo)
    })?;
    let profile = if args.release { "release" } else { "debug" };
    Ok(cmd::workspace_root()
        .join("target")
        .join(profile)
        .join("lbd"))
}
