//! The flow-sync datagram: a header naming the format version and the
//! sync id, then a batch of flows.
//!
//! ```text
//! header (8 bytes)   "LBFS" | version (1) | sync id (1) | count (u16 BE)
//! entry (60 bytes)   family (1) | protocol (1) | state (1) | 0 (1)
//!                    client port | VIP port | real port | 0 (2 bytes each,
//!                    ports in network byte order)
//!                    client address | VIP | real address (16 bytes each;
//!                    IPv4 in the first 4, the rest zero)
//! ```
//!
//! Flows are named by addresses only: the program's service and backend
//! ids are local to each balancer, so the receiver translates them back
//! to its own (`super::ids`). A datagram is taken whole or not at all:
//! anything malformed, truncated, of another version or sync id is refused
//! with the reason, which the receiver counts.

use lb_common::maps::{
    FAMILY_IPV4, FAMILY_IPV6, FLOW_CLOSE, FLOW_ESTABLISHED, FLOW_FIN, FLOW_SYN, FLOW_UDP,
    FlowEvent, FlowKey,
};
use thiserror::Error;

const MAGIC: [u8; 4] = *b"LBFS";
/// The only format there is so far.
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
pub const ENTRY_LEN: usize = 60;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Why a datagram was refused.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("shorter than a header ({0} bytes)")]
    Short(usize),
    #[error("not a flow-sync datagram (bad magic)")]
    Magic,
    #[error("format version {0}, this lbd reads version {VERSION}")]
    Version(u8),
    #[error("sync id {got}, this node's is {want}")]
    WrongId { got: u8, want: u8 },
    #[error("says {count} entries but carries {len} bytes")]
    Length { count: usize, len: usize },
    #[error("entry {0} is not a TCP or UDP flow of IPv4 or IPv6 in a known state")]
    Entry(usize),
}

impl DecodeError {
    /// A stable name, for the counters.
    pub const fn name(self) -> &'static str {
        match self {
            DecodeError::Short(_) => "short",
            DecodeError::Magic => "magic",
            DecodeError::Version(_) => "version",
            DecodeError::WrongId { .. } => "wrong_id",
            DecodeError::Length { .. } => "length",
            DecodeError::Entry(_) => "entry",
        }
    }
}

/// How many entries fit a datagram of at most `max_len` bytes (at least 1).
pub fn entries_per_datagram(max_len: usize) -> usize {
    (max_len.saturating_sub(HEADER_LEN) / ENTRY_LEN).clamp(1, usize::from(u16::MAX))
}

/// Encodes `flows` (at most [`entries_per_datagram`] of them) for `id`.
pub fn encode(id: u8, flows: &[FlowEvent], out: &mut Vec<u8>) {
    out.clear();
    let count = u16::try_from(flows.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(id);
    out.extend_from_slice(&count.to_be_bytes());
    for f in flows.iter().take(usize::from(count)) {
        let k = &f.key;
        out.extend_from_slice(&[k.family, k.proto, f.state, 0]);
        out.extend_from_slice(&k.sport);
        out.extend_from_slice(&k.dport);
        out.extend_from_slice(&f.real_port);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&k.src);
        out.extend_from_slice(&k.dst);
        out.extend_from_slice(&f.real_addr);
    }
}

/// Decodes a datagram meant for sync id `id`.
pub fn decode(id: u8, datagram: &[u8]) -> Result<Vec<FlowEvent>, DecodeError> {
    let Some((header, body)) = datagram.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Short(datagram.len()));
    };
    if header[..4] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if header[4] != VERSION {
        return Err(DecodeError::Version(header[4]));
    }
    if header[5] != id {
        return Err(DecodeError::WrongId {
            got: header[5],
            want: id,
        });
    }
    let count = usize::from(u16::from_be_bytes([header[6], header[7]]));
    if body.len() != count * ENTRY_LEN {
        return Err(DecodeError::Length {
            count,
            len: datagram.len(),
        });
    }
    body.chunks_exact(ENTRY_LEN)
        .enumerate()
        .map(|(i, e)| entry(e).ok_or(DecodeError::Entry(i)))
        .collect()
}

fn entry(e: &[u8]) -> Option<FlowEvent> {
    let &[family, proto, state, 0] = e.get(..4)? else {
        return None;
    };
    let addr = |at: usize| -> Option<[u8; 16]> {
        let a: [u8; 16] = e.get(at..at + 16)?.try_into().ok()?;
        // IPv4 leaves the last 12 bytes zero, as the maps hold it.
        (family == FAMILY_IPV6 || a[4..] == [0; 12]).then_some(a)
    };
    let port = |at: usize| -> Option<[u8; 2]> { e.get(at..at + 2)?.try_into().ok() };
    let known_family = family == FAMILY_IPV4 || family == FAMILY_IPV6;
    let known_state = match proto {
        IPPROTO_TCP => {
            [FLOW_SYN, FLOW_ESTABLISHED, FLOW_FIN, FLOW_CLOSE].contains(&u32::from(state))
        }
        IPPROTO_UDP => u32::from(state) == FLOW_UDP,
        _ => false,
    };
    if !known_family || !known_state || e.get(10..12)? != [0, 0] {
        return None;
    }
    Some(FlowEvent {
        key: FlowKey {
            src: addr(12)?,
            dst: addr(28)?,
            sport: port(4)?,
            dport: port(6)?,
            proto,
            family,
            _pad: [0; 2],
        },
        real_addr: addr(44)?,
        real_port: port(8)?,
        state,
        _pad: [0; 5],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    }

    fn flow(n: u8, proto: u8, state: u32) -> FlowEvent {
        FlowEvent {
            key: FlowKey {
                src: v4([192, 0, 2, n]),
                dst: v4([198, 51, 100, 1]),
                sport: [0xc0, n],
                dport: 80u16.to_be_bytes(),
                proto,
                family: FAMILY_IPV4,
                _pad: [0; 2],
            },
            real_addr: v4([10, 0, 0, n]),
            real_port: 8080u16.to_be_bytes(),
            state: u8::try_from(state).unwrap(),
            _pad: [0; 5],
        }
    }

    fn v6_flow() -> FlowEvent {
        let mut f = flow(9, IPPROTO_TCP, FLOW_ESTABLISHED);
        f.key.family = FAMILY_IPV6;
        f.key.src = "2001:db8::9"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        f.key.dst = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        f.real_addr = "fd00::9".parse::<std::net::Ipv6Addr>().unwrap().octets();
        f
    }

    fn encoded(id: u8, flows: &[FlowEvent]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(id, flows, &mut out);
        out
    }

    #[test]
    fn a_batch_comes_back_as_it_was_sent() {
        let flows = [
            flow(1, IPPROTO_TCP, FLOW_SYN),
            flow(2, IPPROTO_TCP, FLOW_FIN),
            flow(3, IPPROTO_UDP, FLOW_UDP),
            v6_flow(),
        ];
        let bytes = encoded(7, &flows);
        assert_eq!(bytes.len(), HEADER_LEN + 4 * ENTRY_LEN);
        assert_eq!(decode(7, &bytes).unwrap(), flows);
    }

    #[test]
    fn an_empty_batch_is_valid() {
        assert_eq!(decode(0, &encoded(0, &[])).unwrap(), vec![]);
    }

    #[test]
    fn a_datagram_of_another_sync_id_is_refused() {
        let bytes = encoded(1, &[flow(1, IPPROTO_TCP, FLOW_SYN)]);
        assert_eq!(
            decode(2, &bytes),
            Err(DecodeError::WrongId { got: 1, want: 2 })
        );
    }

    #[test]
    fn every_truncation_is_refused_without_a_panic() {
        let bytes = encoded(0, &[flow(1, IPPROTO_TCP, FLOW_SYN), v6_flow()]);
        for len in 0..bytes.len() {
            assert!(
                decode(0, &bytes[..len]).is_err(),
                "{len} of {} bytes accepted",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode(0, &longer),
            Err(DecodeError::Length { .. })
        ));
    }

    #[test]
    fn foreign_and_future_datagrams_are_refused() {
        let mut bytes = encoded(0, &[flow(1, IPPROTO_TCP, FLOW_SYN)]);
        bytes[4] = 2;
        assert_eq!(decode(0, &bytes), Err(DecodeError::Version(2)));
        bytes[0] = b'X';
        assert_eq!(decode(0, &bytes), Err(DecodeError::Magic));
        // An IPVS sync message (version 1 header) is not ours either.
        assert_eq!(
            decode(0, &[0, 0, 0, 40, 0, 0, 0, 0]),
            Err(DecodeError::Magic)
        );
    }

    #[test]
    fn a_hostile_entry_spoils_the_whole_datagram() {
        let good = encoded(
            0,
            &[
                flow(1, IPPROTO_TCP, FLOW_SYN),
                flow(2, IPPROTO_UDP, FLOW_UDP),
            ],
        );
        let entry = |i: usize, at: usize| HEADER_LEN + i * ENTRY_LEN + at;
        let cases: [(&str, usize, u8); 7] = [
            ("family 5", entry(1, 0), 5),
            ("protocol ICMP", entry(1, 1), 1),
            ("state 9", entry(0, 2), 9),
            ("a TCP state for UDP", entry(1, 2), 1),
            ("reserved byte set", entry(0, 3), 1),
            ("reserved port bytes set", entry(0, 11), 1),
            ("IPv4 address with trailing bytes", entry(0, 12 + 15), 1),
        ];
        for (what, at, value) in cases {
            let mut bad = good.clone();
            bad[at] = value;
            assert!(
                matches!(decode(0, &bad), Err(DecodeError::Entry(_))),
                "{what} accepted"
            );
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A cheap fuzz: every datagram built from a simple generator.
        let mut x: u32 = 0x1234_5678;
        for len in 0..400 {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[0]
                })
                .collect();
            if len >= HEADER_LEN {
                bytes[..6].copy_from_slice(b"LBFS\x01\x00");
            }
            let _ = decode(0, &bytes);
        }
    }

    #[test]
    fn a_datagram_holds_as_many_entries_as_fit() {
        assert_eq!(entries_per_datagram(1472), 24);
        assert_eq!(entries_per_datagram(10), 1, "never zero");
        let flows: Vec<FlowEvent> = (0..24).map(|n| flow(n, IPPROTO_TCP, FLOW_SYN)).collect();
        assert!(encoded(0, &flows).len() <= 1472);
    }
}
