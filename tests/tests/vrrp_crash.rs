//! After `kill -9` a node keeps its VIP (nothing ran to remove it); the
//! restarted lbd removes exactly the addresses it had marked as its own,
//! and the two nodes never both hold the VIP from then on.

use std::time::{Duration, Instant};

use lb_lab::privileges::require_root;
use lb_tests::vrrp_lab::{InstanceSpec, VIP, VrrpLab, node_config};

/// These crashes leave VIPs behind only where keepalived places them (on
/// the interface); lbd's default device goes away with the process, which
/// `ha_flows` and `vrrp_failover` cover.
const KEEPALIVED_PLACEMENT: &str = "global:\n  vip_device: interface\n";

const WAIT: Duration = Duration::from_secs(10);

fn wait_for(lab: &VrrpLab, what: &str, mut cond: impl FnMut(&VrrpLab) -> bool) {
    let start = Instant::now();
    while !cond(lab) {
        assert!(
            start.elapsed() < WAIT,
            "waited {WAIT:?} for {what}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn after_a_killed_master_restarts_both_never_hold_the_vip() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let config_a = node_config(&[InstanceSpec::vi1(150)], KEEPALIVED_PLACEMENT);
    lab.a().start(&config_a).unwrap();
    lab.b()
        .start(&node_config(
            &[InstanceSpec::vi1(100)],
            KEEPALIVED_PLACEMENT,
        ))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();

    lab.a().stop(libc::SIGKILL).unwrap();
    wait_for(&lab, "b to take over", |lab| {
        lab.nodes[1].holds(VIP).unwrap()
    });
    assert_eq!(
        lab.holders(VIP).unwrap(),
        ["a", "b"],
        "the crash left a's VIP"
    );

    lab.a().start(&config_a).unwrap();
    // The restarted lbd first removes its stale VIP...
    wait_for(&lab, "a to remove its stale VIP", |lab| {
        lab.holders(VIP).unwrap() != ["a", "b"]
    });
    // ...and from then on, through its preempting takeover, the VIP is
    // never on both nodes.
    let start = Instant::now();
    let mut samples = 0;
    let mut final_holders = Vec::new();
    while start.elapsed() < Duration::from_secs(4) {
        let holders = lab.holders(VIP).unwrap();
        assert!(
            holders.len() <= 1,
            "both nodes hold {VIP} {:?} after a's restart\n{}",
            start.elapsed(),
            lab.logs()
        );
        final_holders = holders;
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(final_holders, ["a"], "a preempts again\n{}", lab.logs());
    eprintln!("{samples} samples, never both");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn restart_removes_marked_stale_vips_and_keeps_hand_added_addresses() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150)],
            KEEPALIVED_PLACEMENT,
        ))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.a().stop(libc::SIGKILL).unwrap();
    assert!(
        lab.nodes[0].holds(VIP).unwrap(),
        "a killed lbd leaves its VIP"
    );
    // An operator's addresses, one in the VIP's subnet: not lbd's to touch.
    let ns = &lab.nodes[0].ns;
    ns.ip(&["addr", "add", "10.120.0.200/32", "dev", "eth0"])
        .unwrap();
    ns.ip(&["addr", "add", "10.120.0.201/24", "dev", "eth0"])
        .unwrap();

    // b is the better node now, so a restarts into BACKUP.
    lab.b()
        .start(&node_config(
            &[InstanceSpec::vi1(200)],
            KEEPALIVED_PLACEMENT,
        ))
        .unwrap();
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150)],
            KEEPALIVED_PLACEMENT,
        ))
        .unwrap();
    lab.a()
        .wait_log("removed a virtual address an earlier lbd left behind", WAIT)
        .unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.a().wait_log("to=Backup", WAIT).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.holders(VIP).unwrap(), ["b"], "a BACKUP holds no VIP");
    let a = &lab.nodes[0];
    assert!(a.holds("10.120.0.200").unwrap(), "hand-added /32 kept");
    assert!(a.holds("10.120.0.201").unwrap(), "hand-added /24 kept");
    let log = lab.nodes[0].daemon.as_ref().unwrap().log();
    assert_eq!(
        log.matches("left behind").count(),
        1,
        "exactly the one stale VIP removed; log:\n{log}"
    );
}
