//! Elections between several routers on one LAN: who wins, when, and what
//! preemption, `preempt_delay` and the address owner change.

use std::time::Duration;

use super::{Lan, router};
use crate::vrrp::{
    instance::{Reason, State},
    testing::ip,
};

const SEC: Duration = Duration::from_secs(1);
/// The LAN's one-way delay (see `Lan::new`).
const LATENCY: Duration = Duration::from_millis(1);

/// RFC 5798 6.1 with 1 s adverts: Master_Down_Interval =
/// 3 * Master_Adver_Interval + (256 - Priority) * Master_Adver_Interval / 256.
fn master_down(priority: u32) -> Duration {
    3 * SEC + SEC * (256 - priority) / 256
}

/// RFC 5798 6.1: Skew_Time with 1 s adverts.
fn skew(priority: u32) -> Duration {
    SEC * (256 - priority) / 256
}

/// The times `node` became MASTER.
fn became_master(lan: &Lan, node: usize) -> Vec<Duration> {
    lan.transitions()
        .iter()
        .filter(|t| t.node == node && t.to == State::Master)
        .map(|t| t.at)
        .collect()
}

#[test]
fn the_highest_priority_of_three_wins_after_its_master_down_interval() {
    let mut lan = Lan::new();
    let low = lan.add(router("low", "10.200.0.11", 100));
    let high = lan.add(router("high", "10.200.0.12", 200));
    let mid = lan.add(router("mid", "10.200.0.13", 150));
    for node in [low, high, mid] {
        lan.start(node);
    }
    lan.run_for(30 * SEC);
    assert_eq!(
        lan.masters(),
        [high],
        "exactly one master, the priority 200"
    );
    assert_eq!(lan.vip_holders(), [high], "the VIP lives on one node only");
    // RFC 5798 6.4.2: every backup waits its Master_Down_Interval; the
    // highest priority has the shortest and wins without a contest.
    assert_eq!(became_master(&lan, high), [master_down(200)]);
    assert!(became_master(&lan, low).is_empty());
    assert!(became_master(&lan, mid).is_empty());
    assert_eq!(lan.instance(low).master(), Some((ip("10.200.0.12"), 200)));
    assert_eq!(lan.instance(mid).master(), Some((ip("10.200.0.12"), 200)));
}

#[test]
fn equal_priorities_elect_the_higher_primary_address() {
    // Node order must not matter: the higher address is added first once
    // and last once.
    for higher_first in [true, false] {
        let mut lan = Lan::new();
        let (a, b) = if higher_first {
            ("10.200.0.12", "10.200.0.11")
        } else {
            ("10.200.0.11", "10.200.0.12")
        };
        let first = lan.add(router("first", a, 100));
        let second = lan.add(router("second", b, 100));
        lan.start(first);
        lan.start(second);
        lan.run_for(20 * SEC);
        let winner = if higher_first { first } else { second };
        let loser = if higher_first { second } else { first };
        // Both time out together and go MASTER; RFC 5798 6.4.3: the
        // master hearing an equal priority from a greater address yields.
        assert_eq!(lan.masters(), [winner], "higher_first={higher_first}");
        assert_eq!(lan.vip_holders(), [winner]);
        let yielded = lan
            .transitions()
            .iter()
            .find(|t| t.node == loser && t.from == State::Master)
            .expect("the lower address was master for a moment, then yielded");
        assert_eq!(yielded.to, State::Backup);
        assert_eq!(
            yielded.reason,
            Reason::HigherPriority {
                from: ip("10.200.0.12"),
                priority: 100
            }
        );
        assert_eq!(yielded.at, master_down(100) + LATENCY);
    }
}

#[test]
fn a_higher_priority_joining_later_preempts_after_its_master_down_interval() {
    let mut lan = Lan::new();
    let old = lan.add(router("old", "10.200.0.11", 100));
    lan.start(old);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [old]);
    let new = lan.add(router("new", "10.200.0.12", 200));
    lan.start(new);
    lan.run_for(10 * SEC);
    // RFC 5798 6.4.2: with Preempt_Mode a backup discards a lower
    // priority's adverts, so its Master_Down_Timer runs out.
    assert_eq!(became_master(&lan, new), [10 * SEC + master_down(200)]);
    assert_eq!(lan.masters(), [new]);
    assert_eq!(lan.vip_holders(), [new]);
    assert_eq!(lan.state(old), State::Backup);
}

#[test]
fn without_preemption_a_higher_priority_stays_backup() {
    let mut lan = Lan::new();
    let old = lan.add(router("old", "10.200.0.11", 100));
    lan.start(old);
    lan.run_for(10 * SEC);
    let mut params = router("new", "10.200.0.12", 200);
    params.preempt = false;
    let new = lan.add(params);
    lan.start(new);
    lan.run_for(120 * SEC);
    assert_eq!(
        lan.masters(),
        [old],
        "nopreempt must leave the master alone"
    );
    assert_eq!(lan.instance(new).master(), Some((ip("10.200.0.11"), 100)));
    // Once the master goes away, the higher priority does take over.
    lan.stop(old);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [new]);
}

#[test]
fn preempt_delay_holds_the_takeover_back() {
    let delay = 10 * SEC;
    let mut lan = Lan::new();
    let old = lan.add(router("old", "10.200.0.11", 100));
    lan.start(old);
    lan.run_for(10 * SEC);
    let mut params = router("new", "10.200.0.12", 200);
    params.preempt_delay = delay;
    let new = lan.add(params);
    lan.start(new);
    let at = lan
        .run_until_master(new, 60 * SEC)
        .expect("the higher priority preempts once the delay is over");
    // keepalived: the delay starts when the lower master is first heard
    // (within one advert interval of starting); until then its adverts
    // count, and the takeover comes one Master_Down_Interval after.
    let started = 10 * SEC;
    assert!(
        at >= started + delay,
        "took over at {at:?}, before the delay"
    );
    assert!(
        at <= started + SEC + delay + master_down(200),
        "took over at {at:?}, later than the delay plus one Master_Down_Interval"
    );
    lan.run_for(5 * SEC);
    assert_eq!(lan.masters(), [new]);
}

#[test]
fn the_address_owner_takes_over_at_once_and_hands_back_within_skew_time() {
    let mut lan = Lan::new();
    let backup = lan.add(router("backup", "10.200.0.11", 100));
    lan.start(backup);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [backup]);

    // RFC 5798 6.4.1: priority 255 goes MASTER on startup, no waiting.
    let owner = lan.add(router("owner", "10.200.0.12", 255));
    lan.start(owner);
    assert_eq!(became_master(&lan, owner), [10 * SEC]);
    lan.run_for(SEC);
    let yielded = lan.transitions().last().expect("the backup yielded");
    assert_eq!((yielded.node, yielded.to), (backup, State::Backup));
    assert_eq!(yielded.at, 10 * SEC + LATENCY);
    assert_eq!(lan.vip_holders(), [owner]);

    // RFC 5798 6.4.3: a stopping master sends priority 0; 6.4.2: the backup
    // takes over after Skew_Time instead of Master_Down_Interval.
    lan.run_for(9 * SEC);
    lan.stop(owner);
    lan.run_for(10 * SEC);
    let took_over = lan
        .transitions()
        .iter()
        .rfind(|t| t.node == backup && t.to == State::Master)
        .expect("the backup took over");
    assert_eq!(took_over.reason, Reason::MasterStopped);
    assert_eq!(took_over.at, 20 * SEC + LATENCY + skew(100));

    // The owner coming back preempts at once again.
    lan.start(owner);
    lan.run_for(SEC);
    assert_eq!(lan.masters(), [owner]);
    assert_eq!(lan.vip_holders(), [owner]);
}

#[test]
fn a_second_owner_by_mistake_never_takes_the_first_owner_s_addresses() {
    // Two routers configured as owner (priority 255): RFC 5798 7.1 has an
    // owner drop every advert, so neither gives up its addresses, not even
    // to a higher primary address (which wins an equal-priority tie).
    let mut lan = Lan::new();
    let first = lan.add(router("first", "10.200.0.11", 255));
    lan.start(first);
    lan.run_for(5 * SEC);
    let second = lan.add(router("second", "10.200.0.12", 255));
    lan.start(second);
    lan.run_for(10 * SEC);
    assert!(
        lan.transitions()
            .iter()
            .all(|t| !(t.node == first && t.to == State::Backup)),
        "the first owner gave up MASTER: {:?}",
        lan.transitions()
    );
    assert_eq!(lan.masters(), [first, second]);
}
