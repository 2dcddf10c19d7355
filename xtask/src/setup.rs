//! `cargo xtask setup`: installs only what is missing, one timed step each.
//!
//! The recipe is docs/toolchain.md's: Debian's Rust (which ships a prebuilt
//! `core` for the BPF target) plus bpf-linker built against LLVM 22.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::cmd::{self, probe, step};

/// Debian packages the build and the tests need.
const PACKAGES: &[(&str, &str)] = &[
    (
        "rustc-web",
        "Debian's rustc, which has a prebuilt core for bpfel-unknown-none",
    ),
    ("cargo-web", "Debian's cargo, to build lb-ebpf"),
    ("libstd-rust-web-dev-bpf", "core for the BPF targets"),
    ("rust-web-clippy", "clippy for the BPF target"),
    ("llvm-22-dev", "the LLVM bpf-linker links against"),
    (
        "libpolly-22-dev",
        "needed to link bpf-linker against LLVM 22",
    ),
    (
        "iproute2",
        "network namespaces and veth pairs for the labs and tests",
    ),
    (
        "nftables",
        "the kernel NAT that `cargo xtask bench dataplane` compares against",
    ),
    (
        "ethtool",
        "GRO and checksum offload settings of the labs' veth interfaces",
    ),
    (
        "tmux",
        "a terminal for the `lbd top` test (tests/tests/lbd_top.rs)",
    ),
    (
        "keepalived",
        "the real VRRP peer of the interop tests (tests/tests/vrrp_keepalived.rs)",
    ),
    (
        "tshark",
        "an independent VRRP dissector that checks every advert lbd sends",
    ),
    (
        "busybox-static",
        "the lab VM's initramfs and its modprobe/depmod (cargo xtask vm)",
    ),
    (
        "ipvsadm",
        "checks what the IPVS data plane programmed, in the lab VM",
    ),
    (
        "dpkg-dev",
        "dpkg-shlibdeps, for the package's dependencies (cargo xtask dist)",
    ),
    (
        "init-system-helpers",
        "deb-systemd-helper, which the package's maintainer scripts use",
    ),
    (
        "systemd",
        "systemd-analyze verify, which checks the packaged unit",
    ),
    (
        "ansible-core",
        "ansible-playbook, which plays the Ansible role in tests/tests/ansible_role.rs",
    ),
    ("python3-apt", "what the Ansible role's apt tasks need"),
];

/// bookworm's qemu-system-x86 7.2 would remove the preinstalled qemu-utils
/// 10.0 from bookworm-backports; the backports build installs beside it.
const BACKPORTS: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";
const BACKPORTS_SOURCE: &str = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";

const BPF_LINKER_VERSION: &str = "0.13.0";

pub(crate) fn setup() -> Result<()> {
    let start = std::time::Instant::now();
    step("kernel: BTF and root", check_kernel)?;
    step("Debian packages", install_packages)?;
    step(
        &format!("bpf-linker {BPF_LINKER_VERSION} on LLVM 22"),
        install_bpf_linker,
    )?;
    step("cargo-nextest", install_nextest)?;
    step("qemu for the lab VM (bookworm-backports)", install_qemu)?;
    eprintln!("[xtask] setup complete in {}", cmd::secs(start.elapsed()));
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn check_kernel() -> Result<()> {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "this kernel has no BTF (/sys/kernel/btf/vmlinux): lbd needs a kernel >= 5.18 built with CONFIG_DEBUG_INFO_BTF"
        );
    }
    if !is_root() {
        bail!(
            "the balancer, its tests and its lab need root (CAP_BPF, CAP_NET_ADMIN): run as root, e.g. `sudo cargo xtask setup`"
        );
    }
    Ok(())
}

fn install_packages() -> Result<()> {
    let names: Vec<&str> = PACKAGES.iter().map(|(name, _)| *name).collect();
    // dpkg-query exits 1 when any package is unknown to it, yet still lists
    // the known ones: read its output whatever the exit status.
    let status = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\\n"])
        .args(&names)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let installed: Vec<&str> = status
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ii"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !installed.contains(n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for name in &missing {
        let why = PACKAGES
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, w)| *w);
        eprintln!("[xtask]   missing {name}: {why}");
    }
    let fix = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    if !is_root() {
        bail!("missing Debian packages; install them with: sudo {fix}");
    }
    cmd::run(Command::new("apt-get").args(["update", "-q"]))
        .with_context(|| format!("while running: {fix}"))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
    .with_context(|| format!("while running: {fix}"))
}

fn install_qemu() -> Result<()> {
    if probe(Command::new("qemu-system-x86_64").arg("--version")).is_some() {
        return Ok(());
    }
    let fix = "apt-get install -y -t bookworm-backports qemu-system-x86";
    if !is_root() {
        bail!("qemu-system-x86 is missing; install it with: sudo {fix}");
    }
    if !std::path::Path::new(BACKPORTS).exists() {
        std::fs::write(BACKPORTS, BACKPORTS_SOURCE)
            .with_context(|| format!("while adding {BACKPORTS}"))?;
    }
    cmd::run(Command::new("apt-get").args(["update", "-q"]))
        .with_context(|| format!("while running: apt-get update && {fix}"))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(["-t", "bookworm-backports", "qemu-system-x86"]),
    )
    .with_context(|| format!("while running: {fix}"))
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

fn install_bpf_linker() -> Result<()> {
    let linker = cargo_bin_dir().join("bpf-linker");
    let version = probe(Command::new(&linker).arg("--version")).unwrap_or_default();
    if version.contains(BPF_LINKER_VERSION) {
        return Ok(());
    }
    eprintln!(
        "[xtask]   building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about 3 minutes on 2 cores)"
    );
    let fix = format!(
        "PATH=/usr/lib/llvm-22/bin:$PATH LLVM_SYS_221_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --version {BPF_LINKER_VERSION} --no-default-features --features llvm-22"
    );
    // Without LLVM 22's llvm-config first on PATH the build finds Debian's
    // default LLVM 14 and fails to link.
    let path = format!(
        "/usr/lib/llvm-22/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    cmd::run(
        cmd::cargo()
            .env("PATH", path)
            .env("LLVM_SYS_221_PREFIX", "/usr/lib/llvm-22")
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"]),
    )
    .with_context(|| format!("while building bpf-linker; to retry by hand: {fix}"))
}

fn install_nextest() -> Result<()> {
    if probe(cmd::cargo().args(["nextest", "--version"])).is_some() {
        return Ok(());
    }
    eprintln!("[xtask]   installing cargo-nextest (the test runner)");
    cmd::run(cmd::cargo().args(["install", "cargo-nextest", "--locked"])).context(
        "while installing cargo-nextest; to retry by hand: cargo install cargo-nextest --locked",
    )
}
