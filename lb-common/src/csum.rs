//! Internet checksums (RFC 1071) and their incremental update (RFC 1624),
//! shared by the XDP program's NAT and the tests that check its output.
//!
//! Words are read big-endian and checksum fields are handled as the
//! big-endian `u16` they hold on the wire, so no byte swapping is needed.

/// Folds a 32-bit one's-complement sum into 16 bits.
#[inline(always)]
pub const fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The checksum field after the covered bytes `old` became `new`
/// (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')). `N` is even.
#[inline(always)]
pub fn replace<const N: usize>(check: u16, old: &[u8; N], new: &[u8; N]) -> u16 {
    let mut sum = u32::from(!check);
    let mut i = 0;
    while i + 1 < N {
        sum += u32::from(!u16::from_be_bytes([old[i], old[i + 1]]));
        sum += u32::from(u16::from_be_bytes([new[i], new[i + 1]]));
        i += 2;
    }
    !fold(sum)
}

/// The checksum field after one 16-bit word changed from `old` to `new`.
#[inline(always)]
pub fn replace_u16(check: u16, old: u16, new: u16) -> u16 {
    replace(check, &old.to_be_bytes(), &new.to_be_bytes())
}

/// UDP transmits a computed checksum of zero as all ones (RFC 768), since
/// zero on the wire means "no checksum".
#[inline(always)]
pub const fn udp_nonzero(check: u16) -> u16 {
    if check == 0 { 0xffff } else { check }
}

/// The one's-complement sum of `data` (odd length padded with a zero byte),
/// not yet inverted. For tests and userspace.
pub fn sum(data: &[u8]) -> u32 {
    let mut acc = 0u32;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// The Internet checksum of `data` as it would be stored in a header.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

#[cfg(test)]
mod tests {
    use super::{checksum, fold, replace, replace_u16, sum, udp_nonzero};

    /// An IPv4 header with its checksum field at bytes 10..12.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn with_checksum(mut header: [u8; 20]) -> [u8; 20] {
        header[10..12].fill(0);
        let c = checksum(&header);
        header[10..12].copy_from_slice(&c.to_be_bytes());
        header
    }

    #[test]
    fn full_checksum_matches_the_textbook_example() {
        // The classic 192.168.0.1 -> 192.168.0.199 header sums to 0xb861.
        assert_eq!(checksum(&HEADER), 0xb861);
        assert_eq!(
            fold(sum(&with_checksum(HEADER))),
            0xffff,
            "a valid header sums to all ones"
        );
    }

    #[test]
    fn incremental_update_equals_recomputation() {
        let before = with_checksum(HEADER);
        let old_check = u16::from_be_bytes([before[10], before[11]]);
        let mut after = before;
        after[16..20].copy_from_slice(&[10, 1, 2, 3]);
        let new_dst: [u8; 4] = [10, 1, 2, 3];
        let old_dst: [u8; 4] = before[16..20].try_into().unwrap();
        let updated = replace(old_check, &old_dst, &new_dst);
        assert_eq!(
            updated,
            with_checksum(after)[10..12]
                .try_into()
                .map(u16::from_be_bytes)
                .unwrap()
        );
    }

    #[test]
    fn incremental_update_of_every_word_value_stays_valid() {
        // Exhaustive over one 16-bit field (TTL+protocol), including the
        // 0x0000/0xffff corner cases RFC 1624 was written about.
        let base = with_checksum(HEADER);
        let mut check = u16::from_be_bytes([base[10], base[11]]);
        let mut old = u16::from_be_bytes([base[8], base[9]]);
        for new in (0..=u16::MAX).step_by(7).chain([0, 0xffff]) {
            check = replace_u16(check, old, new);
            old = new;
            let mut h = base;
            h[8..10].copy_from_slice(&new.to_be_bytes());
            h[10..12].copy_from_slice(&check.to_be_bytes());
            assert_eq!(
                fold(sum(&h)),
                0xffff,
                "header invalid after word became {new:#06x}"
            );
        }
    }

    #[test]
    fn udp_never_sends_a_computed_zero() {
        assert_eq!(udp_nonzero(0), 0xffff);
        assert_eq!(udp_nonzero(0x1234), 0x1234);
    }
}
