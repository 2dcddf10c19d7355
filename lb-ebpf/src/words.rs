//! Address copies done a word at a time, in a way the optimizer cannot fuse
//! back into `memset` / `memcpy` calls.
//!
//! LLVM merges runs of adjacent stores into a memset or memcpy intrinsic,
//! and for BPF those become calls to a byte-at-a-time loop: zeroing one
//! 32-byte key that way cost a fifth of a packet's processing. Volatile
//! word stores are never merged.

use core::ptr::{read_unaligned, write_volatile};

/// `dst` = the IPv4 address `src` followed by 12 zero bytes.
///
/// `dst` must be 4-byte aligned: every address field in `lb_common::maps`
/// is, as their `align` attributes guarantee.
#[inline(always)]
pub(crate) fn set_addr4(dst: &mut [u8; 16], src: &[u8; 4]) {
    let d = dst.as_mut_ptr().cast::<u32>();
    // SAFETY: 16 writable bytes, 4-byte aligned (see above); `src` may be
    // unaligned (packet memory), so it is read unaligned.
    unsafe {
        write_volatile(d, read_unaligned(src.as_ptr().cast::<u32>()));
        write_volatile(d.add(1), 0);
        write_volatile(d.add(2), 0);
        write_volatile(d.add(3), 0);
    }
}

/// `dst` = `src`, 16 bytes; `dst` 4-byte aligned as for [`set_addr4`].
#[inline(always)]
pub(crate) fn set_addr16(dst: &mut [u8; 16], src: &[u8; 16]) {
    let d = dst.as_mut_ptr().cast::<u32>();
    let s = src.as_ptr().cast::<u32>();
    // SAFETY: as in `set_addr4`, four words each side.
    unsafe {
        write_volatile(d, read_unaligned(s));
        write_volatile(d.add(1), read_unaligned(s.add(1)));
        write_volatile(d.add(2), read_unaligned(s.add(2)));
        write_volatile(d.add(3), read_unaligned(s.add(3)));
    }
}
