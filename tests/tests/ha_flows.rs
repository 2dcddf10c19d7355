//! Established connections through a balancer pair across what happens to
//! a balancer: a clean failover, a manual one, a crash, a restart. Each
//! test holds 300 long-lived TCP connections and a UDP stream through the
//! VIP and asserts that none was reset or moved to another backend and
//! that the UDP stream kept being answered; the stalls are printed
//! (`cargo xtask bench flows` measures them; timings are not asserted).

use std::time::{Duration, Instant};

use lb_lab::{long_flows::FlowReport, privileges::require_root};
use lb_tests::{
    ha_lab::{Event, HaLab},
    vrrp_lab::{VIP, VIP2},
};

/// Runs `event` on a pair using `scheduler` (with `rest` in both configs)
/// while the flows run; returns the lab and what the flows went through.
fn through(event: Event, scheduler: &str, rest: &str) -> (HaLab, FlowReport) {
    require_root("the HA lab");
    let (lab, report) =
        HaLab::flows_through(event, scheduler, rest).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{}, {scheduler}: {}", event.name(), report.summary());
    (lab, report)
}

fn assert_survived(event: Event, report: &FlowReport, lab: &HaLab) {
    assert_eq!(
        (report.broken, report.moved),
        (0, 0),
        "{}: every connection survives on its backend: {}\n{}",
        event.name(),
        report.summary(),
        lab.vrrp.logs()
    );
    assert!(
        report.udp_answered * 10 >= report.udp_sent * 9,
        "{}: the UDP stream keeps being answered: {}\n{}",
        event.name(),
        report.summary(),
        lab.vrrp.logs()
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sigterm_failover_under_mh_keeps_every_connection() {
    let (lab, report) = through(Event::Sigterm, "mh", "");
    assert_survived(Event::Sigterm, &report, &lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn manual_failover_under_mh_keeps_every_connection() {
    let (lab, report) = through(Event::ManualFailover, "mh", "");
    assert_survived(Event::ManualFailover, &report, &lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_restarted_master_takes_its_flows_back_under_mh() {
    let (lab, report) = through(Event::Restart, "mh", "");
    assert_survived(Event::Restart, &report, &lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_killed_master_leaves_no_vip_behind() {
    require_root("the HA lab");
    let mut lab = HaLab::elected("mh", "").expect("an elected pair");
    lab.vrrp.a().stop(libc::SIGKILL).unwrap();
    // The kernel takes the VIPs away with the process: nothing on a
    // answers for them (no ARP reply, no reset) while b takes over, well
    // within b's Master_Down_Interval (3 x 0.2 s plus skew).
    let start = Instant::now();
    while lab.vrrp.a().holds(VIP).unwrap() || lab.vrrp.a().holds(VIP2).unwrap() {
        assert!(
            start.elapsed() < Duration::from_millis(600),
            "a still holds a VIP {:?} after it was killed\n{}",
            start.elapsed(),
            lab.vrrp.logs()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "the killed node's VIPs were gone {:?} after its exit",
        start.elapsed()
    );
    lab.vrrp
        .wait_sole_holder(VIP, "b", Duration::from_secs(10))
        .unwrap();
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_killed_master_under_mh_keeps_every_connection() {
    // The killed node's XDP program outlives it (pinned link) and goes on
    // translating what stale caches still send it until they move to b;
    // without it, its kernel forwarded backends' replies untranslated and
    // the client reset them (13 of 300 in one run).
    let (lab, report) = through(Event::Sigkill, "mh", "");
    assert_survived(Event::Sigkill, &report, &lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_restart_with_a_changed_config_under_mh_keeps_every_connection() {
    let (lab, report) = through(Event::RestartChanged, "mh", "");
    assert_survived(Event::RestartChanged, &report, &lab);
}

/// `wrr` needs the flows themselves on the node that takes over: flow sync
/// over IPVS's multicast group, the same on both nodes.
const WRR_SYNC: &str = "flow_sync:\n  interface: eth1\n  group: 224.0.0.81\n";

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_killed_master_under_wrr_with_flow_sync_keeps_every_connection() {
    let (lab, report) = through(Event::Sigkill, "wrr", WRR_SYNC);
    assert_survived(Event::Sigkill, &report, &lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_restarted_master_under_wrr_with_flow_sync_takes_every_connection_back() {
    let (lab, report) = through(Event::Restart, "wrr", WRR_SYNC);
    assert_survived(Event::Restart, &report, &lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_restart_with_a_changed_config_under_wrr_with_flow_sync_keeps_every_connection() {
    let (lab, report) = through(Event::RestartChanged, "wrr", WRR_SYNC);
    assert_survived(Event::RestartChanged, &report, &lab);
}
