//! The VRRP advertisement on the wire: v2 (RFC 3768 5.3) and v3 (RFC 5798
//! 5.2), decoded from and encoded to the VRRP message (the IP payload).
//!
//! Decoding checks only the layout; whether an advert is acceptable for an
//! instance (version, VRID, checksum, authentication...) is `receive`'s job.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use super::checksum::{internet_checksum, vrrp_v3_checksum};

/// Fixed part of both versions: version/type, VRID, priority, count, two
/// bytes of interval (v2: auth type + interval), checksum.
const FIXED_LEN: usize = 8;
/// RFC 3768 5.3.10: v2 ends with 8 bytes of authentication data.
pub const AUTH_DATA_LEN: usize = 8;
/// RFC 5798 5.2.2 / RFC 3768 5.3.2: the only packet type.
const TYPE_ADVERTISEMENT: u8 = 1;
/// RFC 5798 5.2.7: the v3 interval is a 12-bit count of centiseconds.
pub const V3_INTERVAL_MAX: u16 = 0x0fff;

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, whole-second intervals, legacy authentication.
    V2,
    /// RFC 5798: IPv4 and IPv6, centisecond intervals, pseudo-header checksum.
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }

    /// An interval in this version's wire units: v2 whole seconds 1-255
    /// (RFC 3768 5.3.7), v3 centiseconds 1-4095 (RFC 5798 5.2.7). `None`
    /// when the field cannot hold it exactly.
    pub fn interval_to_wire(self, interval: Duration) -> Option<u16> {
        let (unit, max) = match self {
            Self::V2 => (Duration::from_secs(1), u16::from(u8::MAX)),
            Self::V3 => (Duration::from_millis(10), V3_INTERVAL_MAX),
        };
        let units = interval.as_nanos() / unit.as_nanos();
        let exact = interval.as_nanos().is_multiple_of(unit.as_nanos());
        u16::try_from(units)
            .ok()
            .filter(|u| exact && (1..=max).contains(u))
    }

    /// The interval a wire value stands for.
    pub fn interval_from_wire(self, value: u16) -> Duration {
        match self {
            Self::V2 => Duration::from_secs(u64::from(value)),
            Self::V3 => Duration::from_millis(u64::from(value) * 10),
        }
    }
}

/// Address family of an instance: which IP its adverts ride on and which
/// addresses they carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }

    fn address_len(self) -> usize {
        match self {
            Self::Ipv4 => 4,
            Self::Ipv6 => 16,
        }
    }

    /// The VRRP multicast group (RFC 5798 5.1.1.2 and 5.1.2.2).
    pub fn multicast_group(self) -> IpAddr {
        match self {
            Self::Ipv4 => IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
            Self::Ipv6 => IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        }
    }
}

/// VRRPv2 authentication (RFC 3768 5.3.6 and 5.3.10; types 1 and 2 come
/// from RFC 2338, which keepalived still speaks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Auth {
    /// 0 none, 1 simple text password, 2 IPsec AH.
    pub kind: u8,
    pub data: [u8; AUTH_DATA_LEN],
}

impl Auth {
    pub const NONE: Self = Self {
        kind: 0,
        data: [0; AUTH_DATA_LEN],
    };
    pub const TYPE_PASS: u8 = 1;
    pub const TYPE_AH: u8 = 2;

    /// A simple text password: its first 8 bytes, zero-padded, as keepalived
    /// sends it.
    pub fn pass(password: &[u8]) -> Self {
        let mut data = [0; AUTH_DATA_LEN];
        let n = password.len().min(AUTH_DATA_LEN);
        data[..n].copy_from_slice(&password[..n]);
        Self {
            kind: Self::TYPE_PASS,
            data,
        }
    }
}

/// One VRRP advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    /// Virtual router ID (RFC 5798 5.2.3).
    pub vrid: u8,
    /// 0: the master is leaving; 255: the address owner (RFC 5798 5.2.4).
    pub priority: u8,
    /// In wire units: v2 seconds (RFC 3768 5.3.7), v3 centiseconds, 12 bits
    /// (RFC 5798 5.2.7).
    pub interval: u16,
    /// v2 only; v3 has none and encodes without it.
    pub auth: Auth,
    /// The virtual addresses (RFC 5798 5.2.9), all of the message's family.
    pub addresses: Vec<IpAddr>,
    /// As received; `encode` computes its own.
    pub checksum: u16,
}

/// Why bytes are not a VRRP advertisement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{len} bytes is shorter than the 8-byte VRRP header")]
    TooShort { len: usize },
    #[error("VRRP version {0} is neither 2 nor 3")]
    Version(u8),
    #[error("VRRP packet type {0} is not 1 (advertisement)")]
    Type(u8),
    #[error("VRRP version 2 over IPv6 does not exist (RFC 3768 is IPv4 only)")]
    V2OverIpv6,
    #[error("VRRP message is {actual} bytes but its header says {expected}")]
    Length { expected: usize, actual: usize },
}

/// Why an advert cannot be put on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{0} addresses do not fit the 8-bit count field")]
    TooManyAddresses(usize),
    #[error("address {addr} is not of the advert's family ({family:?})")]
    AddressFamily { addr: IpAddr, family: Family },
    #[error("interval {0} does not fit the field (v2: 1-255 s, v3: 1-4095 cs)")]
    Interval(u16),
    #[error("source {src} and destination {dst} are of different families")]
    MixedFamilies { src: IpAddr, dst: IpAddr },
}

impl Advert {
    /// Decodes a VRRP message carried over `family`. The message must be
    /// exactly as long as its address count says (RFC 5798 7.1: "the
    /// complete VRRP packet").
    pub fn decode(message: &[u8], family: Family) -> Result<Self, DecodeError> {
        let Some(fixed) = message.first_chunk::<FIXED_LEN>() else {
            return Err(DecodeError::TooShort { len: message.len() });
        };
        let [
            vers_type,
            vrid,
            priority,
            count,
            int_hi,
            int_lo,
            sum_hi,
            sum_lo,
        ] = *fixed;
        let version = match vers_type >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            other => return Err(DecodeError::Version(other)),
        };
        let kind = vers_type & 0x0f;
        if kind != TYPE_ADVERTISEMENT {
            return Err(DecodeError::Type(kind));
        }
        if version == Version::V2 && family == Family::Ipv6 {
            return Err(DecodeError::V2OverIpv6);
        }
        let addr_len = family.address_len();
        let auth_len = if version == Version::V2 {
            AUTH_DATA_LEN
        } else {
            0
        };
        let expected = FIXED_LEN + usize::from(count) * addr_len + auth_len;
        if message.len() != expected {
            return Err(DecodeError::Length {
                expected,
                actual: message.len(),
            });
        }
        let body = &message[FIXED_LEN..];
        let (addr_bytes, auth_bytes) = body.split_at(usize::from(count) * addr_len);
        let addresses = addr_bytes
            .chunks_exact(addr_len)
            .map(|chunk| match family {
                Family::Ipv4 => {
                    let mut octets = [0; 4];
                    octets.copy_from_slice(chunk);
                    IpAddr::from(octets)
                }
                Family::Ipv6 => {
                    let mut octets = [0; 16];
                    octets.copy_from_slice(chunk);
                    IpAddr::from(octets)
                }
            })
            .collect();
        let (interval, auth) = match version {
            // RFC 3768 5.3.6-5.3.7: auth type, then whole seconds.
            Version::V2 => {
                let mut data = [0; AUTH_DATA_LEN];
                data.copy_from_slice(auth_bytes);
                (u16::from(int_lo), Auth { kind: int_hi, data })
            }
            // RFC 5798 5.2.6-5.2.7: 4 reserved bits, 12 bits of centiseconds.
            Version::V3 => (
                u16::from_be_bytes([int_hi, int_lo]) & V3_INTERVAL_MAX,
                Auth::NONE,
            ),
        };
        Ok(Self {
            version,
            vrid,
            priority,
            interval,
            auth,
            addresses,
            checksum: u16::from_be_bytes([sum_hi, sum_lo]),
        })
    }

    /// The family of the addresses this advert carries; IPv4 when it carries
    /// none and is v2, else the family of `src`.
    fn family(&self, src: IpAddr) -> Family {
        match (self.version, self.addresses.first()) {
            (_, Some(addr)) => Family::of(*addr),
            (Version::V2, None) => Family::Ipv4,
            (Version::V3, None) => Family::of(src),
        }
    }

    /// Encodes the advert for sending from `src` to `dst`, with its checksum:
    /// v2 over the message (RFC 3768 5.3.8), v3 with the pseudo-header of
    /// `src` and `dst` (RFC 5798 5.2.8). v2 ignores the addresses.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| EncodeError::TooManyAddresses(self.addresses.len()))?;
        let family = self.family(src);
        if let Some(addr) = self
            .addresses
            .iter()
            .find(|a| Family::of(**a) != family || (self.version == Version::V2 && a.is_ipv6()))
        {
            return Err(EncodeError::AddressFamily {
                addr: *addr,
                family,
            });
        }
        let (int_hi, int_lo) = match self.version {
            Version::V2 => {
                let secs = u8::try_from(self.interval)
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or(EncodeError::Interval(self.interval))?;
                (self.auth.kind, secs)
            }
            Version::V3 => {
                if self.interval == 0 || self.interval > V3_INTERVAL_MAX {
                    return Err(EncodeError::Interval(self.interval));
                }
                let [hi, lo] = self.interval.to_be_bytes();
                (hi, lo)
            }
        };
        let mut out = Vec::with_capacity(FIXED_LEN + 16 * self.addresses.len() + AUTH_DATA_LEN);
        let vers_type = (self.version.number() << 4) | TYPE_ADVERTISEMENT;
        out.extend([
            vers_type,
            self.vrid,
            self.priority,
            count,
            int_hi,
            int_lo,
            0,
            0,
        ]);
        for addr in &self.addresses {
            match addr {
                IpAddr::V4(a) => out.extend(a.octets()),
                IpAddr::V6(a) => out.extend(a.octets()),
            }
        }
        let checksum = match self.version {
            Version::V2 => {
                out.extend(self.auth.data);
                internet_checksum(&out)
            }
            Version::V3 => {
                vrrp_v3_checksum(src, dst, &out).ok_or(EncodeError::MixedFamilies { src, dst })?
            }
        };
        out[6..8].copy_from_slice(&checksum.to_be_bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// keepalived's v2 advert with `auth_pass secret1` (vrrp-v2-multicast-authpass).
    const V2_PASS: [u8; 20] = [
        0x21, 0x33, 0x96, 0x01, 0x01, 0x01, 0xcf, 0x51, 10, 200, 0, 100, b's', b'e', b'c', b'r',
        b'e', b't', b'1', 0,
    ];

    #[test]
    fn decodes_a_v2_password_advert() {
        let advert = Advert::decode(&V2_PASS, Family::Ipv4).unwrap();
        assert_eq!(
            advert,
            Advert {
                version: Version::V2,
                vrid: 51,
                priority: 150,
                interval: 1,
                auth: Auth::pass(b"secret1"),
                addresses: vec![v4("10.200.0.100")],
                checksum: 0xcf51,
            }
        );
        let bytes = advert.encode(v4("10.200.0.11"), v4("224.0.0.18")).unwrap();
        assert_eq!(bytes, V2_PASS);
    }

    #[test]
    fn decodes_a_v3_advert_and_reencodes_with_the_pseudo_header() {
        let bytes = [
            0x31, 0x33, 0x96, 0x01, 0x00, 0x64, 0x17, 0x18, 10, 200, 0, 100,
        ];
        let advert = Advert::decode(&bytes, Family::Ipv4).unwrap();
        assert_eq!(advert.version, Version::V3);
        assert_eq!(advert.interval, 100);
        assert_eq!(advert.auth, Auth::NONE);
        let unicast = advert.encode(v4("10.200.0.11"), v4("10.200.0.12")).unwrap();
        assert_eq!(unicast, bytes);
        let multicast = advert.encode(v4("10.200.0.11"), v4("224.0.0.18")).unwrap();
        assert_eq!(multicast[6..8], [0x41, 0xd9]);
    }

    #[test]
    fn v3_reserved_bits_are_ignored() {
        let bytes = [0x31, 0x33, 0x96, 0x00, 0xf0, 0x0a, 0, 0];
        let advert = Advert::decode(&bytes, Family::Ipv4).unwrap();
        assert_eq!(advert.interval, 10);
    }

    #[test]
    fn ipv6_advert_round_trips() {
        let advert = Advert {
            version: Version::V3,
            vrid: 7,
            priority: 100,
            interval: 100,
            auth: Auth::NONE,
            addresses: vec![v4("fe80::100"), v4("2001:db8::100")],
            checksum: 0,
        };
        let src = v4("fe80::1");
        let dst = Family::Ipv6.multicast_group();
        let bytes = advert.encode(src, dst).unwrap();
        assert_eq!(bytes.len(), 8 + 32);
        let back = Advert::decode(&bytes, Family::Ipv6).unwrap();
        assert_eq!(back.addresses, advert.addresses);
        assert_eq!(vrrp_v3_checksum(src, dst, &bytes), Some(0));
    }

    #[test]
    fn intervals_convert_to_wire_units_only_when_exact() {
        let v2 = Version::V2;
        let v3 = Version::V3;
        assert_eq!(v2.interval_to_wire(Duration::from_secs(1)), Some(1));
        assert_eq!(v2.interval_to_wire(Duration::from_secs(255)), Some(255));
        assert_eq!(v2.interval_to_wire(Duration::from_secs(256)), None);
        assert_eq!(v2.interval_to_wire(Duration::from_millis(1500)), None);
        assert_eq!(v2.interval_to_wire(Duration::ZERO), None);
        assert_eq!(v3.interval_to_wire(Duration::from_millis(10)), Some(1));
        assert_eq!(
            v3.interval_to_wire(Duration::from_millis(40_950)),
            Some(4095)
        );
        assert_eq!(v3.interval_to_wire(Duration::from_millis(40_960)), None);
        assert_eq!(v3.interval_to_wire(Duration::from_millis(15)), None);
        assert_eq!(v3.interval_from_wire(100), Duration::from_secs(1));
        assert_eq!(v2.interval_from_wire(3), Duration::from_secs(3));
    }

    #[test]
    fn rejects_bad_layouts() {
        assert_eq!(
            Advert::decode(&[0x21, 1], Family::Ipv4),
            Err(DecodeError::TooShort { len: 2 })
        );
        assert_eq!(
            Advert::decode(&[0x41, 1, 1, 0, 0, 1, 0, 0], Family::Ipv4),
            Err(DecodeError::Version(4))
        );
        assert_eq!(
            Advert::decode(&[0x32, 1, 1, 0, 0, 1, 0, 0], Family::Ipv4),
            Err(DecodeError::Type(2))
        );
        assert_eq!(
            Advert::decode(&V2_PASS, Family::Ipv6),
            Err(DecodeError::V2OverIpv6)
        );
        assert_eq!(
            Advert::decode(&V2_PASS[..19], Family::Ipv4),
            Err(DecodeError::Length {
                expected: 20,
                actual: 19
            })
        );
        let mut long = V2_PASS.to_vec();
        long.push(0);
        assert!(matches!(
            Advert::decode(&long, Family::Ipv4),
            Err(DecodeError::Length { .. })
        ));
    }

    #[test]
    fn refuses_to_encode_what_the_fields_cannot_hold() {
        let mut advert = Advert::decode(&V2_PASS, Family::Ipv4).unwrap();
        let (src, dst) = (v4("10.0.0.1"), v4("224.0.0.18"));
        advert.interval = 256;
        assert_eq!(advert.encode(src, dst), Err(EncodeError::Interval(256)));
        advert.interval = 1;
        advert.addresses.push(v4("fe80::1"));
        assert!(matches!(
            advert.encode(src, dst),
            Err(EncodeError::AddressFamily { .. })
        ));
        advert.addresses = vec![v4("10.0.0.1"); 256];
        assert_eq!(
            advert.encode(src, dst),
            Err(EncodeError::TooManyAddresses(256))
        );
        advert.version = Version::V3;
        advert.addresses.clear();
        advert.interval = 4096;
        assert_eq!(advert.encode(src, dst), Err(EncodeError::Interval(4096)));
        advert.interval = 100;
        assert!(matches!(
            advert.encode(src, v4("ff02::12")),
            Err(EncodeError::MixedFamilies { .. })
        ));
    }
}
