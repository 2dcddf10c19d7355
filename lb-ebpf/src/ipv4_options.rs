//! IPv4 options of a packet to a service, judged as the kernel's
//! `ip_options_compile` judges a received packet: a malformed option (a
//! length under 2 or running past the header, a bad record-route or
//! timestamp pointer, a repeated one) drops the packet; an unknown but
//! well-formed option does not.
//!
//! Loose and strict source routes (LSRR, SSRR) are dropped rather than
//! stripped: Linux drops them on input unless `accept_source_route` is
//! set, which it is not by default, and a real server must never learn a
//! route through the balancer from a client.

use aya_ebpf::{macros::map, maps::PerCpuArray, programs::XdpContext};
use lb_common::counters::Counter;

use crate::ptr::ptr_at;

const END: u8 = 0;
const NOP: u8 = 1;
const RR: u8 = 7;
const TIMESTAMP: u8 = 68;
const LSRR: u8 = 131;
const SSRR: u8 = 137;
const ROUTER_ALERT: u8 = 148;
/// Timestamp flags whose entries carry an address too (8 bytes each).
const TS_AND_ADDR: u8 = 1;
const TS_PRESPEC: u8 = 3;

/// Where the walk over one header's options is, kept in map memory: the
/// verifier treats what it reads back from a map as unknown, so every
/// option's outcome meets the others in one state at the top of the loop
/// instead of multiplying the states to verify at each option.
#[repr(C)]
struct OptionWalk {
    /// Offset of the next option.
    at: u32,
    /// `SEEN_RR` and `SEEN_TS`: these may appear once.
    seen: u32,
    /// The options' one's complement sum so far.
    sum: u32,
}

const SEEN_RR: u32 = 1;
const SEEN_TS: u32 = 2;

#[map(name = "OPTION_WALK")]
static OPTION_WALK: PerCpuArray<OptionWalk> = PerCpuArray::with_max_entries(1, 0);

/// The most option bytes an IPv4 header holds (IHL 15).
const MAX_OPTIONS: usize = 40;
const IPV4_HEADER: usize = 20;

/// Checks the options of the IPv4 header at `l3`, `header_len` bytes long
/// (more than 20); returns their one's complement sum for the header
/// checksum, or why the packet is dropped.
///
/// A BPF function of its own, called only for packets with options. Each
/// option is read in place through one bounds-checked pointer: the four
/// bytes at its start hold everything the rules look at (type, length,
/// pointer, timestamp flags), and the L4 header behind the options keeps
/// those reads inside the frame. The position is kept in [`OPTION_WALK`].
#[inline(never)]
pub(crate) fn check(ctx: &XdpContext, l3: usize, header_len: usize) -> Result<u32, Counter> {
    if l3 > 22 || !(IPV4_HEADER..=IPV4_HEADER + MAX_OPTIONS).contains(&header_len) {
        return Err(Counter::BadIpOptions);
    }
    let len = header_len - IPV4_HEADER;
    let start = l3 + IPV4_HEADER;
    let walk = OPTION_WALK.get_ptr_mut(0).ok_or(Counter::BadIpOptions)?;
    // SAFETY: this CPU's slot, used by this run only.
    let walk = unsafe { &mut *walk };
    walk.at = 0;
    walk.seen = 0;
    walk.sum = 0;
    // No early exit from either loop: every iteration ends in the same
    // state (what differs lives in the map), so the verifier checks each
    // iteration once instead of once per way the previous ones went.
    for w in 0..MAX_OPTIONS / 2 {
        if 2 * w < len {
            let Ok(pair) = ptr_at::<[u8; 2]>(ctx, start + 2 * w) else {
                return Err(Counter::BadIpOptions);
            };
            // SAFETY: ptr_at checked both bytes are in the frame.
            walk.sum += u32::from(u16::from_be_bytes(unsafe { *pair }));
        }
    }
    // Each step moves at least one byte forward, so 40 steps reach the end.
    for _ in 0..MAX_OPTIONS {
        // Volatile: read back from the map every time, or the compiler
        // keeps the position in a register and the verifier sees it again.
        // SAFETY: a field of this CPU's slot.
        let at = unsafe { core::ptr::read_volatile(&raw const walk.at) } as usize;
        if at < len && at < MAX_OPTIONS {
            step(ctx, walk, start, at, len)?;
        }
    }
    Ok(walk.sum)
}

/// Judges the option at `at` and moves the walk past it (to the end, at
/// END).
#[inline(always)]
fn step(
    ctx: &XdpContext,
    walk: &mut OptionWalk,
    start: usize,
    at: usize,
    len: usize,
) -> Result<(), Counter> {
    let Ok(option) = ptr_at::<[u8; 4]>(ctx, start + at) else {
        return Err(Counter::BadIpOptions);
    };
    // SAFETY: ptr_at checked the four bytes are in the frame.
    let o = unsafe { *option };
    match o[0] {
        // The rest is padding.
        END => {
            set_at(walk, MAX_OPTIONS);
            return Ok(());
        }
        NOP => {
            set_at(walk, at + 1);
            return Ok(());
        }
        _ => {}
    }
    let left = len - at;
    // No room for the length byte, a length under 2 (it covers the type
    // and itself), or one running past the header.
    let opt_len = usize::from(o[1]);
    if left < 2 || opt_len < 2 || opt_len > left {
        return Err(Counter::BadIpOptions);
    }
    let pointer = if opt_len > 2 { usize::from(o[2]) } else { 0 };
    let flags = if opt_len > 3 { o[3] } else { 0 };
    match o[0] {
        LSRR | SSRR => return Err(Counter::SourceRoute),
        RR => {
            if seen(walk) & SEEN_RR != 0
                || opt_len < 3
                || pointer < 4
                || (pointer <= opt_len && pointer + 3 > opt_len)
            {
                return Err(Counter::BadIpOptions);
            }
            walk.seen |= SEEN_RR;
        }
        TIMESTAMP => {
            if seen(walk) & SEEN_TS != 0 || !timestamp_ok(opt_len, pointer, flags) {
                return Err(Counter::BadIpOptions);
            }
            walk.seen |= SEEN_TS;
        }
        ROUTER_ALERT if opt_len < 4 => return Err(Counter::BadIpOptions),
        _ => {}
    }
    set_at(walk, at + opt_len);
    Ok(())
}

/// The options seen so far, read back from the map.
#[inline(always)]
fn seen(walk: &OptionWalk) -> u32 {
    // SAFETY: a field of this CPU's slot.
    unsafe { core::ptr::read_volatile(&raw const walk.seen) }
}

/// Stores the walk's position (at most 40) for the next step to read back.
#[inline(always)]
fn set_at(walk: &mut OptionWalk, at: usize) {
    #[expect(clippy::cast_possible_truncation, reason = "at most 80")]
    // SAFETY: a field of this CPU's slot.
    unsafe {
        core::ptr::write_volatile(&raw mut walk.at, at as u32);
    };
}

/// The timestamp option's own rules (RFC 791, as `ip_options_compile`).
#[inline(always)]
fn timestamp_ok(opt_len: usize, pointer: usize, flags: u8) -> bool {
    if opt_len < 4 || pointer < 5 {
        return false;
    }
    let kind = flags & 0x0f;
    if pointer <= opt_len {
        // Room left: the next entry must fit.
        let entry = if kind == TS_AND_ADDR || kind == TS_PRESPEC {
            8
        } else {
            4
        };
        return pointer + entry - 1 <= opt_len;
    }
    // Full: the overflow count must not wrap.
    kind == TS_PRESPEC || flags >> 4 != 15
}
