//! Packet fixtures for the balancing path: services installed through the
//! real `XdpDataplane`, frames run through the real program with
//! `BPF_PROG_TEST_RUN` inside a namespace whose routes and neighbours are
//! fixed, and every byte of the output compared with a frame built from
//! scratch (so incremental checksum updates are checked against full ones).

use std::net::IpAddr;

use etherparse::{PacketBuilder, TcpHeader};
use lb_common::counters::Counter;
use lb_tests::{
    fixture::{XDP_DROP, XDP_PASS, XDP_REDIRECT, assert_verdict},
    nat_lab::{BACKEND1_MAC, BACKEND2_MAC, CLIENT_MAC, LB_BACKEND_MAC, LB_CLIENT_MAC, NatFixture},
};
use lb_userspace::config::RemovedServerFlows;
use lb_userspace::dataplane::{
    BackendSpec, Dataplane, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts,
};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const VIP: [u8; 4] = [10, 0, 0, 100];
const BACKEND1: [u8; 4] = [10, 1, 0, 1];
const BACKEND2: [u8; 4] = [10, 1, 0, 2];
const UNRESOLVED_BACKEND: [u8; 4] = [10, 1, 0, 9];
const CLIENT6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const VIP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
const BACKEND6: [u8; 16] = [0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const PAYLOAD: &[u8] = b"GET / HTTP/1.0\r\n\r\n";

fn backend(addr: impl Into<IpAddr>, port: u16, weight: u32) -> BackendSpec {
    BackendSpec {
        addr: addr.into(),
        port,
        weight,
    }
}

fn service(
    vip: impl Into<IpAddr>,
    port: u16,
    protocol: L4Protocol,
    backends: Vec<BackendSpec>,
) -> ServiceSpec {
    ServiceSpec {
        vip: vip.into(),
        port,
        protocol,
        scheduler: SchedulerKind::RoundRobin,
        backends,
        sorry: None,
        removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
    }
}

fn fixture(services: Vec<ServiceSpec>) -> NatFixture {
    NatFixture::new(services)
}

/// Replaces the fixture's services with `spec`, as a reload would.
fn reapply(fx: &mut NatFixture, spec: ServiceSpec) {
    fx.dp
        .apply(&DesiredState {
            services: vec![spec],
            timeouts: Timeouts::default(),
        })
        .expect("the new state installs");
}

/// A TCP/IPv4 frame. `flags` picks SYN, ACK, RST, FIN or SYN+FIN.
#[derive(Clone, Copy)]
enum Flags {
    Syn,
    Ack,
    Rst,
    SynFin,
}

#[allow(clippy::too_many_arguments, reason = "a frame has this many fields")]
fn tcp4(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    ttl: u8,
    flags: Flags,
) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src, dst, ttl)
        .tcp(ports.0, ports.1, 1000, 64240);
    let builder = match flags {
        Flags::Syn => builder.syn(),
        Flags::Ack => builder.ack(2000),
        Flags::Rst => builder.rst(),
        Flags::SynFin => builder.syn().fin(),
    };
    let mut frame = Vec::new();
    builder.write(&mut frame, PAYLOAD).unwrap();
    frame
}

/// The backend address a client segment from `port` to VIP:80 is sent to.
fn lands_on(fx: &NatFixture, port: u16, flags: Flags) -> [u8; 4] {
    let frame = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (port, 80),
        64,
        flags,
    );
    let out = fx.client_sends(&frame).output;
    [out[30], out[31], out[32], out[33]]
}

fn udp4(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    ttl: u8,
) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src, dst, ttl)
        .udp(ports.0, ports.1)
        .write(&mut frame, PAYLOAD)
        .unwrap();
    frame
}

fn tcp6(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 16],
    dst: [u8; 16],
    ports: (u16, u16),
    hops: u8,
) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv6(src, dst, hops)
        .tcp(ports.0, ports.1, 1000, 64240)
        .syn()
        .write(&mut frame, PAYLOAD)
        .unwrap();
    frame
}

fn udp6(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 16],
    dst: [u8; 16],
    ports: (u16, u16),
    hops: u8,
) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv6(src, dst, hops)
        .udp(ports.0, ports.1)
        .write(&mut frame, PAYLOAD)
        .unwrap();
    frame
}

fn web() -> Vec<ServiceSpec> {
    vec![service(
        VIP,
        80,
        L4Protocol::Tcp,
        vec![backend(BACKEND1, 8080, 1)],
    )]
}

// ---- client -> VIP ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn new_tcp_flow_is_translated_to_the_backend_and_redirected() {
    let fx = fixture(web());
    let input = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Syn,
    );
    let expected = tcp4(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        CLIENT,
        BACKEND1,
        (40000, 8080),
        63,
        Flags::Syn,
    );
    assert_verdict(
        "tcp4_syn_to_vip",
        &fx.client_sends(&input),
        XDP_REDIRECT,
        &expected,
    );
    assert_eq!(fx.counter(Counter::NewFlow), 1, "one flow tracked");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn established_flow_stays_on_its_backend() {
    let services = vec![service(
        VIP,
        80,
        L4Protocol::Tcp,
        vec![backend(BACKEND1, 8080, 1), backend(BACKEND2, 8080, 1)],
    )];
    let fx = fixture(services);
    let syn = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Syn,
    );
    let first = fx.client_sends(&syn);
    let (backend_ip, backend_mac) = if first.output[30..34] == BACKEND1 {
        (BACKEND1, BACKEND1_MAC)
    } else {
        (BACKEND2, BACKEND2_MAC)
    };
    let ack = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Ack,
    );
    let expected = tcp4(
        (LB_BACKEND_MAC, backend_mac),
        CLIENT,
        backend_ip,
        (40000, 8080),
        63,
        Flags::Ack,
    );
    for i in 0..5 {
        assert_verdict(
            &format!("tcp4_ack_{i}"),
            &fx.client_sends(&ack),
            XDP_REDIRECT,
            &expected,
        );
    }
    assert_eq!(
        fx.counter(Counter::NewFlow),
        1,
        "later packets reuse the flow"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn backend_reply_is_translated_back_to_the_vip() {
    let fx = fixture(web());
    let syn = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Syn,
    );
    fx.client_sends(&syn);
    let reply = tcp4(
        (BACKEND1_MAC, LB_BACKEND_MAC),
        BACKEND1,
        CLIENT,
        (8080, 40000),
        64,
        Flags::Ack,
    );
    let expected = tcp4(
        (LB_CLIENT_MAC, CLIENT_MAC),
        VIP,
        CLIENT,
        (80, 40000),
        63,
        Flags::Ack,
    );
    assert_verdict(
        "tcp4_reply",
        &fx.backend_sends(&reply),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn reply_without_flow_state_is_translated_back_statelessly() {
    // As after a failover: this balancer never saw the flow start.
    let fx = fixture(web());
    let reply = tcp4(
        (BACKEND1_MAC, LB_BACKEND_MAC),
        BACKEND1,
        CLIENT,
        (8080, 40001),
        64,
        Flags::Ack,
    );
    let expected = tcp4(
        (LB_CLIENT_MAC, CLIENT_MAC),
        VIP,
        CLIENT,
        (80, 40001),
        63,
        Flags::Ack,
    );
    assert_verdict(
        "tcp4_stateless_reply",
        &fx.backend_sends(&reply),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn backend_traffic_to_the_balancer_itself_is_not_translated() {
    // A health check's answer: from backend:8080 to the balancer's own address.
    let fx = fixture(web());
    let answer = tcp4(
        (BACKEND1_MAC, LB_BACKEND_MAC),
        BACKEND1,
        [10, 1, 0, 254],
        (8080, 50000),
        64,
        Flags::Ack,
    );
    assert_verdict(
        "health_check_answer",
        &fx.backend_sends(&answer),
        XDP_PASS,
        &answer,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn udp_datagram_and_its_reply_are_translated() {
    let services = vec![service(
        VIP,
        53,
        L4Protocol::Udp,
        vec![backend(BACKEND1, 5353, 1)],
    )];
    let fx = fixture(services);
    let query = udp4((CLIENT_MAC, LB_CLIENT_MAC), CLIENT, VIP, (40000, 53), 64);
    let expected = udp4(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        CLIENT,
        BACKEND1,
        (40000, 5353),
        63,
    );
    assert_verdict(
        "udp4_query",
        &fx.client_sends(&query),
        XDP_REDIRECT,
        &expected,
    );
    let answer = udp4(
        (BACKEND1_MAC, LB_BACKEND_MAC),
        BACKEND1,
        CLIENT,
        (5353, 40000),
        64,
    );
    let expected = udp4((LB_CLIENT_MAC, CLIENT_MAC), VIP, CLIENT, (53, 40000), 63);
    assert_verdict(
        "udp4_answer",
        &fx.backend_sends(&answer),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn udp_without_checksum_keeps_a_zero_checksum() {
    let services = vec![service(
        VIP,
        53,
        L4Protocol::Udp,
        vec![backend(BACKEND1, 5353, 1)],
    )];
    let fx = fixture(services);
    let zero_check = |mut f: Vec<u8>| {
        f[14 + 20 + 6..14 + 20 + 8].fill(0);
        f
    };
    let query = zero_check(udp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 53),
        64,
    ));
    let expected = zero_check(udp4(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        CLIENT,
        BACKEND1,
        (40000, 5353),
        63,
    ));
    assert_verdict(
        "udp4_no_checksum",
        &fx.client_sends(&query),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_tcp_flow_is_translated_both_ways() {
    let services = vec![service(
        VIP6,
        443,
        L4Protocol::Tcp,
        vec![backend(BACKEND6, 8443, 1)],
    )];
    let fx = fixture(services);
    let syn = tcp6((CLIENT_MAC, LB_CLIENT_MAC), CLIENT6, VIP6, (40000, 443), 64);
    let expected = tcp6(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        CLIENT6,
        BACKEND6,
        (40000, 8443),
        63,
    );
    assert_verdict("tcp6_syn", &fx.client_sends(&syn), XDP_REDIRECT, &expected);
    let reply = tcp6(
        (BACKEND1_MAC, LB_BACKEND_MAC),
        BACKEND6,
        CLIENT6,
        (8443, 40000),
        64,
    );
    let expected = tcp6((LB_CLIENT_MAC, CLIENT_MAC), VIP6, CLIENT6, (443, 40000), 63);
    assert_verdict(
        "tcp6_reply",
        &fx.backend_sends(&reply),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_udp_datagram_is_translated() {
    let services = vec![service(
        VIP6,
        53,
        L4Protocol::Udp,
        vec![backend(BACKEND6, 5353, 1)],
    )];
    let fx = fixture(services);
    let query = udp6((CLIENT_MAC, LB_CLIENT_MAC), CLIENT6, VIP6, (40000, 53), 64);
    let expected = udp6(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        CLIENT6,
        BACKEND6,
        (40000, 5353),
        63,
    );
    assert_verdict(
        "udp6_query",
        &fx.client_sends(&query),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_options_are_carried_and_checksums_stay_right() {
    let fx = fixture(web());
    let with_options =
        |src: [u8; 4], dst: [u8; 4], dport: u16, macs: ([u8; 6], [u8; 6]), ttl: u8| {
            let mut ip =
                etherparse::Ipv4Header::new(0, ttl, etherparse::IpNumber::TCP, src, dst).unwrap();
            ip.options = [1u8, 1, 1, 0][..].try_into().unwrap();
            let mut tcp = TcpHeader::new(40000, dport, 1000, 64240);
            tcp.syn = true;
            ip.set_payload_len(tcp.header_len() + PAYLOAD.len())
                .unwrap();
            tcp.checksum = tcp.calc_checksum_ipv4(&ip, PAYLOAD).unwrap();
            let mut f = Vec::new();
            etherparse::Ethernet2Header {
                source: macs.0,
                destination: macs.1,
                ether_type: etherparse::EtherType::IPV4,
            }
            .write(&mut f)
            .unwrap();
            ip.write(&mut f).unwrap();
            tcp.write(&mut f).unwrap();
            f.extend_from_slice(PAYLOAD);
            f
        };
    let input = with_options(CLIENT, VIP, 80, (CLIENT_MAC, LB_CLIENT_MAC), 64);
    let expected = with_options(CLIENT, BACKEND1, 8080, (LB_BACKEND_MAC, BACKEND1_MAC), 63);
    assert_verdict(
        "tcp4_options",
        &fx.client_sends(&input),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn unresolved_backend_neighbour_is_left_to_the_kernel_translated() {
    // The kernel resolves ARP and forwards; the program must not drop it.
    let services = vec![service(
        VIP,
        80,
        L4Protocol::Tcp,
        vec![backend(UNRESOLVED_BACKEND, 8080, 1)],
    )];
    let fx = fixture(services);
    let input = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Syn,
    );
    // Translated, but MACs and TTL as received: the kernel forwards it.
    let expected = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        UNRESOLVED_BACKEND,
        (40000, 8080),
        64,
        Flags::Syn,
    );
    assert_verdict(
        "tcp4_no_neighbour",
        &fx.client_sends(&input),
        XDP_PASS,
        &expected,
    );
    assert_eq!(fx.counter(Counter::KernelForward), 1);
}

// ---- what is not ours, or not acceptable ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn vip_on_an_unconfigured_port_is_passed_untouched() {
    let fx = fixture(web());
    let input = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 443),
        64,
        Flags::Syn,
    );
    assert_verdict("vip_other_port", &fx.client_sends(&input), XDP_PASS, &input);
    assert_eq!(fx.counter(Counter::NewFlow), 0);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn udp_to_a_tcp_service_port_is_passed_untouched() {
    let fx = fixture(web());
    let input = udp4((CLIENT_MAC, LB_CLIENT_MAC), CLIENT, VIP, (40000, 80), 64);
    assert_verdict(
        "udp_to_tcp_service",
        &fx.client_sends(&input),
        XDP_PASS,
        &input,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn syn_fin_to_a_service_is_dropped_and_counted() {
    let fx = fixture(web());
    let input = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::SynFin,
    );
    assert_verdict("syn_fin", &fx.client_sends(&input), XDP_DROP, &input);
    assert_eq!(fx.counter(Counter::BadTcpFlags), 1);
    assert_eq!(fx.counter(Counter::NewFlow), 0, "no state for it");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn rst_for_an_unknown_flow_is_forwarded_without_creating_state() {
    let fx = fixture(web());
    let input = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Rst,
    );
    let expected = tcp4(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        CLIENT,
        BACKEND1,
        (40000, 8080),
        63,
        Flags::Rst,
    );
    assert_verdict(
        "rst_unknown_flow",
        &fx.client_sends(&input),
        XDP_REDIRECT,
        &expected,
    );
    assert_eq!(fx.counter(Counter::NewFlow), 0, "an RST starts nothing");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn fragment_to_a_vip_is_left_to_the_kernel() {
    let fx = fixture(web());
    let mut input = udp4((CLIENT_MAC, LB_CLIENT_MAC), CLIENT, VIP, (40000, 80), 64);
    // Set MF on an otherwise normal datagram and fix the header checksum.
    input[14 + 6] |= 0x20;
    input[14 + 10..14 + 12].fill(0);
    let check = lb_common::csum::checksum(&input[14..34]);
    input[14 + 10..14 + 12].copy_from_slice(&check.to_be_bytes());
    assert_verdict(
        "fragment_to_vip",
        &fx.client_sends(&input),
        XDP_PASS,
        &input,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn service_without_backends_passes_and_counts() {
    let fx = fixture(vec![service(
        VIP,
        80,
        L4Protocol::Tcp,
        vec![backend(BACKEND1, 8080, 0)],
    )]);
    let input = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Syn,
    );
    assert_verdict("no_backend", &fx.client_sends(&input), XDP_PASS, &input);
    assert_eq!(fx.counter(Counter::NoBackend), 1);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn sorry_server_takes_new_flows_only_while_no_backend_has_weight() {
    let mut spec = service(VIP, 80, L4Protocol::Tcp, vec![backend(BACKEND1, 8080, 0)]);
    spec.sorry = Some(backend(BACKEND2, 80, 1));
    let mut fx = fixture(vec![spec.clone()]);
    let syn = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Syn,
    );
    let to_sorry = tcp4(
        (LB_BACKEND_MAC, BACKEND2_MAC),
        CLIENT,
        BACKEND2,
        (40000, 80),
        63,
        Flags::Syn,
    );
    assert_verdict("to_sorry", &fx.client_sends(&syn), XDP_REDIRECT, &to_sorry);

    spec.backends[0].weight = 1;
    reapply(&mut fx, spec);
    let new_syn = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40001, 80),
        64,
        Flags::Syn,
    );
    let to_real = tcp4(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        CLIENT,
        BACKEND1,
        (40001, 8080),
        63,
        Flags::Syn,
    );
    assert_verdict(
        "to_real_again",
        &fx.client_sends(&new_syn),
        XDP_REDIRECT,
        &to_real,
    );
    let ack = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Ack,
    );
    let still_sorry = tcp4(
        (LB_BACKEND_MAC, BACKEND2_MAC),
        CLIENT,
        BACKEND2,
        (40000, 80),
        63,
        Flags::Ack,
    );
    assert_verdict(
        "sorry_flow_continues",
        &fx.client_sends(&ack),
        XDP_REDIRECT,
        &still_sorry,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn weight_zero_keeps_existing_flows_but_takes_no_new_ones() {
    let mut spec = service(
        VIP,
        80,
        L4Protocol::Tcp,
        vec![backend(BACKEND1, 8080, 1), backend(BACKEND2, 8080, 1)],
    );
    let mut fx = fixture(vec![spec.clone()]);
    // Find which flows land on backend 1 before it is drained.
    let mut on_backend1 = Vec::new();
    for port in 40000..40010 {
        if lands_on(&fx, port, Flags::Syn) == BACKEND1 {
            on_backend1.push(port);
        }
    }
    assert!(!on_backend1.is_empty(), "rr put some flows on backend 1");
    spec.backends[0].weight = 0;
    reapply(&mut fx, spec);
    for port in &on_backend1 {
        assert_eq!(
            lands_on(&fx, *port, Flags::Ack),
            BACKEND1,
            "flow {port} stays on backend 1"
        );
    }
    for port in 41000..41010 {
        assert_eq!(
            lands_on(&fx, port, Flags::Syn),
            BACKEND2,
            "new flow {port} avoids backend 1"
        );
    }
}

/// Two backends under `policy`, and a client port whose flow the
/// fixture pinned to BACKEND1.
fn pinned_to_backend1(policy: RemovedServerFlows) -> (NatFixture, ServiceSpec, u16) {
    let mut spec = service(
        VIP,
        80,
        L4Protocol::Tcp,
        vec![backend(BACKEND1, 8080, 1), backend(BACKEND2, 8080, 1)],
    );
    spec.removed_server_flows = policy;
    let fx = fixture(vec![spec.clone()]);
    let port = (40000..41000)
        .find(|port| lands_on(&fx, *port, Flags::Syn) == BACKEND1)
        .expect("some port lands on BACKEND1");
    (fx, spec, port)
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn with_reset_removed_backend_flows_are_rescheduled() {
    let (mut fx, mut spec, port) = pinned_to_backend1(RemovedServerFlows::Reset);
    spec.backends.remove(0);
    reapply(&mut fx, spec);
    assert_eq!(
        lands_on(&fx, port, Flags::Ack),
        BACKEND2,
        "a flow whose backend was removed goes to a remaining one (which resets it)"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn with_drop_removed_backend_flows_are_dropped_until_it_returns() {
    let (mut fx, spec, port) = pinned_to_backend1(RemovedServerFlows::Drop);
    let mut without = spec.clone();
    without.backends.remove(0);
    reapply(&mut fx, without);
    let ack = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (port, 80),
        64,
        Flags::Ack,
    );
    assert_verdict("held", &fx.client_sends(&ack), XDP_DROP, &ack);
    assert_eq!(fx.counter(Counter::HeldFlow), 1);
    assert_eq!(
        lands_on(&fx, port + 1, Flags::Syn),
        BACKEND2,
        "new flows go to the remaining backend"
    );
    reapply(&mut fx, spec);
    assert_eq!(
        lands_on(&fx, port, Flags::Ack),
        BACKEND1,
        "back, the backend gets its flow again"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn mid_flow_packet_without_state_goes_where_maglev_points() {
    // Two balancers with the same config agree without sharing state: the
    // fixture's own choice for a SYN equals its choice for a stateless ACK.
    let backends = vec![backend(BACKEND1, 8080, 1), backend(BACKEND2, 8080, 1)];
    let mut spec = service(VIP, 80, L4Protocol::Tcp, backends);
    spec.scheduler = SchedulerKind::Maglev;
    let a = fixture(vec![spec.clone()]);
    let b = fixture(vec![spec]);
    for port in 40000..40020 {
        let syn = tcp4(
            (CLIENT_MAC, LB_CLIENT_MAC),
            CLIENT,
            VIP,
            (port, 80),
            64,
            Flags::Syn,
        );
        let ack = tcp4(
            (CLIENT_MAC, LB_CLIENT_MAC),
            CLIENT,
            VIP,
            (port, 80),
            64,
            Flags::Ack,
        );
        let chosen = a.client_sends(&syn).output[30..34].to_vec();
        assert_eq!(
            b.client_sends(&ack).output[30..34],
            chosen[..],
            "flow {port}: the other balancer agrees"
        );
    }
}

/// A service whose VIP goes to the peer (this node becomes BACKUP) forwards
/// nothing, not even flows it tracks; when the VIP comes back its flows
/// continue on their backends.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_service_given_up_forwards_nothing_and_its_flows_resume_when_it_returns() {
    let spec = service(
        VIP,
        80,
        L4Protocol::Tcp,
        vec![backend(BACKEND1, 8080, 1), backend(BACKEND2, 8080, 1)],
    );
    let mut fx = fixture(vec![spec.clone()]);
    let before: Vec<[u8; 4]> = (40000..40010)
        .map(|port| lands_on(&fx, port, Flags::Syn))
        .collect();

    fx.dp
        .apply(&DesiredState {
            services: Vec::new(),
            timeouts: Timeouts::default(),
        })
        .expect("giving the service up");
    let frame = tcp4(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        VIP,
        (40000, 80),
        64,
        Flags::Ack,
    );
    // A tracked flow of a service given up goes to the kernel, untranslated.
    assert_verdict("given_up", &fx.client_sends(&frame), XDP_PASS, &frame);

    reapply(&mut fx, spec);
    for (port, backend) in (40000..40010).zip(before) {
        assert_eq!(
            lands_on(&fx, port, Flags::Ack),
            backend,
            "flow {port} resumes on its backend"
        );
    }
}
