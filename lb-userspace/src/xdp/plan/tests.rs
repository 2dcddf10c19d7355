//! Host tests of the planner through the in-memory maps: what a user would
//! see forwarded after each reload, and which writes it took.

use std::net::{IpAddr, Ipv4Addr};

use lb_common::maps::{
    BACKEND_LIVE, Backend, FAMILY_IPV4, FLOW_ESTABLISHED, Flow, FlowKey, MAX_SERVICES, Real,
    ReverseFlow, Service,
};

use super::{
    InstalledState, MapOp, PlanError, StatsOf,
    entries::{addr_bytes, real_key, service_entry, service_key},
};
use crate::config::RemovedServerFlows;
use crate::dataplane::{
    BackendSpec, DataplaneError, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts,
};
use crate::xdp::writer::{fake::FakeMaps, install};

const PORT: u16 = 8080;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn backend(addr: &str, weight: u32) -> BackendSpec {
    BackendSpec {
        addr: ip(addr),
        port: PORT,
        weight,
    }
}

/// A service whose removed backends retire at once (`reset`), as the
/// tests of ids and generations below want; `departed.rs` tests the other
/// policies.
fn service(vip: &str, port: u16, backends: &[BackendSpec]) -> ServiceSpec {
    ServiceSpec {
        vip: ip(vip),
        port,
        protocol: L4Protocol::Tcp,
        scheduler: SchedulerKind::WeightedRoundRobin,
        backends: backends.to_vec(),
        sorry: None,
        removed_server_flows: RemovedServerFlows::Reset,
    }
}

fn desired(services: &[ServiceSpec]) -> DesiredState {
    DesiredState {
        services: services.to_vec(),
        timeouts: Timeouts::default(),
    }
}

/// What a new flow to a service meets, as the program reads the maps.
#[derive(Debug, PartialEq, Eq)]
enum Forwarding {
    /// No `SERVICES` entry: the packet is not the balancer's.
    NotServed,
    /// The live ring, as backend addresses (`None`: a ring entry whose
    /// backend is not live), and the sorry server.
    Ring(Vec<Option<IpAddr>>, Option<IpAddr>),
}

/// A balancer's maps and the bookkeeping that wrote them.
#[derive(Clone)]
struct Node {
    state: InstalledState,
    maps: FakeMaps,
}

impl Node {
    fn new() -> Self {
        Self {
            state: InstalledState::new(),
            maps: FakeMaps::default(),
        }
    }

    fn apply(&mut self, d: &DesiredState) -> Result<(), DataplaneError> {
        let result = install(&mut self.state, &mut self.maps, d);
        self.assert_consistent();
        result
    }

    /// Applies `d` without checking the bookkeeping against the maps.
    fn apply_unchecked(&mut self, d: &DesiredState) -> Result<(), DataplaneError> {
        install(&mut self.state, &mut self.maps, d)
    }

    /// Applies `d` and returns the operations it took.
    fn ops(&mut self, d: &DesiredState) -> Vec<MapOp> {
        let before = self.maps.ops.len();
        self.apply(d).expect("the desired state installs");
        self.maps.ops[before..].to_vec()
    }

    fn live_backend(&self, id: u32) -> Option<IpAddr> {
        let b = self.maps.backends.get(&id)?;
        if b.flags & BACKEND_LIVE == 0 {
            return None;
        }
        assert_eq!(b.family, FAMILY_IPV4, "these tests use IPv4");
        Some(IpAddr::V4(Ipv4Addr::new(
            b.addr[0], b.addr[1], b.addr[2], b.addr[3],
        )))
    }

    fn forwarding(&self, spec: &ServiceSpec) -> Forwarding {
        let Some(entry) = self.maps.services.get(&service_key(spec)) else {
            return Forwarding::NotServed;
        };
        let ring = self.maps.live_ring(entry);
        Forwarding::Ring(
            ring.iter().map(|id| self.live_backend(*id)).collect(),
            self.live_backend(entry.sorry_backend),
        )
    }

    fn entry(&self, spec: &ServiceSpec) -> Option<Service> {
        self.maps.services.get(&service_key(spec)).copied()
    }

    fn backend_id(&self, spec: &ServiceSpec, addr: &str) -> u32 {
        let key = service_key(spec);
        let installed = self
            .state
            .services
            .get(&key)
            .or(self.state.parked.get(&key));
        installed.expect("the service is installed").backends[&(ip(addr), PORT)]
    }

    /// The bookkeeping says what the maps hold, and no id is held twice.
    fn assert_consistent(&self) {
        let s = &self.state;
        assert_eq!(self.maps.settings, s.mirror.settings, "SETTINGS");
        assert_eq!(self.maps.services, s.mirror.services, "SERVICES");
        assert_eq!(self.maps.backends, s.mirror.backends, "BACKENDS");
        assert_eq!(self.maps.reals, s.mirror.reals, "REALS");
        let mut service_ids = std::collections::BTreeSet::new();
        let mut backend_ids = std::collections::BTreeSet::new();
        for (parked, (key, installed)) in s
            .services
            .iter()
            .map(|e| (false, e))
            .chain(s.parked.iter().map(|e| (true, e)))
        {
            assert!(
                service_ids.insert(installed.id),
                "service id {} twice",
                installed.id
            );
            assert!(s.service_ids.in_use(installed.id));
            let entry = self.maps.services.get(key);
            if parked {
                assert_eq!(entry, None, "a parked service is not forwarded");
            } else {
                assert_eq!(entry, Some(&service_entry(installed)));
            }
            let ring = self.maps.live_ring(&service_entry(installed));
            assert_eq!(
                ring,
                &installed.ring[..],
                "the live ring of {}",
                installed.spec.label()
            );
            let ids = installed
                .backends
                .values()
                .chain(installed.sorry.iter().map(|(_, id)| id));
            for &id in ids {
                assert!(backend_ids.insert(id), "backend id {id} twice");
                assert!(s.backend_ids.in_use(id));
                assert!(self.live_backend(id).is_some(), "backend {id} is live");
            }
            for &id in installed.departed.values() {
                assert!(backend_ids.insert(id), "backend id {id} twice");
                assert!(s.backend_ids.in_use(id), "departed {id} keeps its id");
            }
        }
    }
}

#[test]
fn installing_a_service_writes_backends_then_ring_then_entry() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    let ops = node.ops(&desired(std::slice::from_ref(&web)));
    let kinds: Vec<&str> = ops
        .iter()
        // Zeroing a new id's counters comes first; forwarding never reads it.
        .filter(|op| !matches!(op, MapOp::ResetStats { .. }))
        .map(|op| match op {
            MapOp::Settings(_) => "settings",
            MapOp::Backend { .. } => "backend",
            MapOp::Ring { .. } => "ring",
            MapOp::InsertService { .. } => "service",
            MapOp::InsertReal { .. } => "real",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "settings", "backend", "backend", "ring", "service", "real", "real"
        ],
        "the entry is written once its ring and backends are there"
    );
    assert_eq!(
        node.forwarding(&web),
        Forwarding::Ring(vec![Some(ip("10.0.0.1")), Some(ip("10.0.0.2"))], None)
    );
    let id = node.entry(&web).unwrap().id;
    for addr in ["10.0.0.1", "10.0.0.2"] {
        let real = node.maps.reals[&real_key(&service_key(&web), (ip(addr), PORT))];
        assert_eq!((real.service, real.ambiguous), (id, 0), "replies of {addr}");
    }
}

#[test]
fn an_unchanged_service_writes_nothing_on_reload() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 3)],
    );
    let mut dns = service("192.0.2.1", 53, &[backend("10.0.0.3", 1)]);
    node.apply(&desired(&[web.clone(), dns.clone()])).unwrap();
    assert_eq!(node.ops(&desired(&[web.clone(), dns.clone()])), []);

    // A change elsewhere touches only the changed service.
    let web_id = node.entry(&web).unwrap().id;
    dns.backends.push(backend("10.0.0.4", 1));
    let ops = node.ops(&desired(&[web.clone(), dns]));
    assert!(!ops.is_empty());
    for op in &ops {
        match op {
            MapOp::Ring { service, .. } => assert_ne!(*service, web_id, "{op:?}"),
            MapOp::InsertService { key, .. } => assert_ne!(*key, service_key(&web), "{op:?}"),
            MapOp::Backend { id, .. } => assert!(
                !node.state.services[&service_key(&web)]
                    .backends
                    .values()
                    .any(|b| b == id),
                "{op:?}"
            ),
            _ => {}
        }
    }
}

#[test]
fn a_service_whose_vip_moved_to_the_peer_is_parked_and_comes_back_with_one_service_write() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    let other = service("192.0.2.9", 80, &[backend("10.0.0.9", 1)]);
    node.apply(&desired(&[web.clone(), other.clone()])).unwrap();
    let serving = node.forwarding(&web);
    let entry = node.entry(&web).unwrap();
    let rings = node.maps.rings.clone();

    let ops = node.ops(&desired(std::slice::from_ref(&other)));
    assert_eq!(node.forwarding(&web), Forwarding::NotServed);
    assert!(ops.contains(&MapOp::RemoveService {
        key: service_key(&web)
    }));
    assert!(
        !ops.iter()
            .any(|op| matches!(op, MapOp::Ring { .. } | MapOp::Backend { .. })),
        "parking keeps rings and backends: {ops:?}"
    );
    assert_eq!(node.maps.rings, rings);

    let ops = node.ops(&desired(&[web.clone(), other]));
    let services: Vec<&MapOp> = ops
        .iter()
        .filter(|op| !matches!(op, MapOp::InsertReal { .. }))
        .collect();
    assert_eq!(
        services,
        [&MapOp::InsertService {
            key: service_key(&web),
            value: entry
        }],
        "a takeover writes the entry back as it was (and the replies' REALS)"
    );
    assert_eq!(node.forwarding(&web), serving);
}

#[test]
fn a_parked_service_that_changed_meanwhile_keeps_its_id_and_unchanged_backends() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    node.apply(&desired(std::slice::from_ref(&web))).unwrap();
    let (id, kept) = (
        node.entry(&web).unwrap().id,
        node.backend_id(&web, "10.0.0.1"),
    );
    node.apply(&desired(&[])).unwrap();
    let mut changed = web.clone();
    changed.backends[1] = backend("10.0.0.3", 1);
    node.apply(&desired(std::slice::from_ref(&changed)))
        .unwrap();
    assert_eq!(node.entry(&changed).unwrap().id, id);
    assert_eq!(node.backend_id(&changed, "10.0.0.1"), kept);
    assert_eq!(
        node.forwarding(&changed),
        Forwarding::Ring(vec![Some(ip("10.0.0.1")), Some(ip("10.0.0.3"))], None)
    );
}

#[test]
fn a_removed_backend_id_is_reused_with_a_new_generation() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    node.apply(&desired(std::slice::from_ref(&web))).unwrap();
    let freed = node.backend_id(&web, "10.0.0.2");
    let old: Backend = node.maps.backends[&freed];

    let mut smaller = web.clone();
    smaller.backends.pop();
    node.apply(&desired(std::slice::from_ref(&smaller)))
        .unwrap();
    assert_eq!(
        node.live_backend(freed),
        None,
        "flows pinned to 10.0.0.2 stop"
    );

    let dns = service("192.0.2.1", 53, &[backend("10.0.0.7", 1)]);
    node.apply(&desired(&[smaller, dns.clone()])).unwrap();
    assert_eq!(
        node.backend_id(&dns, "10.0.0.7"),
        freed,
        "the freed id is reused"
    );
    let new = node.maps.backends[&freed];
    assert_ne!(
        new.generation, old.generation,
        "flows pinned to the id's previous backend must not reach the new one"
    );
    assert_eq!(node.live_backend(freed), Some(ip("10.0.0.7")));
}

#[test]
fn a_reused_id_starts_with_zeroed_counters() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    let first = node.ops(&desired(std::slice::from_ref(&web)));
    let service_id = node.state.services[&service_key(&web)].id;
    assert!(first.contains(&MapOp::ResetStats {
        of: StatsOf::Service,
        id: service_id
    }));
    let freed = node.backend_id(&web, "10.0.0.2");
    let mut smaller = web.clone();
    smaller.backends.pop();
    node.apply(&desired(std::slice::from_ref(&smaller)))
        .unwrap();

    let dns = service("192.0.2.1", 53, &[backend("10.0.0.7", 1)]);
    let ops = node.ops(&desired(&[smaller, dns.clone()]));
    assert_eq!(node.backend_id(&dns, "10.0.0.7"), freed, "the id is reused");
    let reset = ops
        .iter()
        .position(|op| {
            *op == MapOp::ResetStats {
                of: StatsOf::Backend,
                id: freed,
            }
        })
        .expect("the reused id's counters (10.0.0.2's traffic) are zeroed");
    let forwards = ops
        .iter()
        .position(|op| matches!(op, MapOp::Backend { id, .. } if *id == freed))
        .expect("the new backend is written");
    assert!(
        reset < forwards,
        "zeroed before the new backend takes traffic"
    );
}

/// `MAX_SERVICES` services `vip`:1.. with `n` backends each.
fn full_house(vip: &str, backend_net: u8, n: u8) -> Vec<ServiceSpec> {
    (1..=MAX_SERVICES as u8)
        .map(|port| {
            let backends: Vec<BackendSpec> = (1..=n)
                .map(|b| backend(&format!("10.{backend_net}.{port}.{b}"), 1))
                .collect();
            service(vip, u16::from(port), &backends)
        })
        .collect()
}

/// The live ring of a service of one of the `full_house`s.
fn ring_of(s: &ServiceSpec) -> Forwarding {
    Forwarding::Ring(s.backends.iter().map(|b| Some(b.addr)).collect(), None)
}

#[test]
fn parked_services_are_evicted_when_ids_run_out_and_their_ids_reused() {
    let mut node = Node::new();
    let first = full_house("192.0.2.1", 1, 1);
    node.apply(&desired(&first)).unwrap();
    // The VIP moves to the peer: all parked, all ids still held.
    node.apply(&desired(&[])).unwrap();
    assert_eq!(node.state.parked.len(), MAX_SERVICES as usize);

    let second = full_house("192.0.2.2", 2, 1);
    node.apply(&desired(&second)).unwrap();
    assert!(node.state.parked.is_empty(), "evicted for the new services");
    for s in &second {
        assert_eq!(node.forwarding(s), ring_of(s), "{}", s.label());
    }
    for s in &first {
        assert_eq!(node.forwarding(s), Forwarding::NotServed);
    }
    // One more is refused as a whole, nothing written.
    let mut more = second.clone();
    more.push(service("192.0.2.3", 1, &[]));
    let before = node.maps.clone();
    let err = node.state.plan(&desired(&more)).unwrap_err();
    assert_eq!(err, PlanError::SERVICES);
    assert!(node.apply(&desired(&more)).is_err());
    assert_eq!(node.maps.services, before.services);
}

#[test]
fn weight_zero_drains_while_removal_retires() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    node.apply(&desired(std::slice::from_ref(&web))).unwrap();
    let id = node.backend_id(&web, "10.0.0.2");
    let real = real_key(&service_key(&web), (ip("10.0.0.2"), PORT));

    let mut drained = web.clone();
    drained.backends[1].weight = 0;
    node.apply(&desired(std::slice::from_ref(&drained)))
        .unwrap();
    assert_eq!(
        node.forwarding(&drained),
        Forwarding::Ring(vec![Some(ip("10.0.0.1"))], None),
        "no new flows to a drained backend"
    );
    assert_eq!(
        node.live_backend(id),
        Some(ip("10.0.0.2")),
        "its established flows continue"
    );
    assert!(
        node.maps.reals.contains_key(&real),
        "and their replies are translated"
    );
    assert_eq!(node.backend_id(&drained, "10.0.0.2"), id);

    let mut removed = web.clone();
    removed.backends.pop();
    let ops = node.ops(&desired(std::slice::from_ref(&removed)));
    assert_eq!(
        node.live_backend(id),
        None,
        "a removed backend's flows stop"
    );
    assert!(!node.maps.reals.contains_key(&real));
    assert!(!node.state.backend_ids.in_use(id));
    // The ring did not change (10.0.0.2 was not in it), so the retirement
    // is the only write besides REALS.
    assert!(matches!(ops[0], MapOp::Backend { id: i, value } if i == id && value.flags == 0));
}

#[test]
fn removal_retires_after_the_entry_stops_pointing_at_the_backend() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    node.apply(&desired(std::slice::from_ref(&web))).unwrap();
    let id = node.backend_id(&web, "10.0.0.2");
    let mut removed = web.clone();
    removed.backends.pop();
    let ops = node.ops(&desired(&[removed]));
    let flip = ops
        .iter()
        .position(|op| matches!(op, MapOp::InsertService { .. }));
    let retire = ops
        .iter()
        .position(|op| matches!(op, MapOp::Backend { id: i, .. } if *i == id));
    assert!(flip.unwrap() < retire.unwrap(), "{ops:?}");
}

fn flow(
    client: [u8; 4],
    sport: u16,
    vip: &ServiceSpec,
    backend: u32,
    service: u32,
) -> (FlowKey, Flow) {
    let mut key = FlowKey {
        sport: sport.to_be_bytes(),
        dport: vip.port.to_be_bytes(),
        proto: 6,
        family: FAMILY_IPV4,
        ..FlowKey::default()
    };
    key.src[..4].copy_from_slice(&client);
    key.dst = addr_bytes(vip.vip).0;
    let flow = Flow {
        backend,
        service,
        state: FLOW_ESTABLISHED,
        ..Flow::default()
    };
    (key, flow)
}

#[test]
fn a_real_joining_a_second_service_turns_ambiguous_and_its_open_flows_get_reverse_entries() {
    let mut node = Node::new();
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    node.apply(&desired(std::slice::from_ref(&web))).unwrap();
    let web_id = node.entry(&web).unwrap().id;
    let shared = node.backend_id(&web, "10.0.0.1");
    let alone = node.backend_id(&web, "10.0.0.2");
    // Open flows, as the program tracked them.
    let (on_shared, f) = flow([10, 9, 0, 1], 40000, &web, shared, web_id);
    node.maps.conntrack.insert(on_shared, f);
    let (on_alone, f) = flow([10, 9, 0, 2], 40001, &web, alone, web_id);
    node.maps.conntrack.insert(on_alone, f);

    let api = service("192.0.2.1", 81, &[backend("10.0.0.1", 1)]);
    let ops = node.ops(&desired(&[web.clone(), api.clone()]));
    let real = real_key(&service_key(&web), (ip("10.0.0.1"), PORT));
    assert_eq!(node.maps.reals[&real].ambiguous, 1);
    let reply = FlowKey {
        src: real.addr,
        dst: on_shared.src,
        sport: real.port,
        dport: on_shared.sport,
        proto: 6,
        family: FAMILY_IPV4,
        _pad: [0; 2],
    };
    assert_eq!(
        node.maps.reverse.get(&reply),
        Some(&ReverseFlow {
            vip: on_shared.dst,
            vport: 80u16.to_be_bytes(),
            _pad: [0; 2],
            service: web_id,
        }),
        "the open flow's replies still go back from web's VIP"
    );
    assert_eq!(node.maps.reverse.len(), 1, "only flows of the shared real");
    // Before the switch (no gap) and after it (flows created meanwhile).
    let real_write = ops
        .iter()
        .position(|op| matches!(op, MapOp::InsertReal { key, .. } if *key == real))
        .unwrap();
    let backfills: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| matches!(op, MapOp::BackfillReverse { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(backfills.len(), 2, "{ops:?}");
    assert!(backfills[0] < real_write && real_write < backfills[1]);

    // Already ambiguous: no backfill on the next reload.
    assert_eq!(node.ops(&desired(&[web.clone(), api])), []);
    // Back to one service: REALS owns it again, unambiguous.
    node.apply(&desired(&[web])).unwrap();
    assert_eq!(
        node.maps.reals[&real],
        Real {
            vip: service_key(&service("192.0.2.1", 80, &[])).addr,
            vport: 80u16.to_be_bytes(),
            ambiguous: 0,
            _pad: 0,
            service: web_id,
        }
    );
}

/// Applies `to` from `from` with the n-th operation failing, for every n:
/// the apply fails, the maps forward as before and the bookkeeping still
/// describes them; then the same state installs cleanly.
fn assert_every_failure_keeps_the_last_good_state(
    from: &Node,
    to: &DesiredState,
    all: &[ServiceSpec],
) {
    let steps = from.state.plan(to).unwrap().steps.len();
    assert!(steps > 0);
    let mut reference = from.clone();
    reference.apply(to).unwrap();
    for n in 0..steps {
        let mut node = from.clone();
        node.maps.fail = [node.maps.ops.len() + n].into();
        assert!(node.apply(to).is_err(), "op {n} failed");
        for s in all {
            assert_eq!(
                node.forwarding(s),
                from.forwarding(s),
                "{} after op {n} of {steps} failed",
                s.label()
            );
        }
        assert_eq!(node.maps.reals, from.maps.reals, "op {n}");
        assert_eq!(node.maps.settings, from.maps.settings, "op {n}");
        node.maps.fail.clear();
        node.apply(to).unwrap();
        for s in all {
            assert_eq!(
                node.forwarding(s),
                reference.forwarding(s),
                "{} after retrying",
                s.label()
            );
        }
    }
}

#[test]
fn a_failed_write_keeps_the_last_good_state() {
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    let dns = service("192.0.2.1", 53, &[backend("10.0.0.1", 1)]);
    let mail = service("192.0.2.2", 25, &[backend("10.0.0.5", 1)]);
    let mut from = Node::new();
    from.apply(&desired(&[web.clone(), mail.clone()])).unwrap();
    // web changes a backend, dns is new and shares a real with web, mail
    // is parked; timeouts change.
    let mut web2 = web.clone();
    web2.backends[1] = backend("10.0.0.3", 2);
    let mut to = desired(&[web2, dns.clone()]);
    to.timeouts.tcp = std::time::Duration::from_mins(1);
    assert_every_failure_keeps_the_last_good_state(&from, &to, &[web, dns, mail]);
}

#[test]
fn a_failed_write_after_evicting_keeps_parked_services_intact() {
    // Ids run out, so parked services are evicted and their ids reused
    // within the failing plan: undoing it must bring their rings back whole.
    // Two backends each, so a ring written over another shows.
    let first = full_house("192.0.2.1", 1, 2);
    let mut from = Node::new();
    from.apply(&desired(&first)).unwrap();
    from.apply(&desired(&[])).unwrap();
    let second: Vec<ServiceSpec> = full_house("192.0.2.2", 2, 1).into_iter().take(3).collect();
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    assert_every_failure_keeps_the_last_good_state(&from, &desired(&second), &all);

    // And after a failure, bringing the parked ones back finds them whole.
    let mut node = from.clone();
    let steps = node.state.plan(&desired(&second)).unwrap().steps.len();
    node.maps.fail = [node.maps.ops.len() + steps - 1].into();
    assert!(node.apply(&desired(&second)).is_err());
    node.apply(&desired(&first)).unwrap();
    for s in &first {
        assert_eq!(node.forwarding(s), ring_of(s), "{}", s.label());
    }
}

#[test]
fn a_state_the_program_cannot_express_is_refused_before_any_write() {
    let mut node = Node::new();
    let web = service("192.0.2.1", 80, &[backend("10.0.0.1", 1)]);
    node.apply(&desired(std::slice::from_ref(&web))).unwrap();
    let before = node.maps.clone();

    let mut mixed = web.clone();
    mixed.backends.push(backend("fd00::1", 1));
    let err = node.apply(&desired(&[mixed])).unwrap_err();
    assert!(err.to_string().contains("IPv6"), "{err}");
    let mut lc = web.clone();
    lc.scheduler = SchedulerKind::LeastConnections;
    let err = node.apply(&desired(&[lc])).unwrap_err();
    assert!(err.to_string().contains("scheduler lc"), "{err}");
    assert_eq!(node.maps, before, "nothing written");
    assert_eq!(node.forwarding(&web), ring_of(&web));
}

#[test]
fn undos_that_fail_are_performed_before_the_next_plan() {
    let web = service(
        "192.0.2.1",
        80,
        &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
    );
    let mail = service("192.0.2.2", 25, &[backend("10.0.0.5", 1)]);
    let mut from = Node::new();
    from.apply(&desired(&[web.clone(), mail.clone()])).unwrap();
    let mut web2 = web.clone();
    web2.backends[1] = backend("10.0.0.3", 1);
    let to = desired(&[web2.clone()]);
    let mut reference = from.clone();
    reference.apply(&to).unwrap();

    // The last operation fails, then the first of the undos and the next
    // attempt at it, as a kernel that keeps refusing would.
    let mut node = from.clone();
    let steps = node.state.plan(&to).unwrap().steps.len();
    let last = node.maps.ops.len() + steps - 1;
    node.maps.fail = [last, last + 1, last + 2].into();
    assert!(node.apply_unchecked(&to).is_err());
    assert!(!node.state.owed.is_empty(), "the failed undo is owed");
    assert!(node.apply_unchecked(&to).is_err(), "still refused");
    assert!(!node.state.owed.is_empty());

    node.maps.fail.clear();
    node.apply(&to).unwrap();
    assert!(node.state.owed.is_empty());
    for s in [&web2, &mail] {
        assert_eq!(node.forwarding(s), reference.forwarding(s), "{}", s.label());
    }
}

mod adopt;
mod departed;
