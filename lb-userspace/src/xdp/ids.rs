//! Allocation of the small integer ids that index the program's arrays.

/// Hands out ids below `max`, reusing freed ones. Each id carries a
/// generation, bumped on every reuse, so state pinned to an earlier user of
/// the id (a conntrack entry) can tell it is stale.
#[derive(Debug)]
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

    /// A free id and its new generation, or `None` when all are taken.
    pub(crate) fn allocate(&mut self) -> Option<(u32, u32)> {
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.next < self.max => {
                self.next += 1;
                self.generations.push(0);
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

    /// How many more ids can be allocated.
    pub(crate) fn available(&self) -> u32 {
        self.max - self.next + self.free.len() as u32
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
}
