//! Indices into the per-CPU `COUNTERS` array: what the XDP program saw.
//!
//! The enum is only an index (never stored in a map), so its discriminants
//! are the array slots. Userspace sums each slot over all CPUs.

/// One slot of the per-CPU counter array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Counter {
    /// Every frame the program ran on.
    RxFrames = 0,
    /// Bytes of every frame the program ran on.
    RxBytes,
    /// Frames carrying at least one 802.1Q / 802.1ad tag.
    Vlan,
    /// IPv4 packets with a valid header.
    Ipv4,
    /// IPv6 packets with a valid header.
    Ipv6,
    /// TCP segments with a complete header.
    Tcp,
    /// UDP datagrams with a complete header.
    Udp,
    /// ICMP or ICMPv6 messages.
    Icmp,
    /// IP packets of another protocol (VRRP, GRE, ...).
    OtherL4,
    /// Frames whose ethertype is not IP (ARP, LLDP, ...).
    NonIp,
    /// IP fragments; a later fragment has no L4 header to parse.
    Fragment,
    /// Frames cut short inside a header, or whose header lies about its length.
    Malformed,
    /// Frames handed to the kernel (`XDP_PASS`).
    Pass,
    /// Frames dropped (`XDP_DROP`).
    Drop,
    /// Packets to a service translated to a backend.
    ToBackend,
    /// Replies translated back to come from a VIP.
    FromBackend,
    /// Flows that got a backend (new, or picked up mid-flow).
    NewFlow,
    /// Packets to a service with no backend taking new flows and no sorry
    /// server: left to the kernel.
    NoBackend,
    /// TCP segments to a service with a flag combination no connection
    /// can have (netfilter's `tcp_valid_flags`: null, FIN alone, SYN+RST,
    /// SYN+FIN, ...), dropped.
    BadTcpFlags,
    /// Packets to a backend address that is this host (a sorry server on
    /// 127.0.0.1, say): translated and handed to the local stack.
    LocalDestination,
    /// Translated packets the kernel forwards (next hop not resolved yet,
    /// MTU, TTL expiring, VLAN).
    KernelForward,
    /// Translated packets sent on by the program itself (`XDP_TX` or redirect).
    Redirect,
    /// ICMP errors about a balanced flow, translated.
    IcmpTranslated,
    /// Flow-sync events lost because `FLOW_EVENTS` was full (the daemon
    /// did not drain it fast enough): the peer misses those flows.
    FlowEventsLost,
    /// IPv4 packets to a service whose header checksum is wrong, dropped.
    BadIpChecksum,
    /// Packets to a service from a source no router accepts (0.0.0.0/8,
    /// 127.0.0.0/8, multicast, broadcast; ::, ::1, ff00::/8, IPv4-mapped),
    /// dropped.
    MartianSource,
    /// Packets to a service whose source is their destination, dropped.
    Land,
    /// Packets to a service whose IP length cannot hold their TCP / UDP
    /// header, or whose UDP length is impossible, dropped.
    BadLength,
    /// IPv4 packets to a service with malformed options, dropped.
    BadIpOptions,
    /// IPv4 packets to a service carrying a loose or strict source route,
    /// dropped.
    SourceRoute,
    /// TCP segments to a service whose data offset is under 5 words or
    /// past the end of the segment, dropped.
    BadTcpOffset,
    /// Packets to a service whose TTL / hop limit expires here, answered
    /// with Time Exceeded about the packet as the client sent it; and
    /// backend replies that would expire, left untranslated to the kernel.
    TtlExpired,
    /// Packets of flows whose real server left its service with
    /// `removed_server_flows: drop`, dropped until it returns.
    HeldFlow,
    /// IPv4 packets arriving for 127.0.0.0/8, dropped: a martian
    /// destination the kernel would deliver to local services once
    /// `route_localnet` is set (which lbd sets for real servers on
    /// 127.0.0.0/8).
    LoopbackDestination,
}

impl Counter {
    /// Every counter in slot order.
    pub const ALL: [Counter; 34] = [
        Counter::RxFrames,
        Counter::RxBytes,
        Counter::Vlan,
        Counter::Ipv4,
        Counter::Ipv6,
        Counter::Tcp,
        Counter::Udp,
        Counter::Icmp,
        Counter::OtherL4,
        Counter::NonIp,
        Counter::Fragment,
        Counter::Malformed,
        Counter::Pass,
        Counter::Drop,
        Counter::ToBackend,
        Counter::FromBackend,
        Counter::NewFlow,
        Counter::NoBackend,
        Counter::BadTcpFlags,
        Counter::LocalDestination,
        Counter::KernelForward,
        Counter::Redirect,
        Counter::IcmpTranslated,
        Counter::FlowEventsLost,
        Counter::BadIpChecksum,
        Counter::MartianSource,
        Counter::Land,
        Counter::BadLength,
        Counter::BadIpOptions,
        Counter::SourceRoute,
        Counter::BadTcpOffset,
        Counter::TtlExpired,
        Counter::HeldFlow,
        Counter::LoopbackDestination,
    ];

    /// Number of slots the counter array needs.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// The array slot of this counter.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// A stable snake_case name, used in `lbd status` and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::RxFrames => "rx_frames",
            Counter::RxBytes => "rx_bytes",
            Counter::Vlan => "vlan",
            Counter::Ipv4 => "ipv4",
            Counter::Ipv6 => "ipv6",
            Counter::Tcp => "tcp",
            Counter::Udp => "udp",
            Counter::Icmp => "icmp",
            Counter::OtherL4 => "other_l4",
            Counter::NonIp => "non_ip",
            Counter::Fragment => "fragment",
            Counter::Malformed => "malformed",
            Counter::Pass => "pass",
            Counter::Drop => "drop",
            Counter::ToBackend => "to_backend",
            Counter::FromBackend => "from_backend",
            Counter::NewFlow => "new_flow",
            Counter::NoBackend => "no_backend",
            Counter::BadTcpFlags => "bad_tcp_flags",
            Counter::LocalDestination => "local_destination",
            Counter::KernelForward => "kernel_forward",
            Counter::Redirect => "redirect",
            Counter::IcmpTranslated => "icmp_translated",
            Counter::FlowEventsLost => "flow_events_lost",
            Counter::BadIpChecksum => "bad_ip_checksum",
            Counter::MartianSource => "martian_source",
            Counter::Land => "land",
            Counter::BadLength => "bad_length",
            Counter::BadIpOptions => "bad_ip_options",
            Counter::SourceRoute => "source_route",
            Counter::BadTcpOffset => "bad_tcp_offset",
            Counter::TtlExpired => "ttl_expired",
            Counter::HeldFlow => "held_flow",
            Counter::LoopbackDestination => "loopback_destination",
        }
    }
}

// ALL must list every variant in discriminant order.
const _: () = {
    let mut i = 0;
    while i < Counter::ALL.len() {
        assert!(Counter::ALL[i] as usize == i);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::HashSet;

    use super::Counter;

    #[test]
    fn every_counter_has_a_distinct_metric_safe_name() {
        let names: HashSet<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Counter::ALL.len(), "two counters share a name");
        for name in names {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
                "{name} is not snake_case: status and metrics print it as is"
            );
        }
    }
}
