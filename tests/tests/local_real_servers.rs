//! Real servers on the balancer itself under XDP: a sorry page listening
//! on 127.0.0.1 only (ldirectord's `fallback=127.0.0.1:80`), and a real
//! server on one of the node's addresses. The program translates the
//! client's packets to them and the TC egress program their replies back
//! to the VIP; the client sees answers from VIP:80.

use std::net::SocketAddr;

use lb_lab::{
    lab::Lab,
    long_flows::LongFlows,
    privileges::require_root,
    traffic::{IdentityConnection, tcp_identity_server},
};
use lb_tests::health_lab::{HealthLab, IDENTITY_PORT, checked_real_server, flow_plan, ip, name};

const SORRY: &str = "sorry";

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_sorry_page_on_127_0_0_1_answers_and_keeps_its_connections_when_the_real_servers_return() {
    require_root("the namespace lab");
    sorry_page_on_loopback(Lab::with_backends(2).expect("lab"));
}

/// The balancer's own replies leave with checksum offload on (the
/// kernel's default): the egress program's rewrite must keep the partial
/// checksum right.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_sorry_page_on_127_0_0_1_answers_with_the_kernels_default_offloads() {
    require_root("the namespace lab");
    sorry_page_on_loopback(Lab::with_kernel_default_offloads(2).expect("lab"));
}

fn sorry_page_on_loopback(lab: Lab) {
    let body = format!(
        "virtual_servers:\n  - address: {}\n    port: 80\n    scheduler: rr\n    sorry_server: {{ address: 127.0.0.1 }}\n    real_servers:\n{}{}",
        lb_lab::lab::VIP,
        checked_real_server(0),
        checked_real_server(1)
    );
    let mut lab = HealthLab::start_in(lab, "sorry-lo", &body).unwrap_or_else(|e| panic!("{e:#}"));
    let at: SocketAddr = "127.0.0.1:80".parse().unwrap();
    tcp_identity_server(&lab.lab.balancer, at, SORRY, lab.identity.clone())
        .expect("the sorry page listens on 127.0.0.1:80 only");

    let seen = lab.new_connections(4);
    assert!(
        seen.iter().all(|n| *n == name(0) || *n == name(1)),
        "the real servers answer while up: {seen:?}"
    );

    lab.fail_check(0);
    lab.fail_check(1);
    let seen = lab.new_connections(6);
    assert!(
        seen.iter().all(|n| n == SORRY),
        "with every real server down the sorry page on 127.0.0.1 answers: {seen:?}\n{}",
        lab.lbd.log()
    );
    assert!(lab.counter("local_destination") > 0);

    // Connections to the sorry page, held across the real servers' return.
    let flows = LongFlows::start(&lab.lab.client, flow_plan(10)).expect("flows to the sorry page");
    lab.pass_check(0);
    lab.pass_check(1);
    let seen = lab.new_connections(6);
    assert!(
        seen.iter().all(|n| *n == name(0) || *n == name(1)),
        "new connections go to the returned real servers: {seen:?}"
    );
    let report = flows.finish().expect("flows report");
    eprintln!("{}", report.summary());
    assert_eq!(
        (report.broken, report.moved),
        (0, 0),
        "the sorry page's connections stay with it when the real servers return: {}",
        report.summary()
    );
    assert!(
        report.answers > 10,
        "they kept being answered: {}",
        report.summary()
    );
}

/// rr over a real server on the balancer's own backend-side address and
/// backend1, on `vip`; a client of the node's address directly is left
/// alone by the egress program.
fn own_address_real_server(tag: &str, vip: &str, own: &str, backend: &str) {
    require_root("the namespace lab");
    let body = format!(
        "virtual_servers:\n  - address: \"{vip}\"\n    port: 80\n    scheduler: rr\n    real_servers:\n      - {{ address: \"{own}\", port: {IDENTITY_PORT} }}\n      - {{ address: \"{backend}\", port: {IDENTITY_PORT} }}\n"
    );
    let lab = HealthLab::start(tag, 1, &body).unwrap_or_else(|e| panic!("{e:#}"));
    let at = SocketAddr::new(own.parse().unwrap(), IDENTITY_PORT);
    let backend_at = SocketAddr::new(backend.parse().unwrap(), IDENTITY_PORT);
    tcp_identity_server(&lab.lab.balancer, at, "local", lab.identity.clone()).unwrap();
    if backend_at.is_ipv6() {
        tcp_identity_server(
            &lab.lab.backends[0],
            backend_at,
            &name(0),
            lab.identity.clone(),
        )
        .unwrap();
    }

    let target = SocketAddr::new(vip.parse().unwrap(), 80);
    let seen: Vec<String> = lab
        .lab
        .client
        .run(move || {
            (0..10)
                .map(|_| {
                    IdentityConnection::open(target)
                        .and_then(|mut c| c.ask())
                        .unwrap_or_else(|e| format!("failed: {e:#}"))
                })
                .collect()
        })
        .unwrap();
    let local = seen.iter().filter(|n| *n == "local").count();
    let remote = seen.iter().filter(|n| **n == name(0)).count();
    assert!(
        local > 0 && remote > 0 && local + remote == seen.len(),
        "rr spreads over the local real server and backend1, each answering: {seen:?}\n{}",
        lab.lbd.log()
    );
    // A client of the server's own address, not of the VIP: its replies
    // must keep their source (the egress program leaves them alone).
    let direct = lab
        .lab
        .client
        .run(move || IdentityConnection::open(at).and_then(|mut c| c.ask()))
        .unwrap();
    assert_eq!(
        direct.expect("a direct connection to the node's address works"),
        "local"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_real_server_on_the_balancers_own_address_is_balanced_and_its_direct_clients_untouched() {
    own_address_real_server("local-real", lb_lab::lab::VIP, "10.111.2.1", &ip(0));
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn an_ipv6_real_server_on_the_balancers_own_address_is_balanced_too() {
    own_address_real_server(
        "local-real6",
        lb_lab::lab::VIP6,
        "fd11:2::1",
        &lb_lab::lab::backend_addrs(0).1,
    );
}
