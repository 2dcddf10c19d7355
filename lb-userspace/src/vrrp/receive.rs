//! The receive checks of RFC 3768 7.1 and RFC 5798 7.1: what an advert must
//! satisfy before the state machine looks at it, and why one is dropped.

use std::net::{IpAddr, Ipv4Addr};

use super::{
    checksum::{IPPROTO_VRRP, internet_checksum, vrrp_v3_checksum},
    packet::{Advert, Auth, DecodeError, Family, Version},
    params::InstanceParams,
};

/// An advert as it comes off a raw socket. For IPv4 the socket returns the
/// IP header too ([`Received::from_ipv4_packet`] splits it); for IPv6 the
/// kernel strips the header and the I/O layer takes source, destination and
/// hop limit from ancillary data (`IPV6_RECVPKTINFO`, `IPV6_RECVHOPLIMIT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl_or_hop_limit: u8,
    /// The VRRP message.
    pub payload: &'a [u8],
}

/// RFC 5798 5.1.1.3 and 5.1.2.3: sent with TTL / hop limit 255, so a
/// packet that crossed a router (and lost one) is recognisable.
pub const VRRP_TTL: u8 = 255;

impl<'a> Received<'a> {
    /// Splits a raw IPv4 packet (header included) into a `Received`. Checks
    /// what the payload's meaning depends on: version, header length, total
    /// length, header checksum, protocol 112, no fragment.
    pub fn from_ipv4_packet(packet: &'a [u8]) -> Result<Self, DropReason> {
        let Some(fixed) = packet.first_chunk::<20>() else {
            return Err(DropReason::Malformed);
        };
        if fixed[0] >> 4 != 4 {
            return Err(DropReason::Malformed);
        }
        // Header length from the header, never assumed 20 (options).
        let header_len = usize::from(fixed[0] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if header_len < 20 || total_len < header_len || total_len > packet.len() {
            return Err(DropReason::Malformed);
        }
        let fragment = u16::from_be_bytes([fixed[6], fixed[7]]);
        // More-fragments flag or an offset: only part of an advert.
        if fragment & 0x3fff != 0 {
            return Err(DropReason::Malformed);
        }
        if fixed[9] != IPPROTO_VRRP {
            return Err(DropReason::Protocol);
        }
        if internet_checksum(&packet[..header_len]) != 0 {
            return Err(DropReason::Malformed);
        }
        let src = Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]);
        let dst = Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]);
        Ok(Self {
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            ttl_or_hop_limit: fixed[8],
            // Bytes past the total length are link-layer padding.
            payload: &packet[header_len..total_len],
        })
    }
}

/// Why a received advert was dropped. Each has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    #[error("malformed packet (IP header or VRRP layout)")]
    Malformed,
    #[error("IP protocol is not VRRP (112)")]
    Protocol,
    #[error("source or destination is not of the instance's address family")]
    Family,
    #[error("sent from this node's own address")]
    OwnAddress,
    #[error("source is not a configured unicast peer")]
    UnknownPeer,
    #[error(
        "TTL / hop limit too low (255 expected, or unicast_min_ttl from unicast peers): the \
         advert crossed a router or was forged; routed unicast peers need unicast_min_ttl"
    )]
    Ttl,
    #[error("VRRP version differs from the instance's")]
    Version,
    #[error("packet type is not advertisement")]
    Type,
    #[error("bad checksum")]
    Checksum,
    #[error("VRID is not this instance's")]
    Vrid,
    #[error("authentication type differs from the instance's")]
    AuthType,
    #[error("authentication password does not match")]
    AuthPassword,
    #[error("advertisement interval differs from the instance's")]
    Interval,
    #[error("virtual address list differs from the instance's")]
    AddressList,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 14] = [
        Self::Malformed,
        Self::Protocol,
        Self::Family,
        Self::OwnAddress,
        Self::UnknownPeer,
        Self::Ttl,
        Self::Version,
        Self::Type,
        Self::Checksum,
        Self::Vrid,
        Self::AuthType,
        Self::AuthPassword,
        Self::Interval,
        Self::AddressList,
    ];

    /// Position in [`DropReason::ALL`], for per-reason arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short stable name for metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Protocol => "protocol",
            Self::Family => "family",
            Self::OwnAddress => "own_address",
            Self::UnknownPeer => "unknown_peer",
            Self::Ttl => "ttl",
            Self::Version => "version",
            Self::Type => "type",
            Self::Checksum => "checksum",
            Self::Vrid => "vrid",
            Self::AuthType => "auth_type",
            Self::AuthPassword => "auth_password",
            Self::Interval => "interval",
            Self::AddressList => "address_list",
        }
    }
}

impl From<DecodeError> for DropReason {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Version(_) | DecodeError::V2OverIpv6 => Self::Version,
            DecodeError::Type(_) => Self::Type,
            DecodeError::TooShort { .. } | DecodeError::Length { .. } => Self::Malformed,
        }
    }
}

/// An advert that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub advert: Advert,
    /// RFC 5798 7.1: the address owner's advert is processed even when its
    /// address list differs from ours; this says it did.
    pub owner_address_mismatch: bool,
}

/// Applies the receive checks, in the RFCs' order, for an instance with
/// `params` whose own address is `own`.
pub fn check(
    params: &InstanceParams,
    own: Option<IpAddr>,
    rx: &Received<'_>,
) -> Result<Accepted, DropReason> {
    if Family::of(rx.src) != params.family || Family::of(rx.dst) != params.family {
        return Err(DropReason::Family);
    }
    // Our own advert looped back (multicast loop, or a peer list that
    // includes us): not another router.
    if own == Some(rx.src) {
        return Err(DropReason::OwnAddress);
    }
    // With unicast peers, only they may speak for this VRID (keepalived).
    if !params.unicast_peers.is_empty() && !params.unicast_peers.contains(&rx.src) {
        return Err(DropReason::UnknownPeer);
    }
    // RFC 5798 7.1: MUST verify that the IPvX TTL/HL is 255. A unicast
    // peer on a connected subnet is held to that too: the peer list alone
    // lets anyone who spoofs a peer's address from further away in. Routed
    // peers lose one per hop, and the user says how many with
    // `unicast_min_ttl` (keepalived's per-peer `min_ttl`).
    let min_ttl = if params.unicast_peers.is_empty() {
        VRRP_TTL
    } else {
        params.unicast_min_ttl
    };
    if rx.ttl_or_hop_limit < min_ttl {
        return Err(DropReason::Ttl);
    }
    // RFC 5798 7.1: MUST verify the VRRP version; MUST verify that the
    // packet contains the complete VRRP packet.
    if rx
        .payload
        .first()
        .is_some_and(|b| b >> 4 != params.version.number())
    {
        return Err(DropReason::Version);
    }
    let advert = Advert::decode(rx.payload, params.family)?;
    // RFC 3768 7.1 / RFC 5798 7.1: MUST verify the VRRP checksum (v3 over
    // the pseudo-header, RFC 5798 5.2.8).
    let sum_ok = match params.version {
        Version::V2 => internet_checksum(rx.payload) == 0,
        Version::V3 => vrrp_v3_checksum(rx.src, rx.dst, rx.payload) == Some(0),
    };
    if !sum_ok {
        return Err(DropReason::Checksum);
    }
    // RFC 5798 7.1: MUST verify that the VRID is configured on the
    // receiving interface. (It also says an address owner drops every
    // advert; keepalived does not, so two owners by mistake can still
    // elect one.)
    if advert.vrid != params.vrid {
        return Err(DropReason::Vrid);
    }
    if params.version == Version::V2 {
        // RFC 3768 7.1: MUST verify that the Auth Type matches the locally
        // configured one; RFC 2338 5.3.6.1: compare the password.
        if advert.auth.kind != params.auth.kind {
            return Err(DropReason::AuthType);
        }
        if params.auth.kind == Auth::TYPE_PASS && advert.auth.data != params.auth.data {
            return Err(DropReason::AuthPassword);
        }
        // RFC 3768 7.1: MUST verify that the Adver Interval matches the
        // locally configured one.
        if advert.interval != params.advert_interval_wire() {
            return Err(DropReason::Interval);
        }
    } else if advert.interval == 0 {
        // RFC 5798 6.4.2 makes a backup adopt the master's interval; zero
        // would make Master_Down_Interval a bare skew and the backup flap.
        return Err(DropReason::Interval);
    }
    // RFC 5798 7.1: MAY verify the address list; on mismatch, MUST drop
    // unless the sender is the address owner (priority 255). An empty
    // configured list means this instance carries none.
    let mismatch = !same_addresses(&advert.addresses, &params.addresses);
    if mismatch && advert.priority != u8::MAX {
        return Err(DropReason::AddressList);
    }
    Ok(Accepted {
        advert,
        owner_address_mismatch: mismatch,
    })
}

/// Same addresses in any order (keepalived compares as sets too).
fn same_addresses(received: &[IpAddr], configured: &[IpAddr]) -> bool {
    if received.len() != configured.len() {
        return false;
    }
    let mut a = received.to_vec();
    let mut b = configured.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::testing::{params_v2, params_v3};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A v2 advert from 10.200.0.12 with priority 100 as keepalived sends it.
    fn v2_message(priority: u8) -> Vec<u8> {
        let advert = Advert {
            version: Version::V2,
            vrid: 51,
            priority,
            interval: 1,
            auth: Auth::NONE,
            addresses: vec![ip("10.200.0.100")],
            checksum: 0,
        };
        advert.encode(ip("10.200.0.12"), ip("224.0.0.18")).unwrap()
    }

    fn rx(payload: &[u8]) -> Received<'_> {
        Received {
            src: ip("10.200.0.12"),
            dst: ip("224.0.0.18"),
            ttl_or_hop_limit: 255,
            payload,
        }
    }

    /// This node: 10.200.0.11.
    const OWN: Option<IpAddr> = Some(IpAddr::V4(Ipv4Addr::new(10, 200, 0, 11)));

    #[test]
    fn a_good_advert_passes() {
        let msg = v2_message(100);
        let ok = check(&params_v2(), OWN, &rx(&msg)).unwrap();
        assert_eq!(ok.advert.priority, 100);
        assert!(!ok.owner_address_mismatch);
    }

    #[test]
    fn each_rule_has_its_reason() {
        let p = params_v2();
        let msg = v2_message(100);
        let drop = |r: Received<'_>| check(&p, OWN, &r).unwrap_err();

        assert_eq!(
            drop(Received {
                ttl_or_hop_limit: 254,
                ..rx(&msg)
            }),
            DropReason::Ttl
        );
        assert_eq!(
            drop(Received {
                src: ip("10.200.0.11"),
                ..rx(&msg)
            }),
            DropReason::OwnAddress
        );
        assert_eq!(
            drop(Received {
                dst: ip("ff02::12"),
                ..rx(&msg)
            }),
            DropReason::Family
        );
        assert_eq!(drop(rx(&msg[..msg.len() - 1])), DropReason::Malformed);

        let mut bad_sum = msg.clone();
        bad_sum[6] ^= 1;
        assert_eq!(drop(rx(&bad_sum)), DropReason::Checksum);

        let mut v3 = msg.clone();
        v3[0] = 0x31;
        assert_eq!(drop(rx(&v3)), DropReason::Version);
        let mut kind = msg.clone();
        kind[0] = 0x22;
        assert_eq!(drop(rx(&kind)), DropReason::Type);

        let reencode = |f: &dyn Fn(&mut Advert)| {
            let mut advert = Advert::decode(&msg, Family::Ipv4).unwrap();
            f(&mut advert);
            advert.encode(ip("10.200.0.12"), ip("224.0.0.18")).unwrap()
        };
        assert_eq!(drop(rx(&reencode(&|a| a.vrid = 52))), DropReason::Vrid);
        assert_eq!(
            drop(rx(&reencode(&|a| a.interval = 2))),
            DropReason::Interval
        );
        assert_eq!(
            drop(rx(&reencode(&|a| a.auth = Auth::pass(b"x")))),
            DropReason::AuthType
        );
        assert_eq!(
            drop(rx(&reencode(&|a| a.addresses.push(ip("10.200.0.101"))))),
            DropReason::AddressList
        );
        // The address owner's advert goes through despite the list (RFC 5798 7.1).
        let owner = reencode(&|a| {
            a.priority = 255;
            a.addresses = vec![ip("10.9.9.9")];
        });
        assert!(check(&p, OWN, &rx(&owner)).unwrap().owner_address_mismatch);
    }

    #[test]
    fn passwords_are_compared() {
        let mut p = params_v2();
        p.auth = Auth::pass(b"secret1");
        let advert = |auth| {
            Advert {
                version: Version::V2,
                vrid: 51,
                priority: 100,
                interval: 1,
                auth,
                addresses: vec![ip("10.200.0.100")],
                checksum: 0,
            }
            .encode(ip("10.200.0.12"), ip("224.0.0.18"))
            .unwrap()
        };
        let good = advert(Auth::pass(b"secret1"));
        assert!(check(&p, OWN, &rx(&good)).is_ok());
        let bad = advert(Auth::pass(b"secret2"));
        assert_eq!(check(&p, OWN, &rx(&bad)), Err(DropReason::AuthPassword));
        let none = advert(Auth::NONE);
        assert_eq!(check(&p, OWN, &rx(&none)), Err(DropReason::AuthType));
    }

    #[test]
    fn v3_checks_the_pseudo_header_and_accepts_other_intervals() {
        let p = params_v3();
        let advert = Advert {
            version: Version::V3,
            vrid: 51,
            priority: 100,
            interval: 250,
            auth: Auth::NONE,
            addresses: vec![ip("10.200.0.100")],
            checksum: 0,
        };
        let msg = advert.encode(ip("10.200.0.12"), ip("224.0.0.18")).unwrap();
        assert_eq!(check(&p, OWN, &rx(&msg)).unwrap().advert.interval, 250);
        // The same bytes to another destination do not verify.
        let elsewhere = Received {
            dst: ip("224.0.0.19"),
            ..rx(&msg)
        };
        assert_eq!(check(&p, OWN, &elsewhere), Err(DropReason::Checksum));
        // An interval of 0 cannot be learnt; encode refuses it, so patch the
        // bytes and fix the checksum by hand.
        let mut zero = msg.clone();
        zero[4..8].copy_from_slice(&[0, 0, 0, 0]);
        let sum = vrrp_v3_checksum(ip("10.200.0.12"), ip("224.0.0.18"), &zero).unwrap();
        zero[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(check(&p, OWN, &rx(&zero)), Err(DropReason::Interval));
    }

    #[test]
    fn unicast_admits_only_peers() {
        let mut p = params_v2();
        p.unicast_peers = vec![ip("10.200.0.12")];
        let msg = v2_message(100);
        let peer = Received {
            dst: ip("10.200.0.11"),
            ..rx(&msg)
        };
        assert!(check(&p, OWN, &peer).is_ok());
        let stranger = Received {
            src: ip("10.200.0.13"),
            ..peer
        };
        assert_eq!(check(&p, OWN, &stranger), Err(DropReason::UnknownPeer));
    }

    #[test]
    fn a_connected_unicast_peer_spoofed_from_afar_is_dropped_for_its_ttl() {
        // Someone routed to us sends with the peer's address: TTL 64 (or
        // anything below 255) cannot come from the connected peer.
        let mut p = params_v2();
        p.unicast_peers = vec![ip("10.200.0.12")];
        let msg = v2_message(200);
        let spoofed = Received {
            ttl_or_hop_limit: 64,
            dst: ip("10.200.0.11"),
            ..rx(&msg)
        };
        assert_eq!(check(&p, OWN, &spoofed), Err(DropReason::Ttl));
        let one_hop = Received {
            ttl_or_hop_limit: 254,
            ..spoofed
        };
        assert_eq!(check(&p, OWN, &one_hop), Err(DropReason::Ttl));
    }

    #[test]
    fn routed_unicast_peers_pass_down_to_the_configured_ttl() {
        let mut p = params_v2();
        p.unicast_peers = vec![ip("10.200.0.12")];
        p.unicast_min_ttl = 250;
        let msg = v2_message(100);
        let at = |ttl| Received {
            ttl_or_hop_limit: ttl,
            dst: ip("10.200.0.11"),
            ..rx(&msg)
        };
        assert!(check(&p, OWN, &at(250)).is_ok());
        assert!(check(&p, OWN, &at(255)).is_ok());
        assert_eq!(check(&p, OWN, &at(249)), Err(DropReason::Ttl));
        // Multicast stays at 255 whatever the unicast setting says.
        p.unicast_peers.clear();
        assert_eq!(check(&p, OWN, &rx(&msg)).map(|_| ()), Ok(()));
        let multicast_routed = Received {
            ttl_or_hop_limit: 250,
            ..rx(&msg)
        };
        assert_eq!(check(&p, OWN, &multicast_routed), Err(DropReason::Ttl));
    }

    #[test]
    fn ipv4_packets_split_into_header_fields_and_payload() {
        // Frame 1 of vrrp-v2-multicast.pcap, without the Ethernet header.
        let packet = [
            0x45, 0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xcf, 0xbf, 10, 200, 0, 11,
            224, 0, 0, 18, 0x21, 0x33, 0x96, 0x01, 0x00, 0x01, 0x3d, 0x9e, 10, 200, 0, 100, 0, 0,
            0, 0, 0, 0, 0, 0,
        ];
        let r = Received::from_ipv4_packet(&packet).unwrap();
        assert_eq!(r.src, ip("10.200.0.11"));
        assert_eq!(r.dst, ip("224.0.0.18"));
        assert_eq!(r.ttl_or_hop_limit, 255);
        assert_eq!(r.payload, &packet[20..]);
        // Link-layer padding after the total length is not payload.
        let mut padded = packet.to_vec();
        padded.extend([0; 6]);
        assert_eq!(
            Received::from_ipv4_packet(&padded).unwrap().payload,
            &packet[20..]
        );

        let mut tcp = packet;
        tcp[9] = 6;
        assert_eq!(Received::from_ipv4_packet(&tcp), Err(DropReason::Protocol));
        let mut bad_sum = packet;
        bad_sum[11] ^= 1;
        assert_eq!(
            Received::from_ipv4_packet(&bad_sum),
            Err(DropReason::Malformed)
        );
        let mut fragment = packet;
        fragment[6] = 0x20;
        assert_eq!(
            Received::from_ipv4_packet(&fragment),
            Err(DropReason::Malformed)
        );
        assert_eq!(
            Received::from_ipv4_packet(&packet[..30]),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn drop_reasons_index_their_position() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }
}
