//! Failures on the LAN: a master that dies without a word, lost adverts,
//! and a partition (split brain) that heals.

use std::time::Duration;

use super::{Lan, router};
use crate::vrrp::{
    instance::{Reason, State},
    testing::ip,
};

const SEC: Duration = Duration::from_secs(1);

/// RFC 5798 6.1 with 1 s adverts.
fn master_down(priority: u32) -> Duration {
    3 * SEC + SEC * (256 - priority) / 256
}

/// Three routers at 200, 150 and 100, started together and settled.
fn three() -> (Lan, [usize; 3]) {
    let mut lan = Lan::new();
    let nodes = [
        lan.add(router("a", "10.200.0.11", 200)),
        lan.add(router("b", "10.200.0.12", 150)),
        lan.add(router("c", "10.200.0.13", 100)),
    ];
    for node in nodes {
        lan.start(node);
    }
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [nodes[0]]);
    (lan, nodes)
}

#[test]
fn crashed_masters_are_replaced_in_priority_order_within_master_down_interval() {
    let (mut lan, [a, b, c]) = three();
    lan.crash(a);
    let last_heard = lan.last_delivered_from(a).expect("a advertised");
    let at = lan
        .run_until_master(b, 10 * SEC)
        .expect("the next priority takes over");
    // RFC 5798 6.4.2: the Master_Down_Timer, armed by the last advert
    // heard, fires Master_Down_Interval later; the lower backup, whose
    // interval is longer, hears the new master first.
    assert_eq!(at, last_heard + master_down(150));
    lan.run_for(30 * SEC);
    assert_eq!(lan.masters(), [b]);
    assert_eq!(lan.vip_holders(), [b]);
    assert_eq!(lan.state(c), State::Backup);

    lan.crash(b);
    let last_heard = lan.last_delivered_from(b).expect("b advertised");
    let at = lan
        .run_until_master(c, 10 * SEC)
        .expect("the last one takes over");
    assert_eq!(at, last_heard + master_down(100));
    assert_eq!(lan.vip_holders(), [c]);
}

#[test]
fn two_lost_adverts_are_tolerated_and_a_third_is_not() {
    let mut lan = Lan::new();
    let a = lan.add(router("a", "10.200.0.11", 200));
    let b = lan.add(router("b", "10.200.0.12", 100));
    lan.start(a);
    lan.start(b);
    lan.run_for(10 * SEC);
    // Master_Down_Interval is three intervals plus skew: two adverts lost
    // leave the third in time.
    let settled = lan.transitions().len();
    lan.drop_next_from(a, 2);
    lan.run_for(20 * SEC);
    assert!(
        lan.transitions()[settled..].is_empty(),
        "two lost adverts made a router move: {:?}",
        &lan.transitions()[settled..]
    );
    // Three lost: the backup takes over, then yields to the higher priority
    // as soon as it is heard again.
    lan.drop_next_from(a, 3);
    lan.run_for(20 * SEC);
    let moves: Vec<_> = lan.transitions()[settled..]
        .iter()
        .filter(|t| t.node == b)
        .map(|t| (t.to, t.reason.clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (State::Master, Reason::MasterDown),
            (
                State::Backup,
                Reason::HigherPriority {
                    from: ip("10.200.0.11"),
                    priority: 200
                }
            ),
        ]
    );
    assert_eq!(lan.masters(), [a]);
    assert_eq!(lan.vip_holders(), [a]);
}

#[test]
fn under_heavy_loss_the_lan_settles_on_the_highest_priority_once_loss_stops() {
    let (mut lan, [a, _, _]) = three();
    // 40% of adverts lost for five minutes: backups may take over and give
    // back; the protocol must not wedge in a state with two masters.
    lan.set_loss(400, 0x5eed);
    lan.run_for(300 * SEC);
    let flaps = lan
        .transitions()
        .iter()
        .filter(|t| t.to == State::Master)
        .count();
    assert!(flaps > 1, "the loss was too light to test anything");
    lan.set_loss(0, 0);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [a]);
    assert_eq!(lan.vip_holders(), [a]);
}

#[test]
fn a_partition_makes_two_masters_and_healing_it_leaves_the_higher_one() {
    let mut lan = Lan::new();
    let a = lan.add(router("a", "10.200.0.11", 200));
    let b = lan.add(router("b", "10.200.0.12", 100));
    lan.start(a);
    lan.start(b);
    lan.run_for(10 * SEC);
    lan.partition("eth0", &[&[a], &[b]]);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [a, b], "each side elects its own master");
    assert_eq!(lan.vip_holders(), [a, b]);

    lan.heal("eth0");
    lan.run_for(5 * SEC);
    assert_eq!(lan.masters(), [a], "exactly one master once healed");
    assert_eq!(lan.vip_holders(), [a]);
    let gave_up = lan.transitions().last().expect("b gave up");
    assert_eq!(
        (gave_up.node, gave_up.from, gave_up.to),
        (b, State::Master, State::Backup)
    );
    assert!(
        gave_up.at < 21 * SEC + SEC / 10,
        "within one advert interval of healing"
    );
}

#[test]
fn a_healed_split_brain_between_equal_priorities_keeps_the_higher_address() {
    let mut lan = Lan::new();
    let low = lan.add(router("low", "10.200.0.11", 100));
    let high = lan.add(router("high", "10.200.0.12", 100));
    lan.start(low);
    lan.run_for(10 * SEC);
    lan.start(high);
    lan.run_for(10 * SEC);
    // RFC 5798 6.4.2: a backup accepts an equal priority's adverts, so the
    // first master stays, whatever the addresses.
    assert_eq!(lan.masters(), [low]);
    lan.partition("eth0", &[&[low], &[high]]);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [low, high]);
    lan.heal("eth0");
    lan.run_for(5 * SEC);
    // RFC 5798 6.4.3: between two masters the greater address wins.
    assert_eq!(lan.masters(), [high]);
    assert_eq!(lan.vip_holders(), [high]);
}

#[test]
fn a_minority_cut_off_from_three_keeps_one_master_per_side_until_healed() {
    let (mut lan, [a, b, c]) = three();
    lan.partition("eth0", &[&[a], &[b, c]]);
    lan.run_for(10 * SEC);
    assert_eq!(lan.masters(), [a, b], "the majority side elects the 150");
    assert_eq!(lan.state(c), State::Backup);
    lan.heal("eth0");
    lan.run_for(5 * SEC);
    assert_eq!(lan.masters(), [a]);
    assert_eq!(lan.vip_holders(), [a]);
    assert_eq!(lan.instance(c).master(), Some((ip("10.200.0.11"), 200)));
}

#[test]
fn a_v3_backup_waits_on_the_masters_advert_interval_not_its_own() {
    let mut lan = Lan::new();
    let mut slow = router("slow", "10.200.0.11", 200);
    slow.advert_interval = 2 * SEC;
    let a = lan.add(slow);
    let b = lan.add(router("b", "10.200.0.12", 100));
    lan.start(a);
    lan.start(b);
    lan.run_for(20 * SEC);
    assert_eq!(
        lan.masters(),
        [a],
        "1 s backup must not time out on 2 s adverts"
    );
    assert_eq!(lan.instance(b).master_adver_interval(), 2 * SEC);
    lan.crash(a);
    let last_heard = lan.last_delivered_from(a).expect("a advertised");
    let at = lan.run_until_master(b, 20 * SEC).expect("b takes over");
    // RFC 5798 6.4.2: the backup adopts the master's interval, so
    // Master_Down_Interval = 3 * 2 s + (256 - 100) * 2 s / 256.
    assert_eq!(at, last_heard + 6 * SEC + 2 * SEC * 156 / 256);
}
