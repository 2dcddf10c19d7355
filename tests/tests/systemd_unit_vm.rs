//! The shipped unit under a real systemd: the Debian package unpacked, the
//! NGINX HA pair's primary imported from its keepalived.conf, and its
//! scripts at the paths that file names, doing what the seed's scripts do
//! (a state file under /var/run, `systemctl start nginx`), plus a log under
//! /var/lib. `nginx.service` is a stand-in unit (a sleep): what is tested is
//! that a notify script may start a service, not nginx.
//!
//! It needs systemd as PID 1, which the build machine's is not, and it
//! installs lbd, adds an `eth0` and writes under /usr/lib and /etc: it runs
//! only in the lab VM, which `cargo xtask test` boots with systemd for it
//! (`vm::Init::Systemd`, the second boot). The host's runner lists it as
//! ignored, saying why.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use lb_tests::deb::{package, run, stdout};

/// Made by the lab VM's systemd stage; nowhere else.
const VM_MARKER: &str = "/lbd-vm/run.sh";
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../lb-userspace/tests/data/samples/keepalived/nginx-ha-primary.conf"
);
const STATE_FILE: &str = "/var/run/nginx-ha-keepalived.state";
const NOTIFY_LOG: &str = "/var/lib/nginx-ha-keepalived/notify.log";

/// The seed's notify script: the state file, nginx started on MASTER; and a
/// line per call under /var/lib (this test's addition).
const NOTIFY: &str = r#"#!/bin/sh
umask 022
TYPE=$1
NAME=$2
STATE=$3
STATEFILE=/var/run/nginx-ha-keepalived.state
mkdir -p /var/lib/nginx-ha-keepalived
echo "$TYPE $NAME $STATE $4" >> /var/lib/nginx-ha-keepalived/notify.log
case $STATE in
    "MASTER") systemctl start nginx || exit 1
              echo "STATE=$STATE" > $STATEFILE
              exit 0
              ;;
    *)        echo "STATE=$STATE" > $STATEFILE
              exit 0
              ;;
esac
"#;

/// Healthy while nginx runs, or while this node is not MASTER (nginx is
/// started by notify on MASTER).
const CHECK: &str = r#"#!/bin/sh
[ -s /var/run/nginx-ha-keepalived.state ] && . /var/run/nginx-ha-keepalived.state
[ "$STATE" != MASTER ] || systemctl is-active --quiet nginx
"#;

/// Fails while the operator's manual-failover file exists.
const MANUAL_FAILOVER: &str = r"#!/bin/sh
[ ! -e /var/run/nginx-ha-keepalived.manual-failover ]
";

const NGINX_STAND_IN: &str = "[Unit]\nDescription=stand-in for nginx (a notify script starts it)\n\n[Service]\nExecStart=/bin/sleep infinity\n";

fn sh(line: &str) -> String {
    stdout(Command::new("sh").arg("-c").arg(line))
}

fn write_executable(path: &str, text: &str) {
    std::fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// What to show when something is not as expected.
fn diagnostics() -> String {
    let status =
        run(Command::new("systemctl").args(["status", "--no-pager", "-l", "lbd", "nginx"]));
    let journal = run(Command::new("journalctl").args(["--no-pager", "-n", "60", "-u", "lbd"]));
    format!(
        "{}\n{}\nnotify log:\n{}\n/etc/lbd/lbd.yaml:\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&journal.stdout),
        std::fs::read_to_string(NOTIFY_LOG).unwrap_or_default(),
        std::fs::read_to_string("/etc/lbd/lbd.yaml").unwrap_or_default()
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    // Generous: the VM emulates its CPU.
    let deadline = Instant::now() + Duration::from_mins(1);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}\n{}", diagnostics());
}

/// `systemctl show UNIT -p P1 -p P2 ...`: its `P=value` lines, sorted.
fn unit_properties(unit: &str, properties: &[&str]) -> Vec<String> {
    let mut command = Command::new("systemctl");
    command.args(["show", unit]);
    for p in properties {
        command.args(["-p", p]);
    }
    let mut lines: Vec<String> = stdout(&mut command).lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
#[ignore = "needs systemd as PID 1 and installs lbd: `cargo xtask test` runs it in the lab VM booted with systemd"]
fn shipped_unit_lets_the_nginx_ha_notify_script_write_state_and_start_nginx() {
    assert!(
        Path::new(VM_MARKER).exists() && Path::new("/run/systemd/system").exists(),
        "this test installs lbd and adds eth0: it runs only in the lab VM booted with systemd \
         (cargo xtask test; or cargo xtask vm --systemd TEST-BINARY --ignored)"
    );
    let began = Instant::now();
    let phase = |what: &str| eprintln!("[{:6.1} s] {what}", began.elapsed().as_secs_f64());
    // The package's files, unpacked: `dpkg --install` (its database and
    // triggers over 9p on an emulated CPU) takes half a minute here, and
    // deb_package tests the install itself.
    stdout(
        Command::new("dpkg-deb")
            .arg("--extract")
            .arg(package())
            .arg("/"),
    );
    phase("package unpacked");

    // The primary's network as its keepalived.conf expects it.
    sh("ip link add eth0 type dummy && ip addr add 10.1.1.7/24 dev eth0 && ip link set eth0 up");
    // The VM has no udev to make the tun node lbd's VIP holder opens.
    sh(
        "modprobe tun; [ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }",
    );
    write_executable("/usr/lib/keepalived/nginx-ha-notify", NOTIFY);
    write_executable("/usr/lib/keepalived/nginx-ha-check", CHECK);
    write_executable(
        "/usr/lib/keepalived/nginx-ha-manual-failover",
        MANUAL_FAILOVER,
    );
    std::fs::write("/etc/systemd/system/nginx.service", NGINX_STAND_IN).unwrap();
    sh("systemctl daemon-reload");
    let imported = stdout(Command::new("lbd").args(["import-keepalived", SAMPLE]));
    std::fs::write("/etc/lbd/lbd.yaml", imported).unwrap();

    phase("scripts, nginx.service and /etc/lbd/lbd.yaml in place");
    let start = run(Command::new("systemctl").args(["start", "lbd"]));
    assert!(
        start.status.success(),
        "systemctl start lbd: {}\n{}",
        String::from_utf8_lossy(&start.stderr),
        diagnostics()
    );
    // Alone on its link, the node becomes MASTER: notify starts nginx and
    // writes the state files; the check then passes (priority 201).
    phase("systemctl start lbd returned");
    wait_for("the notify script's MASTER state file", || {
        read(STATE_FILE) == "STATE=MASTER\n"
    });
    phase("MASTER");
    assert_eq!(
        unit_properties("nginx", &["ActiveState"]),
        ["ActiveState=active"],
        "notify's `systemctl start nginx`\n{}",
        diagnostics()
    );
    // (Its priority is 151: the check failed while nginx was not running.)
    wait_for("notify MASTER in /var/lib", || {
        read(NOTIFY_LOG).contains("INSTANCE VI_1 MASTER ")
    });
    let addresses = sh("ip -o addr show");
    assert!(
        addresses.contains("10.1.1.100/32"),
        "the VIP is held:\n{addresses}"
    );
    let status = stdout(Command::new("lbd").arg("status"));
    assert!(status.contains("MASTER"), "lbd status:\n{status}");

    // Stop: lbd hands over, notify STOP runs, the process exits by itself
    // (no SIGKILL after TimeoutStopSec).
    let stopping = Instant::now();
    sh("systemctl stop lbd");
    let took = stopping.elapsed();
    phase("stopped");
    eprintln!(
        "systemctl stop lbd returned after {:.2} s",
        took.as_secs_f64()
    );
    // Exited by itself with status 0: not killed at TimeoutStopSec.
    assert_eq!(
        unit_properties("lbd", &["ActiveState", "Result", "ExecMainStatus"]),
        ["ActiveState=inactive", "ExecMainStatus=0", "Result=success"],
        "{}",
        diagnostics()
    );
    assert_eq!(
        read(STATE_FILE),
        "STATE=STOP\n",
        "notify STOP ran to the end\n{}",
        diagnostics()
    );
    assert_eq!(read("/run/lbd/VI_1.state"), "STATE=STOP\n");
    let calls: Vec<String> = read(NOTIFY_LOG).lines().map(str::to_owned).collect();
    assert!(
        calls
            .last()
            .is_some_and(|c| c.starts_with("INSTANCE VI_1 STOP ")),
        "the last notify is STOP: {calls:?}"
    );
    let addresses = sh("ip -o addr show");
    assert!(
        !addresses.contains("10.1.1.100/32"),
        "the VIP is gone:\n{addresses}"
    );
}
