//! Maglev lookup tables with weights.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use lb_common::hash::murmur3;
use lb_common::maps::RING_SIZE;

use super::{M, M64, RingMember};

/// Seeds of Maglev's two per-backend hashes. Any two different constants do;
/// they are fixed forever because changing them reshuffles every `mh` table
/// (and breaks flow agreement between balancers of different versions).
const MAGLEV_OFFSET_SEED: u32 = 0x6c62_6431; // "lbd1"
const MAGLEV_SKIP_SEED: u32 = 0x6c62_6432; // "lbd2"

/// Slots each member should hold in a Maglev table: `M * w / W`, rounded by
/// largest remainder (ties to the earlier member), then at least 1 for every
/// member while slots allow. Sums to exactly `M` (for `1..=M` members).
///
/// With equal weights this gives the first `M % n` members one extra slot,
/// which is exactly what the paper's unweighted round-by-round fill does.
fn maglev_targets(live: &[&RingMember]) -> Vec<u64> {
    let total: u128 = live.iter().map(|m| u128::from(m.weight)).sum();
    let m128 = u128::from(M64);
    let mut targets: Vec<u64> = live
        .iter()
        .map(|m| (m128 * u128::from(m.weight) / total) as u64)
        .collect();
    let assigned: u64 = targets.iter().sum();
    let mut by_remainder: Vec<usize> = (0..live.len()).collect();
    // Stable sort: equal remainders keep identity order.
    by_remainder.sort_by_key(|&i| Reverse(m128 * u128::from(live[i].weight) % total));
    for &i in by_remainder.iter().take((M64 - assigned) as usize) {
        targets[i] += 1;
    }
    // A member with weight > 0 must take some new flows, even when its share
    // rounds to 0 (weights like 1 and 10^6). Take the slot from the member
    // holding the most (the last such in order, to leave the early ones, which
    // got the remainder slots, alone).
    while let Some(zero) = targets.iter().position(|&t| t == 0) {
        let (richest, &most) = targets
            .iter()
            .enumerate()
            .max_by_key(|&(i, &t)| (t, i))
            .expect("targets is not empty");
        if most <= 1 {
            break; // More members than slots: the rest get none.
        }
        targets[richest] -= 1;
        targets[zero] = 1;
    }
    targets
}

/// A member's next claim in the Maglev fill, due at virtual time
/// `num / den` = `(2k + 1) / (2 * target)` for its k-th slot.
#[derive(Debug, Clone, Copy)]
struct Claim {
    num: u64,
    den: u64,
    member: usize,
}

impl Ord for Claim {
    fn cmp(&self, other: &Self) -> Ordering {
        // Exact rational comparison (values are below 2 * M, no overflow).
        (self.num * other.den)
            .cmp(&(other.num * self.den))
            .then(self.member.cmp(&other.member))
    }
}

impl PartialOrd for Claim {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Claim {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Claim {}

/// Maglev table population (Eisenbud et al., "Maglev: A Fast and Reliable
/// Software Network Load Balancer", NSDI 2016, section 3.4, Pseudocode 1),
/// with weights.
///
/// Each member's preference list is the permutation
/// `(offset + j * skip) % M`, `offset = h1(identity) % M`,
/// `skip = h2(identity) % (M - 1) + 1`; `M` is prime, so every permutation
/// visits every slot. Members take turns claiming their next free preferred
/// slot. The paper gives every member one turn per round; to honour weights,
/// each member instead gets exactly its target share of turns
/// ([`maglev_targets`]), spread evenly over the fill: its k-th turn comes at
/// virtual time `(k + 1/2) / target`, ties going to the earlier member in
/// identity order. Turns are thus interleaved in proportion to weight (the
/// idea of Katran's `MaglevHashV2`, which lets a member claim in a round as
/// its accumulated weight allows) and, unlike there, every member stops at
/// its exact share, so shares are exact to the slot and the table is full
/// when the last turn is taken. With equal weights the turn
/// order is the paper's round-robin one and the table is the paper's.
///
/// `live` must be sorted by identity: it fixes tie-breaking, which is what
/// makes the table independent of the caller's order.
pub(super) fn maglev(live: &[&RingMember]) -> Vec<u32> {
    if live.is_empty() {
        return Vec::new();
    }
    let targets = maglev_targets(live);
    let skips: Vec<usize> = live
        .iter()
        .map(|m| (murmur3(MAGLEV_SKIP_SEED, &m.identity) % (RING_SIZE - 1) + 1) as usize)
        .collect();
    let mut next: Vec<usize> = live
        .iter()
        .map(|m| (murmur3(MAGLEV_OFFSET_SEED, &m.identity) % RING_SIZE) as usize)
        .collect();
    let mut taken = vec![false; M];
    let mut table = vec![0; M];
    let mut turns: BinaryHeap<Reverse<Claim>> = targets
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t > 0)
        .map(|(member, &t)| {
            Reverse(Claim {
                num: 1,
                den: 2 * t,
                member,
            })
        })
        .collect();
    while let Some(Reverse(claim)) = turns.pop() {
        let i = claim.member;
        // Terminates: the targets sum to M, so a turn always has a free slot
        // left, and the permutation reaches every slot within M steps.
        let slot = loop {
            let slot = next[i];
            next[i] = (slot + skips[i]) % M;
            if !taken[slot] {
                break slot;
            }
        };
        taken[slot] = true;
        table[slot] = live[i].id;
        if claim.num + 2 < claim.den {
            turns.push(Reverse(Claim {
                num: claim.num + 2,
                ..claim
            }));
        }
    }
    debug_assert!(
        taken.iter().all(|&t| t),
        "targets sum to M, so every slot is claimed"
    );
    table
}
