//! The Ansible role `dist/ansible/roles/lbd`, played by Debian's
//! `ansible-playbook` against this machine (`ansible_connection=local`):
//! it installs the package, writes the main file and one file per service,
//! changes nothing on a second run, refuses a service file `lbd check`
//! rejects without touching the installed one, removes a dropped service,
//! and purges everything. A guard purges the package whatever happens.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use lb_lab::privileges::require_root;
use lb_tests::deb::{PurgeOnDrop, dpkg_state, exists_in, package, run, stdout};

fn ansible_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ansible")
}

/// Runs the test play with extra variables; returns (success, output).
fn play(deb: &Path, extra: &[&str]) -> (bool, String) {
    let dir = ansible_dir();
    let mut cmd = Command::new("ansible-playbook");
    cmd.current_dir(&dir)
        .env("ANSIBLE_ROLES_PATH", dir.join("roles"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .args(["-i", "tests/inventory", "tests/site.yml", "-e"])
        .arg(format!("lbd_deb={}", deb.display()));
    for e in extra {
        cmd.args(["-e", e]);
    }
    let out = run(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The `changed=N` of the play recap.
fn changed(output: &str) -> u32 {
    output
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("changed="))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no play recap in:\n{output}"))
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn role_installs_configures_validates_and_purges() {
    require_root("installing the package with Ansible");
    assert!(
        run(Command::new("sh").args(["-c", "command -v ansible-playbook"]))
            .status
            .success(),
        "ansible-playbook is missing: `apt-get install ansible-core` (cargo xtask setup does)"
    );
    let deb = package();
    let installed = PurgeOnDrop::arm();

    let (ok, out) = play(&deb, &[]);
    assert!(ok, "the first run failed:\n{out}");
    assert_eq!(dpkg_state().as_deref(), Some("ii"), "{out}");
    let check = stdout(Command::new("/usr/sbin/lbd").args(["check", "-c", "/etc/lbd/lbd.yaml"]));
    assert!(
        check.starts_with("config OK: 1 vrrp instance, 2 virtual servers, 3 real servers"),
        "the installed set, main file and conf.d together: {check}"
    );
    let web = Path::new("/etc/lbd/conf.d/web.yaml");
    let web_before = fs::read_to_string(web).expect("the role wrote conf.d/web.yaml");

    let (ok, out) = play(&deb, &[]);
    assert!(ok, "the second run failed:\n{out}");
    assert_eq!(
        changed(&out),
        0,
        "a second run with the same variables changed things:\n{out}"
    );

    // A service whose port is out of range: refused at its own check.
    let bad = r#"{"lbd_services": {"web": [{"name": "web", "address": "192.168.10.100", "port": 70000}], "mail": []}}"#;
    let (ok, out) = play(&deb, &[bad]);
    assert!(!ok, "a service with port 70000 was accepted:\n{out}");
    assert!(
        out.contains("70000 is out of range"),
        "lbd check's reason is not shown:\n{out}"
    );
    assert_eq!(
        fs::read_to_string(web).expect("conf.d/web.yaml is still there"),
        web_before,
        "a refused file replaced the installed one"
    );

    // Dropping a service drops its file.
    let only_web =
        r#"{"lbd_services": {"web": [{"name": "web", "address": "192.168.10.100", "port": 80}]}}"#;
    let (ok, out) = play(&deb, &[only_web]);
    assert!(ok, "the run without `mail` failed:\n{out}");
    assert!(
        !Path::new("/etc/lbd/conf.d/mail.yaml").exists(),
        "mail.yaml was left:\n{out}"
    );

    let (ok, out) = play(&deb, &["lbd_state=absent"]);
    assert!(ok, "the uninstall run failed:\n{out}");
    assert_eq!(dpkg_state(), None, "dpkg still knows lbd:\n{out}");
    assert!(!Path::new("/etc/lbd").exists(), "/etc/lbd was left");
    assert!(
        !Path::new("/var/cache/lbd-ansible").exists(),
        "the copied package was left"
    );
    assert!(
        !exists_in("passwd", "lbd-script"),
        "the user lbd-script was left"
    );
    drop(installed);
}
