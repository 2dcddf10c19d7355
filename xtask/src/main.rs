//! `cargo xtask`: the project's commands. One file per subcommand.

mod bench;
mod build;
mod cmd;
mod dist;
mod run;
mod setup;
mod test;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, test and run the balancer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing: Debian's Rust for BPF, LLVM 22, bpf-linker.
    Setup,
    /// Build `lbd` with the XDP program embedded.
    Build(build::BuildArgs),
    /// Build the Debian package, target/dist/lbd_VERSION_ARCH.deb.
    Dist,
    /// Run the whole suite: format, lints, unit, fixture and namespace tests.
    Test(test::TestArgs),
    /// Run the balancer in a lab of network namespaces.
    Run(run::RunArgs),
    /// Benchmarks (figures and ratios, never pass/fail).
    Bench(bench::BenchArgs),
    /// Boot the lab VM (Debian's kernel, with IPVS, under qemu) and run a
    /// script or binary inside.
    Vm(vm::VmArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::setup(),
        Command::Build(args) => build::build(&args).map(|_| ()),
        Command::Dist => dist::dist().map(|_| ()),
        Command::Test(args) => test::test(&args),
        Command::Run(args) => run::run(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Vm(args) => vm::vm(&args),
    }
}
