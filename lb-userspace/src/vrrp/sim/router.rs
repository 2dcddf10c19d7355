//! A node of the simulated LAN: one instance, or a sync group of them,
//! behind the same calls.

use std::time::Instant;

use crate::vrrp::{
    instance::{Action, Instance},
    receive::Received,
    sync_group::SyncGroup,
};

/// One node on the LAN: a lone instance or a sync group.
pub(super) enum Router {
    Single(Box<Instance>),
    Group(SyncGroup),
}

impl Router {
    pub(super) fn members(&self) -> &[Instance] {
        match self {
            Self::Single(instance) => std::slice::from_ref(instance.as_ref()),
            Self::Group(group) => group.members(),
        }
    }

    pub(super) fn poll_action(&mut self) -> Option<(usize, Action)> {
        match self {
            Self::Single(instance) => instance.poll_action().map(|a| (0, a)),
            Self::Group(group) => group.poll_action(),
        }
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Single(instance) => instance.poll_timeout(),
            Self::Group(group) => group.poll_timeout(),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match self {
            Self::Single(instance) => instance.handle_timeout(now),
            Self::Group(group) => group.handle_timeout(now),
        }
    }

    pub(super) fn handle_advert(&mut self, member: usize, now: Instant, rx: &Received<'_>) {
        // Drops (another VRID on the link, say) are counted by the
        // instance; the tests look at states, not at this result.
        let _dropped = match self {
            Self::Single(instance) => instance.handle_advert(now, rx),
            Self::Group(group) => group.handle_advert(member, now, rx),
        };
    }

    pub(super) fn start(&mut self, now: Instant) {
        match self {
            Self::Single(instance) => instance.start(now),
            Self::Group(group) => group.start(now),
        }
    }

    pub(super) fn stop(&mut self, now: Instant) {
        match self {
            Self::Single(instance) => instance.stop(now),
            Self::Group(group) => group.stop(now),
        }
    }

    pub(super) fn interface_state(&mut self, interface: &str, up: bool, now: Instant) -> bool {
        match self {
            Self::Single(instance) => instance.interface_state(interface, up, now),
            Self::Group(group) => group.interface_state(interface, up, now),
        }
    }
}
