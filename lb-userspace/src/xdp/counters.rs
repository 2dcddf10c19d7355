//! Sums the program's per-CPU counters into one snapshot.

use aya::maps::{MapData, PerCpuArray};
use lb_common::{counters::Counter, maps::COUNTERS};

use super::XdpError;

/// The counters summed over all CPUs at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterSnapshot {
    values: [u64; Counter::COUNT as usize],
}

impl Default for CounterSnapshot {
    // Arrays longer than 32 have no derived Default.
    fn default() -> Self {
        Self {
            values: [0; Counter::COUNT as usize],
        }
    }
}

impl CounterSnapshot {
    pub(crate) fn read(map: &PerCpuArray<&MapData, u64>) -> Result<Self, XdpError> {
        let mut snapshot = Self::default();
        for counter in Counter::ALL {
            let per_cpu = map
                .get(&counter.index(), 0)
                .map_err(|source| XdpError::Map {
                    map: COUNTERS,
                    source: Box::new(source),
                })?;
            snapshot.values[counter.index() as usize] = per_cpu.iter().sum();
        }
        Ok(snapshot)
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter.index() as usize]
    }

    /// Every counter with its name, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.into_iter().map(|c| (c, self.get(c)))
    }

    /// What changed since `earlier` (counters only grow).
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        let mut delta = Self::default();
        for (i, v) in delta.values.iter_mut().enumerate() {
            *v = self.values[i].saturating_sub(earlier.values[i]);
        }
        delta
    }
}
