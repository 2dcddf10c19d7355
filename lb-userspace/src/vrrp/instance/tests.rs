//! The state machine with a fake clock: every transition of RFC 5798 6.4
//! and each option.

use std::time::Duration;

use super::*;
use crate::config::VirtualAddress;
use crate::vrrp::{
    counters::Counters,
    params::{TrackedInterface, TrackedScript},
    testing::{Clock, Msg, Peer, ip, params_v2, params_v3},
};

const SEC: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An instance under test with its fake clock and the actions it produced.
struct Harness {
    clock: Clock,
    vrrp: Instance,
}

impl Harness {
    fn new(params: InstanceParams) -> Self {
        let clock = Clock::new();
        let vrrp = Instance::new(params, clock.now());
        Self { clock, vrrp }
    }

    fn started(params: InstanceParams) -> Self {
        let mut h = Self::new(params);
        h.vrrp.start(h.clock.now());
        h
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.vrrp.poll_action()).collect()
    }

    /// Runs timers up to `offset` from the clock's start.
    fn run_to(&mut self, offset: Duration) {
        let end = self.clock.at(offset);
        while let Some(t) = self.vrrp.poll_timeout().filter(|t| *t <= end) {
            self.clock.set(t.max(self.clock.now()));
            self.vrrp.handle_timeout(self.clock.now());
        }
        self.clock.set(end);
    }

    /// Moves to `offset` and delivers `msg` there (after the timers due).
    fn deliver_at(&mut self, offset: Duration, msg: &Msg) -> Result<(), DropReason> {
        self.run_to(offset);
        self.vrrp.handle_advert(self.clock.now(), &msg.received())
    }

    /// A master at `priority` advertising every second from 0 to `until`
    /// (exclusive), each delivered after the timers due by then.
    fn hear_master(&mut self, peer: &Peer, priority: u8, from: Duration, until: Duration) {
        let mut t = from;
        while t < until {
            self.deliver_at(t, &peer.advert(priority)).unwrap();
            t += SEC;
        }
    }

    fn state(&self) -> State {
        self.vrrp.state()
    }

    /// Runs up to 20 s more and says when the instance became master.
    fn became_master_at(&mut self) -> Option<Duration> {
        let end = self.clock.elapsed() + Duration::from_secs(20);
        self.run_to(end);
        (self.state() == State::Master).then(|| self.vrrp.last_transition() - self.clock.start)
    }
}

fn state_changes(actions: &[Action]) -> Vec<(State, State, Reason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, reason } => Some((*from, *to, reason.clone())),
            _ => None,
        })
        .collect()
}

fn adverts(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert { priority, .. } => Some(*priority),
            _ => None,
        })
        .collect()
}

fn garps(actions: &[Action]) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendGratuitous { count, .. } => Some(*count),
            _ => None,
        })
        .collect()
}

fn has_add(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::AddVips { .. }))
}

fn has_remove(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::RemoveVips { .. }))
}

fn with_priority(priority: u8) -> InstanceParams {
    InstanceParams {
        priority,
        ..params_v2()
    }
}

// ---- RFC 5798 6.4.1 Initialize ------------------------------------------

#[test]
fn start_enters_backup_and_waits_master_down_interval() {
    let mut h = Harness::started(params_v2());
    assert_eq!(h.state(), State::Backup);
    assert_eq!(
        state_changes(&h.actions()),
        [(State::Init, State::Backup, Reason::Startup)]
    );
    // v2, priority 100: 3 s + 156/256 s.
    let mdi = Duration::from_micros(3_609_375);
    assert_eq!(h.vrrp.poll_timeout(), Some(h.clock.at(mdi)));
    h.run_to(Duration::from_micros(3_609_374));
    assert_eq!(h.state(), State::Backup);
    h.run_to(mdi);
    assert_eq!(h.state(), State::Master);
    let actions = h.actions();
    assert_eq!(
        state_changes(&actions),
        [(State::Backup, State::Master, Reason::MasterDown)]
    );
    // RFC 5798 6.4.2: send an advert, add the addresses, gratuitous ARPs.
    assert!(matches!(
        &actions[1],
        Action::SendAdvert { priority: 100, dst, .. } if *dst == ip("224.0.0.18")
    ));
    assert!(matches!(&actions[2], Action::AddVips { accept: true, .. }));
    assert!(matches!(
        &actions[3],
        Action::SendGratuitous { count: 5, .. }
    ));
}

#[test]
fn address_owner_becomes_master_at_once() {
    let mut h = Harness::started(with_priority(255));
    assert_eq!(h.state(), State::Master);
    let actions = h.actions();
    assert_eq!(
        state_changes(&actions),
        [(State::Init, State::Master, Reason::AddressOwner)]
    );
    assert_eq!(adverts(&actions), [255]);
    assert!(has_add(&actions));
}

#[test]
fn state_master_wish_takes_over_after_one_interval_and_the_smallest_skew() {
    let params = InstanceParams {
        initial_state: InitialState::Master,
        ..params_v2()
    };
    let mut h = Harness::started(params);
    assert_eq!(
        h.state(),
        State::Backup,
        "keepalived starts BACKUP even with state MASTER"
    );
    // 1 s + 1/256 s.
    let wait = SEC + Duration::from_nanos(3_906_250);
    assert_eq!(h.vrrp.poll_timeout(), Some(h.clock.at(wait)));
    h.run_to(wait);
    assert_eq!(h.state(), State::Master);
}

#[test]
fn state_master_wish_yields_to_a_better_master_heard_first() {
    let params = InstanceParams {
        initial_state: InitialState::Master,
        ..params_v2()
    };
    let mut h = Harness::started(params);
    h.hear_master(&Peer::v2(), 150, ms(500), Duration::from_secs(10));
    assert_eq!(h.state(), State::Backup);
    assert_eq!(h.vrrp.master(), Some((ip("10.200.0.12"), 150)));
}

#[test]
fn without_a_source_address_the_instance_faults_until_it_has_one() {
    let params = InstanceParams {
        source_address: None,
        ..params_v2()
    };
    let mut h = Harness::started(params);
    assert_eq!(h.state(), State::Fault);
    assert_eq!(
        state_changes(&h.actions()),
        [(
            State::Init,
            State::Fault,
            Reason::Fault(FaultCause::NoSourceAddress)
        )]
    );
    // An address of the wrong family does not count.
    h.vrrp
        .set_source_address(Some(ip("fe80::1")), h.clock.now());
    assert_eq!(h.state(), State::Fault);
    h.vrrp
        .set_source_address(Some(ip("10.200.0.11")), h.clock.now());
    assert_eq!(h.state(), State::Backup);
}

// ---- RFC 5798 6.4.2 Backup ----------------------------------------------

#[test]
fn lower_priority_backup_stays_backup_while_the_master_advertises() {
    let mut h = Harness::started(params_v2());
    h.hear_master(&Peer::v2(), 150, Duration::ZERO, Duration::from_secs(30));
    assert_eq!(h.state(), State::Backup);
    assert_eq!(h.vrrp.counters().adverts_received, 30);
    assert!(
        adverts(&h.actions()).is_empty(),
        "a backup never advertises"
    );
    // The master vanishes: Master_Down_Interval after its last advert.
    let last = Duration::from_secs(29);
    h.run_to(last + Duration::from_micros(3_609_374));
    assert_eq!(h.state(), State::Backup);
    h.run_to(last + Duration::from_micros(3_609_375));
    assert_eq!(h.state(), State::Master);
}

#[test]
fn priority_zero_makes_the_backup_take_over_after_skew_time() {
    let mut h = Harness::started(params_v2());
    h.hear_master(&Peer::v2(), 150, Duration::ZERO, Duration::from_secs(3));
    h.deliver_at(ms(2627), &Peer::v2().advert(0)).unwrap();
    assert_eq!(h.vrrp.counters().priority_zero_received, 1);
    // keepalived's capture: priority-0 at 2.627 s, takeover at 3.237 s.
    let skew = Duration::from_micros(609_375);
    assert_eq!(h.vrrp.poll_timeout(), Some(h.clock.at(ms(2627) + skew)));
    h.run_to(ms(2627) + skew);
    assert_eq!(h.state(), State::Master);
    assert_eq!(
        state_changes(&h.actions()),
        [
            (State::Init, State::Backup, Reason::Startup),
            (State::Backup, State::Master, Reason::MasterStopped)
        ]
    );
}

#[test]
fn v3_skew_after_priority_zero_scales_with_the_interval() {
    let params = InstanceParams {
        advert_interval: ms(100),
        ..params_v3()
    };
    let mut h = Harness::started(params);
    let peer = Peer::v3(10);
    h.deliver_at(ms(300), &peer.advert(150)).unwrap();
    h.deliver_at(ms(384), &peer.advert(0)).unwrap();
    // 156 * 100 ms / 256 = 60.9375 ms (capture: 0.384 s -> 0.446 s).
    assert_eq!(
        h.vrrp.poll_timeout(),
        Some(h.clock.at(ms(384) + Duration::from_nanos(60_937_500)))
    );
}

#[test]
fn v3_backup_learns_the_masters_interval() {
    let mut h = Harness::started(params_v3());
    let peer = Peer::v3(50);
    h.deliver_at(ms(100), &peer.advert(150)).unwrap();
    assert_eq!(h.vrrp.master_adver_interval(), ms(500));
    // 3 * 0.5 s + 156 * 0.5 s / 256.
    let mdi = ms(1500) + Duration::from_nanos(304_687_500);
    assert_eq!(h.vrrp.poll_timeout(), Some(h.clock.at(ms(100) + mdi)));
}

#[test]
fn v2_drops_a_different_interval_instead_of_learning_it() {
    let mut h = Harness::started(params_v2());
    let peer = Peer {
        interval: 2,
        ..Peer::v2()
    };
    assert_eq!(
        h.deliver_at(ms(100), &peer.advert(150)),
        Err(DropReason::Interval)
    );
    assert_eq!(h.vrrp.counters().dropped(DropReason::Interval), 1);
    assert_eq!(h.vrrp.master_adver_interval(), SEC);
}

#[test]
fn preempt_a_higher_priority_backup_takes_over_from_a_lower_master() {
    let mut h = Harness::started(with_priority(200));
    // The lower master's adverts are discarded (RFC 5798 6.4.2), so the
    // Master_Down_Timer set at start runs out: 3 s + 56/256 s.
    h.hear_master(&Peer::v2(), 100, ms(200), ms(3100));
    assert_eq!(h.state(), State::Backup);
    h.run_to(Duration::from_micros(3_218_750));
    assert_eq!(h.state(), State::Master);
    // Then the lower master hears us and yields; we see its next advert
    // as a split brain and re-assert.
    h.actions();
    h.deliver_at(ms(3300), &Peer::v2().advert(100)).unwrap();
    let actions = h.actions();
    assert_eq!(adverts(&actions), [200]);
    assert_eq!(garps(&actions), [5]);
    assert_eq!(h.state(), State::Master);
}

#[test]
fn preempt_delay_tolerates_a_lower_master_for_the_delay() {
    let params = InstanceParams {
        preempt_delay: Duration::from_secs(10),
        ..with_priority(200)
    };
    let mut h = Harness::started(params);
    h.hear_master(&Peer::v2(), 100, ms(500), Duration::from_secs(30));
    // The delay starts with the first lower advert (0.5 s) and ends at
    // 10.5 s; the adverts before it reset the timer, so the takeover comes
    // a Master_Down_Interval after the last one (9.5 s).
    assert_eq!(h.state(), State::Master);
    let changes = state_changes(&h.actions());
    assert_eq!(changes.len(), 2);
    let at = h.vrrp.last_transition() - h.clock.start;
    assert_eq!(at, ms(9500) + Duration::from_micros(3_218_750));
}

#[test]
fn preempt_delay_restarts_after_a_better_master() {
    let params = InstanceParams {
        preempt_delay: Duration::from_secs(10),
        ..with_priority(200)
    };
    let mut h = Harness::started(params);
    h.hear_master(&Peer::v2(), 100, ms(500), ms(5000));
    // A better master cancels the pending delay (keepalived).
    h.deliver_at(ms(5000), &Peer::v2().from("10.200.0.13").advert(250))
        .unwrap();
    h.hear_master(&Peer::v2(), 100, ms(5500), ms(14_000));
    assert_eq!(h.state(), State::Backup, "the delay started again at 5.5 s");
}

#[test]
fn nopreempt_backup_never_takes_over_from_a_live_master() {
    let params = InstanceParams {
        preempt: false,
        ..with_priority(200)
    };
    let mut h = Harness::started(params);
    h.hear_master(&Peer::v2(), 100, ms(200), Duration::from_mins(1));
    assert_eq!(h.state(), State::Backup);
    assert_eq!(h.vrrp.master(), Some((ip("10.200.0.12"), 100)));
    // Only when the master stops.
    h.deliver_at(Duration::from_mins(1), &Peer::v2().advert(0))
        .unwrap();
    h.run_to(Duration::from_secs(61));
    assert_eq!(h.state(), State::Master);
}

#[test]
fn equal_priority_backup_accepts_the_master() {
    // RFC 5798 6.4.2: "greater than or equal to the local Priority".
    let mut h = Harness::started(params_v2());
    h.hear_master(
        &Peer::v2().from("10.200.0.2"),
        100,
        ms(100),
        Duration::from_secs(20),
    );
    assert_eq!(h.state(), State::Backup);
}

#[test]
fn backup_shutdown_returns_to_init_silently() {
    let mut h = Harness::started(params_v2());
    h.actions();
    h.vrrp.stop(h.clock.now());
    assert_eq!(h.state(), State::Init);
    let actions = h.actions();
    assert_eq!(
        state_changes(&actions),
        [(State::Backup, State::Init, Reason::Stopped)]
    );
    assert!(adverts(&actions).is_empty());
    assert_eq!(h.vrrp.poll_timeout(), None);
    // In INIT adverts are ignored.
    assert_eq!(h.deliver_at(SEC, &Peer::v2().advert(100)), Ok(()));
    assert_eq!(h.vrrp.counters().adverts_received, 0);
}

// ---- RFC 5798 6.4.3 Master ----------------------------------------------

fn master(params: InstanceParams) -> Harness {
    let mut h = Harness::started(params);
    h.run_to(Duration::from_secs(4));
    assert_eq!(h.state(), State::Master);
    h.actions();
    h
}

#[test]
fn master_advertises_every_interval() {
    let mut h = master(params_v2());
    let start = h.vrrp.last_transition() - h.clock.start;
    h.run_to(start + Duration::from_secs(10));
    let actions = h.actions();
    assert_eq!(adverts(&actions), [100; 10]);
    assert_eq!(h.vrrp.counters().adverts_sent, 11);
}

#[test]
fn v3_master_advertises_every_10_ms_at_the_smallest_interval() {
    let params = InstanceParams {
        advert_interval: ms(10),
        ..params_v3()
    };
    let mut h = Harness::started(params);
    // 3 * 10 ms + 156 * 10 ms / 256.
    h.run_to(ms(37));
    assert_eq!(h.state(), State::Master);
    h.actions();
    let start = h.vrrp.last_transition() - h.clock.start;
    h.run_to(start + ms(100));
    assert_eq!(adverts(&h.actions()).len(), 10);
}

#[test]
fn master_answers_priority_zero_with_an_advert_at_once() {
    let mut h = master(params_v2());
    let t = h.clock.elapsed() + ms(300);
    h.deliver_at(t, &Peer::v2().advert(0)).unwrap();
    assert_eq!(adverts(&h.actions()), [100]);
    // The Adver_Timer restarts from now.
    assert_eq!(h.vrrp.poll_timeout(), Some(h.clock.at(t + SEC)));
}

#[test]
fn master_yields_to_a_higher_priority() {
    let mut h = master(params_v2());
    let t = h.clock.elapsed();
    h.deliver_at(t, &Peer::v2().advert(150)).unwrap();
    assert_eq!(h.state(), State::Backup);
    let actions = h.actions();
    assert_eq!(
        state_changes(&actions),
        [(
            State::Master,
            State::Backup,
            Reason::HigherPriority {
                from: ip("10.200.0.12"),
                priority: 150
            }
        )]
    );
    assert!(has_remove(&actions));
    assert!(adverts(&actions).is_empty(), "no priority 0 when yielding");
    assert_eq!(h.vrrp.master(), Some((ip("10.200.0.12"), 150)));
}

#[test]
fn v3_master_yielding_learns_the_interval() {
    let mut h = master(params_v3());
    let t = h.clock.elapsed();
    h.deliver_at(t, &Peer::v3(200).advert(150)).unwrap();
    assert_eq!(h.state(), State::Backup);
    assert_eq!(h.vrrp.master_adver_interval(), Duration::from_secs(2));
}

#[test]
fn equal_priority_the_greater_primary_address_wins() {
    // Both start together, both time out, both become master, then each
    // hears the other (RFC 5798 6.4.3).
    let mut low = master(params_v2()); // 10.200.0.11
    let high_peer = Peer::v2().from("10.200.0.12");
    let t = low.clock.elapsed();
    low.deliver_at(t, &high_peer.advert(100)).unwrap();
    assert_eq!(low.state(), State::Backup);

    let params = InstanceParams {
        source_address: Some(ip("10.200.0.12")),
        ..params_v2()
    };
    let mut high = master(params);
    let low_peer = Peer::v2().from("10.200.0.11");
    let t = high.clock.elapsed();
    high.deliver_at(t, &low_peer.advert(100)).unwrap();
    assert_eq!(high.state(), State::Master);
    let actions = high.actions();
    assert_eq!(adverts(&actions), [100], "re-asserts at once");
}

#[test]
fn split_brain_lower_master_is_answered_with_an_advert_and_garps() {
    let mut h = master(with_priority(150));
    let t = h.clock.elapsed() + ms(10);
    h.deliver_at(t, &Peer::v2().advert(100)).unwrap();
    assert_eq!(h.state(), State::Master);
    let actions = h.actions();
    assert_eq!(adverts(&actions), [150]);
    assert_eq!(garps(&actions), [5]);
}

#[test]
fn stop_sends_priority_zero_and_removes_the_addresses() {
    let mut h = master(params_v2());
    h.vrrp.stop(h.clock.now());
    assert_eq!(h.state(), State::Init);
    let actions = h.actions();
    assert!(matches!(
        &actions[0],
        Action::SendAdvert { priority: 0, .. }
    ));
    assert!(matches!(&actions[1], Action::RemoveVips { .. }));
    assert_eq!(
        state_changes(&actions),
        [(State::Master, State::Init, Reason::Stopped)]
    );
    assert_eq!(h.vrrp.counters().priority_zero_sent, 1);
    assert_eq!(h.vrrp.poll_timeout(), None);
    // And it can start again.
    h.vrrp.start(h.clock.now());
    assert_eq!(h.state(), State::Backup);
}

#[test]
fn the_priority_zero_advert_is_what_keepalived_sends() {
    let mut h = master(with_priority(150));
    h.vrrp.stop(h.clock.now());
    let actions = h.actions();
    let Some(Action::SendAdvert { message, .. }) = actions.first() else {
        panic!("no advert: {actions:?}");
    };
    // vrrp-v2-multicast.pcap frame 9.
    let expected = [
        0x21, 0x33, 0x00, 0x01, 0x00, 0x01, 0xd3, 0x9e, 10, 200, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(message, &expected);
}

// ---- gratuitous ARP schedule --------------------------------------------

#[test]
fn garp_bursts_at_takeover_and_after_garp_master_delay() {
    let mut h = Harness::started(params_v2());
    h.run_to(Duration::from_secs(4));
    assert_eq!(garps(&h.actions()), [5]);
    let became = h.vrrp.last_transition() - h.clock.start;
    h.run_to(became + ms(4999));
    assert!(garps(&h.actions()).is_empty());
    h.run_to(became + Duration::from_secs(5));
    assert_eq!(garps(&h.actions()), [5]);
    h.run_to(became + Duration::from_mins(1));
    assert!(
        garps(&h.actions()).is_empty(),
        "no refresh unless configured"
    );
}

#[test]
fn garp_refresh_repeats_while_master() {
    let mut params = params_v2();
    params.garp.master_delay = Duration::ZERO;
    params.garp.master_refresh = Some(Duration::from_secs(30));
    params.garp.master_refresh_repeat = 2;
    let mut h = Harness::started(params);
    h.run_to(Duration::from_secs(4));
    assert_eq!(garps(&h.actions()), [5], "no delayed burst with delay 0");
    let became = h.vrrp.last_transition() - h.clock.start;
    h.run_to(became + Duration::from_secs(95));
    assert_eq!(garps(&h.actions()), [2, 2, 2]);
}

// ---- tracking -----------------------------------------------------------

fn tracked(scripts: &[(&str, i32)], interfaces: &[(&str, Option<i32>)]) -> InstanceParams {
    let mut params = params_v2();
    params.track_scripts = scripts
        .iter()
        .map(|(name, weight)| TrackedScript {
            name: (*name).into(),
            weight: *weight,
        })
        .collect();
    params
        .track_interfaces
        .extend(interfaces.iter().map(|(name, weight)| TrackedInterface {
            name: (*name).into(),
            weight: *weight,
        }));
    params
}

#[test]
fn script_weights_adjust_the_priority() {
    let mut h = Harness::started(tracked(&[("up", 60), ("down", -30)], &[]));
    let now = h.clock.now();
    assert_eq!(h.vrrp.priority(), 100, "no result yet: no weight");
    assert!(h.vrrp.track_script("up", true, now));
    assert_eq!(h.vrrp.priority(), 160);
    assert!(h.vrrp.track_script("down", false, now));
    assert_eq!(h.vrrp.priority(), 130);
    assert!(h.vrrp.track_script("up", false, now));
    assert_eq!(h.vrrp.priority(), 70);
    assert!(!h.vrrp.track_script("other", false, now));
}

#[test]
fn priorities_clamp_and_the_owner_ignores_weights() {
    let mut h = Harness::started(tracked(&[("big", 253), ("neg", -253)], &[]));
    let now = h.clock.now();
    h.vrrp.track_script("big", true, now);
    assert_eq!(h.vrrp.priority(), 254);
    h.vrrp.track_script("big", false, now);
    h.vrrp.track_script("neg", false, now);
    assert_eq!(h.vrrp.priority(), 1);

    let mut owner = tracked(&[("neg", -50)], &[]);
    owner.priority = 255;
    let mut h = Harness::started(owner);
    h.vrrp.track_script("neg", false, h.clock.now());
    assert_eq!(h.vrrp.priority(), 255);
}

#[test]
fn a_weight_gain_lets_a_backup_preempt() {
    let mut h = Harness::started(tracked(&[("chk", 60)], &[]));
    h.hear_master(&Peer::v2(), 150, ms(100), Duration::from_secs(10));
    assert_eq!(h.state(), State::Backup);
    h.vrrp.track_script("chk", true, h.clock.now()); // 160 > 150
    h.hear_master(
        &Peer::v2(),
        150,
        Duration::from_secs(10),
        Duration::from_secs(15),
    );
    assert_eq!(h.state(), State::Master);
    // The timer set by the last accepted advert (9.1 s, at priority 100,
    // RFC 5798 6.4.2 computes it then) runs out.
    let at = h.vrrp.last_transition() - h.clock.start;
    assert_eq!(at, ms(9100) + Duration::from_micros(3_609_375));
}

#[test]
fn a_weight_loss_makes_the_master_yield_to_a_better_backup() {
    let mut h = master(tracked(&[("chk", -60)], &[]));
    h.vrrp.track_script("chk", false, h.clock.now()); // 40
    assert_eq!(h.state(), State::Master);
    let t = h.clock.elapsed() + ms(500);
    h.run_to(t);
    h.actions();
    h.run_to(t + SEC);
    assert_eq!(
        adverts(&h.actions()),
        [40],
        "adverts carry the new priority"
    );
    // The backup at 100 now preempts; when we hear it, we yield.
    let t = h.clock.elapsed();
    h.deliver_at(t, &Peer::v2().advert(100)).unwrap();
    assert_eq!(h.state(), State::Backup);
}

#[test]
fn a_failing_weight_zero_script_faults_and_recovery_returns_to_backup() {
    let mut h = Harness::started(tracked(&[("chk", 0)], &[]));
    h.vrrp.track_script("chk", true, h.clock.now());
    h.run_to(Duration::from_secs(5));
    assert_eq!(h.state(), State::Master);
    h.actions();
    h.vrrp.track_script("chk", false, h.clock.now());
    assert_eq!(h.state(), State::Fault);
    let actions = h.actions();
    assert_eq!(adverts(&actions), [0], "goodbye advert");
    assert!(has_remove(&actions));
    assert_eq!(
        state_changes(&actions),
        [(
            State::Master,
            State::Fault,
            Reason::Fault(FaultCause::Script("chk".into()))
        )]
    );
    // Faulted: adverts are checked and counted but change nothing.
    let t = h.clock.elapsed() + SEC;
    h.deliver_at(t, &Peer::v2().advert(0)).unwrap();
    assert_eq!(h.vrrp.poll_timeout(), None);
    h.vrrp.track_script("chk", true, h.clock.now());
    assert_eq!(h.state(), State::Backup);
    assert_eq!(
        state_changes(&h.actions()),
        [(State::Fault, State::Backup, Reason::Recovered)]
    );
}

#[test]
fn a_weight_zero_script_that_has_not_reported_keeps_the_instance_in_fault() {
    let mut h = Harness::started(tracked(&[("chk", 0)], &[]));
    assert_eq!(h.state(), State::Fault);
    h.vrrp.track_script("chk", true, h.clock.now());
    assert_eq!(h.state(), State::Backup);
}

#[test]
fn interface_down_faults_or_weighs() {
    let mut h = Harness::started(tracked(&[], &[("eth1", Some(-50)), ("eth2", Some(20))]));
    let now = h.clock.now();
    assert_eq!(h.vrrp.priority(), 120, "eth2 is up");
    assert!(h.vrrp.interface_state("eth1", false, now));
    assert_eq!(h.vrrp.priority(), 70);
    assert_eq!(h.state(), State::Backup);
    // The instance's own interface is tracked without weight.
    assert!(h.vrrp.interface_state("eth0", false, now));
    assert_eq!(h.state(), State::Fault);
    assert_eq!(
        state_changes(&h.actions()).last(),
        Some(&(
            State::Backup,
            State::Fault,
            Reason::Fault(FaultCause::Interface("eth0".into()))
        ))
    );
    h.vrrp.interface_state("eth0", true, now);
    assert_eq!(h.state(), State::Backup);
}

#[test]
fn the_owner_recovers_straight_to_master() {
    let mut h = Harness::started(with_priority(255));
    h.vrrp.interface_state("eth0", false, h.clock.now());
    assert_eq!(h.state(), State::Fault);
    h.vrrp.interface_state("eth0", true, h.clock.now());
    assert_eq!(h.state(), State::Master);
}

// ---- operator switches --------------------------------------------------

#[test]
fn maintenance_hands_over_and_stays_backup_until_released() {
    let mut h = master(with_priority(200));
    h.vrrp.set_maintenance(true, h.clock.now());
    assert_eq!(h.state(), State::Backup);
    assert!(h.vrrp.in_maintenance());
    let actions = h.actions();
    assert_eq!(adverts(&actions), [0]);
    assert!(has_remove(&actions));
    assert_eq!(
        state_changes(&actions),
        [(State::Master, State::Backup, Reason::Maintenance)]
    );
    // Nobody else takes over, and still we do not.
    assert_eq!(h.vrrp.poll_timeout(), None);
    let t = h.clock.elapsed();
    h.run_to(t + Duration::from_mins(1));
    assert_eq!(h.state(), State::Backup);
    // Lower masters are accepted meanwhile.
    h.deliver_at(t + Duration::from_secs(61), &Peer::v2().advert(100))
        .unwrap();
    assert_eq!(h.vrrp.master(), Some((ip("10.200.0.12"), 100)));
    h.vrrp.set_maintenance(false, h.clock.now());
    assert!(!h.vrrp.in_maintenance());
    // Released: preempts the lower master a Master_Down_Interval later.
    let released = h.clock.elapsed();
    assert_eq!(
        h.became_master_at(),
        Some(released + SEC * 3 + Duration::from_micros(218_750))
    );
}

#[test]
fn failover_hands_over_once_and_does_not_take_back() {
    let mut h = master(with_priority(200));
    assert!(h.vrrp.failover(h.clock.now()));
    assert!(
        !h.vrrp.failover(h.clock.now()),
        "only a master can fail over"
    );
    assert_eq!(h.state(), State::Backup);
    let actions = h.actions();
    assert_eq!(adverts(&actions), [0]);
    assert!(has_remove(&actions));
    // The lower backup takes over and keeps it, as with nopreempt.
    let t = h.clock.elapsed();
    h.hear_master(&Peer::v2(), 100, t + ms(600), t + Duration::from_secs(30));
    assert_eq!(h.state(), State::Backup);
    // When it goes away, we take over as usual, and preempt again after.
    h.deliver_at(t + Duration::from_secs(30), &Peer::v2().advert(0))
        .unwrap();
    h.run_to(t + Duration::from_secs(31));
    assert_eq!(h.state(), State::Master);
}

#[test]
fn failover_with_nobody_to_take_over_comes_back() {
    let mut h = master(params_v2());
    h.vrrp.failover(h.clock.now());
    let t = h.clock.elapsed();
    h.run_to(t + Duration::from_secs(4));
    assert_eq!(h.state(), State::Master);
}

// ---- receive path -------------------------------------------------------

#[test]
fn drops_are_counted_per_reason() {
    let mut h = Harness::started(params_v2());
    let mut msg = Peer::v2().advert(150);
    msg.ttl = 64;
    assert_eq!(h.deliver_at(ms(10), &msg), Err(DropReason::Ttl));
    assert_eq!(h.deliver_at(ms(20), &msg), Err(DropReason::Ttl));
    let other_vrid = Peer {
        vrid: 9,
        ..Peer::v2()
    };
    assert_eq!(
        h.deliver_at(ms(30), &other_vrid.advert(150)),
        Err(DropReason::Vrid)
    );
    let ours = Peer::v2().from("10.200.0.11");
    assert_eq!(
        h.deliver_at(ms(40), &ours.advert(150)),
        Err(DropReason::OwnAddress)
    );
    let c: &Counters = h.vrrp.counters();
    assert_eq!(c.dropped(DropReason::Ttl), 2);
    assert_eq!(c.dropped(DropReason::Vrid), 1);
    assert_eq!(c.total_dropped(), 4);
    assert_eq!(c.adverts_received, 0);
    // Dropped adverts do not reset the Master_Down_Timer.
    h.run_to(Duration::from_micros(3_609_375));
    assert_eq!(h.state(), State::Master);
}

#[test]
fn unicast_sends_one_advert_per_peer_with_its_own_checksum() {
    let params = InstanceParams {
        unicast_peers: vec![ip("10.200.0.12"), ip("10.200.0.13")],
        priority: 150,
        ..params_v3()
    };
    let mut h = master(params);
    h.vrrp.stop(h.clock.now());
    let sends: Vec<(IpAddr, Vec<u8>)> = h
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::SendAdvert { dst, message, .. } => Some((dst, message)),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0].0, ip("10.200.0.12"));
    // vrrp-v3-unicast.pcap frame 11: priority 0 from .11 to .12.
    assert_eq!(
        sends[0].1,
        [
            0x31, 0x33, 0x00, 0x01, 0x00, 0x64, 0xad, 0x18, 10, 200, 0, 100
        ]
    );
    assert_ne!(sends[0].1[6..8], sends[1].1[6..8]);
}

#[test]
fn our_own_address_among_the_peers_gets_no_advert() {
    let params = InstanceParams {
        unicast_peers: vec![ip("10.200.0.11"), ip("10.200.0.12")],
        priority: 150,
        ..params_v3()
    };
    let mut h = master(params);
    h.vrrp.stop(h.clock.now());
    let destinations: Vec<IpAddr> = h
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::SendAdvert { dst, .. } => Some(dst),
            _ => None,
        })
        .collect();
    assert_eq!(destinations, [ip("10.200.0.12")]);
}

#[test]
fn ipv6_v3_instance_elects_and_advertises_to_ff02_12() {
    let params = InstanceParams {
        family: Family::Ipv6,
        addresses: vec![ip("fe80::100")],
        vips: vec![VirtualAddress::new("fe80::100/64".parse().unwrap())],
        source_address: Some(ip("fe80::11")),
        ..params_v3()
    };
    let mut h = Harness::started(params);
    let peer = Peer {
        src: ip("fe80::12"),
        dst: ip("ff02::12"),
        addresses: vec![ip("fe80::100")],
        ..Peer::v3(100)
    };
    h.hear_master(&peer, 150, ms(100), Duration::from_secs(10));
    assert_eq!(h.state(), State::Backup);
    h.deliver_at(Duration::from_secs(10), &peer.advert(0))
        .unwrap();
    h.run_to(Duration::from_secs(11));
    assert_eq!(h.state(), State::Master);
    let actions = h.actions();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::SendAdvert { dst, .. } if *dst == ip("ff02::12")
    )));
}

// Owner rule and split-brain answers (issue: RFC deviations under attack).
mod hardening;
