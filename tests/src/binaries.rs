//! Finds `lbd` next to the test executables (`target/<profile>/lbd`), the way
//! `cargo test` lays them out; `cargo xtask test` builds it first.

use std::path::PathBuf;

/// Path of the built `lbd`. Panics, naming the fix, if it was not built.
pub fn lbd() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> -> target/<profile>/lbd
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps");
    let lbd = profile_dir.join("lbd");
    assert!(
        lbd.exists(),
        "{} is missing: build it with `cargo build -p lb-userspace --bins` \
         (cargo xtask test does this first)",
        lbd.display()
    );
    lbd
}
