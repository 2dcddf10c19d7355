//! Per-CPU counters: each CPU bumps its own slot, userspace sums them, so the
//! fast path never contends on a shared cache line.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use lb_common::counters::Counter;

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
