//! Adopting the maps an earlier lbd pinned: a restarted lbd must plan from
//! them as the one that wrote them would have, so tracked flows (backend
//! id, generation, service id) keep reaching the same real server.

use lb_common::maps::{BACKEND_HOLD, BACKEND_LIVE, Flow, FlowKey};

use super::*;
use crate::xdp::plan::adopt::Snapshot;

/// What `pins::snapshot::read` would read from `maps`.
fn snapshot(maps: &FakeMaps) -> Snapshot {
    let mut flow_owners = std::collections::BTreeMap::new();
    for flow in maps.conntrack.values() {
        let current = maps
            .backends
            .get(&flow.backend)
            .is_some_and(|b| b.generation == flow.generation && b.flags & BACKEND_LIVE != 0);
        if current {
            flow_owners.entry(flow.backend).or_insert(flow.service);
        }
    }
    Snapshot {
        settings: maps.settings,
        services: maps.services.clone(),
        backends: maps.backends.clone(),
        rings: maps
            .services
            .values()
            .map(|s| (s.id, maps.live_ring(s).to_vec()))
            .collect(),
        reals: maps.reals.clone(),
        flow_owners,
    }
}

/// A restarted lbd over the same maps.
fn restarted(node: &Node) -> Node {
    let mut maps = node.maps.clone();
    maps.ops.clear();
    Node {
        state: InstalledState::adopt(&snapshot(&node.maps)),
        maps,
    }
}

/// A tracked flow to `addr` of `spec`, as the program pins it.
fn pinned_flow(node: &mut Node, spec: &ServiceSpec, addr: &str, sport: u16) -> (FlowKey, Flow) {
    let id = node.backend_id(spec, addr);
    let service = node.entry(spec).unwrap().id;
    let (key, mut f) = flow([198, 51, 100, 7], sport, spec, id, service);
    f.generation = node.maps.backends[&id].generation;
    node.maps.conntrack.insert(key, f);
    (key, f)
}

/// Whether the program would still send `f` to the backend it was pinned
/// to, at `addr`.
fn still_reaches(node: &Node, f: &Flow, addr: &str) -> bool {
    let b = node.maps.backends[&f.backend];
    b.generation == f.generation && node.live_backend(f.backend) == Some(ip(addr))
}

fn two_services() -> (ServiceSpec, ServiceSpec) {
    let web = service(
        "192.0.2.1",
        80,
        &[
            backend("10.0.0.1", 1),
            backend("10.0.0.2", 2),
            backend("10.0.0.3", 1),
        ],
    );
    let mail = service("192.0.2.2", 25, &[backend("10.0.0.9", 1)]);
    (web, mail)
}

#[test]
fn a_restart_with_the_same_configuration_writes_nothing() {
    let (web, mail) = two_services();
    let d = desired(&[web.clone(), mail.clone()]);
    let mut node = Node::new();
    node.apply(&d).unwrap();
    let mut again = restarted(&node);
    let ops = again.ops(&d);
    assert!(ops.is_empty(), "the restart rewrote the maps: {ops:?}");
    assert_eq!(again.maps.backends, node.maps.backends);
    assert_eq!(
        again.forwarding(&web),
        node.forwarding(&web),
        "new flows are spread as before"
    );
}

#[test]
fn a_restart_with_a_config_change_keeps_the_flows_of_the_reals_that_stay() {
    let (web, mail) = two_services();
    let mut node = Node::new();
    node.apply(&desired(&[web.clone(), mail.clone()])).unwrap();
    let (_, to_1) = pinned_flow(&mut node, &web, "10.0.0.1", 1001);
    let (_, to_2) = pinned_flow(&mut node, &web, "10.0.0.2", 1002);
    let (_, to_3) = pinned_flow(&mut node, &web, "10.0.0.3", 1003);
    let (_, to_9) = pinned_flow(&mut node, &mail, "10.0.0.9", 1009);

    // A real added, weights changed, 10.0.0.3 removed.
    let changed = service(
        "192.0.2.1",
        80,
        &[
            backend("10.0.0.1", 3),
            backend("10.0.0.2", 1),
            backend("10.0.0.4", 1),
        ],
    );
    let mut again = restarted(&node);
    again
        .apply(&desired(&[changed.clone(), mail.clone()]))
        .unwrap();
    assert!(still_reaches(&again, &to_1, "10.0.0.1"));
    assert!(still_reaches(&again, &to_2, "10.0.0.2"));
    assert!(still_reaches(&again, &to_9, "10.0.0.9"));
    assert!(
        !still_reaches(&again, &to_3, "10.0.0.3"),
        "a removed real's flows are not forwarded to it"
    );
    assert_eq!(again.entry(&changed).unwrap().id, to_1.service);
    let new_id = again.backend_id(&changed, "10.0.0.4");
    assert!(
        ![to_1.backend, to_2.backend, to_9.backend].contains(&new_id),
        "the added real took an id still in use"
    );
    if new_id == to_3.backend {
        assert!(
            !still_reaches(&again, &to_3, "10.0.0.4"),
            "the removed real's flows moved to the real that reused its id"
        );
    }
}

#[test]
fn a_real_at_weight_0_stays_with_its_service_by_reals_or_by_its_flows() {
    // 10.0.0.5 serves both services (ambiguous in REALS) at weight 0 in
    // web: only its flows say it is web's.
    let web = service(
        "192.0.2.1",
        80,
        &[
            backend("10.0.0.1", 1),
            backend("10.0.0.4", 0),
            backend("10.0.0.5", 0),
        ],
    );
    let other = service("192.0.2.2", 80, &[backend("10.0.0.5", 1)]);
    let d = desired(&[web.clone(), other.clone()]);
    let mut node = Node::new();
    node.apply(&d).unwrap();
    let (_, to_4) = pinned_flow(&mut node, &web, "10.0.0.4", 2004);
    let (_, to_5) = pinned_flow(&mut node, &web, "10.0.0.5", 2005);

    let mut again = restarted(&node);
    assert_eq!(again.backend_id(&web, "10.0.0.4"), to_4.backend, "by REALS");
    assert_eq!(again.backend_id(&web, "10.0.0.5"), to_5.backend, "by flows");
    let ops = again.ops(&d);
    assert!(ops.is_empty(), "{ops:?}");
    assert!(still_reaches(&again, &to_4, "10.0.0.4"));
    assert!(still_reaches(&again, &to_5, "10.0.0.5"));
}

#[test]
fn an_adopted_service_the_configuration_drops_is_parked() {
    let (web, mail) = two_services();
    let mut node = Node::new();
    node.apply(&desired(&[web.clone(), mail.clone()])).unwrap();
    let mut again = restarted(&node);
    again.apply(&desired(std::slice::from_ref(&web))).unwrap();
    assert_eq!(again.forwarding(&mail), Forwarding::NotServed);
    again.apply(&desired(&[web, mail.clone()])).unwrap();
    assert_eq!(again.forwarding(&mail), node.forwarding(&mail));
}

#[test]
fn the_adopted_state_reads_back_as_the_configured_services() {
    let (web, mail) = two_services();
    let mut node = Node::new();
    node.apply(&desired(&[web.clone(), mail.clone()])).unwrap();
    let adopted = InstalledState::adopt(&snapshot(&node.maps)).as_desired();
    let mut ids: Vec<_> = adopted
        .services
        .iter()
        .flat_map(ServiceSpec::reals)
        .collect();
    let mut want: Vec<_> = [web, mail].iter().flat_map(ServiceSpec::reals).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn a_held_backend_keeps_its_id_across_a_restart_and_its_flows_resume_when_it_returns() {
    let (mut web, _) = two_services();
    web.removed_server_flows = RemovedServerFlows::Drop;
    let mut node = Node::new();
    node.apply(&desired(std::slice::from_ref(&web))).unwrap();
    let (_, f) = pinned_flow(&mut node, &web, "10.0.0.2", 40000);
    let mut without = web.clone();
    without.backends.remove(1);
    node.apply(&desired(std::slice::from_ref(&without)))
        .unwrap();
    assert_eq!(node.maps.backends[&f.backend].flags, BACKEND_HOLD);

    let mut after = restarted(&node);
    after
        .apply(&desired(std::slice::from_ref(&without)))
        .unwrap();
    assert_eq!(
        after.maps.backends[&f.backend].flags, BACKEND_HOLD,
        "still held after the restart"
    );
    after.apply(&desired(std::slice::from_ref(&web))).unwrap();
    assert!(
        still_reaches(&after, &f, "10.0.0.2"),
        "back, it gets its held flow"
    );
}
