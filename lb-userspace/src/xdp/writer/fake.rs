//! An in-memory [`MapWriter`] for host tests: one map per kernel map, and a
//! switch that makes the n-th operation fail.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aya::{maps::MapError, sys::SyscallError};
use lb_common::maps::{
    Backend, Flow, FlowKey, RING_SIZE, Real, RealKey, ReverseFlow, Service, ServiceKey, Settings,
};

use super::{MapWriteError, MapWriter};
use crate::xdp::plan::{MapOp, entries::reverse_entries};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FakeMaps {
    pub(crate) settings: Settings,
    pub(crate) services: BTreeMap<ServiceKey, Service>,
    /// Only the entries not zero.
    pub(crate) backends: BTreeMap<u32, Backend>,
    /// `(service id, slot)` -> ring.
    pub(crate) rings: BTreeMap<(u32, u32), Vec<u32>>,
    pub(crate) reals: HashMap<RealKey, Real>,
    pub(crate) reverse: HashMap<FlowKey, ReverseFlow>,
    /// Filled by the test, as the program would.
    pub(crate) conntrack: HashMap<FlowKey, Flow>,
    /// Operations performed (failed ones included).
    pub(crate) ops: Vec<MapOp>,
    /// Indexes in `ops` of the operations to fail, as a full hash map would.
    pub(crate) fail: BTreeSet<usize>,
}

impl FakeMaps {
    /// The ring a `SERVICES` value forwards by.
    pub(crate) fn live_ring(&self, service: &Service) -> &[u32] {
        let ring = self
            .rings
            .get(&(service.id, service.ring_slot))
            .map_or(&[][..], Vec::as_slice);
        &ring[..service.ring_len as usize]
    }
}

impl MapWriter for FakeMaps {
    fn apply(&mut self, op: &MapOp) -> Result<(), MapWriteError> {
        self.ops.push(op.clone());
        if self.fail.contains(&(self.ops.len() - 1)) {
            return Err(MapWriteError::Map {
                map: op.map(),
                operation: "write",
                source: Box::new(MapError::SyscallError(SyscallError {
                    call: "bpf_map_update_elem",
                    io_error: std::io::Error::from_raw_os_error(libc::E2BIG),
                })),
            });
        }
        match op {
            MapOp::Settings(value) => self.settings = *value,
            // Zeroes are what the array holds where nothing was written.
            MapOp::Backend { id, value } if *value == Backend::default() => {
                self.backends.remove(id);
            }
            MapOp::Backend { id, value } => {
                self.backends.insert(*id, *value);
            }
            MapOp::Ring {
                service,
                slot,
                ring,
            } => {
                assert!(ring.len() <= RING_SIZE as usize);
                let stored = self.rings.entry((*service, *slot)).or_default();
                // Like the array: entries past the new ring keep old values.
                if stored.len() < ring.len() {
                    stored.resize(ring.len(), 0);
                }
                stored[..ring.len()].copy_from_slice(ring);
            }
            MapOp::InsertService { key, value } => {
                self.services.insert(*key, *value);
            }
            MapOp::RemoveService { key } => {
                self.services.remove(key);
            }
            MapOp::InsertReal { key, value } => {
                self.reals.insert(*key, *value);
            }
            MapOp::RemoveReal { key } => {
                self.reals.remove(key);
            }
            MapOp::BackfillReverse { backends } => {
                let flows = self.conntrack.iter().map(|(k, f)| (*k, *f));
                for (reply, value) in reverse_entries(backends, flows) {
                    self.reverse.insert(reply, value);
                }
            }
            // No counters here: `ops` records the reset for the tests.
            MapOp::ResetStats { .. } => {}
        }
        Ok(())
    }
}
