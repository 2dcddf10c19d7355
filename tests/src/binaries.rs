//! Finds `lbd` next to the test executables (`target/<profile>/lbd`), the way
//! `cargo test` lays them out; `cargo xtask test` builds it first.

use std::path::PathBuf;

/// Path of the built `lbd`. Panics, naming the fix, if it was not built.
pub fn lbd() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe.parent().expect("an executable lives in a directory");
    // Tests run from target/<profile>/deps, benchmarks from target/<profile>.
    let lbd = if dir.ends_with("deps") {
        dir.parent().expect("deps has a parent").join("lbd")
    } else {
        dir.join("lbd")
    };
    assert!(
        lbd.exists(),
        "{} is missing: build it with `cargo build -p lb-userspace --bins` \
         (cargo xtask test does this first)",
        lbd.display()
    );
    lbd
}
