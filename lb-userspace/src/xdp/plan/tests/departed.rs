//! A backend leaving its service, per `removed_server_flows`: what its
//! flows meet (the `BACKENDS` entry they are pinned to) and what happens
//! when it returns.

use lb_common::maps::BACKEND_HOLD;

use super::*;

fn web(policy: RemovedServerFlows) -> ServiceSpec {
    ServiceSpec {
        removed_server_flows: policy,
        ..service(
            "192.0.2.1",
            80,
            &[backend("10.0.0.1", 1), backend("10.0.0.2", 1)],
        )
    }
}

fn without_second(spec: &ServiceSpec) -> ServiceSpec {
    let mut s = spec.clone();
    s.backends.pop();
    s
}

/// Installs `spec`, removes 10.0.0.2, and returns its id and the entry its
/// flows then meet.
fn leave(node: &mut Node, spec: &ServiceSpec) -> (u32, Backend, Backend) {
    node.apply(&desired(std::slice::from_ref(spec))).unwrap();
    let id = node.backend_id(spec, "10.0.0.2");
    let before = node.maps.backends[&id];
    node.apply(&desired(&[without_second(spec)])).unwrap();
    (id, before, node.maps.backends[&id])
}

#[test]
fn drop_holds_the_backend_and_its_return_resumes_its_flows() {
    let mut node = Node::new();
    let spec = web(RemovedServerFlows::Drop);
    let (id, before, held) = leave(&mut node, &spec);
    assert_eq!(held.flags, BACKEND_HOLD, "its flows' packets are dropped");
    assert_eq!(held.generation, before.generation);
    assert!(node.state.backend_ids.in_use(id), "its id is not reused");
    assert_eq!(
        node.forwarding(&spec),
        Forwarding::Ring(vec![Some(ip("10.0.0.1"))], None),
        "no new flows go to it"
    );
    let real = real_key(&service_key(&spec), (ip("10.0.0.2"), PORT));
    assert!(
        node.maps.reals.contains_key(&real),
        "its replies still translate"
    );

    node.apply(&desired(std::slice::from_ref(&spec))).unwrap();
    assert_eq!(node.backend_id(&spec, "10.0.0.2"), id, "back under its id");
    assert_eq!(
        node.maps.backends[&id], before,
        "same generation, live: flows pinned to it carry on"
    );
}

#[test]
fn keep_leaves_the_backend_live_outside_the_ring() {
    let mut node = Node::new();
    let spec = web(RemovedServerFlows::Keep);
    let (id, before, kept) = leave(&mut node, &spec);
    assert_eq!(kept, before, "its flows keep going to it");
    assert_eq!(
        node.forwarding(&spec),
        Forwarding::Ring(vec![Some(ip("10.0.0.1"))], None)
    );
    node.apply(&desired(std::slice::from_ref(&spec))).unwrap();
    assert_eq!(node.backend_id(&spec, "10.0.0.2"), id);
}

#[test]
fn reset_retires_the_backend_so_its_flows_are_scheduled_anew() {
    let mut node = Node::new();
    let spec = web(RemovedServerFlows::Reset);
    let (id, _, retired) = leave(&mut node, &spec);
    assert_eq!(retired.flags, 0);
    assert!(!node.state.backend_ids.in_use(id));
}

#[test]
fn a_reload_changing_the_policy_applies_it_to_backends_already_gone() {
    let mut node = Node::new();
    let spec = web(RemovedServerFlows::Drop);
    let (id, _, _) = leave(&mut node, &spec);
    let keep = ServiceSpec {
        removed_server_flows: RemovedServerFlows::Keep,
        ..without_second(&spec)
    };
    node.apply(&desired(std::slice::from_ref(&keep))).unwrap();
    assert_eq!(node.maps.backends[&id].flags, BACKEND_LIVE);
    let reset = ServiceSpec {
        removed_server_flows: RemovedServerFlows::Reset,
        ..keep
    };
    node.apply(&desired(&[reset])).unwrap();
    assert_eq!(node.maps.backends[&id].flags, 0);
    assert!(!node.state.backend_ids.in_use(id));
}

#[test]
fn held_backends_give_their_ids_back_when_ids_run_out() {
    let mut node = Node::new();
    // MAX_SERVICES services of 32 backends fill the 4096 ids; each then
    // loses one (held), and a new set needs ids.
    let mut full = full_house("192.0.2.1", 1, 32);
    for s in &mut full {
        s.removed_server_flows = RemovedServerFlows::Drop;
    }
    node.apply(&desired(&full)).unwrap();
    let fewer: Vec<ServiceSpec> = full.iter().map(without_second).collect();
    node.apply(&desired(&fewer)).unwrap();
    let mut more = fewer.clone();
    more[0].backends.push(backend("10.9.9.9", 1));
    node.apply(&desired(&more))
        .expect("held ids are evicted for a backend that needs one");
    // The service being installed keeps its own; every other gave theirs.
    let held: usize = node.state.services.values().map(|i| i.departed.len()).sum();
    assert_eq!(
        held, 1,
        "the other services' held backends gave their ids back"
    );
}
