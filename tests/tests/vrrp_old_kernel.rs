//! On kernels before 6.1 the address mark (`IFA_PROTO`) that tells lbd's
//! VIPs from others' is dropped silently. lbd then tells them apart by the
//! record in its state directory: a MASTER that becomes BACKUP still
//! removes its VIP, and `lbd cleanup` after `kill -9` still removes what it
//! left, also on an interface the configuration no longer names, and never
//! an operator's address. The old kernel is simulated on this one with
//! `LBD_ASSUME_NO_ADDRESS_MARKS=1` (lbd then ignores the marks it reads).

use std::time::Duration;

use lb_lab::privileges::require_root;
use lb_tests::{
    binaries,
    vrrp_lab::{InstanceSpec, VIP, VrrpLab, node_config},
};

const OLD_KERNEL: &[&str] = &["env", "LBD_ASSUME_NO_ADDRESS_MARKS=1"];
/// keepalived's placement: the VIP on the interface, where a crash leaves it.
const ON_INTERFACE: &str = "global:\n  vip_device: interface\n";
const WAIT: Duration = Duration::from_secs(10);

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn without_address_marks_the_record_moves_and_cleans_vips() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.a()
        .start_wrapped(
            OLD_KERNEL,
            &node_config(&[InstanceSpec::vi1(150)], ON_INTERFACE),
        )
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.a().wait_log("drops address marks", WAIT).unwrap();
    // An operator's address in the VIP's subnet: never lbd's to remove.
    lab.nodes[0]
        .ns
        .ip(&["addr", "add", "10.120.0.201/24", "dev", "eth0"])
        .unwrap();

    // A better node preempts: a goes BACKUP and must give the VIP up.
    lab.b()
        .start_wrapped(
            OLD_KERNEL,
            &node_config(&[InstanceSpec::vi1(200)], ON_INTERFACE),
        )
        .unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();

    // b stops cleanly (its VIP must go with it); a takes over, then is
    // killed, leaving the VIP behind.
    lab.b().stop(libc::SIGTERM).unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.a().stop(libc::SIGKILL).unwrap();
    assert!(lab.nodes[0].holds(VIP).unwrap(), "kill -9 leaves the VIP");

    // The configuration moved on: its instance is on another interface.
    let node = &lab.nodes[0];
    let moved = node.dir.join("moved.yaml");
    std::fs::write(
        &moved,
        "vrrp_instances:\n  - name: VI_9\n    interface: eth9\n    virtual_router_id: 9\n    \
         priority: 100\n    virtual_ipaddresses: [10.120.9.1/24]\n",
    )
    .unwrap();
    let out = node
        .ns
        .command(binaries::lbd())
        .args(["cleanup", "--config"])
        .arg(&moved)
        .arg("--state-dir")
        .arg(node.state_dir())
        .env("LBD_ASSUME_NO_ADDRESS_MARKS", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "lbd cleanup: {out:?}");
    assert!(
        said.contains(&format!("removed virtual address {VIP}/24 from eth0")),
        "{said}"
    );
    assert!(!node.holds(VIP).unwrap(), "the recorded VIP is gone");
    assert!(
        node.holds("10.120.0.201").unwrap(),
        "the operator's address stays"
    );
}
