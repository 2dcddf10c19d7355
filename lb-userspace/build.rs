//! Builds `lb-ebpf` for `bpfel-unknown-none` with Debian's Rust toolchain and
//! bpf-linker (see docs/toolchain.md), so `lbd` can embed the object.
//!
//! The aya-template pattern, adapted: no nightly and no `build-std`. Debian's
//! `rustc` ships a prebuilt `core` for the BPF target, and `RUSTC_BOOTSTRAP`
//! unlocks the one unstable feature aya-ebpf needs.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const BPF_TARGET: &str = "bpfel-unknown-none";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const FIX: &str = "run `cargo xtask setup` to install Debian's Rust and bpf-linker";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("lb-userspace lives in the workspace");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));

    for watched in [
        "lb-ebpf/src",
        "lb-ebpf/Cargo.toml",
        "lb-common/src",
        "lb-common/Cargo.toml",
    ] {
        println!(
            "cargo::rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    println!("cargo::rerun-if-env-changed=LB_EBPF_CARGO");
    println!("cargo::rerun-if-env-changed=LB_EBPF_RUSTC");

    let cargo = env::var("LB_EBPF_CARGO").unwrap_or_else(|_| DEBIAN_CARGO.to_owned());
    let rustc = env::var("LB_EBPF_RUSTC").unwrap_or_else(|_| DEBIAN_RUSTC.to_owned());
    for tool in [&cargo, &rustc] {
        assert!(
            Path::new(tool).exists(),
            "lb-ebpf needs {tool}, which is missing: {FIX}"
        );
    }

    // A separate target dir: the outer cargo holds a lock on its own, and the
    // two toolchains' artifacts must never mix.
    let target_dir = workspace.join("target").join("bpf");
    let mut build = Command::new(&cargo);
    build
        .current_dir(workspace)
        .args(["build", "--release", "--locked", "--package", "lb-ebpf"])
        .args(["--target", BPF_TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    // Everything the outer cargo (or clippy) exported would steer the nested
    // build to the wrong compiler or flags.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let inherited = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTDOC")
            || key == "RUSTFLAGS"
            || key == "RUSTUP_TOOLCHAIN";
        if inherited {
            build.env_remove(key.as_ref());
        }
    }
    build
        .env("RUSTC", &rustc)
        // aya-ebpf uses #![feature(asm_experimental_arch)].
        .env("RUSTC_BOOTSTRAP", "1")
        // BTF makes verifier messages readable and BTF maps possible.
        .env("RUSTFLAGS", "-C debuginfo=2 -C link-arg=--btf");

    let output = build
        .output()
        .unwrap_or_else(|e| panic!("could not start {cargo}: {e}; {FIX}"));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("linker `bpf-linker` not found") {
            format!("\nbpf-linker is missing or broken: {FIX}")
        } else {
            String::new()
        };
        panic!("building lb-ebpf for {BPF_TARGET} failed:\n{stderr}{hint}");
    }

    let object = target_dir.join(BPF_TARGET).join("release").join("lb-ebpf");
    let embedded = out_dir.join("lb-ebpf.o");
    std::fs::copy(&object, &embedded)
        .unwrap_or_else(|e| panic!("copying {} failed: {e}", object.display()));
}
