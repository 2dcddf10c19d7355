//! Flow sync (`flow_sync:`) keeps `wrr` flows across a failover: the
//! MASTER streams the flows it starts to the BACKUP, which installs them,
//! so the new MASTER sends every established connection to the backend
//! it had. Without it, the new MASTER places each connection it picks up
//! mid-flow by hash, and most land on a backend that never saw them.
//!
//! Each test holds 300 long-lived TCP connections (a line every 50 ms)
//! and a UDP stream through the VIP. The longest stall is printed, not
//! asserted (`cargo xtask bench flows` measures stalls).

use std::{fmt::Write as _, time::Duration};

use lb_lab::{
    long_flows::{FlowReport, LongFlows},
    privileges::require_root,
};
use lb_tests::{
    ha_lab::{HaLab, pair_config},
    vrrp_lab::{VIP, VIP2, node_ip},
};

const WAIT: Duration = Duration::from_secs(15);

/// How the nodes sync flows, if at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    Off,
    /// To the other node's address on the backend LAN.
    Unicast,
    /// To IPVS's default group on the backend LAN.
    Multicast,
}

/// Node `index`'s config: the pair's services under `wrr`, and flow sync
/// over the backend LAN as `sync` says.
fn config(priority: u8, index: usize, sync: Sync) -> String {
    let rest = match sync {
        Sync::Off => String::new(),
        Sync::Unicast => format!(
            "flow_sync:\n  interface: eth1\n  peers: [{}]\n",
            node_ip(1 - index, 1)
        ),
        Sync::Multicast => "flow_sync:\n  interface: eth1\n  group: 224.0.0.81\n".to_owned(),
    };
    pair_config(priority, "wrr", &[], &rest)
}

/// Both nodes up, `a` MASTER, the flows open and (with sync) known to `b`.
fn pair(sync: Sync) -> (HaLab, LongFlows) {
    require_root("the HA lab");
    let mut lab = HaLab::new().expect("lab");
    lab.vrrp.a().start(&config(150, 0, sync)).unwrap();
    lab.vrrp.b().start(&config(100, 1, sync)).unwrap();
    lab.vrrp.wait_sole_holder(VIP, "a", WAIT).unwrap();
    lab.vrrp.wait_sole_holder(VIP2, "a", WAIT).unwrap();
    let flows = LongFlows::start(&lab.vrrp.client, HaLab::flow_plan()).unwrap_or_else(|e| {
        panic!("flows open: {e:#}\n{}", lab.vrrp.logs());
    });
    std::thread::sleep(Duration::from_millis(500));
    if sync != Sync::Off {
        // Every connection and the UDP flow reached b, established.
        let report = lab
            .vrrp
            .b()
            .daemon()
            .wait_status("b to install a's flows", WAIT, |r| {
                r.flow_sync
                    .as_ref()
                    .is_some_and(|s| s.installed > HaLab::flow_plan().connections as u64)
            });
        let sync = report.flow_sync.expect("b runs the flow sync");
        assert_eq!(
            (
                sync.bad_datagrams,
                sync.skipped_unknown_service,
                sync.skipped_unknown_real,
                sync.unknown_sender
            ),
            (0, 0, 0, 0),
            "b refused some of a's flows: {sync:?}"
        );
        eprintln!("before the failover:\n{}", sync_counters(&mut lab));
        let a = lab.vrrp.a().daemon().status().unwrap();
        let sent = a.flow_sync.expect("a runs the flow sync");
        assert!(
            sent.entries_sent > HaLab::flow_plan().connections as u64 && sent.send_errors == 0,
            "a's sender: {sent:?}"
        );
        assert_eq!(
            a.xdp_counters.get("flow_events_lost").copied(),
            Some(0),
            "a's program lost flow events"
        );
    }
    (lab, flows)
}

/// The flow sync's counters of the nodes still running, for a failure.
fn sync_counters(lab: &mut HaLab) -> String {
    let mut out = String::new();
    for (name, node) in [("a", 0), ("b", 1)] {
        if let Some(daemon) = lab.vrrp.nodes[node].daemon.as_ref()
            && let Ok(status) = daemon.status()
        {
            let lost = status.xdp_counters.get("flow_events_lost");
            let _ = writeln!(
                out,
                "{name}: {:?}, flow_events_lost {lost:?}",
                status.flow_sync
            );
        }
    }
    out
}

fn assert_survived(event: &str, report: &FlowReport, lab: &mut HaLab) {
    eprintln!("{event}: {}", report.summary());
    let counters = sync_counters(lab);
    eprintln!("{counters}");
    assert_eq!(
        (report.broken, report.moved),
        (0, 0),
        "{event}: every connection survives on its backend: {}\n{counters}{}",
        report.summary(),
        lab.vrrp.logs()
    );
    assert!(
        report.udp_answered * 10 >= report.udp_sent * 9,
        "{event}: the UDP stream keeps being answered: {}\n{}",
        report.summary(),
        lab.vrrp.logs()
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sigterm_failover_under_wrr_with_flow_sync_keeps_every_connection() {
    let (mut lab, flows) = pair(Sync::Unicast);
    let status = lab.vrrp.a().stop(libc::SIGTERM).unwrap();
    assert!(status.success(), "{status}");
    lab.vrrp.wait_sole_holder(VIP, "b", WAIT).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let report = flows.finish().unwrap();
    assert_survived("SIGTERM failover, wrr, flow sync", &report, &mut lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn manual_failover_under_wrr_with_flow_sync_keeps_every_connection() {
    let (mut lab, flows) = pair(Sync::Unicast);
    let out = lab.vrrp.a().daemon().ctl(&["failover", "VI_1"]).unwrap();
    assert!(
        out.status.success(),
        "lbd failover: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.vrrp.wait_sole_holder(VIP, "b", WAIT).unwrap();
    lab.vrrp.wait_sole_holder(VIP2, "b", WAIT).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let report = flows.finish().unwrap();
    assert_survived("lbd failover, wrr, flow sync", &report, &mut lab);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sigterm_failover_under_wrr_with_multicast_flow_sync_keeps_every_connection() {
    let (mut lab, flows) = pair(Sync::Multicast);
    let status = lab.vrrp.a().stop(libc::SIGTERM).unwrap();
    assert!(status.success(), "{status}");
    lab.vrrp.wait_sole_holder(VIP, "b", WAIT).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let report = flows.finish().unwrap();
    assert_survived(
        "SIGTERM failover, wrr, multicast flow sync",
        &report,
        &mut lab,
    );
}

/// The same failover without `flow_sync`: what the feature is for.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sigterm_failover_under_wrr_without_flow_sync_breaks_connections() {
    let (mut lab, flows) = pair(Sync::Off);
    let status = lab.vrrp.a().stop(libc::SIGTERM).unwrap();
    assert!(status.success(), "{status}");
    lab.vrrp.wait_sole_holder(VIP, "b", WAIT).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let report = flows.finish().unwrap();
    eprintln!("SIGTERM failover, wrr, no flow sync: {}", report.summary());
    // wrr placed them in turn; b places each by hash: about two thirds
    // land on a backend that never saw them (chance of none: 3^-300).
    assert!(
        report.broken + report.moved > HaLab::flow_plan().connections / 4,
        "without flow sync most wrr connections should break or move: {}",
        report.summary()
    );
}
