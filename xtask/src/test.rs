//! `cargo xtask test`: the whole suite, in the order that fails fastest.
//! Ends with the test runner's summary line.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{
    build::{self, BuildArgs},
    cmd::{self, step},
    dist, setup, vm,
};

/// The feature that runs the tests needing root (tests/Cargo.toml); plain
/// `cargo test` leaves it off so it passes as a normal user.
const PRIVILEGED: &str = "lb-tests/privileged";

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
    // tests/tests/deb_package.rs installs the package (a release build).
    dist::dist()?;
    // Not wrapped in `step`: the runner's own summary line stays the last
    // thing printed.
    eprintln!("[xtask] tests (unit, XDP fixtures, network namespaces) ...");
    let mut nextest = cmd::cargo();
    nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    // Without it the tests that need root are reported as ignored.
    nextest.args(["--features", PRIVILEGED]);
    if let Some(filter) = &args.filter {
        nextest.arg(filter);
    }
    let host = cmd::run(&mut nextest);
    // The IPVS tests need a kernel with IPVS: one boot of the lab VM runs
    // them all (they are the `#[ignore]`d tests of tests/tests/ipvs_vm.rs).
    let ipvs = step("IPVS tests in the lab VM (Debian's kernel, TCG)", || {
        vm_tests("ipvs_vm", vm::Init::Shell, args.filter.as_deref())
    });
    // The shipped unit needs systemd as PID 1, which this machine's is not:
    // a second boot, with systemd (tests/tests/systemd_unit_vm.rs).
    let unit = step("the shipped unit under systemd in the lab VM", || {
        vm_tests("systemd_unit_vm", vm::Init::Systemd, args.filter.as_deref())
    });
    host?;
    ipvs?;
    unit
}

/// Builds the test binary `name` and runs its `#[ignore]`d tests inside the
/// lab VM.
fn vm_tests(name: &str, init: vm::Init, filter: Option<&str>) -> Result<()> {
    let out = cmd::cargo()
        .args(["test", "-p", "lb-tests", "--test", name, "--no-run"])
        .args(["--features", PRIVILEGED])
        .args(["--message-format", "json"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("while building the {name} tests"))?;
    if !out.status.success() {
        bail!("building the {name} tests failed");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter(|l| l.contains(&format!("\"name\":\"{name}\"")))
        .find_map(|l| {
            let start = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let len = l[start..].find('"')?;
            Some(l[start..start + len].to_owned())
        })
        .with_context(|| format!("cargo named no {name} test executable"))?;
    let kernel = vm::prepare().with_context(|| {
        format!("the lab VM cannot be prepared, so the {name} tests cannot run (see above)")
    })?;
    let mut command = vec![exe, "--ignored".to_owned(), "--test-threads=2".to_owned()];
    command.extend(filter.map(ToOwned::to_owned));
    let code = vm::run_in_vm(&kernel, &command, 2048, init)?;
    if code != 0 {
        bail!(
            "the {name} tests in the lab VM failed (exit status {code}); see the [vm] lines above"
        );
    }
    Ok(())
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
