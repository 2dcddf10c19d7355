//! Two routers, each a sync group with one instance inside (`eth0`, VRID
//! 51) and one outside (`eth1`, VRID 52): the addresses of both sides must
//! always live on the same router.

use std::time::Duration;

use super::{Lan, on_link, router};
use crate::vrrp::{
    instance::{FaultCause, Reason, State},
    testing::ip,
};

const SEC: Duration = Duration::from_secs(1);
const LATENCY: Duration = Duration::from_millis(1);

/// RFC 5798 6.1: Skew_Time with 1 s adverts.
fn skew(priority: u32) -> Duration {
    SEC * (256 - priority) / 256
}

/// A sync group router whose last address byte is `host`.
fn group(lan: &mut Lan, name: &str, host: u8, priority: u8) -> usize {
    let base = router(name, &format!("10.200.0.{host}"), priority);
    let inside = on_link(
        base.clone(),
        "inside",
        "eth0",
        51,
        &format!("10.200.0.{host}"),
        "10.200.0.100",
    );
    let outside = on_link(
        base,
        "outside",
        "eth1",
        52,
        &format!("10.201.0.{host}"),
        "10.201.0.100",
    );
    lan.add_group(name, vec![inside, outside])
}

/// Routers at 200 and 100, started and settled.
fn pair() -> (Lan, usize, usize) {
    let mut lan = Lan::new();
    let a = group(&mut lan, "a", 11, 200);
    let b = group(&mut lan, "b", 12, 100);
    lan.start(a);
    lan.start(b);
    lan.run_for(10 * SEC);
    assert_eq!(lan.states(a), [State::Master, State::Master]);
    assert_eq!(lan.states(b), [State::Backup, State::Backup]);
    (lan, a, b)
}

fn both_vips() -> Vec<std::net::IpAddr> {
    vec![ip("10.200.0.100"), ip("10.201.0.100")]
}

#[test]
fn the_groups_elect_one_router_for_both_links() {
    let (lan, a, b) = pair();
    assert_eq!(lan.vips(a).iter().copied().collect::<Vec<_>>(), both_vips());
    assert!(lan.vips(b).is_empty());
    assert_eq!(lan.vip_holders(), [a]);
}

#[test]
fn one_member_faulting_moves_the_whole_group_to_the_peer() {
    let (mut lan, a, b) = pair();
    let failed_at = lan.elapsed();
    lan.interface_state(a, "eth1", false);
    // keepalived: one member in FAULT puts the whole group in FAULT; each
    // master says goodbye with priority 0 on its own link.
    assert_eq!(lan.states(a), [State::Fault, State::Fault]);
    let inside_fault = lan
        .transitions()
        .iter()
        .find(|t| t.node == a && t.member == 0 && t.to == State::Fault)
        .expect("the inside member followed the outside one into FAULT");
    assert_eq!(inside_fault.reason, Reason::Fault(FaultCause::SyncGroup));
    assert!(lan.vips(a).is_empty());

    lan.run_for(5 * SEC);
    assert_eq!(lan.states(b), [State::Master, State::Master]);
    assert_eq!(lan.vips(b).iter().copied().collect::<Vec<_>>(), both_vips());
    // RFC 5798 6.4.2: after a priority-0 advert the backups wait Skew_Time;
    // the group lets them go together, once both have.
    for t in lan
        .transitions()
        .iter()
        .filter(|t| t.node == b && t.to == State::Master)
    {
        assert_eq!(t.at, failed_at + LATENCY + skew(100), "member {}", t.member);
    }

    // The link comes back: the higher priority preempts both links again.
    lan.interface_state(a, "eth1", true);
    lan.run_for(10 * SEC);
    assert_eq!(lan.states(a), [State::Master, State::Master]);
    assert_eq!(lan.states(b), [State::Backup, State::Backup]);
    assert_eq!(lan.vip_holders(), [a]);
}

#[test]
fn a_partition_of_one_link_does_not_split_the_group() {
    let (mut lan, a, b) = pair();
    // The outside link between the routers breaks; the inside one still
    // carries a's adverts. b's outside member wants to take over, but its
    // inside member still hears a better master, so the group holds back
    // and no router ends up with half the addresses.
    lan.partition("eth1", &[&[a], &[b]]);
    lan.run_for(30 * SEC);
    assert_eq!(lan.states(a), [State::Master, State::Master]);
    assert_eq!(lan.states(b), [State::Backup, State::Backup]);
    assert_eq!(lan.vip_holders(), [a]);
    // Both links cut: now b's members both want it and go together.
    lan.partition("eth0", &[&[a], &[b]]);
    lan.run_for(10 * SEC);
    assert_eq!(lan.states(b), [State::Master, State::Master]);
    lan.heal("eth0");
    lan.heal("eth1");
    lan.run_for(5 * SEC);
    assert_eq!(lan.states(b), [State::Backup, State::Backup]);
    assert_eq!(lan.vip_holders(), [a]);
}

#[test]
fn a_better_master_on_one_link_takes_both_of_a_groups_masters_down() {
    let mut lan = Lan::new();
    let b = group(&mut lan, "b", 12, 100);
    lan.start(b);
    lan.run_for(10 * SEC);
    assert_eq!(lan.states(b), [State::Master, State::Master]);
    // A lone router at 200 appears on the inside link only.
    let lone = lan.add(router("lone", "10.200.0.13", 200));
    lan.start(lone);
    lan.run_for(10 * SEC);
    // keepalived: one member leaving MASTER for BACKUP takes the others
    // along, so the outside addresses leave with the inside ones.
    assert_eq!(lan.states(b), [State::Backup, State::Backup]);
    assert!(lan.vips(b).is_empty());
    assert_eq!(lan.vip_holders(), [lone]);
}
