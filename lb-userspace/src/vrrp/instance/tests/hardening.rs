//! Rules a crafted or flooded advert must not break: the address owner
//! keeps its addresses, and a MASTER answers another master at most once
//! per advert interval per sender. And the log lines keepalived users'
//! alerting greps for.

use super::*;

#[test]
fn the_owner_keeps_its_addresses_against_a_priority_255_advert_from_a_higher_address() {
    // We are 10.200.0.11; the advert comes from 10.200.0.12, which would win
    // an equal-priority tie under RFC 5798 6.4.3.
    let mut h = Harness::started(with_priority(255));
    assert_eq!(h.state(), State::Master);
    h.actions();
    let t = h.clock.elapsed() + ms(100);
    h.deliver_at(t, &Peer::v2().advert(255)).unwrap();
    assert_eq!(
        h.state(),
        State::Master,
        "the address owner gave up MASTER to another priority-255 advert"
    );
    let actions = h.actions();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::RemoveVips { .. })),
        "the address owner removed its own addresses: {actions:?}"
    );
    assert_eq!(adverts(&actions), [255], "it re-asserts instead");
}

#[test]
fn a_non_owner_master_still_yields_to_an_equal_priority_from_a_higher_address() {
    let mut h = master(with_priority(150));
    let t = h.clock.elapsed() + ms(100);
    h.deliver_at(t, &Peer::v2().advert(150)).unwrap();
    assert_eq!(h.state(), State::Backup);
}

#[test]
fn a_flood_of_lower_priority_adverts_is_answered_once_per_interval_per_sender() {
    let mut h = master(with_priority(150));
    let start = h.clock.elapsed();
    let flooder = Peer::v2().from("10.200.0.12");
    let other = Peer::v2().from("10.200.0.13");
    // 10,000 adverts a second from one sender, and one a second from
    // another, for 3 s; the MASTER's own adverts keep coming every second.
    let mut answered_total = 0;
    for n in 0..30_000u64 {
        let t = start + Duration::from_micros(n * 100);
        h.deliver_at(t, &flooder.advert(100)).unwrap();
        if n % 10_000 == 5_000 {
            h.deliver_at(t, &other.advert(90)).unwrap();
        }
        answered_total += adverts(&h.actions()).len();
    }
    assert_eq!(h.state(), State::Master);
    // 3 own adverts (one per second) + at most one answer per second to
    // each of the two senders.
    assert!(
        answered_total <= 3 + 3 + 3,
        "the MASTER sent {answered_total} adverts in 3 s of flood: it answers every advert"
    );
    let c = h.vrrp.counters();
    assert_eq!(
        c.split_brain_replies, 6,
        "each sender answered once a second"
    );
    assert_eq!(c.split_brain_replies_limited, 30_003 - 6);
}

#[test]
fn the_first_advert_of_a_real_split_brain_is_answered_at_once() {
    let mut h = master(with_priority(150));
    let t = h.clock.elapsed() + ms(10);
    h.deliver_at(t, &Peer::v2().advert(100)).unwrap();
    let first = h.actions();
    assert_eq!(adverts(&first), [150]);
    assert_eq!(garps(&first), [5]);
    // The other master's next advert, one interval later, is answered too.
    h.deliver_at(t + SEC, &Peer::v2().advert(100)).unwrap();
    let second = h.actions();
    assert!(adverts(&second).contains(&150));
    assert_eq!(garps(&second), [5]);
}

#[test]
fn state_changes_log_keepalived_s_lines_that_alert_rules_grep() {
    let log = crate::log_format::capture(|| {
        let mut h = master(params_v2());
        h.vrrp.interface_state("eth0", false, h.clock.now());
        h.vrrp.interface_state("eth0", true, h.clock.now());
    });
    for line in [
        "(VI_1) Entering BACKUP STATE (init)",
        "(VI_1) Entering MASTER STATE",
        "(VI_1) Entering FAULT STATE",
    ] {
        assert!(log.contains(line), "no `{line}` in the log:\n{log}");
    }
    let fault = log
        .lines()
        .find(|l| l.contains("Entering FAULT STATE"))
        .expect("the FAULT line");
    assert!(fault.contains("WARN"), "FAULT is a warning: {fault}");
    assert!(
        fault.contains("vrrp_instance=VI_1") && fault.contains("from=Master"),
        "the structured fields are kept: {fault}"
    );
}
