//! [`MapWriter`] over the loaded program's maps.

use aya::{
    Ebpf,
    maps::{Array, HashMap as BpfHashMap, Map, MapData, MapError, PerCpuArray, PerCpuValues},
};
use lb_common::maps::{
    self as m, Backend, Flow, FlowKey, RING_SIZE, Real, RealKey, ReverseFlow, Service, ServiceKey,
    Settings, Stats,
};

use super::{MapWriteError, MapWriter};
use crate::xdp::plan::{MapOp, entries::reverse_entries};

/// The kernel maps of a loaded program.
pub(crate) struct AyaMaps<'a> {
    ebpf: &'a mut Ebpf,
}

fn map_err(map: &'static str, operation: &'static str) -> impl Fn(MapError) -> MapWriteError {
    move |source| MapWriteError::Map {
        map,
        operation,
        source: Box::new(source),
    }
}

impl<'a> AyaMaps<'a> {
    pub(crate) fn new(ebpf: &'a mut Ebpf) -> Self {
        Self { ebpf }
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut Map, MapWriteError> {
        self.ebpf
            .map_mut(name)
            .ok_or(MapWriteError::MissingMap(name))
    }

    fn array<T: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<Array<&mut MapData, T>, MapWriteError> {
        Array::try_from(self.map_mut(name)?).map_err(map_err(name, "open"))
    }

    fn hash<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<BpfHashMap<&mut MapData, K, V>, MapWriteError> {
        BpfHashMap::try_from(self.map_mut(name)?).map_err(map_err(name, "open"))
    }

    fn backfill_reverse(
        &mut self,
        backends: &std::collections::BTreeMap<u32, RealKey>,
    ) -> Result<(), MapWriteError> {
        let entries = {
            let ct: BpfHashMap<&mut MapData, FlowKey, Flow> = self.hash(m::CONNTRACK)?;
            reverse_entries(backends, ct.iter().filter_map(Result::ok))
        };
        let mut reverse: BpfHashMap<_, FlowKey, ReverseFlow> = self.hash(m::REVERSE)?;
        for (reply, value) in &entries {
            reverse
                .insert(reply, value, 0)
                .map_err(map_err(m::REVERSE, "write"))?;
        }
        Ok(())
    }
}

impl MapWriter for AyaMaps<'_> {
    fn apply(&mut self, op: &MapOp) -> Result<(), MapWriteError> {
        let map = op.map();
        match op {
            MapOp::Settings(value) => self
                .array::<Settings>(map)?
                .set(0, *value, 0)
                .map_err(map_err(map, "write")),
            MapOp::Backend { id, value } => self
                .array::<Backend>(map)?
                .set(*id, *value, 0)
                .map_err(map_err(map, "write")),
            MapOp::Ring {
                service,
                slot,
                ring,
            } => {
                let mut array = self.array::<u32>(map)?;
                let base = (service * 2 + slot) * RING_SIZE;
                for (i, backend) in (base..).zip(ring.iter()) {
                    array.set(i, *backend, 0).map_err(map_err(map, "write"))?;
                }
                Ok(())
            }
            MapOp::InsertService { key, value } => self
                .hash::<ServiceKey, Service>(map)?
                .insert(key, value, 0)
                .map_err(map_err(map, "write")),
            MapOp::RemoveService { key } => self
                .hash::<ServiceKey, Service>(map)?
                .remove(key)
                .map_err(map_err(map, "remove")),
            MapOp::InsertReal { key, value } => self
                .hash::<RealKey, Real>(map)?
                .insert(key, value, 0)
                .map_err(map_err(map, "write")),
            MapOp::RemoveReal { key } => self
                .hash::<RealKey, Real>(map)?
                .remove(key)
                .map_err(map_err(map, "remove")),
            MapOp::BackfillReverse { backends } => self.backfill_reverse(backends),
            MapOp::ResetStats { id, .. } => {
                let cpus = aya::util::nr_cpus().map_err(|(_, source)| {
                    map_err(map, "count CPUs for")(MapError::from(source))
                })?;
                let zeroes = PerCpuValues::try_from(vec![Stats::default(); cpus])
                    .map_err(|source| map_err(map, "zero")(MapError::from(source)))?;
                let mut stats: PerCpuArray<&mut MapData, Stats> =
                    PerCpuArray::try_from(self.map_mut(map)?).map_err(map_err(map, "open"))?;
                stats.set(*id, zeroes, 0).map_err(map_err(map, "write"))
            }
        }
    }
}
