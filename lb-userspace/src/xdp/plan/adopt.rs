//! The installed state an earlier lbd left in maps pinned on bpffs, so a
//! restarted lbd plans from it as from its own: tracked flows hold backend
//! ids, their generations and service ids, so a real server that stays
//! must keep its id (and its `BACKENDS` entry untouched) for its flows to
//! keep reaching it.
//!
//! The maps say which backend ids a service forwards to (its live ring, its
//! sorry server) but not which service a backend at weight 0 (draining, or
//! weighted 0 by a check) belongs to: `REALS` says so for a real serving
//! one service, and its tracked flows say so otherwise. A live backend no
//! service claims has no flows worth keeping: its id is free, and when it
//! is handed out again the generation moves on.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use lb_common::maps::{
    BACKEND_HOLD, BACKEND_LIVE, Backend, FAMILY_IPV4, MAX_BACKENDS, MAX_SERVICES, Real, RealKey,
    SCHED_MH, SCHED_RR, Service, ServiceKey, Settings,
};

use super::{At, Installed, InstalledState, Mirror};
use crate::{
    dataplane::{BackendSpec, DesiredState, L4Protocol, SchedulerKind, ServiceSpec},
    xdp::ids::IdPool,
};

/// What the pinned maps hold, read by `xdp::pins::snapshot`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) settings: Settings,
    pub(crate) services: BTreeMap<ServiceKey, Service>,
    /// The `BACKENDS` entries that are not zero.
    pub(crate) backends: BTreeMap<u32, Backend>,
    /// Each service id's live ring (its first `ring_len` entries).
    pub(crate) rings: BTreeMap<u32, Vec<u32>>,
    pub(crate) reals: HashMap<RealKey, Real>,
    /// Backend id -> service id of the tracked flows that still match
    /// their backend's generation.
    pub(crate) flow_owners: BTreeMap<u32, u32>,
}

fn addr_of(bytes: &[u8; 16], family: u8) -> IpAddr {
    if family == FAMILY_IPV4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

fn protocol_of(number: u8) -> Option<L4Protocol> {
    [L4Protocol::Tcp, L4Protocol::Udp]
        .into_iter()
        .find(|p| p.number() == number)
}

/// The scheduler a `SERVICES` value runs (the IPVS-only ones run as wrr
/// and read back as wrr: a reload to them rewrites the ring, nothing more).
fn scheduler_of(code: u32) -> SchedulerKind {
    match code {
        SCHED_RR => SchedulerKind::RoundRobin,
        SCHED_MH => SchedulerKind::Maglev,
        _ => SchedulerKind::WeightedRoundRobin,
    }
}

fn at_of(b: &Backend) -> At {
    (addr_of(&b.addr, b.family), u16::from_be_bytes(b.port))
}

impl Snapshot {
    /// The service (by key) each live backend id belongs to.
    fn owners(&self) -> BTreeMap<u32, ServiceKey> {
        // Held backends (`removed_server_flows: drop`) count too: their
        // flows wait for them, so they keep their ids across a restart.
        let live = |id: &u32| {
            self.backends
                .get(id)
                .is_some_and(|b| b.flags & (BACKEND_LIVE | BACKEND_HOLD) != 0)
        };
        let by_id: BTreeMap<u32, ServiceKey> =
            self.services.iter().map(|(k, s)| (s.id, *k)).collect();
        let mut owners = BTreeMap::new();
        for (key, service) in &self.services {
            let ring = self.rings.get(&service.id).map_or(&[][..], Vec::as_slice);
            for id in ring.iter().chain([&service.sorry_backend]) {
                if live(id) {
                    owners.entry(*id).or_insert(*key);
                }
            }
        }
        for (id, b) in &self.backends {
            if owners.contains_key(id) || !live(id) {
                continue;
            }
            // REALS names the one service of a real that has one; the same
            // address for a TCP and a UDP service is two backends, so only
            // a single match says which.
            let mut claims = self.reals.iter().filter(|(k, r)| {
                (k.addr, k.port, k.family) == (b.addr, b.port, b.family) && r.ambiguous == 0
            });
            let by_reals = match (claims.next(), claims.next()) {
                (Some((_, real)), None) => by_id.get(&real.service),
                _ => None,
            };
            let by_flows = self.flow_owners.get(id).and_then(|s| by_id.get(s));
            if let Some(key) = by_reals.or(by_flows) {
                owners.insert(*id, *key);
            }
        }
        owners
    }
}

impl InstalledState {
    /// The state `snapshot` (pinned maps) holds, as if this process had
    /// installed it. No service is in `order` until the first plan.
    pub(crate) fn adopt(snapshot: &Snapshot) -> Self {
        let owners = snapshot.owners();
        let mut services = BTreeMap::new();
        for (key, service) in &snapshot.services {
            let Some(protocol) = protocol_of(key.proto) else {
                continue;
            };
            let ring: Arc<[u32]> = snapshot
                .rings
                .get(&service.id)
                .map_or_else(|| Arc::from([]), |r| Arc::from(r.as_slice()));
            let mut backends = BTreeMap::new();
            let mut specs = Vec::new();
            let mut sorry = None;
            for (id, _) in owners.iter().filter(|(_, k)| *k == key) {
                let at = at_of(&snapshot.backends[id]);
                let spec = BackendSpec {
                    addr: at.0,
                    port: at.1,
                    weight: u32::from(ring.contains(id)),
                };
                if *id == service.sorry_backend {
                    sorry = Some((at, *id));
                } else if backends.insert(at, *id).is_none() {
                    specs.push(spec);
                }
            }
            let spec = ServiceSpec {
                vip: addr_of(&key.addr, key.family),
                port: u16::from_be_bytes(key.port),
                protocol,
                scheduler: scheduler_of(service.scheduler),
                backends: specs,
                sorry: sorry.map(|((addr, port), _)| BackendSpec {
                    addr,
                    port,
                    weight: 0,
                }),
                // Not in the maps: the configuration's value replaces it.
                removed_server_flows: crate::config::RemovedServerFlows::default(),
            };
            let installed = Installed {
                spec,
                id: service.id,
                slot: service.ring_slot,
                ring,
                backends,
                sorry,
                departed: std::collections::BTreeMap::new(),
            };
            services.insert(*key, installed);
        }

        let held: BTreeSet<u32> = services
            .values()
            .flat_map(|i: &Installed| i.backends.values().chain(i.sorry.iter().map(|(_, id)| id)))
            .copied()
            .collect();
        let generations: BTreeMap<u32, u32> = snapshot
            .backends
            .iter()
            .map(|(id, b)| (*id, b.generation))
            .collect();
        let service_ids: BTreeSet<u32> = services.values().map(|i| i.id).collect();
        let mirror = Mirror {
            settings: snapshot.settings,
            services: snapshot.services.clone(),
            backends: snapshot.backends.clone(),
            reals: snapshot.reals.clone(),
            live_slots: snapshot
                .services
                .values()
                .map(|s| (s.id, s.ring_slot))
                .collect(),
        };
        Self {
            services,
            parked: BTreeMap::new(),
            order: Vec::new(),
            service_ids: IdPool::seeded(MAX_SERVICES, &service_ids, &BTreeMap::new()),
            backend_ids: IdPool::seeded(MAX_BACKENDS, &held, &generations),
            mirror,
            owed: Vec::new(),
            // Set again by this process when it runs the flow sync; the
            // next plan writes SETTINGS' flag accordingly.
            flow_events: false,
        }
    }

    /// The adopted services as a desired state (weights: 1 for a backend in
    /// the live ring, 0 for one outside it), so the daemon can tell which
    /// real servers the configuration removed since.
    pub(crate) fn as_desired(&self) -> DesiredState {
        DesiredState {
            services: self.services.values().map(|i| i.spec.clone()).collect(),
            ..DesiredState::default()
        }
    }
}
