//! What moves a VIP besides a node going away: a failing track_script, a
//! sync group following one member's fault, and script safety.

use std::time::Duration;

use lb_lab::privileges::require_root;
use lb_tests::vrrp_lab::{InstanceSpec, VIP, VIP2, VrrpLab, node_config, write_script};

const WAIT: Duration = Duration::from_secs(10);

/// A track script that succeeds while `flag` exists.
fn flag_script(lab: &VrrpLab, node: usize) -> (std::path::PathBuf, String) {
    let dir = &lab.nodes[node].dir;
    let flag = dir.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let script = dir.join("check.sh");
    write_script(&script, &format!("#!/bin/sh\ntest -e {}\n", flag.display())).unwrap();
    let yaml = format!(
        "track_scripts:\n  - name: chk\n    script: {}\n    interval: 0.2\n    fall: 2\n    rise: 2\n",
        script.display()
    );
    (flag, yaml)
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_failing_track_script_moves_the_vip_and_recovery_brings_it_back() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let (flag, scripts) = flag_script(&lab, 0);
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150).with("track_scripts: [chk]")],
            &scripts,
        ))
        .unwrap();
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], ""))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();

    std::fs::remove_file(&flag).unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.reached_through(VIP, "b", WAIT).unwrap();
    assert_eq!(lab.a().state_file("VI_1").as_deref(), Some("STATE=FAULT\n"));

    std::fs::write(&flag, "").unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.reached_through(VIP, "a", WAIT).unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_negative_weight_lowers_priority_below_the_peer() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let (flag, scripts) = flag_script(&lab, 0);
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150).with("track_scripts: [{ name: chk, weight: -100 }]")],
            &scripts,
        ))
        .unwrap();
    lab.b()
        .start(&node_config(&[InstanceSpec::vi1(100)], ""))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    std::fs::remove_file(&flag).unwrap();
    // 150 - 100 = 50 < 100: b preempts; a stays BACKUP, not FAULT.
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    assert_eq!(
        lab.a().state_file("VI_1").as_deref(),
        Some("STATE=BACKUP\n")
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_sync_group_moves_both_vips_when_one_link_fails() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let group = "sync_groups:\n  - name: G1\n    group: [VI_1, VI_2]\n";
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150), InstanceSpec::vi2(150)],
            group,
        ))
        .unwrap();
    lab.b()
        .start(&node_config(
            &[InstanceSpec::vi1(100), InstanceSpec::vi2(100)],
            group,
        ))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.wait_sole_holder(VIP2, "a", WAIT).unwrap();

    // Only VI_2's link fails; VI_1 follows its group to b.
    lab.nodes[0]
        .ns
        .ip(&["link", "set", "eth1", "down"])
        .unwrap();
    lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.wait_sole_holder(VIP2, "b", WAIT).unwrap();
    lab.reached_through(VIP, "b", WAIT).unwrap();
    assert_eq!(lab.a().state_file("VI_1").as_deref(), Some("STATE=FAULT\n"));

    lab.nodes[0].ns.ip(&["link", "set", "eth1", "up"]).unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.wait_sole_holder(VIP2, "a", WAIT).unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_script_others_can_write_is_refused_naming_the_file_and_the_fix() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let (_flag, scripts) = flag_script(&lab, 0);
    let script = lab.nodes[0].dir.join("check.sh");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150).with("track_scripts: [chk]")],
            &scripts,
        ))
        .unwrap();
    let status = lab.a().daemon().wait(WAIT).unwrap();
    let log = lab.a().daemon().log();
    assert!(!status.success(), "lbd must refuse to start; log:\n{log}");
    let shown = script.display();
    assert!(
        log.contains(&format!("{shown} is writable by others"))
            && log.contains(&format!("fix: chmod o-w {shown}")),
        "the refusal names the file and the fix; log:\n{log}"
    );
    assert!(!lab.nodes[0].holds(VIP).unwrap());
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn notify_scripts_run_with_keepalived_arguments() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let dir = lab.nodes[0].dir.clone();
    let out = dir.join("notified");
    let script = dir.join("notify.sh");
    write_script(
        &script,
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    let master = dir.join("master.sh");
    let became = dir.join("became-master");
    write_script(&master, &format!("#!/bin/sh\ntouch {}\n", became.display())).unwrap();
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(150)
                .with(&format!("notify: {}", script.display()))
                .with(&format!("notify_master: {}", master.display()))],
            "",
        ))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    assert!(lab.a().stop(libc::SIGTERM).unwrap().success());
    let lines = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        lines, "INSTANCE VI_1 BACKUP 150\nINSTANCE VI_1 MASTER 150\nINSTANCE VI_1 STOP 150\n",
        "notify calls in order"
    );
    assert!(became.exists(), "notify_master ran");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn the_first_notify_carries_the_priority_the_track_scripts_make() {
    // The NGINX HA pair's shape: priority 101 and two weight-50 scripts
    // that pass, so the effective priority is 201 from the start.
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    let dir = lab.nodes[0].dir.clone();
    let ok = dir.join("ok.sh");
    write_script(&ok, "#!/bin/sh\nexit 0\n").unwrap();
    let events = dir.join("notify.log");
    let notify = dir.join("notify.sh");
    write_script(
        &notify,
        &format!("#!/bin/sh\necho \"$@\" >> {}\n", events.display()),
    )
    .unwrap();
    let scripts = format!(
        "track_scripts:\n  - {{ name: chk_nginx_service, script: {ok}, interval: 3, weight: 50 }}\n  - {{ name: chk_manual_failover, script: {ok}, interval: 10, weight: 50 }}\n",
        ok = ok.display()
    );
    lab.a()
        .start(&node_config(
            &[InstanceSpec::vi1(101).with(&format!(
                "track_scripts: [chk_nginx_service, chk_manual_failover]\n    notify: {}",
                notify.display()
            ))],
            &scripts,
        ))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    // Notify scripts run in the background: wait for the MASTER one.
    let deadline = std::time::Instant::now() + WAIT;
    let mut lines = String::new();
    while std::time::Instant::now() < deadline && !lines.contains("MASTER") {
        std::thread::sleep(Duration::from_millis(50));
        lines = std::fs::read_to_string(&events).unwrap_or_default();
    }
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("INSTANCE VI_1 BACKUP 201"),
        "the first notify says the effective priority, not the configured 101: {lines:?}\n{}",
        lab.logs()
    );
    assert!(lines.contains(&"INSTANCE VI_1 MASTER 201"), "{lines:?}");
}
