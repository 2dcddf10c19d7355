//! The Internet checksum (RFC 1071) and the pseudo-headers VRRPv3 adds to it.
//!
//! VRRPv2 sums the VRRP message alone (RFC 3768 5.3.8); VRRPv3 also sums a
//! pseudo-header of source, destination, length and protocol (RFC 5798
//! 5.2.8), so the same advert has a different checksum for each destination.

use std::net::IpAddr;

/// IP protocol number (IPv4) and next header (IPv6) of VRRP (RFC 5798 5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;

/// A running one's-complement sum of 16-bit big-endian words.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    sum: u32,
    /// A byte left over from an odd-length chunk, waiting for its partner.
    pending: Option<u8>,
}

impl Checksum {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes as if appended to everything added before.
    pub fn add(&mut self, mut bytes: &[u8]) -> &mut Self {
        if let Some(high) = self.pending.take() {
            let Some((&low, rest)) = bytes.split_first() else {
                self.pending = Some(high);
                return self;
            };
            self.add_word(u16::from_be_bytes([high, low]));
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(2);
        for word in &mut words {
            self.add_word(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            self.pending = Some(*last);
        }
        self
    }

    fn add_word(&mut self, word: u16) {
        self.sum += u32::from(word);
        // Fold early so the sum never overflows, whatever the length.
        if self.sum > 0xffff {
            self.sum = (self.sum & 0xffff) + (self.sum >> 16);
        }
    }

    /// The checksum: the one's complement of the folded sum. A message
    /// that carries its correct checksum sums to 0 here (RFC 1071 1).
    pub fn finish(&self) -> u16 {
        let mut sum = self.sum;
        if let Some(high) = self.pending {
            // RFC 1071 4.1: an odd trailing byte is padded with a zero.
            sum += u32::from(u16::from_be_bytes([high, 0]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

/// The Internet checksum of `bytes` (RFC 1071).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    Checksum::new().add(bytes).finish()
}

/// The VRRPv3 checksum of `message` sent from `src` to `dst`: the Internet
/// checksum over a pseudo-header and the message (RFC 5798 5.2.8). The IPv4
/// pseudo-header is RFC 768's, the IPv6 one RFC 8200 8.1's. `None` when the
/// two addresses are of different families, or the message is too long for
/// the length field.
///
/// Over a message whose checksum field holds the right value this returns 0;
/// over one whose checksum field is zero, the value to put there.
pub fn vrrp_v3_checksum(src: IpAddr, dst: IpAddr, message: &[u8]) -> Option<u16> {
    let mut sum = Checksum::new();
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let len = u16::try_from(message.len()).ok()?;
            sum.add(&src.octets())
                .add(&dst.octets())
                .add(&[0, IPPROTO_VRRP])
                .add(&len.to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let len = u32::try_from(message.len()).ok()?;
            sum.add(&src.octets())
                .add(&dst.octets())
                .add(&len.to_be_bytes())
                .add(&[0, 0, 0, IPPROTO_VRRP]);
        }
        _ => return None,
    }
    Some(sum.add(message).finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums_to_the_documented_value() {
        // RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&bytes), !0xddf2);
    }

    #[test]
    fn chunked_and_odd_length_input_sums_like_one_buffer() {
        let bytes: Vec<u8> = (0..=250u8).collect();
        let whole = internet_checksum(&bytes);
        for split in [0, 1, 2, 3, 7, 100, 250, 251] {
            let (a, b) = bytes.split_at(split);
            let mut parts = Checksum::new();
            parts.add(a).add(b);
            assert_eq!(parts.finish(), whole, "split at {split}");
        }
        // Three odd pieces in a row.
        let mut parts = Checksum::new();
        parts
            .add(&bytes[..1])
            .add(&bytes[1..2])
            .add(&bytes[2..5])
            .add(&bytes[5..]);
        assert_eq!(parts.finish(), whole);
    }

    #[test]
    fn a_message_with_its_checksum_sums_to_zero() {
        let mut msg = vec![0x21, 0x33, 0x96, 0x01, 0x00, 0x01, 0, 0, 10, 200, 0, 100];
        msg.extend([0; 8]);
        let c = internet_checksum(&msg);
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet_checksum(&msg), 0);
        // The value keepalived put on the wire for this advert.
        assert_eq!(c, 0x3d9e);
    }

    #[test]
    fn v3_pseudo_header_matches_keepalived_for_ipv4_multicast_and_unicast() {
        let mut msg = vec![0x31, 0x33, 0x96, 0x01, 0x00, 0x64, 0, 0, 10, 200, 0, 100];
        let src: IpAddr = "10.200.0.11".parse().unwrap();
        let group: IpAddr = "224.0.0.18".parse().unwrap();
        let peer: IpAddr = "10.200.0.12".parse().unwrap();
        assert_eq!(vrrp_v3_checksum(src, group, &msg), Some(0x41d9));
        assert_eq!(vrrp_v3_checksum(src, peer, &msg), Some(0x1718));
        msg[6..8].copy_from_slice(&0x1718u16.to_be_bytes());
        assert_eq!(vrrp_v3_checksum(src, peer, &msg), Some(0));
    }

    #[test]
    fn v3_ipv6_pseudo_header_verifies_its_own_checksum() {
        let src: IpAddr = "fe80::1".parse().unwrap();
        let dst: IpAddr = "ff02::12".parse().unwrap();
        let mut msg = vec![0x31, 0x07, 0x64, 0x01, 0x00, 0x64, 0, 0];
        msg.extend("fe80::100".parse::<std::net::Ipv6Addr>().unwrap().octets());
        let c = vrrp_v3_checksum(src, dst, &msg).unwrap();
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(vrrp_v3_checksum(src, dst, &msg), Some(0));
        // A different destination does not verify.
        let other: IpAddr = "fe80::2".parse().unwrap();
        assert_ne!(vrrp_v3_checksum(src, other, &msg), Some(0));
    }

    #[test]
    fn mixed_families_have_no_pseudo_header() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(vrrp_v3_checksum(v4, v6, &[0; 8]), None);
    }
}
