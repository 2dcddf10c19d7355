//! `vrrp_sync_group`: instances that change state together, so a router's
//! inside and outside addresses always live on the same node.
//!
//! keepalived's rules (vrrp_sync.c), applied after every event:
//! - one member in FAULT puts the others in FAULT, until no member has a
//!   fault of its own;
//! - one member leaving MASTER for BACKUP (it heard a better master) takes
//!   the other masters to BACKUP;
//! - the members go MASTER together, once every one of them wants to (its
//!   Master_Down_Timer fired); a member that becomes MASTER on its own (the
//!   address owner) takes the others along.

use std::{collections::VecDeque, time::Instant};

use super::{
    instance::{Action, Instance, Reason, State},
    receive::{DropReason, Received},
};

/// A sync group owning its member instances. Events for one member take its
/// index; actions come out tagged with it.
#[derive(Debug)]
pub struct SyncGroup {
    name: String,
    members: Vec<Instance>,
    actions: VecDeque<(usize, Action)>,
}

impl SyncGroup {
    pub fn new(name: impl Into<String>, mut members: Vec<Instance>) -> Self {
        for member in &mut members {
            member.join_group();
        }
        Self {
            name: name.into(),
            members,
            actions: VecDeque::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn members(&self) -> &[Instance] {
        &self.members
    }

    /// The index of the member named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name() == name)
    }

    /// The next action of any member, with the member's index.
    pub fn poll_action(&mut self) -> Option<(usize, Action)> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members.iter().filter_map(Instance::poll_timeout).min()
    }

    pub fn start(&mut self, now: Instant) {
        self.each(now, |m| m.start(now));
    }

    pub fn stop(&mut self, now: Instant) {
        self.each(now, |m| m.stop(now));
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.each(now, |m| m.handle_timeout(now));
    }

    /// An advert for member `index`; an index that is no member's is
    /// dropped as not this group's VRID.
    pub fn handle_advert(
        &mut self,
        index: usize,
        now: Instant,
        rx: &Received<'_>,
    ) -> Result<(), DropReason> {
        let result = match self.members.get_mut(index) {
            Some(member) => member.handle_advert(now, rx),
            None => Err(DropReason::Vrid),
        };
        self.sync(now);
        result
    }

    /// A script result for every member that tracks it.
    pub fn track_script(&mut self, name: &str, ok: bool, now: Instant) -> bool {
        let mut found = false;
        self.each(now, |m| found |= m.track_script(name, ok, now));
        found
    }

    /// A link state for every member that tracks the interface.
    pub fn interface_state(&mut self, name: &str, up: bool, now: Instant) -> bool {
        let mut found = false;
        self.each(now, |m| found |= m.interface_state(name, up, now));
        found
    }

    /// Maintenance for the whole group (a group is one unit of service).
    pub fn set_maintenance(&mut self, on: bool, now: Instant) {
        self.each(now, |m| m.set_maintenance(on, now));
    }

    /// Manual failover of the whole group; `false` when no member was master.
    pub fn failover(&mut self, now: Instant) -> bool {
        let mut any = false;
        self.each(now, |m| any |= m.failover(now));
        any
    }

    /// Member `index`'s source address (see `Instance::set_source_address`).
    pub fn set_source_address(
        &mut self,
        index: usize,
        addr: Option<std::net::IpAddr>,
        now: Instant,
    ) {
        if let Some(member) = self.members.get_mut(index) {
            member.set_source_address(addr, now);
        }
        self.sync(now);
    }

    fn each(&mut self, now: Instant, mut f: impl FnMut(&mut Instance)) {
        for member in &mut self.members {
            f(member);
        }
        self.sync(now);
    }

    /// Moves the members' actions out, noting their own transitions, and
    /// applies the group rules until nothing changes. Transitions the group
    /// itself causes carry `Reason::SyncGroup` and trigger nothing further,
    /// so this settles within a few rounds.
    fn sync(&mut self, now: Instant) {
        // Each round either changes nothing or moves members one step
        // toward a common state; the bound is a guard, not a limit reached.
        for _ in 0..=2 * self.members.len() + 2 {
            let mut left_master = false;
            let mut became_master = false;
            for (i, member) in self.members.iter_mut().enumerate() {
                while let Some(action) = member.poll_action() {
                    if let Action::StateChanged { from, to, reason } = &action
                        && *reason != Reason::SyncGroup
                    {
                        left_master |= *from == State::Master && *to == State::Backup;
                        became_master |= *to == State::Master;
                    }
                    self.actions.push_back((i, action));
                }
            }

            let mut changed = false;
            let own_faults: Vec<bool> = self
                .members
                .iter()
                .map(|m| m.own_fault().is_some())
                .collect();
            for (i, member) in self.members.iter_mut().enumerate() {
                let others = own_faults
                    .iter()
                    .enumerate()
                    .any(|(j, fault)| j != i && *fault);
                if member.group_fault() != others {
                    member.set_group_fault(others, now);
                    changed = true;
                }
            }
            if left_master {
                for member in &mut self.members {
                    changed |= member.state() == State::Master;
                    member.group_demote(now);
                }
            } else if became_master
                || (!self.members.is_empty() && self.members.iter().all(Instance::wants_master))
            {
                for member in &mut self.members {
                    changed |= member.state() == State::Backup;
                    member.group_promote(now);
                }
            }
            if !changed {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::vrrp::{
        instance::FaultCause,
        testing::{Clock, advert_from, params_v2},
    };

    fn group(clock: &Clock) -> SyncGroup {
        let mut inside = params_v2();
        inside.name = "inside".into();
        inside.interface = "eth0".into();
        inside.track_interfaces[0].name = "eth0".into();
        let mut outside = params_v2();
        outside.name = "outside".into();
        outside.vrid = 52;
        outside.interface = "eth1".into();
        outside.track_interfaces[0].name = "eth1".into();
        SyncGroup::new(
            "G1",
            vec![
                Instance::new(inside, clock.now()),
                Instance::new(outside, clock.now()),
            ],
        )
    }

    fn states(g: &SyncGroup) -> Vec<State> {
        g.members().iter().map(Instance::state).collect()
    }

    fn drain(g: &mut SyncGroup) -> Vec<(usize, Action)> {
        std::iter::from_fn(|| g.poll_action()).collect()
    }

    fn run_until(g: &mut SyncGroup, clock: &mut Clock, until: Duration) {
        let end = clock.start + until;
        while let Some(t) = g.poll_timeout().filter(|t| *t <= end) {
            clock.set(t);
            g.handle_timeout(t);
        }
        clock.set(end);
    }

    #[test]
    fn members_go_master_together() {
        let mut clock = Clock::new();
        let mut g = group(&clock);
        g.start(clock.now());
        assert_eq!(states(&g), [State::Backup, State::Backup]);
        run_until(&mut g, &mut clock, Duration::from_secs(4));
        assert_eq!(states(&g), [State::Master, State::Master]);
        let actions = drain(&mut g);
        let adds = actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::AddVips { .. }))
            .count();
        assert_eq!(adds, 2);
    }

    #[test]
    fn one_member_hearing_a_master_holds_the_group_back() {
        let mut clock = Clock::new();
        let mut g = group(&clock);
        g.start(clock.now());
        // The inside instance keeps hearing a better master; the outside
        // one hears nothing, wants master, and must wait for its partner.
        for _ in 0..8 {
            clock.advance(Duration::from_secs(1));
            let msg = advert_from(51, 200);
            g.handle_advert(0, clock.now(), &msg.received()).unwrap();
            g.handle_timeout(clock.now());
        }
        assert_eq!(states(&g), [State::Backup, State::Backup]);
        assert!(g.members()[1].wants_master());
        // The better master goes away: now both want it and both take over.
        run_until(&mut g, &mut clock, Duration::from_secs(20));
        assert_eq!(states(&g), [State::Master, State::Master]);
    }

    #[test]
    fn a_fault_in_one_member_faults_all_and_recovery_frees_all() {
        let mut clock = Clock::new();
        let mut g = group(&clock);
        g.start(clock.now());
        run_until(&mut g, &mut clock, Duration::from_secs(4));
        drain(&mut g);
        clock.advance(Duration::from_millis(100));
        assert!(g.interface_state("eth1", false, clock.now()));
        assert_eq!(states(&g), [State::Fault, State::Fault]);
        let actions = drain(&mut g);
        // Both masters said goodbye with priority 0 and removed their VIPs.
        let zero = actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::SendAdvert { priority: 0, .. }))
            .count();
        assert_eq!(zero, 2);
        assert!(actions.iter().any(|(i, a)| *i == 0
            && matches!(
                a,
                Action::StateChanged {
                    reason: Reason::Fault(FaultCause::SyncGroup),
                    ..
                }
            )));
        assert!(g.interface_state("eth1", true, clock.now()));
        assert_eq!(states(&g), [State::Backup, State::Backup]);
    }

    #[test]
    fn one_member_yielding_takes_the_group_to_backup() {
        let mut clock = Clock::new();
        let mut g = group(&clock);
        g.start(clock.now());
        run_until(&mut g, &mut clock, Duration::from_secs(4));
        drain(&mut g);
        let msg = advert_from(52, 200);
        g.handle_advert(1, clock.now(), &msg.received()).unwrap();
        assert_eq!(states(&g), [State::Backup, State::Backup]);
        let actions = drain(&mut g);
        assert!(actions.iter().any(|(i, a)| *i == 0
            && matches!(
                a,
                Action::StateChanged {
                    reason: Reason::SyncGroup,
                    ..
                }
            )));
        // keepalived sends no priority-0 advert when the group follows.
        assert!(
            !actions
                .iter()
                .any(|(_, a)| matches!(a, Action::SendAdvert { priority: 0, .. }))
        );
    }

    #[test]
    fn an_owner_member_takes_the_group_along() {
        let clock = Clock::new();
        let mut g = group(&clock);
        let mut owner = params_v2();
        owner.name = "owner".into();
        owner.vrid = 53;
        owner.priority = 255;
        g = SyncGroup::new(
            "G2",
            g.members
                .into_iter()
                .chain([Instance::new(owner, clock.now())])
                .collect(),
        );
        g.start(clock.now());
        assert_eq!(states(&g), [State::Master, State::Master, State::Master]);
    }

    #[test]
    fn an_unknown_member_index_is_dropped() {
        let clock = Clock::new();
        let mut g = group(&clock);
        g.start(clock.now());
        let msg = advert_from(51, 100);
        assert_eq!(
            g.handle_advert(7, clock.now(), &msg.received()),
            Err(DropReason::Vrid)
        );
        assert_eq!(g.position("outside"), Some(1));
    }
}
