//! The flow a parsed packet belongs to: addresses, ports, protocol, and for
//! TCP the flags that drive conntrack.

use aya_ebpf::programs::XdpContext;
use lb_common::maps::{FAMILY_IPV4, FAMILY_IPV6, FlowKey};

use crate::{
    headers::{IPPROTO_TCP, IPPROTO_UDP, Ipv4Hdr, Ipv6Hdr, TcpHdr, UdpHdr},
    maps::FLOW_SCRATCH,
    parse::{Family, Malformed, Packet, Transport},
    ptr::ptr_at,
    words::{set_addr4, set_addr16},
};

pub(crate) use lb_common::conntrack::{TCP_FIN, TCP_RST, TCP_SYN};

/// The packet's 5-tuple as a conntrack key, plus its TCP flags (0 for UDP).
#[derive(Clone, Copy)]
pub(crate) struct PacketFlow {
    pub(crate) key: FlowKey,
    pub(crate) tcp_flags: u8,
}

/// Reads the 5-tuple of a TCP or UDP packet that has its L4 header into
/// this CPU's flow slot; `None` for other packets.
#[inline(always)]
pub(crate) fn read(
    ctx: &XdpContext,
    packet: &Packet,
) -> Result<Option<&'static PacketFlow>, Malformed> {
    let proto = match packet.transport {
        Transport::Tcp => IPPROTO_TCP,
        Transport::Udp => IPPROTO_UDP,
        _ => return Ok(None),
    };
    let Some(family) = packet.ip else {
        return Ok(None);
    };
    let slot = FLOW_SCRATCH.get_ptr_mut(0).ok_or(Malformed)?;
    // SAFETY: this CPU's slot, used by this program run only.
    let flow = unsafe { &mut *slot };
    let key = &mut flow.key;
    // SAFETY (header reads below): ptr_at checked each header is in the frame.
    match family {
        Family::Ipv4 => {
            let ip = ptr_at::<Ipv4Hdr>(ctx, packet.l3_offset)?;
            set_addr4(&mut key.src, unsafe { &(*ip).src });
            set_addr4(&mut key.dst, unsafe { &(*ip).dst });
            key.family = FAMILY_IPV4;
        }
        Family::Ipv6 => {
            let ip = ptr_at::<Ipv6Hdr>(ctx, packet.l3_offset)?;
            set_addr16(&mut key.src, unsafe { &(*ip).src });
            set_addr16(&mut key.dst, unsafe { &(*ip).dst });
            key.family = FAMILY_IPV6;
        }
    }
    key.proto = proto;
    key._pad = [0; 2];
    if proto == IPPROTO_TCP {
        let tcp = ptr_at::<TcpHdr>(ctx, packet.l4_offset)?;
        key.sport = unsafe { (*tcp).src_port };
        key.dport = unsafe { (*tcp).dst_port };
        flow.tcp_flags = unsafe { (*tcp).doff_flags[1] };
    } else {
        let udp = ptr_at::<UdpHdr>(ctx, packet.l4_offset)?;
        key.sport = unsafe { (*udp).src_port };
        key.dport = unsafe { (*udp).dst_port };
        flow.tcp_flags = 0;
    }
    Ok(Some(flow))
}
