//! Backends that left their service (`Installed::departed`), per the
//! service's `removed_server_flows`: retired at once (`reset`), held
//! (`drop`: `BACKEND_HOLD`, their flows' packets dropped) or left live
//! outside the ring (`keep`), the last two keeping their ids so a return
//! finds their flows.

use lb_common::maps::{BACKEND_HOLD, BACKEND_LIVE, Backend};

use super::{Installed, MapOp, Planning};
use crate::config::RemovedServerFlows;

impl Planning {
    /// Applies `policy` to the backends that left `installed`: returns
    /// those to retire (`reset`), marks the rest held (`drop`) or live
    /// (`keep`). Also run when a reload changes the policy.
    pub(super) fn settle_departed(
        &mut self,
        installed: &mut Installed,
        policy: RemovedServerFlows,
    ) -> Vec<u32> {
        let flags = match policy {
            RemovedServerFlows::Reset => {
                return std::mem::take(&mut installed.departed)
                    .into_values()
                    .collect();
            }
            RemovedServerFlows::Drop => BACKEND_HOLD,
            RemovedServerFlows::Keep => BACKEND_LIVE,
        };
        for id in installed.departed.values().copied().collect::<Vec<_>>() {
            self.set_backend_flags(id, flags);
        }
        Vec::new()
    }

    /// Sets a backend's flags, keeping its address and generation; writes
    /// nothing when they are already so.
    pub(super) fn set_backend_flags(&mut self, id: u32, flags: u8) {
        if let Some(current) = self.state.mirror.backends.get(&id)
            && current.flags != flags
        {
            let value = Backend { flags, ..*current };
            self.emit(MapOp::Backend { id, value });
        }
    }

    /// Out of backend ids: the departed backends of every service give
    /// theirs back (their flows are scheduled anew).
    pub(super) fn evict_departed(&mut self) {
        let mut ids = Vec::new();
        for installed in self
            .state
            .services
            .values_mut()
            .chain(self.state.parked.values_mut())
        {
            ids.extend(std::mem::take(&mut installed.departed).into_values());
        }
        for id in ids {
            self.retire_backend(id);
        }
    }
}
