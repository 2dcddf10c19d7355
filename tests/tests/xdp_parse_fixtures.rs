//! Packet fixtures for the parser: every header combination the program must
//! understand, and malformed input it must survive. Each runs the real XDP
//! program with `BPF_PROG_TEST_RUN` and checks the action, every output byte
//! and exactly which counters moved.

use etherparse::{
    Ethernet2Header, IpNumber, Ipv4Header, Ipv4Options, PacketBuilder, PacketBuilderStep, VlanId,
};
use lb_common::counters::Counter;
use lb_lab::privileges::require_root;
use lb_tests::fixture::{XDP_PASS, assert_verdict, run_once};
use lb_userspace::xdp::XdpProgram;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT4: [u8; 4] = [10, 0, 0, 1];
const VIP4: [u8; 4] = [10, 0, 0, 100];
const CLIENT6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const VIP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
const PAYLOAD: &[u8] = b"hello, balancer";

/// Loads a fresh program (fresh counters), runs `frame` through it, and
/// asserts it passed unchanged with exactly `counted` (besides the frame and
/// byte totals and the pass counter) moving by one.
#[track_caller]
fn passes_and_counts(fixture: &str, frame: &[u8], counted: &[Counter]) {
    require_root("loading the XDP program");
    let program = XdpProgram::load().expect("the XDP program loads and passes the verifier");
    let verdict = run_once(&program, frame).expect("BPF_PROG_TEST_RUN runs");
    assert_verdict(fixture, &verdict, XDP_PASS, frame);

    let counters = program.counters().expect("counters are readable");
    for (counter, value) in counters.iter() {
        let expected = match counter {
            Counter::RxBytes => frame.len() as u64,
            Counter::RxFrames | Counter::Pass => 1,
            c if counted.contains(&c) => 1,
            _ => 0,
        };
        assert_eq!(
            value,
            expected,
            "fixture {fixture}: counter {} is {value}, expected {expected} (all: {:?})",
            counter.name(),
            counters
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|(c, v)| (c.name(), v))
                .collect::<Vec<_>>()
        );
    }
}

fn eth() -> PacketBuilderStep<Ethernet2Header> {
    PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
}

fn write(builder: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = Vec::new();
    builder(&mut frame);
    frame
}

fn ipv4_tcp() -> Vec<u8> {
    write(|f| {
        eth()
            .ipv4(CLIENT4, VIP4, 64)
            .tcp(40000, 80, 1, 64240)
            .syn()
            .write(f, PAYLOAD)
            .unwrap();
    })
}

fn ipv4_udp() -> Vec<u8> {
    write(|f| {
        eth()
            .ipv4(CLIENT4, VIP4, 64)
            .udp(40000, 53)
            .write(f, PAYLOAD)
            .unwrap();
    })
}

fn ipv6_tcp() -> Vec<u8> {
    write(|f| {
        eth()
            .ipv6(CLIENT6, VIP6, 64)
            .tcp(40000, 443, 1, 64240)
            .syn()
            .write(f, PAYLOAD)
            .unwrap();
    })
}

fn ipv6_udp() -> Vec<u8> {
    write(|f| {
        eth()
            .ipv6(CLIENT6, VIP6, 64)
            .udp(40000, 53)
            .write(f, PAYLOAD)
            .unwrap();
    })
}

/// An IPv4 header with `options` and fragment fields, followed by `l4`.
fn ipv4_custom(
    protocol: IpNumber,
    options: &[u8],
    more_fragments: bool,
    offset_units: u16,
    l4: &[u8],
) -> Vec<u8> {
    let mut ip = Ipv4Header::new(l4.len() as u16, 64, protocol, CLIENT4, VIP4).unwrap();
    ip.options = Ipv4Options::try_from(options).unwrap();
    ip.more_fragments = more_fragments;
    ip.fragment_offset = offset_units.try_into().unwrap();
    ip.total_len = (ip.header_len() + l4.len()) as u16;
    ip.header_checksum = ip.calc_header_checksum();
    let mut frame = ethernet_header(0x0800);
    ip.write(&mut frame).unwrap();
    frame.extend_from_slice(l4);
    frame
}

fn ethernet_header(ether_type: u16) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&LB_MAC);
    frame.extend_from_slice(&CLIENT_MAC);
    frame.extend_from_slice(&ether_type.to_be_bytes());
    frame
}

/// The L4 bytes (header + payload) of a well-formed IPv4 frame.
fn l4_of_ipv4(frame: &[u8]) -> Vec<u8> {
    frame[14 + 20..].to_vec()
}

/// An IPv6 frame whose payload starts with a fragment header. Written by
/// hand: RFC 8200 section 4.5 puts the 13-bit offset in the top bits and the
/// M flag in the lowest bit, which etherparse 0.16's `to_bytes` gets wrong.
fn ipv6_fragment(offset_units: u16, more: bool, l4: &[u8]) -> Vec<u8> {
    let offset_and_m = (offset_units << 3) | u16::from(more);
    let mut payload = vec![IpNumber::UDP.0, 0];
    payload.extend_from_slice(&offset_and_m.to_be_bytes());
    payload.extend_from_slice(&0x1234_u32.to_be_bytes());
    payload.extend_from_slice(l4);
    let mut frame = ethernet_header(0x86dd);
    let ip = etherparse::Ipv6Header {
        payload_length: payload.len() as u16,
        next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
        hop_limit: 64,
        source: CLIENT6,
        destination: VIP6,
        ..Default::default()
    };
    ip.write(&mut frame).unwrap();
    frame.extend_from_slice(&payload);
    frame
}

// ---- header combinations ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_tcp_is_parsed_and_passed() {
    passes_and_counts("ipv4_tcp", &ipv4_tcp(), &[Counter::Ipv4, Counter::Tcp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_udp_is_parsed_and_passed() {
    passes_and_counts("ipv4_udp", &ipv4_udp(), &[Counter::Ipv4, Counter::Udp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_tcp_is_parsed_and_passed() {
    passes_and_counts("ipv6_tcp", &ipv6_tcp(), &[Counter::Ipv6, Counter::Tcp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_udp_is_parsed_and_passed() {
    passes_and_counts("ipv6_udp", &ipv6_udp(), &[Counter::Ipv6, Counter::Udp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn vlan_tagged_ipv4_tcp_is_parsed() {
    let frame = write(|f| {
        eth()
            .single_vlan(VlanId::try_new(42).unwrap())
            .ipv4(CLIENT4, VIP4, 64)
            .tcp(40000, 80, 1, 64240)
            .write(f, PAYLOAD)
            .unwrap();
    });
    passes_and_counts(
        "vlan_ipv4_tcp",
        &frame,
        &[Counter::Vlan, Counter::Ipv4, Counter::Tcp],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn vlan_tagged_ipv6_udp_is_parsed() {
    let frame = write(|f| {
        eth()
            .single_vlan(VlanId::try_new(7).unwrap())
            .ipv6(CLIENT6, VIP6, 64)
            .udp(40000, 53)
            .write(f, PAYLOAD)
            .unwrap();
    });
    passes_and_counts(
        "vlan_ipv6_udp",
        &frame,
        &[Counter::Vlan, Counter::Ipv6, Counter::Udp],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn double_tagged_qinq_ipv4_udp_is_parsed() {
    let frame = write(|f| {
        eth()
            .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
            .ipv4(CLIENT4, VIP4, 64)
            .udp(40000, 53)
            .write(f, PAYLOAD)
            .unwrap();
    });
    passes_and_counts(
        "qinq_ipv4_udp",
        &frame,
        &[Counter::Vlan, Counter::Ipv4, Counter::Udp],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_icmp_is_counted_as_icmp() {
    let frame = write(|f| {
        eth()
            .ipv4(CLIENT4, VIP4, 64)
            .icmpv4_echo_request(1, 1)
            .write(f, PAYLOAD)
            .unwrap();
    });
    passes_and_counts("ipv4_icmp", &frame, &[Counter::Ipv4, Counter::Icmp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_icmpv6_is_counted_as_icmp() {
    let frame = write(|f| {
        eth()
            .ipv6(CLIENT6, VIP6, 64)
            .icmpv6_echo_request(1, 1)
            .write(f, PAYLOAD)
            .unwrap();
    });
    passes_and_counts("ipv6_icmpv6", &frame, &[Counter::Ipv6, Counter::Icmp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn vrrp_advert_is_passed_to_the_kernel() {
    // IP protocol 112: the daemon's VRRP socket must still receive it.
    let vrrp = [0x21, 51, 100, 1, 0, 1, 0, 0, 10, 0, 0, 100, 0, 0, 0, 0];
    let frame = ipv4_custom(IpNumber(112), &[], false, 0, &vrrp);
    passes_and_counts("ipv4_vrrp", &frame, &[Counter::Ipv4, Counter::OtherL4]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn arp_is_passed_as_non_ip() {
    let mut frame = ethernet_header(0x0806);
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&CLIENT_MAC);
    frame.extend_from_slice(&CLIENT4);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&VIP4);
    passes_and_counts("arp", &frame, &[Counter::NonIp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn unknown_ethertype_is_passed_as_non_ip() {
    let mut frame = ethernet_header(0x88b5);
    frame.extend_from_slice(PAYLOAD);
    passes_and_counts("unknown_ethertype", &frame, &[Counter::NonIp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_with_options_finds_tcp_after_them() {
    // IHL 6: a 4-byte option (NOP NOP NOP EOL) sits between IP and TCP.
    let l4 = l4_of_ipv4(&ipv4_tcp());
    let frame = ipv4_custom(IpNumber::TCP, &[1, 1, 1, 0], false, 0, &l4);
    assert_eq!(frame[14] & 0x0f, 6, "the fixture has IHL 6");
    passes_and_counts("ipv4_options_tcp", &frame, &[Counter::Ipv4, Counter::Tcp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_with_maximum_options_finds_udp() {
    // IHL 15: 40 bytes of options, the most IPv4 allows.
    let l4 = l4_of_ipv4(&ipv4_udp());
    let frame = ipv4_custom(IpNumber::UDP, &[1; 40], false, 0, &l4);
    assert_eq!(frame[14] & 0x0f, 15, "the fixture has IHL 15");
    passes_and_counts("ipv4_ihl15_udp", &frame, &[Counter::Ipv4, Counter::Udp]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ethernet_padding_after_a_short_ipv4_packet_is_not_malformed() {
    let mut frame = write(|f| {
        eth()
            .ipv4(CLIENT4, VIP4, 64)
            .udp(40000, 53)
            .write(f, &[])
            .unwrap();
    });
    frame.resize(60, 0);
    passes_and_counts("ipv4_udp_padded", &frame, &[Counter::Ipv4, Counter::Udp]);
}

// ---- fragments ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn first_ipv4_fragment_is_counted_with_its_l4_header() {
    let l4 = l4_of_ipv4(&ipv4_udp());
    let frame = ipv4_custom(IpNumber::UDP, &[], true, 0, &l4);
    passes_and_counts(
        "ipv4_first_fragment",
        &frame,
        &[Counter::Ipv4, Counter::Fragment, Counter::Udp],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn later_ipv4_fragment_has_no_l4_header_to_parse() {
    // Offset 185 x 8 bytes: what follows the IP header is payload, not UDP.
    let frame = ipv4_custom(IpNumber::UDP, &[], false, 185, &[0xab; 3]);
    passes_and_counts(
        "ipv4_later_fragment",
        &frame,
        &[Counter::Ipv4, Counter::Fragment],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn first_ipv6_fragment_is_counted_with_its_l4_header() {
    let l4 = ipv6_udp()[14 + 40..].to_vec();
    let frame = ipv6_fragment(0, true, &l4);
    passes_and_counts(
        "ipv6_first_fragment",
        &frame,
        &[Counter::Ipv6, Counter::Fragment, Counter::Udp],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn later_ipv6_fragment_has_no_l4_header_to_parse() {
    let frame = ipv6_fragment(100, false, &[0xab; 3]);
    passes_and_counts(
        "ipv6_later_fragment",
        &frame,
        &[Counter::Ipv6, Counter::Fragment],
    );
}

// ---- malformed input: counted, and still passed to the kernel ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn runt_frames_are_refused_by_the_kernel_before_the_program_runs() {
    // BPF_PROG_TEST_RUN, like a NIC, never hands XDP less than an Ethernet
    // header: empty and 13-byte frames are rejected with EINVAL.
    require_root("loading the XDP program");
    let program = XdpProgram::load().expect("the XDP program loads");
    for len in [0usize, 13] {
        let frame = vec![0u8; len];
        let err = run_once(&program, &frame).expect_err("a runt frame is refused");
        assert!(
            format!("{err:#}").contains("Invalid argument"),
            "a {len}-byte frame should be refused with EINVAL, got: {err:#}"
        );
    }
    let counters = program.counters().unwrap();
    assert_eq!(
        counters.get(Counter::RxFrames),
        0,
        "the program never ran on a runt"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn truncated_vlan_tag_is_malformed() {
    let mut frame = ethernet_header(0x8100);
    frame.extend_from_slice(&[0, 42]); // TCI, but no inner ethertype
    passes_and_counts("truncated_vlan", &frame, &[Counter::Malformed]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn truncated_ipv4_header_is_malformed() {
    let mut frame = ipv4_tcp();
    frame.truncate(14 + 12);
    passes_and_counts("truncated_ipv4", &frame, &[Counter::Malformed]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn truncated_ipv6_header_is_malformed() {
    let mut frame = ipv6_udp();
    frame.truncate(14 + 39);
    passes_and_counts("truncated_ipv6", &frame, &[Counter::Malformed]);
}

/// Cuts the frame inside its L4 header and fixes the IPv4 total length so only
/// the L4 header is wrong.
fn cut_ipv4_l4(mut frame: Vec<u8>, l4_len: usize) -> Vec<u8> {
    frame.truncate(14 + 20 + l4_len);
    let total = (20 + l4_len) as u16;
    frame[16..18].copy_from_slice(&total.to_be_bytes());
    frame
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn truncated_tcp_header_is_malformed() {
    let frame = cut_ipv4_l4(ipv4_tcp(), 12);
    passes_and_counts(
        "truncated_tcp",
        &frame,
        &[Counter::Ipv4, Counter::Malformed],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn truncated_udp_header_is_malformed() {
    let frame = cut_ipv4_l4(ipv4_udp(), 6);
    passes_and_counts(
        "truncated_udp",
        &frame,
        &[Counter::Ipv4, Counter::Malformed],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn truncated_ipv6_tcp_header_is_malformed() {
    let mut frame = ipv6_tcp();
    frame.truncate(14 + 40 + 10);
    frame[18..20].copy_from_slice(&10u16.to_be_bytes());
    passes_and_counts(
        "truncated_ipv6_tcp",
        &frame,
        &[Counter::Ipv6, Counter::Malformed],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_ihl_below_five_is_malformed() {
    let mut frame = ipv4_tcp();
    frame[14] = 0x44; // version 4, IHL 4 (16 bytes): shorter than the fixed header
    passes_and_counts("ipv4_ihl4", &frame, &[Counter::Malformed]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_ihl_beyond_the_frame_is_malformed() {
    let mut frame = cut_ipv4_l4(ipv4_udp(), 8);
    frame[14] = 0x4f; // IHL 15 = 60 bytes, but only 28 bytes of IP follow
    passes_and_counts("ipv4_ihl_beyond_frame", &frame, &[Counter::Malformed]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_total_length_beyond_the_frame_is_malformed() {
    let mut frame = ipv4_udp();
    let claimed = (frame.len() - 14 + 1) as u16;
    frame[16..18].copy_from_slice(&claimed.to_be_bytes());
    passes_and_counts("ipv4_total_len_beyond_frame", &frame, &[Counter::Malformed]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_total_length_shorter_than_its_header_is_malformed() {
    let mut frame = ipv4_udp();
    frame[16..18].copy_from_slice(&19u16.to_be_bytes());
    passes_and_counts("ipv4_total_len_below_ihl", &frame, &[Counter::Malformed]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_payload_length_beyond_the_frame_is_malformed() {
    let mut frame = ipv6_udp();
    let claimed = (frame.len() - 14 - 40 + 1) as u16;
    frame[18..20].copy_from_slice(&claimed.to_be_bytes());
    passes_and_counts(
        "ipv6_payload_len_beyond_frame",
        &frame,
        &[Counter::Malformed],
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn wrong_ip_version_nibble_is_malformed() {
    let mut frame = ipv4_udp();
    frame[14] = 0x65; // says IPv6 inside an IPv4 ethertype
    passes_and_counts("ipv4_bad_version", &frame, &[Counter::Malformed]);
}

/// Outside a service the kernel judges the segment; to a service the
/// ingress policy drops it (`xdp_ingress_fixtures`).
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn tcp_data_offset_below_five_not_for_a_service_is_left_to_the_kernel() {
    let mut frame = ipv4_tcp();
    frame[14 + 20 + 12] = 0x40; // data offset 4 words = 16 bytes < 20
    passes_and_counts("tcp_doff4", &frame, &[Counter::Ipv4, Counter::Tcp]);
}
