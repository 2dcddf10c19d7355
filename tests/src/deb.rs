//! The Debian package under test (built by `cargo xtask dist`) and a guard
//! that installs it on this machine and purges it whatever happens.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The package for this workspace's version and this machine's architecture.
pub fn package() -> PathBuf {
    let arch = stdout(Command::new("dpkg").arg("--print-architecture"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../target/dist/lbd_{}_{}.deb",
        env!("CARGO_PKG_VERSION"),
        arch.trim()
    ));
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo xtask dist` (cargo xtask test does this first)",
        path.display()
    );
    path
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Runs `cmd`, panics with its output unless it succeeds, returns stdout.
pub fn stdout(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dpkg's two-letter state of `lbd` (`ii` installed, `rc` configuration
/// left), or `None` when dpkg knows nothing of it.
pub fn dpkg_state() -> Option<String> {
    let out = run(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Abbrev}", "lbd"]));
    let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !state.is_empty() && state != "un").then_some(state)
}

/// Whether `getent DB NAME` finds it (`passwd`, `group`).
pub fn exists_in(db: &str, name: &str) -> bool {
    run(Command::new("getent").args([db, name]))
        .status
        .success()
}

/// Purges lbd when dropped, so a failing assertion leaves nothing installed.
/// Made only where lbd is not installed already: the test would remove it.
pub struct PurgeOnDrop(());

impl PurgeOnDrop {
    /// Panics (before anything is changed) if lbd or its user is already
    /// on this machine.
    pub fn arm() -> Self {
        assert_eq!(
            dpkg_state(),
            None,
            "lbd is already installed (or its configuration is left) on this machine; this \
             test installs and purges it, so it refuses to run here: `dpkg --purge lbd` first"
        );
        assert!(
            !exists_in("passwd", "lbd-script"),
            "a user lbd-script already exists; purging the package would delete it"
        );
        Self(())
    }
}

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let out = run(Command::new("dpkg").args(["--purge", "lbd"]));
        if !out.status.success() {
            eprintln!(
                "cleanup: dpkg --purge lbd failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
