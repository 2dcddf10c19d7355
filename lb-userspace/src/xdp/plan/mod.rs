//! The XDP planner: given what the maps hold and a new desired state, the
//! map operations that install it and the bookkeeping after them. Pure: no
//! map is touched here (the writer in `super::writer` does that), so every
//! rule below is a host test.
//!
//! - A service is found by its key (VIP, port, protocol). One that did not
//!   change writes nothing, so its flows never notice a reload.
//! - A changed backend set goes into the service's inactive ring slot, then
//!   one `SERVICES` update (atomic for readers) flips to it; backends that
//!   left are retired after the flip (make before break).
//! - A service the desired state drops (its VIP went to the peer) is
//!   *parked*: its `SERVICES` entry goes, its rings and backends stay, so a
//!   takeover brings it back with one `SERVICES` write (and its `REALS`
//!   entries) instead of a ring of 16,381, and its flows continue. Parked
//!   services are evicted (their ids freed) only when ids run out.
//! - Ids index the program's arrays; freed ones are reused, a backend id
//!   with a new generation so flows pinned to its previous user stop.
//! - `REALS` says which service a backend's replies belong to, or that the
//!   backend serves several (ambiguous): then replies need per-flow
//!   `REVERSE` entries, backfilled for the flows it already had.
//! - A backend that leaves its service (a failed check, a reload) goes as
//!   the service's `removed_server_flows` says: `reset` retires its id
//!   (flows pinned to it are scheduled anew); `drop` marks it
//!   `BACKEND_HOLD` (their packets are dropped) and `keep` leaves it live
//!   outside the ring, both keeping its id in `departed`, so that when it
//!   returns it gets the same id and generation and its flows carry on.
//! - Every operation carries its undo ([`Step`]), so a failed write can put
//!   back the previous state (see `super::writer::execute`).

pub(crate) mod adopt;
mod check;
mod departed;
pub(crate) mod entries;
mod ops;
mod reals;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, btree_map::Entry},
    net::IpAddr,
    sync::Arc,
};

use lb_common::maps::{BACKEND_LIVE, MAX_BACKENDS, MAX_SERVICES, ServiceKey, Settings};

use self::entries::{
    backend_entry, identity, ring_scheduler, service_entry, service_key, settings_entry,
};
pub(crate) use self::{
    check::PlanError,
    ops::{MapOp, Mirror, StatsOf, Step},
};
use super::{
    ids::IdPool,
    rings::{RingMember, build_ring},
};
use crate::dataplane::{DesiredState, ServiceSpec};

/// A backend's `(address, port)` within its service.
pub(crate) type At = (IpAddr, u16);

/// A service as installed in the maps.
#[derive(Clone, Debug)]
pub(crate) struct Installed {
    pub(crate) spec: ServiceSpec,
    pub(crate) id: u32,
    /// The live ring slot (0 or 1).
    pub(crate) slot: u32,
    pub(crate) ring: Arc<[u32]>,
    /// Backend ids, for this service only.
    pub(crate) backends: BTreeMap<At, u32>,
    pub(crate) sorry: Option<(At, u32)>,
    /// Backends that left the service but keep their id (policy `drop`:
    /// held; `keep`: live outside the ring), so their flows resume if
    /// they return.
    pub(crate) departed: BTreeMap<At, u32>,
}

/// What is installed: services, the ids they hold, and what the maps hold.
#[derive(Clone, Debug)]
pub(crate) struct InstalledState {
    pub(crate) services: BTreeMap<ServiceKey, Installed>,
    /// Services the desired state dropped, kept without a `SERVICES` entry.
    pub(crate) parked: BTreeMap<ServiceKey, Installed>,
    /// Services in the order the desired state lists them, for status.
    pub(crate) order: Vec<ServiceKey>,
    pub(crate) service_ids: IdPool,
    pub(crate) backend_ids: IdPool,
    pub(crate) mirror: Mirror,
    /// Undos of a failed plan that failed too: the maps differ from this
    /// state until they are performed (before the next plan).
    pub(crate) owed: Vec<MapOp>,
    /// Whether `SETTINGS` asks the program for flow-sync events.
    pub(crate) flow_events: bool,
}

/// The operations that install a desired state, in order, and the state
/// once they all succeeded.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    pub(crate) next: InstalledState,
}

/// Ids ran out even after evicting parked services.
struct OutOfIds(PlanError);

impl Default for InstalledState {
    fn default() -> Self {
        Self::new()
    }
}

impl InstalledState {
    /// Nothing installed; the maps as the kernel creates them (zeroed).
    pub(crate) fn new() -> Self {
        Self {
            services: BTreeMap::new(),
            parked: BTreeMap::new(),
            order: Vec::new(),
            service_ids: IdPool::new(MAX_SERVICES),
            backend_ids: IdPool::new(MAX_BACKENDS),
            mirror: Mirror::default(),
            owed: Vec::new(),
            flow_events: false,
        }
    }

    /// The services in the desired state's order.
    pub(crate) fn in_order(&self) -> impl Iterator<Item = &Installed> {
        self.order.iter().filter_map(|k| self.services.get(k))
    }

    /// What `SETTINGS` holds (zeroed before the first plan is applied).
    pub(crate) fn settings(&self) -> Settings {
        self.mirror.settings
    }

    /// Plans the installation of `desired`; `self` is left as it is.
    pub(crate) fn plan(&self, desired: &DesiredState) -> Result<Plan, PlanError> {
        check::check(desired)?;
        let mut p = Planning {
            state: self.clone(),
            steps: Vec::new(),
        };
        p.emit_if_changed_settings(settings_entry(&desired.timeouts, self.flow_events));
        let wanted: Vec<ServiceKey> = desired.services.iter().map(service_key).collect();
        let stale: Vec<ServiceKey> = p
            .state
            .services
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in stale {
            p.park(key);
        }
        for spec in &desired.services {
            p.unpark(service_key(spec));
            p.install(spec).map_err(|OutOfIds(e)| e)?;
        }
        p.state.order = wanted;
        p.write_reals();
        Ok(Plan {
            steps: p.steps,
            next: p.state,
        })
    }

    /// After a failed plan: keeps the id generations `next` handed out, so
    /// a flow pinned during the attempt never matches a later user of the id.
    pub(crate) fn keep_generations(&mut self, next: &InstalledState) {
        self.backend_ids.keep_generations(&next.backend_ids);
        self.service_ids.keep_generations(&next.service_ids);
    }
}

/// A plan being made: the state as it will be after `steps`.
struct Planning {
    state: InstalledState,
    steps: Vec<Step>,
}

impl Planning {
    fn emit(&mut self, op: MapOp) {
        let undo = self.state.mirror.record(&op);
        self.steps.push(Step { op, undo });
    }

    fn emit_if_changed_settings(&mut self, settings: Settings) {
        if self.state.mirror.settings != settings {
            self.emit(MapOp::Settings(settings));
        }
    }

    /// Stops forwarding for `key` but keeps its rings and backends.
    fn park(&mut self, key: ServiceKey) {
        if let Some(installed) = self.state.services.remove(&key) {
            self.emit(MapOp::RemoveService { key });
            self.state.parked.insert(key, installed);
        }
    }

    /// Forwards for a parked `key` again, as it was.
    fn unpark(&mut self, key: ServiceKey) {
        if let Some(installed) = self.state.parked.remove(&key) {
            self.emit(MapOp::InsertService {
                key,
                value: service_entry(&installed),
            });
            self.state.services.insert(key, installed);
        }
    }

    /// Installs or updates one service, writing only what changed.
    fn install(&mut self, spec: &ServiceSpec) -> Result<(), OutOfIds> {
        let key = service_key(spec);
        // A new service is always written out, even with an empty ring.
        let (mut installed, fresh) = if let Some(i) = self.state.services.remove(&key) {
            (i, false)
        } else {
            let id = self.allocate_service()?;
            // As if live in the slot the id's previous user forwarded by,
            // so the first flip writes the other one (see `Mirror`).
            let slot = self.state.mirror.live_slots.get(&id).copied().unwrap_or(1);
            let installed = Installed {
                spec: spec.clone(),
                id,
                slot,
                ring: Arc::from([]),
                backends: BTreeMap::new(),
                sorry: None,
                departed: BTreeMap::new(),
            };
            (installed, true)
        };

        // Backend ids: keep those still wanted, allocate new ones; the rest
        // are retired once the service no longer points to them.
        let mut leaving = std::mem::take(&mut installed.backends);
        let mut wanted = BTreeMap::new();
        for b in &spec.backends {
            let at = (b.addr, b.port);
            let id = if let Some(id) = leaving.remove(&at) {
                // Live already, unless adopted held from an earlier lbd.
                self.set_backend_flags(id, BACKEND_LIVE);
                id
            } else if let Some(id) = installed.departed.remove(&at) {
                // Back under its old id and generation: flows pinned to it
                // carry on.
                self.set_backend_flags(id, BACKEND_LIVE);
                id
            } else {
                let (id, generation) = self.allocate_backend()?;
                self.emit(MapOp::Backend {
                    id,
                    value: backend_entry(b, generation),
                });
                id
            };
            wanted.insert(at, id);
        }
        installed.backends = wanted;
        installed.departed.extend(leaving);
        let mut retire = self.settle_departed(&mut installed, spec.removed_server_flows);

        let sorry_at = spec.sorry.as_ref().map(|s| (s.addr, s.port));
        let sorry = match (installed.sorry.take(), &spec.sorry) {
            (Some((at, id)), Some(_)) if Some(at) == sorry_at => Some((at, id)),
            (old, new) => {
                retire.extend(old.map(|(_, id)| id));
                match new {
                    Some(s) => {
                        let (id, generation) = self.allocate_backend()?;
                        self.emit(MapOp::Backend {
                            id,
                            value: backend_entry(s, generation),
                        });
                        Some(((s.addr, s.port), id))
                    }
                    None => None,
                }
            }
        };

        let members: Vec<RingMember> = spec
            .backends
            .iter()
            .map(|b| RingMember {
                id: installed.backends[&(b.addr, b.port)],
                weight: b.weight,
                identity: identity(b),
            })
            .collect();
        let ring = build_ring(ring_scheduler(spec.scheduler), &members);
        let changed = fresh
            || *ring != *installed.ring
            || sorry.map(|(_, id)| id) != installed.sorry.map(|(_, id)| id)
            || spec.scheduler != installed.spec.scheduler;
        installed.sorry = sorry;
        installed.spec = spec.clone();
        if changed {
            let slot = 1 - installed.slot;
            let ring: Arc<[u32]> = ring.into();
            self.emit(MapOp::Ring {
                service: installed.id,
                slot,
                ring: Arc::clone(&ring),
            });
            installed.slot = slot;
            installed.ring = ring;
            self.emit(MapOp::InsertService {
                key,
                value: service_entry(&installed),
            });
        }
        self.state.services.insert(key, installed);
        for id in retire {
            self.retire_backend(id);
        }
        Ok(())
    }

    /// A service id, its counters zeroed.
    fn allocate_service(&mut self) -> Result<u32, OutOfIds> {
        let id = self.try_allocate_service()?;
        self.emit(MapOp::ResetStats {
            of: StatsOf::Service,
            id,
        });
        Ok(id)
    }

    fn try_allocate_service(&mut self) -> Result<u32, OutOfIds> {
        if let Some((id, _)) = self.state.service_ids.allocate() {
            return Ok(id);
        }
        self.evict_parked();
        self.state
            .service_ids
            .allocate()
            .map(|(id, _)| id)
            .ok_or(OutOfIds(PlanError::SERVICES))
    }

    /// A backend id and generation, its counters zeroed.
    fn allocate_backend(&mut self) -> Result<(u32, u32), OutOfIds> {
        let allocated = self.try_allocate_backend()?;
        self.emit(MapOp::ResetStats {
            of: StatsOf::Backend,
            id: allocated.0,
        });
        Ok(allocated)
    }

    fn try_allocate_backend(&mut self) -> Result<(u32, u32), OutOfIds> {
        if let Some(id) = self.state.backend_ids.allocate() {
            return Ok(id);
        }
        self.evict_parked();
        if let Some(id) = self.state.backend_ids.allocate() {
            return Ok(id);
        }
        self.evict_departed();
        self.state
            .backend_ids
            .allocate()
            .ok_or(OutOfIds(PlanError::BACKENDS))
    }

    /// Frees everything parked services hold: their backends are retired
    /// (their flows end) and their ids go back to the pools.
    fn evict_parked(&mut self) {
        for (_, installed) in std::mem::take(&mut self.state.parked) {
            let ids = installed
                .backends
                .values()
                .chain(installed.departed.values())
                .chain(installed.sorry.iter().map(|(_, id)| id));
            for id in ids.copied().collect::<Vec<_>>() {
                self.retire_backend(id);
            }
            self.state.service_ids.release(installed.id);
        }
    }

    /// Marks a backend gone: flows pinned to it stop being forwarded to it
    /// (the program reschedules them; for TCP the new backend answers with
    /// a reset, which ends the flow as IPVS's expire_nodest_conn=1 does).
    fn retire_backend(&mut self, id: u32) {
        if let Entry::Occupied(e) = self.state.mirror.backends.entry(id) {
            let mut value = *e.get();
            value.flags &= !BACKEND_LIVE;
            self.emit(MapOp::Backend { id, value });
        }
        self.state.backend_ids.release(id);
    }
}
