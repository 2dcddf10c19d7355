//! One thing the runtime schedules: a lone instance or a sync group, behind
//! one interface so the event loop does not care which.

use std::{net::IpAddr, time::Instant};

use crate::vrrp::{Action, DropReason, Instance, Received, State, SyncGroup};

#[derive(Debug)]
pub(crate) enum Unit {
    Single(Box<Instance>),
    Group(SyncGroup),
}

impl Unit {
    pub(crate) fn members(&self) -> &[Instance] {
        match self {
            Self::Single(instance) => std::slice::from_ref(instance),
            Self::Group(group) => group.members(),
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Single(i) => i.poll_timeout(),
            Self::Group(g) => g.poll_timeout(),
        }
    }

    /// The next action and the index of the member it is for.
    pub(crate) fn poll_action(&mut self) -> Option<(usize, Action)> {
        match self {
            Self::Single(i) => i.poll_action().map(|a| (0, a)),
            Self::Group(g) => g.poll_action(),
        }
    }

    pub(crate) fn start(&mut self, now: Instant) {
        match self {
            Self::Single(i) => i.start(now),
            Self::Group(g) => g.start(now),
        }
    }

    pub(crate) fn stop(&mut self, now: Instant) {
        match self {
            Self::Single(i) => i.stop(now),
            Self::Group(g) => g.stop(now),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Single(i) => i.handle_timeout(now),
            Self::Group(g) => g.handle_timeout(now),
        }
    }

    pub(crate) fn handle_advert(
        &mut self,
        member: usize,
        now: Instant,
        rx: &Received<'_>,
    ) -> Result<(), DropReason> {
        match self {
            Self::Single(i) => i.handle_advert(now, rx),
            Self::Group(g) => g.handle_advert(member, now, rx),
        }
    }

    pub(crate) fn track_script(&mut self, name: &str, ok: bool, now: Instant) {
        match self {
            Self::Single(i) => {
                i.track_script(name, ok, now);
            }
            Self::Group(g) => {
                g.track_script(name, ok, now);
            }
        }
    }

    pub(crate) fn interface_state(&mut self, name: &str, up: bool, now: Instant) {
        match self {
            Self::Single(i) => {
                i.interface_state(name, up, now);
            }
            Self::Group(g) => {
                g.interface_state(name, up, now);
            }
        }
    }

    pub(crate) fn set_source_address(&mut self, member: usize, addr: Option<IpAddr>, now: Instant) {
        match self {
            Self::Single(i) => i.set_source_address(addr, now),
            Self::Group(g) => g.set_source_address(member, addr, now),
        }
    }

    pub(crate) fn set_maintenance(&mut self, on: bool, now: Instant) {
        match self {
            Self::Single(i) => i.set_maintenance(on, now),
            Self::Group(g) => g.set_maintenance(on, now),
        }
    }

    pub(crate) fn failover(&mut self, now: Instant) -> bool {
        match self {
            Self::Single(i) => i.failover(now),
            Self::Group(g) => g.failover(now),
        }
    }

    /// The group's state for its notify scripts: FAULT if any member is,
    /// MASTER when all are, STOP when stopped, else BACKUP.
    pub(crate) fn group_state(&self) -> State {
        let members = self.members();
        if members.iter().any(|m| m.state() == State::Fault) {
            State::Fault
        } else if members.iter().all(|m| m.state() == State::Master) {
            State::Master
        } else if members.iter().all(|m| m.state() == State::Init) {
            State::Init
        } else {
            State::Backup
        }
    }
}
