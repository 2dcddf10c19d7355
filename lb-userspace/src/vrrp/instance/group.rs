//! An instance's side of a sync group: [`crate::vrrp::SyncGroup`] asks
//! whether a member wants to go MASTER or is in FAULT, and moves members
//! together.

use std::time::Instant;

use super::{FaultCause, Hold, Instance, Reason, State};

/// Membership of a sync group, driven by [`crate::vrrp::SyncGroup`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct GroupLink {
    /// The Master_Down_Timer fired; the group decides.
    pub(super) wants_master: bool,
    /// Another member is in FAULT.
    pub(super) fault: bool,
}

impl Instance {
    pub(crate) fn join_group(&mut self) {
        self.group = Some(GroupLink::default());
    }

    /// BACKUP whose Master_Down_Timer fired, waiting for the group.
    pub(crate) fn wants_master(&self) -> bool {
        self.state == State::Backup && self.group.is_some_and(|g| g.wants_master)
    }

    /// This instance's own reason to be in FAULT (not the group's).
    pub(crate) fn own_fault(&self) -> Option<FaultCause> {
        self.own_fault_cause()
    }

    pub(crate) fn group_fault(&self) -> bool {
        self.group.is_some_and(|g| g.fault)
    }

    pub(crate) fn set_group_fault(&mut self, fault: bool, now: Instant) {
        if let Some(group) = &mut self.group {
            group.fault = fault;
        }
        self.reevaluate(now);
    }

    /// The group goes MASTER together.
    pub(crate) fn group_promote(&mut self, now: Instant) {
        if self.state == State::Backup && self.hold != Hold::Maintenance {
            self.become_master(now, Reason::SyncGroup);
        }
    }

    /// The group goes BACKUP together (keepalived sends no priority-0
    /// advert for this).
    pub(crate) fn group_demote(&mut self, now: Instant) {
        if self.state == State::Master {
            self.leave_master(false);
            self.master_adver_interval = self.params.advert_interval;
            self.enter_backup(now, Reason::SyncGroup, self.master_down_interval());
        }
    }
}
