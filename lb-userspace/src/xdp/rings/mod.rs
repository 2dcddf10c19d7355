//! Building a service's ring of backend ids from its members and scheduler.
//!
//! The XDP program only indexes rings; all scheduling policy lives here:
//!
//! - `rr` and `wrr`: the ring is one cycle of the scheduling *sequence*; each
//!   CPU walks it with its own position counter (`ring[pos % ring_len]`).
//! - `mh`: the ring is a Maglev lookup table of exactly [`RING_SIZE`] slots,
//!   indexed by `flow_hash(key) % RING_SIZE`.
//!
//! A member with weight 0 never appears in a ring: that is how keepalived's
//! `inhibit_on_failure` (IPVS "quiescent") stops new flows while conntrack
//! keeps the established ones on their backend. An empty ring (`ring_len` 0)
//! makes the program use the service's sorry server.
//!
//! Everything is pure and deterministic (no `RandomState`, no I/O), so two
//! balancers configured alike build byte-identical rings.

mod maglev;
mod wrr;

#[cfg(test)]
mod tests;

use lb_common::maps::{RING_SIZE, SCHED_MH, SCHED_RR, SCHED_WRR};

use self::{maglev::maglev, wrr::weighted_round_robin};

/// One backend as the ring builder sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingMember {
    /// Backend id (index into the `BACKENDS` map); what the ring stores.
    pub id: u32,
    /// Current weight; 0 takes no new flows.
    pub weight: u32,
    /// Stable bytes naming the backend (e.g. address and port). Maglev derives
    /// the backend's slot preferences from them, so they must not depend on
    /// anything local to this balancer (such as `id`).
    pub identity: Vec<u8>,
}

/// How new flows are spread over a service's backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingScheduler {
    /// IPVS `rr`.
    RoundRobin,
    /// IPVS `wrr`.
    WeightedRoundRobin,
    /// Maglev consistent hashing (`mh`).
    Maglev,
}

impl RingScheduler {
    /// The `SCHED_*` value the XDP program expects in `Service::scheduler`.
    pub const fn code(self) -> u32 {
        match self {
            Self::RoundRobin => SCHED_RR,
            Self::WeightedRoundRobin => SCHED_WRR,
            Self::Maglev => SCHED_MH,
        }
    }
}

/// `RING_SIZE` as a `usize` and as a `u64`, for indexing and arithmetic.
const M: usize = RING_SIZE as usize;
const M64: u64 = RING_SIZE as u64;

/// Builds the ring for `members` under `scheduler`.
///
/// Returns an empty ring when no member has a weight above 0. Otherwise:
///
/// - [`RingScheduler::RoundRobin`]: each member with weight > 0 once, in the
///   given order.
/// - [`RingScheduler::WeightedRoundRobin`]: one cycle of the kernel's
///   `ip_vs_wrr` sequence. When that cycle would be longer than
///   [`RING_SIZE`], the weights are first scaled down to fit (proportions
///   kept as closely as rounding allows, no member dropping to 0), so the
///   sequence then follows the scaled weights.
/// - [`RingScheduler::Maglev`]: a table of exactly [`RING_SIZE`] slots in which
///   each member holds a share of slots proportional to its weight. The result
///   does not depend on the order of `members`.
///
/// A ring cannot hold more than [`RING_SIZE`] distinct members; callers are
/// bounded far below that by `MAX_BACKENDS`. Should more be given anyway,
/// `rr` and `wrr` keep the first [`RING_SIZE`] in the given order and Maglev
/// the first [`RING_SIZE`] in identity order, rather than failing.
pub fn build_ring(scheduler: RingScheduler, members: &[RingMember]) -> Vec<u32> {
    let mut live: Vec<&RingMember> = members.iter().filter(|m| m.weight > 0).collect();
    if scheduler == RingScheduler::Maglev {
        // Sort before capping, so neither the table nor the members kept
        // depend on the caller's order.
        live.sort_by(|a, b| a.identity.cmp(&b.identity).then(a.id.cmp(&b.id)));
    }
    live.truncate(M);
    match scheduler {
        RingScheduler::RoundRobin => live.iter().map(|m| m.id).collect(),
        RingScheduler::WeightedRoundRobin => weighted_round_robin(&live),
        RingScheduler::Maglev => maglev(&live),
    }
}
