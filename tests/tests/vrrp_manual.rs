//! Manual failover and maintenance through `lbd failover` and `lbd
//! maintenance` against two real daemons: the VIP moves and comes back.

use std::time::Duration;

use lb_lab::privileges::require_root;
use lb_tests::vrrp_lab::{InstanceSpec, VIP, VrrpLab, node_config};
use lb_userspace::daemon::status::StatusReport;

const WAIT: Duration = Duration::from_secs(10);

/// Node a at priority 150, node b at 100, both started; a is MASTER.
fn elected() -> VrrpLab {
    elected_with("")
}

/// [`elected`] with `rest` appended to both nodes' configurations.
fn elected_with(rest: &str) -> VrrpLab {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.a()
        .start(&node_config(&[InstanceSpec::vi1(150)], rest))
        .unwrap();
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], rest))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab
}

/// Runs `lbd ARGS` against node `i`'s daemon: (success, stdout + stderr).
fn ctl(lab: &VrrpLab, node: usize, args: &[&str]) -> (bool, String) {
    let daemon = lab.nodes[node].daemon.as_ref().expect("running");
    let out = daemon.ctl(args).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn status(lab: &VrrpLab, node: usize) -> StatusReport {
    let (ok, text) = ctl(lab, node, &["status", "--json"]);
    assert!(ok, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The VIP stays with `node` for a while (no flapping back).
fn stays(lab: &VrrpLab, node: &str) {
    for _ in 0..15 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(lab.holders(VIP).unwrap(), [node], "{}", lab.logs());
    }
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_failover_moves_the_vip_and_a_second_one_brings_it_back() {
    let lab = elected();
    let (ok, text) = ctl(&lab, 1, &["failover", "VI_1"]);
    assert!(!ok, "b is BACKUP: nothing to hand over");
    assert!(text.contains("VI_1 is BACKUP, not MASTER"), "{text}");
    let (ok, text) = ctl(&lab, 0, &["failover", "VI_9"]);
    assert!(
        !ok && text.contains("no VRRP instance is named VI_9"),
        "{text}"
    );

    let (ok, text) = ctl(&lab, 0, &["failover", "VI_1"]);
    assert!(ok, "{text}");
    assert!(text.contains("VI_1 handed over"), "{text}");
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    // a yielded: it accepts b although its own priority is higher.
    stays(&lab, "b");
    lab.reached_through(VIP, "b", WAIT).unwrap();
    let a = status(&lab, 0);
    assert_eq!(a.vrrp_instances[0].state, "BACKUP");
    assert_eq!(
        a.vrrp_instances[0].master,
        Some(lb_tests::vrrp_lab::node_ip(1, 0).parse().unwrap())
    );
    // Status says why a (150) stays BACKUP behind b (100).
    assert!(a.vrrp_instances[0].handed_over, "{:?}", a.vrrp_instances[0]);
    let (_, table) = ctl(&lab, 0, &["status"]);
    assert!(table.contains("BACKUP (handed over) 150"), "{table}");
    assert!(!status(&lab, 1).vrrp_instances[0].handed_over);

    // b hands back; a, the only other node, takes over, and the hold ends.
    let (ok, text) = ctl(&lab, 1, &["failover", "VI_1"]);
    assert!(ok, "{text}");
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.reached_through(VIP, "a", WAIT).unwrap();
    let a = status(&lab, 0);
    assert_eq!(a.vrrp_instances[0].state, "MASTER");
    assert!(
        !a.vrrp_instances[0].handed_over,
        "elected again: the hold ended"
    );
    let (_, table) = ctl(&lab, 1, &["status"]);
    assert!(
        table.contains("BACKUP (handed over)"),
        "b now holds: {table}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn maintenance_gives_up_master_until_released() {
    let lab = elected();
    let (ok, text) = ctl(&lab, 0, &["maintenance", "on", "VI_1"]);
    assert!(ok, "{text}");
    assert!(text.contains("maintenance on for VI_1"), "{text}");
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    stays(&lab, "b");
    let a = status(&lab, 0);
    assert!(a.vrrp_instances[0].maintenance);
    assert_eq!(a.vrrp_instances[0].state, "BACKUP");
    let (_, table) = ctl(&lab, 0, &["status"]);
    assert!(table.contains("BACKUP (maintenance)"), "{table}");

    // Even with b gone, a in maintenance does not take over.
    let mut lab = lab;
    assert!(lab.b().stop(libc::SIGTERM).unwrap().success());
    std::thread::sleep(Duration::from_secs(2));
    assert!(lab.holders(VIP).unwrap().is_empty(), "{}", lab.logs());
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], ""))
        .unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();

    // Released (every instance, as `maintenance off` without a name): a
    // preempts with its higher priority.
    let (ok, text) = ctl(&lab, 0, &["maintenance", "off"]);
    assert!(ok && text.contains("maintenance off for VI_1"), "{text}");
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    assert!(!status(&lab, 0).vrrp_instances[0].maintenance);
    let (ok, text) = ctl(&lab, 0, &["maintenance", "on", "VI_9"]);
    assert!(
        !ok && text.contains("no VRRP instance is named VI_9"),
        "{text}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_cleanup_removes_the_vip_a_killed_master_left() {
    // What systemd's ExecStopPost runs after `kill -9`, with VIPs placed
    // as keepalived places them (with lbd's default placement the kernel
    // removes them with the process).
    let mut lab = elected_with("global:\n  vip_device: interface\n");
    lab.a().stop(libc::SIGKILL).unwrap();
    assert!(lab.nodes[0].holds(VIP).unwrap(), "a crash leaves the VIP");
    let stdout = cleanup(&lab);
    assert!(
        stdout.contains(&format!("removed virtual address {VIP}/24 from eth0")),
        "{stdout}"
    );
    assert!(!lab.nodes[0].holds(VIP).unwrap());
    // b takes over once a's adverts stop, as without cleanup.
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    // Nothing left: a second run removes nothing and still succeeds.
    let again = cleanup(&lab);
    assert!(again.is_empty(), "{again}");
}

/// `lbd cleanup` in node a's namespace with its config and state dir.
fn cleanup(lab: &VrrpLab) -> String {
    let node = &lab.nodes[0];
    let out = node
        .ns
        .command(lb_tests::binaries::lbd())
        .args(["cleanup", "--config"])
        .arg(node.dir.join("lbd.yaml"))
        .arg("--state-dir")
        .arg(node.state_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
