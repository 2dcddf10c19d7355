//! Allocation of the small integer ids that index the program's arrays.

/// Hands out ids below `max`, reusing freed ones. Each id carries a
/// generation, bumped on every reuse, so state pinned to an earlier user of
/// the id (a conntrack entry) can tell it is stale.
#[derive(Clone, Debug)]
pub(crate) struct IdPool {
    max: u32,
    next: u32,
    free: Vec<u32>,
    generations: Vec<u32>,
}

impl IdPool {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max,
            next: 0,
            free: Vec::new(),
            generations: Vec::new(),
        }
    }

    /// A pool where `in_use` ids are handed out and every id's generation
    /// is what `generations` says (0 where it says nothing): the ids an
    /// earlier process left in pinned maps. Free ids are handed out lowest
    /// first, each with a generation past its last.
    pub(crate) fn seeded(
        max: u32,
        in_use: &std::collections::BTreeSet<u32>,
        generations: &std::collections::BTreeMap<u32, u32>,
    ) -> Self {
        let top = in_use
            .iter()
            .chain(generations.keys())
            .max()
            .map_or(0, |id| id + 1)
            .min(max);
        Self {
            max,
            next: top,
            free: (0..top).rev().filter(|id| !in_use.contains(id)).collect(),
            generations: (0..top)
                .map(|id| generations.get(&id).copied().unwrap_or(0))
                .collect(),
        }
    }

    /// A free id and its new generation, or `None` when all are taken.
    pub(crate) fn allocate(&mut self) -> Option<(u32, u32)> {
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.next < self.max => {
                self.next += 1;
                // A generation may already be kept (`keep_generations`).
                if self.generations.len() < self.next as usize {
                    self.generations.push(0);
                }
                self.next - 1
            }
            None => return None,
        };
        let generation = &mut self.generations[id as usize];
        *generation = generation.wrapping_add(1);
        Some((id, *generation))
    }

    pub(crate) fn release(&mut self, id: u32) {
        debug_assert!(!self.free.contains(&id), "id {id} released twice");
        self.free.push(id);
    }

    /// Takes over the generations `other` (a copy of this pool that went
    /// on allocating) reached, keeping this pool's free ids: an id handed out
    /// there and given back here gets a generation never seen before.
    pub(crate) fn keep_generations(&mut self, other: &IdPool) {
        for (i, &g) in other.generations.iter().enumerate() {
            match self.generations.get_mut(i) {
                // Generations wrap; the later one is the one ahead.
                Some(mine) if g.wrapping_sub(*mine) as i32 > 0 => *mine = g,
                Some(_) => {}
                None => self.generations.push(g),
            }
        }
    }

    /// Whether `id` is handed out.
    #[cfg(test)]
    pub(crate) fn in_use(&self, id: u32) -> bool {
        id < self.next && !self.free.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::IdPool;

    #[test]
    fn reused_ids_get_a_new_generation() {
        let mut pool = IdPool::new(2);
        let (a, ga) = pool.allocate().unwrap();
        let (b, _) = pool.allocate().unwrap();
        assert_ne!(a, b);
        assert!(pool.allocate().is_none(), "only two ids");
        pool.release(a);
        let (c, gc) = pool.allocate().unwrap();
        assert_eq!(c, a, "the freed id is reused");
        assert_ne!(gc, ga, "with a different generation");
    }

    #[test]
    fn a_seeded_pool_keeps_ids_in_use_and_moves_generations_on() {
        let in_use = [1, 3].into_iter().collect();
        let generations = [(0, 5), (1, 2), (3, 7), (4, 1)].into_iter().collect();
        let mut pool = IdPool::seeded(8, &in_use, &generations);
        assert!(pool.in_use(1) && pool.in_use(3) && !pool.in_use(0));
        assert_eq!(
            pool.allocate(),
            Some((0, 6)),
            "lowest free id, next generation"
        );
        assert_eq!(pool.allocate(), Some((2, 1)));
        assert_eq!(pool.allocate(), Some((4, 2)));
        assert_eq!(pool.allocate(), Some((5, 1)), "then never used ids");
        pool.release(3);
        assert_eq!(pool.allocate(), Some((3, 8)));
    }

    #[test]
    fn kept_generations_are_never_handed_out_again() {
        let mut pool = IdPool::new(4);
        let (a, _) = pool.allocate().unwrap();
        let mut attempt = pool.clone();
        attempt.release(a);
        let (a2, ga2) = attempt.allocate().unwrap();
        let (b, gb) = attempt.allocate().unwrap();
        assert_eq!(a2, a);
        pool.keep_generations(&attempt);
        pool.release(a);
        let (again, g) = pool.allocate().unwrap();
        assert_eq!(again, a);
        assert_ne!(g, ga2, "id {a} reused with the attempt's generation");
        let (b2, g) = pool.allocate().unwrap();
        assert_eq!(b2, b);
        assert_ne!(g, gb, "new id {b} reused with the attempt's generation");
    }
}
