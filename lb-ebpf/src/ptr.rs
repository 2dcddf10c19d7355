//! The one bounds-checked way to look at and change packet bytes.
//!
//! Every header access goes through `ptr_at`, which proves to the verifier
//! that `offset + size_of::<T>()` lies inside the frame.

use aya_ebpf::programs::XdpContext;

use crate::parse::Malformed;

/// A pointer to a `T` at `offset` bytes into the frame, or `Malformed` when
/// the frame is too short to hold it.
#[inline(always)]
pub(crate) fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, Malformed> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return Err(Malformed);
    }
    Ok((start + offset) as *mut T)
}

/// A copy of the `T` at `offset`; headers are small and unaligned-safe to copy.
#[inline(always)]
pub(crate) fn read_at<T: Copy>(ctx: &XdpContext, offset: usize) -> Result<T, Malformed> {
    let p = ptr_at::<T>(ctx, offset)?;
    // SAFETY: ptr_at checked that the whole T lies inside the frame.
    Ok(unsafe { core::ptr::read_unaligned(p) })
}
