//! IPVS weighted round-robin as one cycle of the kernel's sequence.

use super::{M64, RingMember};

pub(super) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Greatest common divisor of the (all positive) weights; 1 for none, like
/// `ip_vs_wrr_gcd_weight`.
fn weights_gcd(weights: &[u64]) -> u64 {
    weights.iter().copied().reduce(gcd).unwrap_or(1)
}

/// Entries in one wrr cycle: sum(weight / gcd).
pub(super) fn wrr_cycle_len(weights: &[u64]) -> u64 {
    let di = weights_gcd(weights);
    weights.iter().map(|w| w / di).sum()
}

/// Scales positive weights down so their wrr cycle fits in `cap` entries.
///
/// Each weight becomes `round(w * budget / total)`, at least 1, with the
/// largest `budget` whose result fits: the proportions stay as close as
/// integer weights of that size allow. Needs `weights.len() <= cap` (all ones
/// must fit), which `build_ring` guarantees.
pub(super) fn scale_to_fit(weights: &[u64], cap: u64) -> Vec<u64> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let mut budget = u128::from(cap);
    loop {
        let scaled: Vec<u64> = weights
            .iter()
            .map(|&w| ((2 * u128::from(w) * budget + total) / (2 * total)).max(1) as u64)
            .collect();
        let len = wrr_cycle_len(&scaled);
        if len <= cap || budget <= 1 {
            return scaled;
        }
        // Rounding up and the minimum of 1 overshoot by at most one per
        // member, so shrinking the budget by the overshoot converges in a few
        // rounds.
        let over = u128::from(len - cap);
        budget = budget.saturating_sub(over).max(1);
    }
}

/// One cycle of IPVS weighted round-robin.
///
/// Mirrors `ip_vs_wrr_schedule` in the kernel's
/// `net/netfilter/ipvs/ip_vs_wrr.c`: `di` is the gcd of the positive weights,
/// `mw = max_weight - (di - 1)`, the current weight `cw` starts at `mw` and
/// drops by `di` after each pass over the destination list, and a pass picks,
/// in list order, every destination whose weight is `>= cw`; when `cw` would
/// reach 0 it restarts at `mw`. The passes from `mw` down to 1 are therefore
/// one full cycle, `sum(weight / di)` picks long. Weight-0 members were already
/// filtered out, as the kernel never picks them (`cw >= 1`).
pub(super) fn weighted_round_robin(live: &[&RingMember]) -> Vec<u32> {
    if live.is_empty() {
        return Vec::new();
    }
    let original: Vec<u64> = live.iter().map(|m| u64::from(m.weight)).collect();
    let weights = if wrr_cycle_len(&original) > M64 {
        scale_to_fit(&original, M64)
    } else {
        original
    };
    let di = weights_gcd(&weights);
    let max = weights.iter().copied().max().unwrap_or(0);
    let mw = max - (di - 1);
    let mut ring = Vec::with_capacity(wrr_cycle_len(&weights) as usize);
    let mut cw = mw;
    while cw > 0 {
        ring.extend(
            live.iter()
                .zip(&weights)
                .filter(|&(_, &w)| w >= cw)
                .map(|(m, _)| m.id),
        );
        cw = cw.saturating_sub(di);
    }
    ring
}
