//! A packet to a service whose TTL / hop limit expires on the balancer is
//! answered as IPVS answers it: Time Exceeded from the VIP, quoting the
//! packet as the client sent it (client -> VIP), never translated first.
//! Expected frames are built from scratch; each fixture also checks that
//! no byte sequence of the real server's address appears in what leaves.

use etherparse::{Icmpv4Type, Icmpv6Type, IpNumber, Ipv4Header, PacketBuilder, icmpv4, icmpv6};
use lb_common::counters::Counter;
use lb_tests::{
    fixture::{XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, assert_verdict},
    nat_lab::{
        BACKEND1, BACKEND1_MAC, BACKEND6, CLIENT, CLIENT_MAC, CLIENT6, LB_BACKEND_MAC,
        LB_CLIENT_MAC, NatFixture, PAYLOAD, VIP, VIP6,
    },
};

const L3: usize = 14;

fn fixture() -> NatFixture {
    NatFixture::vips_80()
}

fn syn4(ttl: u8) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv4(CLIENT, VIP, ttl)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .write(&mut frame, PAYLOAD)
        .unwrap();
    frame
}

fn udp4(ttl: u8) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv4(CLIENT, VIP, ttl)
        .udp(40000, 80)
        .write(&mut frame, PAYLOAD)
        .unwrap();
    frame
}

fn syn6(hops: u8) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv6(CLIENT6, VIP6, hops)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .write(&mut frame, PAYLOAD)
        .unwrap();
    frame
}

/// What Linux sends for an expiring IPv4 packet addressed to one of its
/// own addresses: from that address, TOS 0xc0, TTL 64, quoting the IP
/// header and 8 bytes of payload.
fn time_exceeded4(received: &[u8]) -> Vec<u8> {
    let ip = &received[L3..];
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    let quote = &ip[..header_len + 8];
    let mut icmp = Vec::new();
    etherparse::Icmpv4Header::with_checksum(
        Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit),
        quote,
    )
    .write(&mut icmp)
    .unwrap();
    icmp.extend_from_slice(quote);
    let mut header = Ipv4Header::new(
        icmp.len().try_into().unwrap(),
        64,
        IpNumber::ICMP,
        VIP,
        CLIENT,
    )
    .unwrap();
    header.dont_fragment = false;
    header.dscp = etherparse::Ipv4Dscp::try_new(0xc0 >> 2).unwrap();
    header.header_checksum = header.calc_header_checksum();
    let mut frame = Vec::new();
    etherparse::Ethernet2Header {
        source: LB_CLIENT_MAC,
        destination: CLIENT_MAC,
        ether_type: etherparse::EtherType::IPV4,
    }
    .write(&mut frame)
    .unwrap();
    header.write(&mut frame).unwrap();
    frame.extend_from_slice(&icmp);
    frame
}

/// The same for IPv6: from the VIP, hop limit 64, quoting the IPv6 header
/// and 8 bytes of payload (the balancer quotes up to 128 bytes).
fn time_exceeded6(received: &[u8]) -> Vec<u8> {
    let quote = &received[L3..(L3 + 48 + 80).min(received.len())];
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(LB_CLIENT_MAC, CLIENT_MAC)
        .ipv6(VIP6, CLIENT6, 64)
        .icmpv6(Icmpv6Type::TimeExceeded(
            icmpv6::TimeExceededCode::HopLimitExceeded,
        ))
        .write(&mut frame, quote)
        .unwrap();
    frame
}

/// No 4- or 16-byte window of `frame` is `addr`.
#[track_caller]
fn quotes_no(frame: &[u8], addr: &[u8], what: &str) {
    assert!(
        !frame.windows(addr.len()).any(|w| w == addr),
        "{what}: the frame sent to the client carries the real server's address"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn syn_with_ttl_1_gets_time_exceeded_from_the_vip_quoting_the_vip() {
    let fx = fixture();
    let input = syn4(1);
    let got = fx.client_sends(&input);
    assert_verdict("syn_ttl1", &got, XDP_TX, &time_exceeded4(&input));
    quotes_no(&got.output, &BACKEND1, "syn_ttl1");
    assert_eq!(fx.counter(Counter::TtlExpired), 1);
    assert_eq!(fx.counter(Counter::ToBackend), 0, "nothing translated");
    assert_eq!(
        fx.counter(Counter::NewFlow),
        0,
        "no flow for a packet that died"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn syn_with_ttl_0_gets_time_exceeded_too() {
    let fx = fixture();
    let input = syn4(0);
    let got = fx.client_sends(&input);
    assert_verdict("syn_ttl0", &got, XDP_TX, &time_exceeded4(&input));
    quotes_no(&got.output, &BACKEND1, "syn_ttl0");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn udp_with_ttl_1_and_ip_options_is_quoted_with_its_options() {
    let fx = fixture();
    let mut ip = Ipv4Header::new(
        (8 + PAYLOAD.len()).try_into().unwrap(),
        1,
        IpNumber::UDP,
        CLIENT,
        VIP,
    )
    .unwrap();
    ip.options = [1u8, 1, 1, 0][..].try_into().unwrap();
    ip.set_payload_len(8 + PAYLOAD.len()).unwrap();
    let udp = etherparse::UdpHeader::with_ipv4_checksum(40000, 80, &ip, PAYLOAD).unwrap();
    let mut input = Vec::new();
    etherparse::Ethernet2Header {
        source: CLIENT_MAC,
        destination: LB_CLIENT_MAC,
        ether_type: etherparse::EtherType::IPV4,
    }
    .write(&mut input)
    .unwrap();
    ip.write(&mut input).unwrap();
    udp.write(&mut input).unwrap();
    input.extend_from_slice(PAYLOAD);
    let got = fx.client_sends(&input);
    assert_verdict("udp_ttl1_options", &got, XDP_TX, &time_exceeded4(&input));
    quotes_no(&got.output, &BACKEND1, "udp_ttl1_options");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn tcp6_with_hop_limit_1_gets_time_exceeded_from_the_vip() {
    let fx = fixture();
    let input = syn6(1);
    let got = fx.client_sends(&input);
    assert_verdict("syn6_hop1", &got, XDP_TX, &time_exceeded6(&input));
    quotes_no(&got.output, &BACKEND6, "syn6_hop1");
    assert_eq!(fx.counter(Counter::TtlExpired), 1);
}

/// The neighbour of the expiring case: TTL 2 still reaches the backend
/// with TTL 1, as through any router.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn syn_with_ttl_2_is_forwarded_with_ttl_1() {
    let fx = fixture();
    let mut expected = Vec::new();
    PacketBuilder::ethernet2(LB_BACKEND_MAC, BACKEND1_MAC)
        .ipv4(CLIENT, BACKEND1, 1)
        .tcp(40000, 8080, 1000, 64240)
        .syn()
        .write(&mut expected, PAYLOAD)
        .unwrap();
    assert_verdict(
        "syn_ttl2",
        &fx.client_sends(&syn4(2)),
        XDP_REDIRECT,
        &expected,
    );
    assert_eq!(fx.counter(Counter::TtlExpired), 0);
}

/// A reply that would expire on the balancer goes to the kernel as the
/// backend sent it: the kernel's Time Exceeded goes back to the backend,
/// and nothing carrying the backend's address is sent towards the client.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn backend_reply_with_ttl_1_is_left_to_the_kernel_untranslated() {
    let fx = fixture();
    let mut reply = Vec::new();
    PacketBuilder::ethernet2(BACKEND1_MAC, LB_BACKEND_MAC)
        .ipv4(BACKEND1, CLIENT, 1)
        .tcp(8080, 40000, 5000, 64240)
        .syn()
        .ack(1001)
        .write(&mut reply, PAYLOAD)
        .unwrap();
    assert_verdict("reply_ttl1", &fx.backend_sends(&reply), XDP_PASS, &reply);
    assert_eq!(fx.counter(Counter::FromBackend), 0, "not translated");
}

/// An expiring packet that fails the ingress policy is dropped, not
/// answered: the policy comes first.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn expiring_packet_with_a_bad_checksum_is_dropped_without_an_answer() {
    let fx = fixture();
    let mut input = udp4(1);
    input[L3 + 10] ^= 0x11;
    assert_verdict(
        "udp_ttl1_bad_sum",
        &fx.client_sends(&input),
        XDP_DROP,
        &input,
    );
    assert_eq!(fx.counter(Counter::BadIpChecksum), 1);
    assert_eq!(fx.counter(Counter::TtlExpired), 0);
}
