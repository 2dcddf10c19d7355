//! The ingress policy: packets to a service that a router's input path or
//! IPVS would discard are dropped by the XDP program and counted by reason,
//! never translated and forwarded to a real server. Each fixture sends one
//! class of bad packet to the VIP and expects `XDP_DROP`, the frame
//! untouched, its reason counted and no flow created; the guards beside
//! them show that the legitimate neighbours of each class still go through.

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header, PacketBuilder, TcpHeader};
use lb_common::{counters::Counter, csum};
use lb_tests::{
    fixture::{XDP_DROP, XDP_PASS, XDP_REDIRECT, assert_verdict},
    nat_lab::{
        BACKEND1, BACKEND1_MAC, CLIENT, CLIENT_MAC, CLIENT6, LB_BACKEND_MAC, LB_CLIENT_MAC,
        NatFixture, PAYLOAD, VIP, VIP6,
    },
};

/// Where the IPv4 header starts in an untagged frame.
const L3: usize = 14;

fn fixture() -> NatFixture {
    NatFixture::vips_80()
}

/// A client's TCP/IPv4 segment to port `dport` with the given IPv4
/// options and TCP flags (`fin`, `syn`, `rst`, `psh`, `ack`, `urg` bits),
/// every checksum right.
fn tcp4_with(
    macs: ([u8; 6], [u8; 6]),
    (src, dst): ([u8; 4], [u8; 4]),
    dport: u16,
    options: &[u8],
    flags: u8,
    ttl: u8,
) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, ttl, IpNumber::TCP, src, dst).unwrap();
    ip.options = options.try_into().unwrap();
    let mut tcp = TcpHeader::new(40000, dport, 1000, 64240);
    tcp.fin = flags & 0x01 != 0;
    tcp.syn = flags & 0x02 != 0;
    tcp.rst = flags & 0x04 != 0;
    tcp.psh = flags & 0x08 != 0;
    tcp.ack = flags & 0x10 != 0;
    tcp.urg = flags & 0x20 != 0;
    if tcp.ack {
        tcp.acknowledgment_number = 2000;
    }
    ip.set_payload_len(tcp.header_len() + PAYLOAD.len())
        .unwrap();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, PAYLOAD).unwrap();
    let mut f = Vec::new();
    Ethernet2Header {
        source: macs.0,
        destination: macs.1,
        ether_type: EtherType::IPV4,
    }
    .write(&mut f)
    .unwrap();
    ip.write(&mut f).unwrap();
    tcp.write(&mut f).unwrap();
    f.extend_from_slice(PAYLOAD);
    f
}

const SYN: u8 = 0x02;

/// A SYN from the client to the VIP's TCP service.
fn syn(options: &[u8]) -> Vec<u8> {
    tcp4_with(
        (CLIENT_MAC, LB_CLIENT_MAC),
        (CLIENT, VIP),
        80,
        options,
        SYN,
        64,
    )
}

/// A segment from `src` to the VIP with `flags`.
fn segment_from(src: [u8; 4], flags: u8) -> Vec<u8> {
    tcp4_with((CLIENT_MAC, LB_CLIENT_MAC), (src, VIP), 80, &[], flags, 64)
}

/// The same segment as the backend receives it.
fn to_backend(options: &[u8], flags: u8) -> Vec<u8> {
    tcp4_with(
        (LB_BACKEND_MAC, BACKEND1_MAC),
        (CLIENT, BACKEND1),
        8080,
        options,
        flags,
        63,
    )
}

/// Recomputes the IPv4 header checksum after a test changed the header,
/// so the change is the only thing wrong with it.
fn fix_ip_checksum(frame: &mut [u8]) {
    let header_len = usize::from(frame[L3] & 0x0f) * 4;
    frame[L3 + 10..L3 + 12].fill(0);
    let check = csum::checksum(&frame[L3..L3 + header_len]);
    frame[L3 + 10..L3 + 12].copy_from_slice(&check.to_be_bytes());
}

/// Replaces the options of `syn(&[0; len])` with `options` (same length).
fn syn_with_raw_options(options: &[u8]) -> Vec<u8> {
    let mut frame = syn(&vec![0u8; options.len()]);
    frame[L3 + 20..L3 + 20 + options.len()].copy_from_slice(options);
    fix_ip_checksum(&mut frame);
    frame
}

/// Asserts each frame is dropped untouched, and that together they moved
/// `reason` (and nothing created a flow or reached a backend).
#[track_caller]
fn all_dropped(fx: &NatFixture, class: &str, frames: &[(&str, Vec<u8>)], reason: Counter) {
    for (name, frame) in frames {
        assert_verdict(
            &format!("{class}/{name}"),
            &fx.client_sends(frame),
            XDP_DROP,
            frame,
        );
    }
    assert_eq!(
        fx.counter(reason),
        frames.len() as u64,
        "{class}: every frame counted under {}",
        reason.name()
    );
    assert_eq!(
        fx.counter(Counter::ToBackend),
        0,
        "{class}: nothing reached a backend"
    );
    assert_eq!(fx.counter(Counter::NewFlow), 0, "{class}: no flow created");
}

// ---- IPv4 header ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_header_with_a_bad_checksum_is_dropped() {
    let fx = fixture();
    let mut frame = syn(&[]);
    frame[L3 + 10] ^= 0x5a;
    all_dropped(
        &fx,
        "bad_ip_checksum",
        &[("syn", frame)],
        Counter::BadIpChecksum,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_header_with_options_and_a_bad_checksum_is_dropped() {
    let fx = fixture();
    let mut frame = syn(&[1, 1, 1, 0]);
    frame[L3 + 10] ^= 0x01;
    all_dropped(
        &fx,
        "bad_ip_checksum_options",
        &[("syn", frame)],
        Counter::BadIpChecksum,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn martian_ipv4_sources_are_dropped() {
    let fx = fixture();
    let frames: Vec<(&str, Vec<u8>)> = [
        ("this_host", [0, 0, 0, 0]),
        ("zeronet", [0, 1, 2, 3]),
        ("loopback", [127, 0, 0, 1]),
        ("multicast", [224, 0, 0, 1]),
        ("multicast_top", [239, 255, 255, 250]),
        ("broadcast", [255, 255, 255, 255]),
    ]
    .into_iter()
    .map(|(name, src)| (name, segment_from(src, SYN)))
    .collect();
    all_dropped(&fx, "martian4", &frames, Counter::MartianSource);
}

/// lbd sets `route_localnet` where a real server listens on 127.0.0.1:
/// a neighbour's packet already addressed there must not reach it.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn packets_arriving_for_a_loopback_address_are_dropped() {
    let fx = fixture();
    let frames: Vec<(&str, Vec<u8>)> = [("port_80", 80), ("port_22", 22)]
        .into_iter()
        .map(|(name, port)| {
            let frame = tcp4_with(
                (CLIENT_MAC, LB_CLIENT_MAC),
                (CLIENT, [127, 0, 0, 1]),
                port,
                &[],
                SYN,
                64,
            );
            (name, frame)
        })
        .collect();
    all_dropped(
        &fx,
        "loopback_destination",
        &frames,
        Counter::LoopbackDestination,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn martian_ipv6_sources_are_dropped() {
    let fx = fixture();
    let mut mapped = [0u8; 16];
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped[12..].copy_from_slice(&CLIENT);
    let mut loopback = [0u8; 16];
    loopback[15] = 1;
    let mut multicast = [0u8; 16];
    multicast[0] = 0xff;
    multicast[1] = 0x02;
    multicast[15] = 1;
    let frames: Vec<(&str, Vec<u8>)> = [
        ("unspecified", [0u8; 16]),
        ("loopback", loopback),
        ("multicast", multicast),
        ("v4_mapped", mapped),
    ]
    .into_iter()
    .map(|(name, src)| (name, tcp6_syn(src, VIP6, 64)))
    .collect();
    all_dropped(&fx, "martian6", &frames, Counter::MartianSource);
}

fn tcp6_syn(src: [u8; 16], dst: [u8; 16], hops: u8) -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv6(src, dst, hops)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .write(&mut frame, PAYLOAD)
        .unwrap();
    frame
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn land_packet_from_the_vip_to_itself_is_dropped() {
    let fx = fixture();
    let frames = [
        ("ipv4", segment_from(VIP, SYN)),
        ("ipv6", tcp6_syn(VIP6, VIP6, 64)),
    ];
    all_dropped(&fx, "land", &frames, Counter::Land);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv4_total_length_too_short_for_the_tcp_header_is_dropped() {
    let fx = fixture();
    // The TCP header is still in the frame, but outside the IP packet:
    // 30 bytes of IP packet leave 10 for a 20-byte header.
    let mut frame = syn(&[]);
    frame[L3 + 2..L3 + 4].copy_from_slice(&30u16.to_be_bytes());
    fix_ip_checksum(&mut frame);
    all_dropped(
        &fx,
        "short_total_length",
        &[("syn", frame)],
        Counter::BadLength,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn udp_length_beyond_the_datagram_or_below_its_header_is_dropped() {
    let fx = fixture();
    let udp = |udp_len: u16| {
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
            .ipv4(CLIENT, VIP, 64)
            .udp(40000, 80)
            .write(&mut frame, PAYLOAD)
            .unwrap();
        frame[L3 + 24..L3 + 26].copy_from_slice(&udp_len.to_be_bytes());
        frame
    };
    let frames = [
        ("longer", udp(8 + PAYLOAD.len() as u16 + 1)),
        ("below_header", udp(7)),
    ];
    all_dropped(&fx, "udp_length", &frames, Counter::BadLength);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn ipv6_payload_length_too_short_for_the_tcp_header_is_dropped() {
    let fx = fixture();
    let mut frame = tcp6_syn(CLIENT6, VIP6, 64);
    // 12 bytes of payload cannot hold a 20-byte TCP header; the rest of the
    // frame is padding as far as IPv6 is concerned.
    frame[L3 + 4..L3 + 6].copy_from_slice(&12u16.to_be_bytes());
    all_dropped(
        &fx,
        "short_payload_length",
        &[("syn", frame)],
        Counter::BadLength,
    );
}

// ---- IPv4 options ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn malformed_ipv4_options_are_dropped() {
    let fx = fixture();
    let frames = [
        // An option whose length byte says 0 or 1 (it covers itself).
        ("length_0", syn_with_raw_options(&[0x94, 0, 0, 0])),
        ("length_1", syn_with_raw_options(&[0x94, 1, 0, 0])),
        // A length running past the 4 option bytes of the header.
        ("past_header", syn_with_raw_options(&[0x07, 40, 4, 0])),
        // The type byte is the last option byte: no room for its length.
        ("no_length_byte", syn_with_raw_options(&[1, 1, 1, 0x44])),
        // Record route with a pointer before its first slot.
        (
            "rr_pointer",
            syn_with_raw_options(&[0x07, 7, 3, 0, 0, 0, 0, 0]),
        ),
        // Timestamp with a pointer before its first slot, and one whose
        // next address-and-time entry would run past the option.
        ("ts_pointer", syn_with_raw_options(&[0x44, 4, 4, 0])),
        (
            "ts_entry",
            syn_with_raw_options(&[0x44, 8, 5, 0x01, 0, 0, 0, 0]),
        ),
        // Router alert shorter than its 4 bytes.
        ("ra_short", syn_with_raw_options(&[0x94, 2, 0, 0])),
        // Two record routes, each well formed (one is allowed).
        (
            "rr_twice",
            syn_with_raw_options(&[0x07, 3, 4, 0x07, 3, 4, 1, 0]),
        ),
    ];
    all_dropped(&fx, "bad_options", &frames, Counter::BadIpOptions);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn loose_source_route_is_dropped() {
    let fx = fixture();
    let lsrr = [0x83, 7, 4, 10, 1, 0, 1, 0];
    // The same route behind 32 NOPs, the most options a header holds: the
    // walk takes 33 steps to reach it.
    let mut late = vec![1u8; 32];
    late.extend_from_slice(&lsrr);
    all_dropped(
        &fx,
        "lsrr",
        &[
            ("syn", syn(&lsrr)),
            ("after_32_nops", syn_with_raw_options(&late)),
        ],
        Counter::SourceRoute,
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn strict_source_route_is_dropped() {
    let fx = fixture();
    let ssrr = [0x89, 7, 4, 10, 1, 0, 1, 0];
    all_dropped(&fx, "ssrr", &[("syn", syn(&ssrr))], Counter::SourceRoute);
}

/// The kernel accepts options it does not know on input, and so do we:
/// the guard that the option walk drops only what is malformed.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn unknown_and_well_formed_ipv4_options_are_forwarded() {
    let fx = fixture();
    let options: [&[u8]; 3] = [
        &[0xff, 4, 0, 0],
        // Record route with room left, and a router alert.
        &[0x07, 7, 4, 0, 0, 0, 0, 0x01],
        &[0x94, 4, 0, 0],
    ];
    for (i, options) in options.into_iter().enumerate() {
        assert_verdict(
            &format!("options_{i}"),
            &fx.client_sends(&syn(options)),
            XDP_REDIRECT,
            &to_backend(options, SYN),
        );
    }
}

// ---- TCP header ----

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn tcp_data_offset_below_five_to_a_service_is_dropped() {
    let fx = fixture();
    let mut frame = syn(&[]);
    frame[L3 + 20 + 12] = 0x40;
    all_dropped(&fx, "tcp_doff4", &[("syn", frame)], Counter::BadTcpOffset);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn tcp_data_offset_past_the_segment_end_is_dropped() {
    let fx = fixture();
    // 60 bytes of header claimed; the segment has 20 + 18.
    let mut frame = syn(&[]);
    frame[L3 + 20 + 12] = 0xf0;
    all_dropped(&fx, "tcp_doff15", &[("syn", frame)], Counter::BadTcpOffset);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn tcp_flag_combinations_no_connection_can_have_are_dropped() {
    let fx = fixture();
    let (fin, syn, rst, psh, ack, urg) = (0x01, 0x02, 0x04, 0x08, 0x10, 0x20);
    let frames: Vec<(&str, Vec<u8>)> = [
        ("null", 0),
        ("fin_alone", fin),
        ("syn_fin", syn | fin),
        ("syn_rst", syn | rst),
        ("fin_rst_ack", fin | rst | ack),
        ("xmas", fin | psh | urg),
        ("all", fin | syn | rst | psh | ack | urg),
        ("syn_ack_urg", syn | ack | urg),
    ]
    .into_iter()
    .map(|(name, flags)| (name, segment_from(CLIENT, flags)))
    .collect();
    all_dropped(&fx, "tcp_flags", &frames, Counter::BadTcpFlags);
}

/// The guard: every combination conntrack accepts still reaches the
/// backend (with PSH, ECE and CWR, which it ignores, added).
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn tcp_flag_combinations_a_connection_has_are_forwarded() {
    let fx = fixture();
    let (fin, syn, rst, psh, ack, urg) = (0x01, 0x02, 0x04, 0x08, 0x10, 0x20);
    for flags in [
        syn,
        syn | urg,
        syn | ack,
        rst,
        rst | ack,
        fin | ack,
        fin | ack | urg,
        ack,
        ack | urg,
        ack | psh,
    ] {
        let got = fx.client_sends(&segment_from(CLIENT, flags));
        assert_verdict(
            &format!("flags_{flags:#04x}"),
            &got,
            XDP_REDIRECT,
            &to_backend(&[], flags),
        );
    }
    assert_eq!(fx.counter(Counter::BadTcpFlags), 0);
}

// ---- what is not for a service ----

/// The policy judges service traffic only: the same bad checksum to
/// another port of the VIP is the kernel's to drop.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn bad_packets_not_for_a_service_are_left_to_the_kernel() {
    let fx = fixture();
    let mut frame = tcp4_with(
        (CLIENT_MAC, LB_CLIENT_MAC),
        (CLIENT, VIP),
        443,
        &[],
        SYN,
        64,
    );
    frame[L3 + 10] ^= 0x5a;
    assert_verdict(
        "bad_checksum_other_port",
        &fx.client_sends(&frame),
        XDP_PASS,
        &frame,
    );
    assert_eq!(fx.counter(Counter::BadIpChecksum), 0);
    let loopback = tcp4_with(
        (CLIENT_MAC, LB_CLIENT_MAC),
        ([127, 0, 0, 1], VIP),
        443,
        &[],
        SYN,
        64,
    );
    assert_verdict(
        "martian_other_port",
        &fx.client_sends(&loopback),
        XDP_PASS,
        &loopback,
    );
    assert_eq!(fx.counter(Counter::MartianSource), 0);
}
