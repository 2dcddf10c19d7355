//! Reading what adopted (pinned) maps hold, for `plan::adopt`.

use aya::{
    Ebpf,
    maps::{Array, HashMap as BpfHashMap, Map, MapData, MapError},
};
use lb_common::maps::{
    self as m, BACKEND_LIVE, Backend, Flow, FlowKey, MAX_BACKENDS, RING_SIZE, Real, RealKey,
    Service, ServiceKey, Settings,
};

use crate::xdp::{XdpError, plan::adopt::Snapshot};

fn read_err(map: &'static str) -> impl Fn(MapError) -> XdpError {
    move |source| XdpError::Map {
        map,
        source: Box::new(source),
    }
}

fn map<'a>(ebpf: &'a Ebpf, name: &'static str) -> Result<&'a Map, XdpError> {
    ebpf.map(name).ok_or(XdpError::MissingMap(name))
}

/// Everything `plan::adopt` needs from the maps, and how many flows are
/// tracked (for the log).
pub(crate) fn read(ebpf: &Ebpf) -> Result<(Snapshot, usize), XdpError> {
    let mut s = Snapshot::default();
    let settings: Array<&MapData, Settings> =
        Array::try_from(map(ebpf, m::SETTINGS)?).map_err(read_err(m::SETTINGS))?;
    s.settings = settings.get(&0, 0).map_err(read_err(m::SETTINGS))?;

    let services: BpfHashMap<&MapData, ServiceKey, Service> =
        BpfHashMap::try_from(map(ebpf, m::SERVICES)?).map_err(read_err(m::SERVICES))?;
    for entry in &services {
        let (key, value) = entry.map_err(read_err(m::SERVICES))?;
        s.services.insert(key, value);
    }

    let backends: Array<&MapData, Backend> =
        Array::try_from(map(ebpf, m::BACKENDS)?).map_err(read_err(m::BACKENDS))?;
    for id in 0..MAX_BACKENDS {
        let b = backends.get(&id, 0).map_err(read_err(m::BACKENDS))?;
        if b != Backend::default() {
            s.backends.insert(id, b);
        }
    }

    let rings: Array<&MapData, u32> =
        Array::try_from(map(ebpf, m::RINGS)?).map_err(read_err(m::RINGS))?;
    for service in s.services.values() {
        let base = (service.id * 2 + service.ring_slot) * RING_SIZE;
        let len = service.ring_len.min(RING_SIZE);
        let ring = (base..base + len)
            .map(|i| rings.get(&i, 0))
            .collect::<Result<Vec<u32>, _>>()
            .map_err(read_err(m::RINGS))?;
        s.rings.insert(service.id, ring);
    }

    let reals: BpfHashMap<&MapData, RealKey, Real> =
        BpfHashMap::try_from(map(ebpf, m::REALS)?).map_err(read_err(m::REALS))?;
    for entry in &reals {
        let (key, value) = entry.map_err(read_err(m::REALS))?;
        s.reals.insert(key, value);
    }

    // Flows whose backend id still has their generation and is live: they
    // are still forwarded, so their backend belongs to their service.
    let conntrack: BpfHashMap<&MapData, FlowKey, Flow> =
        BpfHashMap::try_from(map(ebpf, m::CONNTRACK)?).map_err(read_err(m::CONNTRACK))?;
    let mut flows = 0;
    // An LRU map may drop a key while it is walked: skip that entry.
    for (_, flow) in conntrack.iter().filter_map(Result::ok) {
        flows += 1;
        let current = s
            .backends
            .get(&flow.backend)
            .is_some_and(|b| b.generation == flow.generation && b.flags & BACKEND_LIVE != 0);
        if current {
            s.flow_owners.entry(flow.backend).or_insert(flow.service);
        }
    }
    Ok((s, flows))
}
