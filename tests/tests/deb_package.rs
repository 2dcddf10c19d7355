//! The Debian package `cargo xtask dist` builds (`cargo xtask test` builds
//! it first): its contents and metadata, then a real install with dpkg on
//! this machine, what an operator does first (`lbd check` on the shipped
//! conffile, `systemd-analyze verify` on the unit), removal, and a purge
//! that leaves nothing behind: no file, no user, no systemd state.
//!
//! The install runs the maintainer scripts on a machine where systemd is
//! not PID 1 (as in a container or chroot), so it also shows they do not
//! need a running systemd. A guard purges the package whatever happens, and
//! the test refuses to run where lbd is already installed.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use lb_lab::privileges::require_root;
use lb_tests::deb::{PurgeOnDrop, dpkg_state, exists_in, package, run, stdout};

/// Paths the package holds, from `dpkg-deb -c` (`./usr/sbin/lbd` -> `/usr/sbin/lbd`).
fn package_paths(deb: &Path) -> BTreeSet<PathBuf> {
    stdout(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(|p| PathBuf::from(p.trim_start_matches('.').trim_end_matches('/')))
        .filter(|p| p != Path::new(""))
        .collect()
}

/// What systemd's Debian helper records about a unit, which purge must remove.
const DSH_STATE: &[&str] = &[
    "/var/lib/systemd/deb-systemd-helper-enabled/lbd.service.dsh-also",
    "/var/lib/systemd/deb-systemd-helper-masked/lbd.service",
    "/etc/systemd/system/lbd.service",
];

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn package_has_the_files_an_operator_expects() {
    let deb = package();
    let listing = stdout(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let expect = [
        ("-rwxr-xr-x root/root", "./usr/sbin/lbd"),
        (
            "-rw-r--r-- root/root",
            "./usr/lib/systemd/system/lbd.service",
        ),
        ("-rw-r--r-- root/root", "./etc/lbd/lbd.yaml"),
        ("drwxr-xr-x root/root", "./etc/lbd/conf.d/"),
        ("-rw-r--r-- root/root", "./usr/share/man/man8/lbd.8.gz"),
        (
            "-rw-r--r-- root/root",
            "./usr/share/man/man8/lbd-check.8.gz",
        ),
        ("-rw-r--r-- root/root", "./usr/share/man/man5/lbd.yaml.5.gz"),
        (
            "-rw-r--r-- root/root",
            "./usr/share/bash-completion/completions/lbd",
        ),
        (
            "-rw-r--r-- root/root",
            "./usr/share/zsh/vendor-completions/_lbd",
        ),
        (
            "-rw-r--r-- root/root",
            "./usr/share/fish/vendor_completions.d/lbd.fish",
        ),
        ("-rw-r--r-- root/root", "./usr/share/doc/lbd/copyright"),
        (
            "-rw-r--r-- root/root",
            "./usr/share/doc/lbd/examples/lbd.yaml",
        ),
        // The opt-in sandbox for the unit (docs/operations.md).
        (
            "-rw-r--r-- root/root",
            "./usr/share/doc/lbd/examples/lbd.service.d/hardening.conf",
        ),
    ];
    for (mode_owner, path) in expect {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode_owner) && l.ends_with(path)),
            "the package lacks {path} ({mode_owner}):\n{listing}"
        );
    }
    assert!(
        !listing.contains("./man-scratch"),
        "build leftovers in the package:\n{listing}"
    );

    let info = stdout(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for field in [
        "Package: lbd",
        &format!("Version: {}", env!("CARGO_PKG_VERSION")),
        "Depends: libc6 (>= ",
        "Suggests: ipvsadm",
    ] {
        assert!(info.contains(field), "dpkg-deb -I lacks `{field}`:\n{info}");
    }
    for script in ["postinst", "prerm", "postrm", "conffiles", "md5sums"] {
        assert!(info.contains(&format!(" {script}")), "no {script}:\n{info}");
    }
    let listed = stdout(
        Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --ctrl-tarfile \"$1\" | tar -xO ./conffiles")
            .arg("sh")
            .arg(&deb),
    );
    assert_eq!(listed, "/etc/lbd/lbd.yaml\n", "conffiles");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn package_installs_checks_its_conffile_and_purges_without_a_trace() {
    require_root("installing the package with dpkg");
    let deb = package();
    let installed = PurgeOnDrop::arm();
    let paths = package_paths(&deb);
    let existed_before: BTreeSet<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    let systemd_pid1 = Path::new("/run/systemd/system").exists();

    stdout(Command::new("dpkg").arg("--install").arg(&deb));
    assert_eq!(
        dpkg_state().as_deref(),
        Some("ii"),
        "dpkg -i did not leave lbd installed (systemd as PID 1: {systemd_pid1})"
    );

    let version = stdout(Command::new("/usr/sbin/lbd").arg("--version"));
    assert_eq!(version.trim(), format!("lbd {}", env!("CARGO_PKG_VERSION")));
    let check = stdout(Command::new("/usr/sbin/lbd").args(["check", "-c", "/etc/lbd/lbd.yaml"]));
    assert!(
        check.starts_with("config OK: 1 vrrp instance, 1 virtual server, 2 real servers"),
        "lbd check on the shipped conffile: {check}"
    );

    let passwd = stdout(Command::new("getent").args(["passwd", "lbd-script"]));
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    let uid: u32 = fields[2].parse().expect("a numeric uid");
    assert!(uid < 1000, "lbd-script is not a system user: {passwd}");
    assert_eq!(
        fields[6], "/usr/sbin/nologin",
        "lbd-script can log in: {passwd}"
    );

    let verify = run(Command::new("systemd-analyze").args([
        "verify",
        "--man=no",
        "/usr/lib/systemd/system/lbd.service",
    ]));
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify lbd.service:\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let page = stdout(Command::new("zcat").arg("/usr/share/man/man5/lbd.yaml.5.gz"));
    assert!(
        page.contains(".TH LBD.YAML 5") && page.contains("\\fBvirtual_servers[].port\\fR"),
        "lbd.yaml(5) does not document the keys"
    );

    // Removal keeps the administrator's configuration, as dpkg does for
    // every conffile; purge takes the rest.
    stdout(Command::new("dpkg").args(["--remove", "lbd"]));
    assert_eq!(dpkg_state().as_deref(), Some("rc"));
    assert!(
        !Path::new("/usr/sbin/lbd").exists(),
        "remove left the binary"
    );
    assert!(
        Path::new("/etc/lbd/lbd.yaml").exists(),
        "remove deleted the conffile"
    );

    drop(installed);
    assert_eq!(dpkg_state(), None, "dpkg still knows lbd after purge");
    let left: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| p.exists() && !existed_before.contains(p))
        .collect();
    assert!(left.is_empty(), "purge left package paths behind: {left:?}");
    assert!(!Path::new("/etc/lbd").exists(), "purge left /etc/lbd");
    assert!(
        !exists_in("passwd", "lbd-script"),
        "purge left the user lbd-script"
    );
    assert!(
        !exists_in("group", "lbd-script"),
        "purge left the group lbd-script"
    );
    for state in DSH_STATE {
        assert!(
            !Path::new(state).exists(),
            "purge left systemd state {state}"
        );
    }
}
