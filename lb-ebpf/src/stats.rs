//! Per-CPU counters: each CPU bumps its own slot, userspace sums them, so the
//! fast path never contends on a shared cache line.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use lb_common::{counters::Counter, maps::Stats};

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

#[inline(always)]
pub(crate) fn count(counter: Counter) {
    add(counter, 1);
}

#[inline(always)]
pub(crate) fn add(counter: Counter, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter.index()) {
        // SAFETY: the slot belongs to this CPU and the program is not
        // re-entered on it while it runs.
        unsafe { *slot += n };
    }
}

/// Which way a packet crossed the balancer, for the traffic counters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Client -> backend.
    In,
    /// Backend -> client.
    Out,
}

/// Adds one packet of `bytes` (and a connection if `new_flow`) to the
/// counters of a service or backend.
#[inline(always)]
pub(crate) fn traffic(
    map: &PerCpuArray<Stats>,
    id: u32,
    direction: Direction,
    bytes: u64,
    new_flow: bool,
) {
    let Some(s) = map.get_ptr_mut(id) else {
        return;
    };
    // SAFETY: this CPU's own slot.
    unsafe {
        if direction == Direction::In {
            (*s).packets_in += 1;
            (*s).bytes_in += bytes;
        } else {
            (*s).packets_out += 1;
            (*s).bytes_out += bytes;
        }
        if new_flow {
            (*s).connections += 1;
        }
    }
}
