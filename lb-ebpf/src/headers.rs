//! Wire layouts of the headers the program reads. Multi-byte fields are kept
//! as byte arrays in network order so no field is ever read misaligned or in
//! the wrong byte order by accident.

pub(crate) const ETH_P_IPV4: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;
pub(crate) const ETH_P_8021Q: u16 = 0x8100;
pub(crate) const ETH_P_8021AD: u16 = 0x88a8;

pub(crate) const IPPROTO_HOPOPTS: u8 = 0;
pub(crate) const IPPROTO_ICMP: u8 = 1;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_ROUTING: u8 = 43;
pub(crate) const IPPROTO_FRAGMENT: u8 = 44;
pub(crate) const IPPROTO_ICMPV6: u8 = 58;
pub(crate) const IPPROTO_DSTOPTS: u8 = 60;

#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct EthHdr {
    pub(crate) dst: [u8; 6],
    pub(crate) src: [u8; 6],
    pub(crate) ether_type: [u8; 2],
}

/// An 802.1Q / 802.1ad tag as it follows the MAC addresses.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct VlanHdr {
    pub(crate) tci: [u8; 2],
    pub(crate) ether_type: [u8; 2],
}

#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Ipv4Hdr {
    pub(crate) version_ihl: u8,
    pub(crate) tos: u8,
    pub(crate) total_len: [u8; 2],
    pub(crate) id: [u8; 2],
    pub(crate) frag_off: [u8; 2],
    pub(crate) ttl: u8,
    pub(crate) protocol: u8,
    pub(crate) check: [u8; 2],
    pub(crate) src: [u8; 4],
    pub(crate) dst: [u8; 4],
}

#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Ipv6Hdr {
    pub(crate) version_tc_flow: [u8; 4],
    pub(crate) payload_len: [u8; 2],
    pub(crate) next_header: u8,
    pub(crate) hop_limit: u8,
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
}

/// The first two bytes every IPv6 extension header shares.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Ipv6ExtHdr {
    pub(crate) next_header: u8,
    pub(crate) hdr_ext_len: u8,
}

#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Ipv6FragHdr {
    pub(crate) next_header: u8,
    pub(crate) reserved: u8,
    pub(crate) frag_off: [u8; 2],
    pub(crate) id: [u8; 4],
}

#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct TcpHdr {
    pub(crate) src_port: [u8; 2],
    pub(crate) dst_port: [u8; 2],
    pub(crate) seq: [u8; 4],
    pub(crate) ack: [u8; 4],
    pub(crate) doff_flags: [u8; 2],
    pub(crate) window: [u8; 2],
    pub(crate) check: [u8; 2],
    pub(crate) urg_ptr: [u8; 2],
}

#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct UdpHdr {
    pub(crate) src_port: [u8; 2],
    pub(crate) dst_port: [u8; 2],
    pub(crate) len: [u8; 2],
    pub(crate) check: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<EthHdr>() == 14);
const _: () = assert!(core::mem::size_of::<VlanHdr>() == 4);
const _: () = assert!(core::mem::size_of::<Ipv4Hdr>() == 20);
const _: () = assert!(core::mem::size_of::<Ipv6Hdr>() == 40);
const _: () = assert!(core::mem::size_of::<Ipv6FragHdr>() == 8);
const _: () = assert!(core::mem::size_of::<TcpHdr>() == 20);
const _: () = assert!(core::mem::size_of::<UdpHdr>() == 8);

#[inline(always)]
pub(crate) const fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// The fixed part of an ICMP / ICMPv6 message.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct IcmpHdr {
    pub(crate) kind: u8,
    pub(crate) code: u8,
    pub(crate) check: [u8; 2],
    pub(crate) rest: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<IcmpHdr>() == 8);
