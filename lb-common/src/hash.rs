//! The flow hash, shared by the XDP program and the daemon.
//!
//! MurmurHash3 (x86, 32-bit) over 4-byte little-endian words. It is fixed and
//! unseeded on purpose: two balancers with the same configuration must map
//! the same flow to the same ring slot without sharing any state (Maglev).

use crate::maps::FlowKey;

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[inline(always)]
const fn mix(h: u32, k: u32) -> u32 {
    let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline(always)]
const fn finish(mut h: u32, len: u32) -> u32 {
    h ^= len;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[inline(always)]
const fn word(b: &[u8; 16], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Hash of a flow's 5-tuple (addresses, ports, protocol) as seen from the
/// client: the same for every packet of the flow.
#[inline(always)]
pub const fn flow_hash(key: &FlowKey) -> u32 {
    let mut h = 0;
    h = mix(h, word(&key.src, 0));
    h = mix(h, word(&key.src, 4));
    h = mix(h, word(&key.src, 8));
    h = mix(h, word(&key.src, 12));
    h = mix(h, word(&key.dst, 0));
    h = mix(h, word(&key.dst, 4));
    h = mix(h, word(&key.dst, 8));
    h = mix(h, word(&key.dst, 12));
    h = mix(
        h,
        u32::from_le_bytes([key.sport[0], key.sport[1], key.dport[0], key.dport[1]]),
    );
    h = mix(h, key.proto as u32);
    finish(h, 40)
}

/// MurmurHash3 of arbitrary bytes with a seed, for userspace (e.g. Maglev's
/// per-backend offset and skip).
pub fn murmur3(seed: u32, bytes: &[u8]) -> u32 {
    let mut h = seed;
    let mut chunks = bytes.chunks_exact(4);
    for c in &mut chunks {
        h = mix(h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut k = 0u32;
        for (i, b) in rest.iter().enumerate() {
            k |= (*b as u32) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    finish(h, bytes.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::{flow_hash, murmur3};
    use crate::maps::FlowKey;

    #[test]
    fn murmur3_matches_the_reference_vectors() {
        // Published MurmurHash3_x86_32 test vectors.
        assert_eq!(murmur3(0, b""), 0);
        assert_eq!(murmur3(1, b""), 0x514e_28b7);
        assert_eq!(murmur3(0, b"test"), 0xba6b_d213);
        assert_eq!(murmur3(0x9747_b28c, b"Hello, world!"), 0x2488_4cba);
        assert_eq!(
            murmur3(0, b"The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723
        );
    }

    #[test]
    fn flow_hash_is_the_murmur3_of_the_packed_tuple() {
        let key = FlowKey {
            src: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dst: [10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            sport: 40000u16.to_be_bytes(),
            dport: 80u16.to_be_bytes(),
            proto: 6,
            family: 4,
            _pad: [0; 2],
        };
        let mut packed = [0u8; 40];
        packed[..16].copy_from_slice(&key.src);
        packed[16..32].copy_from_slice(&key.dst);
        packed[32..34].copy_from_slice(&key.sport);
        packed[34..36].copy_from_slice(&key.dport);
        packed[36] = 6;
        assert_eq!(flow_hash(&key), murmur3(0, &packed));
    }

    #[test]
    fn flow_hash_depends_on_every_field() {
        let base = FlowKey {
            src: [1; 16],
            dst: [2; 16],
            sport: [0, 1],
            dport: [0, 2],
            proto: 17,
            family: 6,
            _pad: [0; 2],
        };
        let h = flow_hash(&base);
        let mut k = base;
        k.src[15] ^= 1;
        assert_ne!(flow_hash(&k), h);
        let mut k = base;
        k.dst[0] ^= 1;
        assert_ne!(flow_hash(&k), h);
        let mut k = base;
        k.sport[1] ^= 1;
        assert_ne!(flow_hash(&k), h);
        let mut k = base;
        k.dport[0] ^= 1;
        assert_ne!(flow_hash(&k), h);
        let mut k = base;
        k.proto = 6;
        assert_ne!(flow_hash(&k), h);
    }
}
