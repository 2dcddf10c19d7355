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

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_loop, bpf_xdp_load_bytes},
    macros::map,
    maps::PerCpuArray,
    programs::XdpContext,
};
use lb_common::counters::Counter;

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

/// The most option bytes an IPv4 header holds (IHL 15).
const MAX_OPTIONS: usize = 40;
const IPV4_HEADER: usize = 20;
/// The copy's room: a power of two at least `MAX_OPTIONS`, so the length
/// handed to `bpf_xdp_load_bytes` can be bounded by a mask (below).
const COPY_ROOM: usize = 64;
/// `OptionWalk::bytes` in 32-bit words.
const WORDS: usize = (COPY_ROOM + 4) / 4;

/// One header's options and where the walk over them is, in map memory:
/// the `bpf_loop` callback finds it there, and the verifier takes what it
/// reads back from a map as unknown, so each step starts from the same
/// state whatever the earlier options were.
#[repr(C)]
struct OptionWalk {
    /// The option bytes, then zeros: the four bytes read at an option's
    /// start stay inside the array, and the padding adds nothing to the
    /// checksum.
    bytes: [u8; COPY_ROOM + 4],
    /// How many of `bytes` are options.
    len: u32,
    /// Offset of the next option.
    at: u32,
    /// `SEEN_RR` and `SEEN_TS`: these may appear once.
    seen: u32,
    /// Why the walk stopped early: `VERDICT_BAD` or `VERDICT_SOURCE_ROUTE`.
    verdict: u32,
}

const SEEN_RR: u32 = 1;
const SEEN_TS: u32 = 2;
const VERDICT_OK: u32 = 0;
const VERDICT_BAD: u32 = 1;
const VERDICT_SOURCE_ROUTE: u32 = 2;

/// `bpf_loop`'s callback verdicts.
const CONTINUE: i64 = 0;
const BREAK: i64 = 1;

#[map(name = "OPTION_WALK")]
static OPTION_WALK: PerCpuArray<OptionWalk> = PerCpuArray::with_max_entries(1, 0);

/// Checks the options of the IPv4 header at `l3`, `header_len` bytes long
/// (more than 20); returns their one's complement sum for the header
/// checksum, or why the packet is dropped.
///
/// A BPF function of its own, called only for packets with options. The
/// options are copied into [`OPTION_WALK`] with `bpf_xdp_load_bytes` and
/// walked by `bpf_loop` (Linux 5.17), whose callback the verifier checks
/// on its own instead of once per unrolled step: an unrolled 40-step walk
/// made the program take seconds to load.
#[inline(never)]
pub(crate) fn check(ctx: &XdpContext, l3: usize, header_len: usize) -> Result<u32, Counter> {
    if !(IPV4_HEADER + 1..=IPV4_HEADER + MAX_OPTIONS).contains(&header_len) {
        return Err(Counter::BadIpOptions);
    }
    let len = header_len - IPV4_HEADER;
    let walk = OPTION_WALK.get_ptr_mut(0).ok_or(Counter::BadIpOptions)?;
    // SAFETY: this CPU's slot, used by this run only.
    let walk = unsafe { &mut *walk };
    // Word by word, and volatile: a plain assignment becomes a memset call
    // BPF has not, and the loads of the sum below must not be moved past
    // bpf_loop (they were, and held 40 bytes on the stack across it).
    // `bytes` starts the struct, which u32 fields align to 4.
    let words = core::ptr::from_mut(walk).cast::<u32>();
    for w in 0..WORDS {
        // SAFETY: `bytes` holds WORDS words at the start of the struct.
        unsafe { core::ptr::write_volatile(words.add(w), 0) };
    }
    #[expect(clippy::cast_possible_truncation, reason = "at most 40 and 1,500")]
    let (len32, start) = (len as u32, (l3 + IPV4_HEADER) as u32);
    let copy_len = masked_len(&mut walk.len, len32);
    // SAFETY: the destination is this CPU's slot, with room for
    // `copy_len` (1 to 64) bytes; the helper checks the source lies in the
    // frame.
    let copied = unsafe { bpf_xdp_load_bytes(ctx.ctx, start, words.cast::<c_void>(), copy_len) };
    if copied != 0 {
        return Err(Counter::BadIpOptions);
    }
    // The one's complement sum of the 16-bit words, two per 32-bit word
    // (zeros past the options add nothing).
    let mut sum = 0u32;
    for w in 0..WORDS {
        // SAFETY: as above.
        let word = u32::from_be(unsafe { core::ptr::read_volatile(words.add(w)) });
        sum += (word >> 16) + (word & 0xffff);
    }
    walk.at = 0;
    walk.seen = 0;
    walk.verdict = VERDICT_OK;
    // Each step moves at least one byte forward, so 40 steps reach the end.
    #[expect(clippy::cast_possible_truncation, reason = "40")]
    // SAFETY: `step` has the callback signature bpf_loop expects; it needs
    // no context of ours (it finds the walk in the map).
    let looped = unsafe {
        bpf_loop(
            MAX_OPTIONS as u32,
            step as *mut c_void,
            core::ptr::null_mut(),
            0,
        )
    };
    if looped < 0 {
        return Err(Counter::BadIpOptions);
    }
    match walk.verdict {
        VERDICT_OK => Ok(sum),
        VERDICT_SOURCE_ROUTE => Err(Counter::SourceRoute),
        _ => Err(Counter::BadIpOptions),
    }
}

/// `len` (1 to 40), as the verifier can see it is 1 to 64: stored in
/// `slot` and read back (volatile, so the compiler cannot fold it into the
/// range check above), then masked. Linux 6.1's verifier does not learn a
/// lower bound of 1 from the compiled range check, and the helper refuses
/// a length that may be 0.
#[inline(always)]
fn masked_len(slot: &mut u32, len: u32) -> u32 {
    // SAFETY: a field of this CPU's slot.
    unsafe { core::ptr::write_volatile(slot, len) };
    // SAFETY: as above.
    let back = unsafe { core::ptr::read_volatile(slot) };
    #[expect(clippy::cast_possible_truncation, reason = "64")]
    let mask = COPY_ROOM as u32 - 1;
    (back.wrapping_sub(1) & mask) + 1
}

/// One step of the walk, as `bpf_loop`'s callback: judges the option at
/// the walk's position and moves past it; breaks at the end of the
/// options, at END, or with a verdict.
#[inline(never)]
extern "C" fn step(_index: u32, _ctx: *mut c_void) -> i64 {
    let Some(walk) = OPTION_WALK.get_ptr_mut(0) else {
        return BREAK;
    };
    // SAFETY: this CPU's slot, used by this run only.
    let walk = unsafe { &mut *walk };
    let (at, len) = (walk.at as usize, walk.len as usize);
    if at >= len || at >= MAX_OPTIONS || len > MAX_OPTIONS {
        return BREAK;
    }
    match judge(walk, at, len) {
        Ok(Some(next)) => {
            #[expect(clippy::cast_possible_truncation, reason = "at most 80")]
            {
                walk.at = next as u32;
            }
            CONTINUE
        }
        Ok(None) => BREAK,
        Err(verdict) => {
            walk.verdict = verdict;
            BREAK
        }
    }
}

/// Judges the option at `at` (below `len`, at most 40): the offset of the
/// next one, `None` at END, or a verdict.
#[inline(always)]
fn judge(walk: &mut OptionWalk, at: usize, len: usize) -> Result<Option<usize>, u32> {
    let o = [
        walk.bytes[at],
        walk.bytes[at + 1],
        walk.bytes[at + 2],
        walk.bytes[at + 3],
    ];
    match o[0] {
        // The rest is padding.
        END => return Ok(None),
        NOP => return Ok(Some(at + 1)),
        _ => {}
    }
    let left = len - at;
    // No room for the length byte, a length under 2 (it covers the type
    // and itself), or one running past the header.
    let opt_len = usize::from(o[1]);
    if left < 2 || opt_len < 2 || opt_len > left {
        return Err(VERDICT_BAD);
    }
    let pointer = if opt_len > 2 { usize::from(o[2]) } else { 0 };
    let flags = if opt_len > 3 { o[3] } else { 0 };
    match o[0] {
        LSRR | SSRR => return Err(VERDICT_SOURCE_ROUTE),
        RR => {
            if walk.seen & SEEN_RR != 0
                || opt_len < 3
                || pointer < 4
                || (pointer <= opt_len && pointer + 3 > opt_len)
            {
                return Err(VERDICT_BAD);
            }
            walk.seen |= SEEN_RR;
        }
        TIMESTAMP => {
            if walk.seen & SEEN_TS != 0 || !timestamp_ok(opt_len, pointer, flags) {
                return Err(VERDICT_BAD);
            }
            walk.seen |= SEEN_TS;
        }
        ROUTER_ALERT if opt_len < 4 => return Err(VERDICT_BAD),
        _ => {}
    }
    Ok(Some(at + opt_len))
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
