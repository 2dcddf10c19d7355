//! Two real `lbd run` daemons electing a master over a bridge: who holds
//! the VIP and which node the client reaches, through every kind of
//! failover.

use std::time::Duration;

use lb_lab::privileges::require_root;
use lb_tests::vrrp_lab::{InstanceSpec, VIP, VrrpLab, node_config, node_ip};

const WAIT: Duration = Duration::from_secs(10);

/// Node a at priority 150, node b at 100, both started; a is MASTER.
fn elected() -> VrrpLab {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.a()
        .start(&node_config(&[InstanceSpec::vi1(150)], ""))
        .unwrap();
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], ""))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn the_higher_priority_node_is_elected_and_serves_the_vip() {
    let mut lab = elected();
    lab.reached_through(VIP, "a", WAIT).unwrap();
    // Stays so: b keeps hearing a.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.holders(VIP).unwrap(), ["a"], "{}", lab.logs());
    assert_eq!(
        lab.a().state_file("VI_1").as_deref(),
        Some("STATE=MASTER\n")
    );
    assert_eq!(
        lab.b().state_file("VI_1").as_deref(),
        Some("STATE=BACKUP\n")
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sigterm_hands_over_at_once_and_removes_the_vip() {
    let mut lab = elected();
    let status = lab.a().stop(libc::SIGTERM).unwrap();
    assert!(status.success(), "lbd exits 0 on SIGTERM: {status}");
    let took = lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    eprintln!("failover after SIGTERM: b holds the VIP {took:?} after a exited");
    lab.reached_through(VIP, "b", WAIT).unwrap();
    assert_eq!(lab.a().state_file("VI_1").as_deref(), Some("STATE=STOP\n"));
    assert_eq!(
        lab.b().state_file("VI_1").as_deref(),
        Some("STATE=MASTER\n")
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sigkill_fails_over_after_master_down_and_the_client_follows() {
    let mut lab = elected();
    lab.reached_through(VIP, "a", WAIT).unwrap();
    lab.a().stop(libc::SIGKILL).unwrap();
    let start = std::time::Instant::now();
    wait_until(&lab, WAIT, "b to take the VIP", |lab| {
        lab.nodes[1].holds(VIP)
    });
    eprintln!(
        "failover after SIGKILL: b holds the VIP {:?} after the kill",
        start.elapsed()
    );
    // The VIP lived on lbd-eth0, which the kernel removed with the
    // process: nothing is left on a to answer for it.
    assert!(!lab.a().holds(VIP).unwrap(), "a killed lbd leaves no VIP");
    lab.reached_through(VIP, "b", WAIT).unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn the_better_node_takes_the_vip_back_with_preempt() {
    let mut lab = elected();
    lab.a().stop(libc::SIGTERM).unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.a()
        .start(&node_config(&[InstanceSpec::vi1(150)], ""))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.reached_through(VIP, "a", WAIT).unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn nopreempt_leaves_the_vip_where_it_is() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], ""))
        .unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150).with("preempt: false")],
            "",
        ))
        .unwrap();
    lab.a().wait_log("to=Backup", WAIT).unwrap();
    // Many Master_Down_Intervals (about 0.7 s each): a hears b and waits.
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(lab.holders(VIP).unwrap(), ["b"], "{}", lab.logs());
    }
    lab.reached_through(VIP, "b", WAIT).unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn preempt_delay_is_honoured() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], ""))
        .unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150).with("preempt_delay: 2")],
            "",
        ))
        .unwrap();
    lab.a().wait_log("to=Backup", WAIT).unwrap();
    let started = std::time::Instant::now();
    // The delay runs from the first advert a hears, within 0.2 s of start.
    while started.elapsed() < Duration::from_millis(1800) {
        assert_eq!(
            lab.holders(VIP).unwrap(),
            ["b"],
            "a preempted {:?} after start despite preempt_delay 2\n{}",
            started.elapsed(),
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.wait_sole_holder(VIP, "a", Duration::from_secs(4))
        .unwrap();
    let took = started.elapsed();
    eprintln!("preempt_delay 2: a took over {took:?} after start");
    assert!(took >= Duration::from_secs(2), "took over after {took:?}");
}

/// Polls `cond` every 10 ms for up to `timeout`; panics naming `what`.
fn wait_until(
    lab: &VrrpLab,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut(&VrrpLab) -> anyhow::Result<bool>,
) {
    let start = std::time::Instant::now();
    while !cond(lab).unwrap() {
        assert!(
            start.elapsed() < timeout,
            "waited {timeout:?} for {what}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// keepalived users send SIGUSR1 / SIGUSR2 for a state dump / statistics
/// (monitoring habits, muscle memory): that must never move the VIP. lbd
/// writes its status report, as `lbd status --json` prints it.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sigusr1_and_sigusr2_write_the_status_and_move_nothing() {
    let mut lab = elected();
    let state_dir = lab.nodes[0].state_dir();
    for (signal, file) in [(libc::SIGUSR1, "lbd.data"), (libc::SIGUSR2, "lbd.stats")] {
        let path = state_dir.join(file);
        let _ = std::fs::remove_file(&path);
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(lab.a().daemon().pid(), signal) };
        wait_until(&lab, WAIT, &format!("{} to appear", path.display()), |_| {
            Ok(path.exists())
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let report: lb_userspace::daemon::status::StatusReport = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{file} is not `lbd status --json`: {e}\n{text}"));
        let vi = &report.vrrp_instances[0];
        assert_eq!(
            (vi.name.as_str(), vi.state.as_str()),
            ("VI_1", "MASTER"),
            "{text}"
        );
    }
    // Nothing moved: a keeps the VIP and stays MASTER.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            lab.holders(VIP).unwrap(),
            ["a"],
            "a signal moved the VIP\n{}",
            lab.logs()
        );
    }
    lab.reached_through(VIP, "a", WAIT).unwrap();
    let log = lab.nodes[0].daemon.as_ref().unwrap().log();
    assert!(
        log.contains("SIGUSR1: status written to") && log.contains("SIGUSR2: status written to"),
        "{log}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_instances_elect_and_fail_over() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let vip6 = "fd00:120::100";
    let spec = |priority| InstanceSpec {
        name: "VI_6",
        vrid: 61,
        vip: vip6,
        prefix_len: 64,
        ..InstanceSpec::vi1(priority)
    };
    lab.a().start(&node_config(&[spec(150)], "")).unwrap();
    lab.b().start(&node_config(&[spec(100)], "")).unwrap();
    lab.wait_sole_holder(vip6, "a", WAIT).unwrap();
    assert!(lab.a().stop(libc::SIGTERM).unwrap().success());
    lab.wait_sole_holder(vip6, "b", WAIT).unwrap();
    lab.a().start(&node_config(&[spec(150)], "")).unwrap();
    lab.wait_sole_holder(vip6, "a", WAIT).unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn unicast_adverts_from_a_stranger_are_ignored_and_logged() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    // b advertises to a, but a only trusts 10.120.0.13 (nobody).
    let b = InstanceSpec::vi1(200).with(&format!("unicast_peers: [{}]", node_ip(0, 0)));
    let a = InstanceSpec::vi1(100).with("unicast_peers: [10.120.0.13]");
    lab.b().start(&node_config(&[b], "")).unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.a().start(&node_config(&[a], "")).unwrap();
    lab.a()
        .wait_log("source is not a configured unicast peer", WAIT)
        .unwrap();
    // Deaf to b, a elects itself despite b's higher priority.
    let start = std::time::Instant::now();
    while !lab.nodes[0].holds(VIP).unwrap() {
        assert!(start.elapsed() < WAIT, "{}", lab.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_backup_keeps_its_services_installed_and_fault_removes_them() {
    // A BACKUP serves before it claims a VIP (no packet meets a VIP whose
    // service is missing, which the kernel would reset), and forwards what
    // stale neighbour caches still send it after a handover; an instance
    // whose link is down cannot serve, so FAULT removes its services.
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let services = format!(
        "virtual_servers:\n  - address: {VIP}\n    port: 80\n    real_servers: [{{ address: 10.120.0.50 }}]\n  \
         - address: 10.120.0.60\n    port: 80\n    real_servers: [{{ address: 10.120.0.50 }}]\n"
    );
    lab.a()
        .start(&node_config(&[InstanceSpec::vi1(150)], &services))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    // b starts once a is MASTER, so b is never MASTER itself.
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], &services))
        .unwrap();
    lab.b().wait_log("to=Backup", WAIT).unwrap();
    for node in 0..2 {
        let lbd = lab.nodes[node].daemon.as_mut().unwrap();
        lbd.wait_status("both services installed", WAIT, |r| r.services.len() == 2);
    }
    assert_eq!(lab.holders(VIP).unwrap(), ["a"], "{}", lab.logs());

    lab.nodes[1]
        .ns
        .ip(&["link", "set", "eth0", "down"])
        .unwrap();
    lab.b()
        .wait_log(
            &format!(
                "virtual service removed (its VRRP instances are in FAULT) service=TCP {VIP}:80"
            ),
            WAIT,
        )
        .unwrap();
    let report = lab.b().daemon().status().unwrap();
    let left: Vec<_> = report.services.iter().map(|s| s.address.clone()).collect();
    assert_eq!(
        left,
        ["10.120.0.60:80"],
        "only the VIP no instance carries stays"
    );
    lab.nodes[1].ns.ip(&["link", "set", "eth0", "up"]).unwrap();
    lab.b()
        .wait_log(
            &format!(
                "virtual service installed (its VRRP instance left FAULT) service=TCP {VIP}:80"
            ),
            WAIT,
        )
        .unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn vip_attributes_brd_dev_and_label_are_honoured() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let spec = InstanceSpec::vi1(150).with(
        "virtual_ipaddresses_excluded: [{ address: 10.121.0.50/24, brd: 10.121.0.255, dev: eth1, label: \"eth1:vip\" }]",
    );
    lab.a().start(&node_config(&[spec], "")).unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.wait_sole_holder("10.121.0.50", "a", WAIT).unwrap();
    let out = lab.nodes[0]
        .ns
        .command("ip")
        .args(["-o", "-4", "addr", "show", "dev", "eth1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("inet 10.121.0.50/24 brd 10.121.0.255 scope global secondary eth1:vip"),
        "{text}"
    );
    assert!(lab.a().stop(libc::SIGTERM).unwrap().success());
    assert!(
        lab.holders("10.121.0.50").unwrap().is_empty(),
        "removed at stop"
    );
}
