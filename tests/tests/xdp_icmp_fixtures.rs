//! ICMP errors about balanced flows are translated like the flows, so path
//! MTU discovery and unreachables work through the balancer. Expected frames
//! are built from scratch, so every incremental checksum update (outer IP,
//! quoted IP, quoted L4, ICMP) is checked against a full computation.

use std::net::IpAddr;

use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4::DestUnreachableHeader};
use lb_common::counters::Counter;
use lb_tests::{
    fixture::{XDP_PASS, XDP_REDIRECT, assert_verdict},
    nat_lab::{BACKEND1_MAC, CLIENT_MAC, LB_BACKEND_MAC, LB_CLIENT_MAC, NatFixture},
};
use lb_userspace::dataplane::{BackendSpec, L4Protocol, SchedulerKind, ServiceSpec};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const VIP: [u8; 4] = [10, 0, 0, 100];
const BACKEND1: [u8; 4] = [10, 1, 0, 1];
/// A router on the client side of the balancer.
const ROUTER: [u8; 4] = [10, 0, 0, 77];
const CLIENT6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const VIP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
const BACKEND6: [u8; 16] = [0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const ROUTER6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77];

fn service(
    vip: impl Into<IpAddr>,
    protocol: L4Protocol,
    backend: impl Into<IpAddr>,
    port: u16,
) -> ServiceSpec {
    ServiceSpec {
        vip: vip.into(),
        port: if protocol == L4Protocol::Tcp { 80 } else { 53 },
        protocol,
        scheduler: SchedulerKind::RoundRobin,
        backends: vec![BackendSpec {
            addr: backend.into(),
            port,
            weight: 1,
        }],
        sorry: None,
        removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
    }
}

/// IP header + TCP header + payload of a TCP/IPv4 segment (no Ethernet).
fn tcp4_ip(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .tcp(sport, dport, 7, 64240)
        .ack(8)
        .write(&mut f, &[0x55; 40])
        .unwrap();
    f
}

fn udp4_ip(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut f, b"query")
        .unwrap();
    f
}

fn tcp6_ip(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .tcp(sport, dport, 7, 64240)
        .ack(8)
        .write(&mut f, &[0x55; 40])
        .unwrap();
    f
}

fn frag_needed(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src, dst, ttl)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut f, quoted)
        .unwrap();
    f
}

fn port_unreachable(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src, dst, ttl)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut f, quoted)
        .unwrap();
    f
}

fn too_big6(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 16],
    dst: [u8; 16],
    hops: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv6(src, dst, hops)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut f, quoted)
        .unwrap();
    f
}

/// A client SYN so the fixture has a flow client:40000 -> VIP:80.
fn open_flow(fx: &NatFixture) {
    let mut syn = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1, 64240)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    assert_eq!(
        fx.client_sends(&syn).action,
        XDP_REDIRECT,
        "the flow is set up"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn fragmentation_needed_about_our_reply_reaches_the_backend() {
    let fx = NatFixture::new(vec![service(VIP, L4Protocol::Tcp, BACKEND1, 8080)]);
    open_flow(&fx);
    // A router between balancer and client cannot forward our big reply.
    let input = frag_needed(
        (CLIENT_MAC, LB_CLIENT_MAC),
        ROUTER,
        VIP,
        64,
        &tcp4_ip(VIP, CLIENT, 80, 40000),
    );
    let expected = frag_needed(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        ROUTER,
        BACKEND1,
        63,
        &tcp4_ip(BACKEND1, CLIENT, 8080, 40000),
    );
    assert_verdict(
        "frag_needed_to_backend",
        &fx.client_sends(&input),
        XDP_REDIRECT,
        &expected,
    );
    assert_eq!(fx.counter(Counter::IcmpTranslated), 1);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn error_quoting_only_eight_bytes_of_tcp_is_translated_too() {
    // RFC 792 guarantees only 8 bytes of the quoted L4 header: the TCP
    // checksum is then not there to update.
    let fx = NatFixture::new(vec![service(VIP, L4Protocol::Tcp, BACKEND1, 8080)]);
    open_flow(&fx);
    let short = |p: Vec<u8>| p[..20 + 8].to_vec();
    let input = frag_needed(
        (CLIENT_MAC, LB_CLIENT_MAC),
        ROUTER,
        VIP,
        64,
        &short(tcp4_ip(VIP, CLIENT, 80, 40000)),
    );
    let expected = frag_needed(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        ROUTER,
        BACKEND1,
        63,
        &short(tcp4_ip(BACKEND1, CLIENT, 8080, 40000)),
    );
    assert_verdict(
        "frag_needed_8_bytes",
        &fx.client_sends(&input),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn port_unreachable_from_a_backend_reaches_the_client_as_from_the_vip() {
    let fx = NatFixture::new(vec![service(VIP, L4Protocol::Udp, BACKEND1, 5353)]);
    // The backend has no listener: it bounces client:40000 -> backend:5353.
    let input = port_unreachable(
        (BACKEND1_MAC, LB_BACKEND_MAC),
        BACKEND1,
        CLIENT,
        64,
        &udp4_ip(CLIENT, BACKEND1, 40000, 5353),
    );
    let expected = port_unreachable(
        (LB_CLIENT_MAC, CLIENT_MAC),
        VIP,
        CLIENT,
        63,
        &udp4_ip(CLIENT, VIP, 40000, 53),
    );
    assert_verdict(
        "port_unreachable_to_client",
        &fx.backend_sends(&input),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_packet_too_big_about_our_reply_reaches_the_backend() {
    let fx = NatFixture::new(vec![service(VIP6, L4Protocol::Tcp, BACKEND6, 8080)]);
    let mut syn = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv6(CLIENT6, VIP6, 64)
        .tcp(40000, 80, 1, 64240)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    assert_eq!(fx.client_sends(&syn).action, XDP_REDIRECT);
    let input = too_big6(
        (CLIENT_MAC, LB_CLIENT_MAC),
        ROUTER6,
        VIP6,
        64,
        &tcp6_ip(VIP6, CLIENT6, 80, 40000),
    );
    let expected = too_big6(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        ROUTER6,
        BACKEND6,
        63,
        &tcp6_ip(BACKEND6, CLIENT6, 8080, 40000),
    );
    assert_verdict(
        "too_big6_to_backend",
        &fx.client_sends(&input),
        XDP_REDIRECT,
        &expected,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn echo_request_to_a_vip_is_left_to_the_kernel() {
    let fx = NatFixture::new(vec![service(VIP, L4Protocol::Tcp, BACKEND1, 8080)]);
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping, b"ping")
        .unwrap();
    assert_verdict("echo_to_vip", &fx.client_sends(&ping), XDP_PASS, &ping);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn error_quoting_a_foreign_packet_is_left_to_the_kernel() {
    let fx = NatFixture::new(vec![service(VIP, L4Protocol::Tcp, BACKEND1, 8080)]);
    open_flow(&fx);
    // About some other host's flow, not one of ours.
    let input = frag_needed(
        (CLIENT_MAC, LB_CLIENT_MAC),
        ROUTER,
        [10, 0, 0, 200],
        64,
        &tcp4_ip([10, 0, 0, 200], CLIENT, 80, 40000),
    );
    assert_verdict("foreign_error", &fx.client_sends(&input), XDP_PASS, &input);
    assert_eq!(fx.counter(Counter::IcmpTranslated), 0);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn error_about_a_vip_flow_we_do_not_track_is_left_to_the_kernel() {
    let fx = NatFixture::new(vec![service(VIP, L4Protocol::Tcp, BACKEND1, 8080)]);
    let input = frag_needed(
        (CLIENT_MAC, LB_CLIENT_MAC),
        ROUTER,
        VIP,
        64,
        &tcp4_ip(VIP, CLIENT, 80, 41234),
    );
    assert_verdict(
        "untracked_flow_error",
        &fx.client_sends(&input),
        XDP_PASS,
        &input,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn error_with_a_truncated_quote_is_passed_and_counted() {
    let fx = NatFixture::new(vec![service(VIP, L4Protocol::Tcp, BACKEND1, 8080)]);
    open_flow(&fx);
    // Only 4 bytes of the quoted TCP header: no room for both ports.
    let quoted = tcp4_ip(VIP, CLIENT, 80, 40000)[..24].to_vec();
    let input = frag_needed((CLIENT_MAC, LB_CLIENT_MAC), ROUTER, VIP, 64, &quoted);
    assert_verdict(
        "truncated_quote",
        &fx.client_sends(&input),
        XDP_PASS,
        &input,
    );
    assert_eq!(fx.counter(Counter::Malformed), 1);
}
