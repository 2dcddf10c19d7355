//! Map operations, and the record of what the maps hold that makes each
//! operation undoable.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use lb_common::maps::{self as m, Backend, Real, RealKey, Service, ServiceKey, Settings};

/// One write to one of the program's maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MapOp {
    /// `SETTINGS[0] = value`.
    Settings(Settings),
    /// `BACKENDS[id] = value` (also how a backend is retired: the same
    /// value without `BACKEND_LIVE`).
    Backend {
        id: u32,
        value: Backend,
    },
    /// One of a service's two rings in `RINGS`.
    Ring {
        service: u32,
        slot: u32,
        ring: Arc<[u32]>,
    },
    InsertService {
        key: ServiceKey,
        value: Service,
    },
    RemoveService {
        key: ServiceKey,
    },
    InsertReal {
        key: RealKey,
        value: Real,
    },
    RemoveReal {
        key: RealKey,
    },
    /// Writes the `REVERSE` entry of every tracked flow (read from
    /// `CONNTRACK`) pinned to one of these backends (id -> `REALS` key).
    BackfillReverse {
        backends: BTreeMap<u32, RealKey>,
    },
    /// Zeroes the traffic counters of a newly allocated id, so a real
    /// server (or service) reusing an id does not inherit the counters of
    /// the one that had it before.
    ResetStats {
        of: StatsOf,
        id: u32,
    },
}

/// Which counters `MapOp::ResetStats` zeroes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatsOf {
    /// `SERVICE_STATS`.
    Service,
    /// `BACKEND_STATS`.
    Backend,
}

impl MapOp {
    /// The map the operation writes, for errors.
    pub(crate) fn map(&self) -> &'static str {
        match self {
            Self::Settings(_) => m::SETTINGS,
            Self::Backend { .. } => m::BACKENDS,
            Self::Ring { .. } => m::RINGS,
            Self::InsertService { .. } | Self::RemoveService { .. } => m::SERVICES,
            Self::InsertReal { .. } | Self::RemoveReal { .. } => m::REALS,
            Self::BackfillReverse { .. } => m::REVERSE,
            Self::ResetStats {
                of: StatsOf::Service,
                ..
            } => m::SERVICE_STATS,
            Self::ResetStats {
                of: StatsOf::Backend,
                ..
            } => m::BACKEND_STATS,
        }
    }
}

/// An operation and the one that puts back what it overwrote. `undo` is
/// `None` where nothing forwarding reads needs it: a ring goes into a slot
/// no `SERVICES` entry of the previous state points to, and extra `REVERSE`
/// entries are read only for backends `REALS` marks ambiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) op: MapOp,
    pub(crate) undo: Option<MapOp>,
}

/// What the planner last wrote to the maps it needs to restore.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mirror {
    pub(crate) settings: Settings,
    pub(crate) services: BTreeMap<ServiceKey, Service>,
    pub(crate) backends: BTreeMap<u32, Backend>,
    pub(crate) reals: HashMap<RealKey, Real>,
    /// The ring slot each service id last forwarded by, kept after its
    /// service is gone: a new service reusing the id writes the other slot,
    /// so undoing its entry leaves the previous owner's ring intact.
    pub(crate) live_slots: BTreeMap<u32, u32>,
}

impl Mirror {
    /// Records `op` as done and returns its undo.
    pub(crate) fn record(&mut self, op: &MapOp) -> Option<MapOp> {
        match op {
            MapOp::Settings(value) => Some(MapOp::Settings(std::mem::replace(
                &mut self.settings,
                *value,
            ))),
            MapOp::Backend { id, value } => {
                let old = self.backends.insert(*id, *value).unwrap_or_default();
                Some(MapOp::Backend {
                    id: *id,
                    value: old,
                })
            }
            // Counters are not forwarding state: nothing to put back.
            MapOp::Ring { .. } | MapOp::BackfillReverse { .. } | MapOp::ResetStats { .. } => None,
            MapOp::InsertService { key, value } => {
                self.live_slots.insert(value.id, value.ring_slot);
                Some(match self.services.insert(*key, *value) {
                    Some(old) => MapOp::InsertService {
                        key: *key,
                        value: old,
                    },
                    None => MapOp::RemoveService { key: *key },
                })
            }
            MapOp::RemoveService { key } => self
                .services
                .remove(key)
                .map(|value| MapOp::InsertService { key: *key, value }),
            MapOp::InsertReal { key, value } => Some(match self.reals.insert(*key, *value) {
                Some(old) => MapOp::InsertReal {
                    key: *key,
                    value: old,
                },
                None => MapOp::RemoveReal { key: *key },
            }),
            MapOp::RemoveReal { key } => self
                .reals
                .remove(key)
                .map(|value| MapOp::InsertReal { key: *key, value }),
        }
    }
}
