//! `REALS` (which service a backend's replies belong to) and the `REVERSE`
//! backfill for backends that start serving several services.

use std::collections::{BTreeMap, HashMap, HashSet};

use lb_common::maps::{Real, RealKey, ServiceKey};

use super::{MapOp, Planning, entries::real_key};

/// Sort order for `RealKey` (which has no `Ord`), so plans are deterministic.
fn order(k: &RealKey) -> ([u8; 16], [u8; 2], u8, u8) {
    (k.addr, k.port, k.proto, k.family)
}

impl Planning {
    /// Backend ids and `REALS` keys of every installed service's backends.
    fn reals_in_use(&self) -> impl Iterator<Item = (ServiceKey, u32, RealKey, u32)> + '_ {
        self.state.services.iter().flat_map(|(key, installed)| {
            installed
                .backends
                .iter()
                .chain(&installed.departed)
                .map(|(at, id)| (*at, *id))
                .chain(installed.sorry)
                .map(move |(at, backend)| (*key, installed.id, real_key(key, at), backend))
        })
    }

    /// Brings `REALS` in line with the installed services.
    pub(super) fn write_reals(&mut self) {
        let mut owners: HashMap<RealKey, Vec<(ServiceKey, u32)>> = HashMap::new();
        for (service, service_id, real, _) in self.reals_in_use() {
            owners.entry(real).or_default().push((service, service_id));
        }
        let wanted: HashMap<RealKey, Real> = owners
            .into_iter()
            .map(|(real, services)| {
                let (service, id) = services[0];
                let value = Real {
                    vip: service.addr,
                    vport: service.port,
                    ambiguous: u8::from(services.len() > 1),
                    _pad: 0,
                    service: id,
                };
                (real, value)
            })
            .collect();
        // A real that starts serving a second service (a reload adding it
        // elsewhere) turns ambiguous: its replies then need REVERSE
        // entries, which the program writes only for flows created while
        // ambiguous. Its established flows get theirs from here, before the
        // switch (no gap) and after it (flows created in between).
        let previous = &self.state.mirror.reals;
        let turning: HashSet<RealKey> = wanted
            .iter()
            .filter(|(real, value)| {
                value.ambiguous != 0 && previous.get(*real).is_none_or(|p| p.ambiguous == 0)
            })
            .map(|(real, _)| *real)
            .collect();
        let backfill: BTreeMap<u32, RealKey> = self
            .reals_in_use()
            .filter(|(_, _, real, _)| turning.contains(real))
            .map(|(_, _, real, backend)| (backend, real))
            .collect();
        let mut writes: Vec<(RealKey, Real)> = wanted
            .iter()
            .filter(|(real, value)| previous.get(*real) != Some(*value))
            .map(|(real, value)| (*real, *value))
            .collect();
        writes.sort_by_key(|(real, _)| order(real));
        let mut removals: Vec<RealKey> = previous
            .keys()
            .filter(|real| !wanted.contains_key(*real))
            .copied()
            .collect();
        removals.sort_by_key(order);

        if !backfill.is_empty() {
            self.emit(MapOp::BackfillReverse {
                backends: backfill.clone(),
            });
        }
        for (key, value) in writes {
            self.emit(MapOp::InsertReal { key, value });
        }
        for key in removals {
            self.emit(MapOp::RemoveReal { key });
        }
        if !backfill.is_empty() {
            self.emit(MapOp::BackfillReverse { backends: backfill });
        }
    }
}
