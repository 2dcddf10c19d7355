//! The IPv4 header keepalived puts in front of an advert (it sends with
//! `IP_HDRINCL`), for an I/O layer that does the same.

use std::net::Ipv4Addr;

use super::{checksum::IPPROTO_VRRP, checksum::internet_checksum, receive::VRRP_TTL};

/// IP precedence "internetwork control" (DSCP CS6), as keepalived sets.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

/// An IPv4 packet carrying the VRRP `message` from `src` to `dst`: TTL 255
/// (RFC 5798 5.1.1.3), protocol 112 (5.1.1.4), no options, no DF, header
/// checksum filled in. `None` when the message is too long for one packet.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, id: u16, message: &[u8]) -> Option<Vec<u8>> {
    let total = u16::try_from(20 + message.len()).ok()?;
    let mut packet = Vec::with_capacity(usize::from(total));
    packet.extend([0x45, TOS_INTERNETWORK_CONTROL]);
    packet.extend(total.to_be_bytes());
    packet.extend(id.to_be_bytes());
    packet.extend([0, 0, VRRP_TTL, IPPROTO_VRRP, 0, 0]);
    packet.extend(src.octets());
    packet.extend(dst.octets());
    let sum = internet_checksum(&packet);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet.extend(message);
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::receive::Received;

    #[test]
    fn matches_the_header_keepalived_sent() {
        // Frame 1 of vrrp-v3-unicast.pcap, without the Ethernet header.
        let expected = [
            0x45, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xa5, 0x06, 10, 200, 0, 11,
            10, 200, 0, 12, 0x31, 0x33, 0x96, 0x01, 0x00, 0x64, 0x17, 0x18, 10, 200, 0, 100,
        ];
        let packet = ipv4_packet(
            Ipv4Addr::new(10, 200, 0, 11),
            Ipv4Addr::new(10, 200, 0, 12),
            1,
            &expected[20..],
        )
        .unwrap();
        assert_eq!(packet, expected);
        assert_eq!(
            Received::from_ipv4_packet(&packet).unwrap().payload,
            &expected[20..]
        );
    }
}
