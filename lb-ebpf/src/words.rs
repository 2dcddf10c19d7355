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
#[expect(
    clippy::cast_ptr_alignment,
    reason = "dst is 4-byte aligned (see above); src is read unaligned"
)]
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
#[expect(
    clippy::cast_ptr_alignment,
    reason = "dst is 4-byte aligned (see above); src is read unaligned"
)]
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

/// Zeroes all of `dst`, four bytes at a time. `T` must be 4-byte aligned
/// and a multiple of 4 bytes long (checked when compiled).
#[inline(always)]
pub(crate) fn zero<T>(dst: &mut T) {
    const {
        assert!(core::mem::align_of::<T>() >= 4 && core::mem::size_of::<T>().is_multiple_of(4));
    }
    let d = core::ptr::from_mut(dst).cast::<u32>();
    let mut i = 0;
    while i < core::mem::size_of::<T>() / 4 {
        // SAFETY: in bounds and aligned, as the assertion above ensures.
        unsafe { write_volatile(d.add(i), 0) };
        i += 1;
    }
}

/// Writes the 16 bytes of `src` to `dst`, which may be unaligned (packet
/// memory), four bytes at a time.
///
/// # Safety
/// `dst` must point to 16 writable bytes.
#[inline(always)]
#[expect(
    clippy::cast_ptr_alignment,
    reason = "both sides are accessed unaligned"
)]
pub(crate) unsafe fn put_addr16(dst: *mut [u8; 16], src: &[u8; 16]) {
    let d = dst.cast::<u32>();
    let s = src.as_ptr().cast::<u32>();
    // SAFETY: 16 bytes each side (the caller's promise for dst).
    unsafe {
        for i in 0..4 {
            core::ptr::write_unaligned(d.add(i), read_unaligned(s.add(i)));
        }
    }
}

/// `*dst = *src`, four bytes at a time, `T` 4-byte aligned and a multiple
/// of 4 bytes long (checked when compiled), for copies into map or ring
/// memory that must not become a byte-loop `memcpy`.
///
/// # Safety
/// `dst` must point to a writable, aligned `T`.
#[inline(always)]
pub(crate) unsafe fn copy<T>(dst: *mut T, src: &T) {
    const {
        assert!(core::mem::align_of::<T>() >= 4 && core::mem::size_of::<T>().is_multiple_of(4));
    }
    let d = dst.cast::<u32>();
    let s = core::ptr::from_ref(src).cast::<u32>();
    let mut i = 0;
    while i < core::mem::size_of::<T>() / 4 {
        // SAFETY: in bounds and aligned on both sides (the assertion above
        // and the caller's promise).
        unsafe { write_volatile(d.add(i), *s.add(i)) };
        i += 1;
    }
}
