//! The XDP data plane: turns a desired state into the program's maps.
//!
//! A service's backend set changes atomically: the new ring goes into the
//! service's inactive ring slot, then one update of the service's entry
//! (hash-map updates are atomic for readers) flips to it. Unchanged services
//! are not touched at all, so their flows never notice a reload.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::IpAddr,
};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray};
use lb_common::maps::{
    self as m, BACKEND_LIVE, Backend, FAMILY_IPV4, FAMILY_IPV6, FLOW_ESTABLISHED, Flow, FlowKey,
    MAX_BACKENDS, MAX_SERVICES, NO_BACKEND, RING_SIZE, Real, RealKey, ReverseFlow, Service,
    ServiceKey, Settings, Stats,
};

use super::{
    XdpProgram,
    flows::{XdpFlowLister, duplicate, idle_timeout_s},
    ids::IdPool,
};
use crate::dataplane::{
    BackendSpec, BackendStatus, Dataplane, DataplaneError, DesiredState, FlowLister, SchedulerKind,
    ServiceSpec, ServiceStatus, ServiceTraffic, Timeouts, TrafficStats,
    rings::{RingMember, RingScheduler, build_ring},
};

/// A service as installed in the maps.
struct Installed {
    spec: ServiceSpec,
    id: u32,
    /// The live ring slot (0 or 1).
    slot: u32,
    ring: Vec<u32>,
    /// Backend ids by (address, port), for this service only.
    backends: HashMap<(IpAddr, u16), u32>,
    sorry: Option<((IpAddr, u16), u32)>,
}

/// The `SERVICES` value that forwards by `installed`'s live ring.
fn service_entry(installed: &Installed) -> Service {
    Service {
        id: installed.id,
        ring_slot: installed.slot,
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a ring holds RING_SIZE entries"
        )]
        ring_len: installed.ring.len() as u32,
        scheduler: ring_scheduler(installed.spec.scheduler).code(),
        sorry_backend: installed.sorry.map_or(NO_BACKEND, |(_, id)| id),
        _pad: 0,
    }
}

/// The XDP data plane over a loaded [`XdpProgram`].
pub struct XdpDataplane {
    program: XdpProgram,
    services: BTreeMap<ServiceKey, Installed>,
    /// Services the desired state dropped (their VIP went to the peer),
    /// kept with their rings and backends but without their `SERVICES`
    /// entry, so nothing of theirs is forwarded. Bringing one back on a
    /// takeover is then one map write instead of a ring of 16,381, and its
    /// flows continue. Evicted when ids run out.
    parked: BTreeMap<ServiceKey, Installed>,
    /// Services in the order the desired state lists them, for status.
    order: Vec<ServiceKey>,
    service_ids: IdPool,
    backend_ids: IdPool,
    reals: HashMap<RealKey, Real>,
    /// What was last written to `SETTINGS`.
    settings: Settings,
}

fn map_err(
    map: &'static str,
    operation: &'static str,
) -> impl Fn(aya::maps::MapError) -> DataplaneError {
    move |source| DataplaneError::Map {
        map,
        operation,
        source: Box::new(source),
    }
}

fn addr_bytes(addr: IpAddr) -> ([u8; 16], u8) {
    match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (b, FAMILY_IPV4)
        }
        IpAddr::V6(a) => (a.octets(), FAMILY_IPV6),
    }
}

fn family_name(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn service_key(spec: &ServiceSpec) -> ServiceKey {
    let (addr, family) = addr_bytes(spec.vip);
    ServiceKey {
        addr,
        port: spec.port.to_be_bytes(),
        proto: spec.protocol.number(),
        family,
    }
}

/// The XDP program's scheduler; `check` refused the IPVS-only ones, which
/// would otherwise run as wrr.
fn ring_scheduler(kind: SchedulerKind) -> RingScheduler {
    match kind {
        SchedulerKind::RoundRobin => RingScheduler::RoundRobin,
        SchedulerKind::Maglev => RingScheduler::Maglev,
        SchedulerKind::WeightedRoundRobin
        | SchedulerKind::SourceHashing
        | SchedulerKind::LeastConnections
        | SchedulerKind::WeightedLeastConnections => RingScheduler::WeightedRoundRobin,
    }
}

/// Bytes naming a backend for Maglev: the same on every balancer.
fn identity(b: &BackendSpec) -> Vec<u8> {
    let (addr, family) = addr_bytes(b.addr);
    let mut id = vec![family];
    id.extend_from_slice(&addr);
    id.extend_from_slice(&b.port.to_be_bytes());
    id
}

impl XdpDataplane {
    /// Takes over a loaded program; its maps start empty (no service).
    pub fn new(program: XdpProgram) -> Self {
        Self {
            program,
            services: BTreeMap::new(),
            parked: BTreeMap::new(),
            order: Vec::new(),
            service_ids: IdPool::new(MAX_SERVICES),
            backend_ids: IdPool::new(MAX_BACKENDS),
            reals: HashMap::new(),
            settings: Settings::IPVS_DEFAULTS,
        }
    }

    pub fn program(&self) -> &XdpProgram {
        &self.program
    }

    pub fn program_mut(&mut self) -> &mut XdpProgram {
        &mut self.program
    }

    /// Drops every tracked flow, as a node that just took over would have
    /// none (for tests of mid-flow pick-up).
    pub fn clear_conntrack(&mut self) -> Result<(), DataplaneError> {
        let mut ct = self.conntrack_mut()?;
        let keys: Vec<FlowKey> = ct.keys().filter_map(Result::ok).collect();
        for key in keys {
            let _ = ct.remove(&key);
        }
        Ok(())
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut aya::maps::Map, DataplaneError> {
        self.program
            .ebpf_mut()
            .map_mut(name)
            .ok_or(DataplaneError::MissingMap(name))
    }

    fn map(&self, name: &'static str) -> Result<&aya::maps::Map, DataplaneError> {
        self.program
            .ebpf()
            .map(name)
            .ok_or(DataplaneError::MissingMap(name))
    }

    fn conntrack_mut(&mut self) -> Result<BpfHashMap<&mut MapData, FlowKey, Flow>, DataplaneError> {
        BpfHashMap::try_from(self.map_mut(m::CONNTRACK)?).map_err(map_err(m::CONNTRACK, "open"))
    }

    fn write_settings(&mut self, t: &Timeouts) -> Result<(), DataplaneError> {
        let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1);
        let settings = Settings {
            tcp_established_s: secs(t.tcp),
            tcp_fin_s: secs(t.tcp_fin),
            udp_s: secs(t.udp),
            ..Settings::IPVS_DEFAULTS
        };
        let mut array: Array<_, Settings> =
            Array::try_from(self.map_mut(m::SETTINGS)?).map_err(map_err(m::SETTINGS, "open"))?;
        array
            .set(0, settings, 0)
            .map_err(map_err(m::SETTINGS, "write"))?;
        // The connection counts of `status` expire flows by the same clock.
        self.settings = settings;
        Ok(())
    }

    fn write_backend(
        &mut self,
        id: u32,
        spec: &BackendSpec,
        generation: u32,
    ) -> Result<(), DataplaneError> {
        let (addr, family) = addr_bytes(spec.addr);
        let backend = Backend {
            addr,
            port: spec.port.to_be_bytes(),
            family,
            flags: BACKEND_LIVE,
            generation,
        };
        let mut array: Array<_, Backend> =
            Array::try_from(self.map_mut(m::BACKENDS)?).map_err(map_err(m::BACKENDS, "open"))?;
        array
            .set(id, backend, 0)
            .map_err(map_err(m::BACKENDS, "write"))
    }

    /// Marks a backend gone: flows pinned to it stop being forwarded to it
    /// (the program reschedules them; for TCP the new backend answers with
    /// a reset, which ends the flow as IPVS's expire_nodest_conn does).
    fn retire_backend(&mut self, id: u32) -> Result<(), DataplaneError> {
        let mut array: Array<_, Backend> =
            Array::try_from(self.map_mut(m::BACKENDS)?).map_err(map_err(m::BACKENDS, "open"))?;
        let mut backend = array.get(&id, 0).map_err(map_err(m::BACKENDS, "read"))?;
        backend.flags &= !BACKEND_LIVE;
        array
            .set(id, backend, 0)
            .map_err(map_err(m::BACKENDS, "write"))?;
        self.backend_ids.release(id);
        Ok(())
    }

    fn write_ring(
        &mut self,
        service_id: u32,
        slot: u32,
        ring: &[u32],
    ) -> Result<(), DataplaneError> {
        let mut array: Array<_, u32> =
            Array::try_from(self.map_mut(m::RINGS)?).map_err(map_err(m::RINGS, "open"))?;
        let base = (service_id * 2 + slot) * RING_SIZE;
        for (i, backend) in ring.iter().enumerate() {
            array
                .set(base + i as u32, *backend, 0)
                .map_err(map_err(m::RINGS, "write"))?;
        }
        Ok(())
    }

    fn write_service(&mut self, key: ServiceKey, value: Service) -> Result<(), DataplaneError> {
        let mut map: BpfHashMap<_, ServiceKey, Service> =
            BpfHashMap::try_from(self.map_mut(m::SERVICES)?)
                .map_err(map_err(m::SERVICES, "open"))?;
        map.insert(key, value, 0)
            .map_err(map_err(m::SERVICES, "write"))
    }

    fn remove_service(&mut self, key: &ServiceKey) -> Result<(), DataplaneError> {
        let mut map: BpfHashMap<_, ServiceKey, Service> =
            BpfHashMap::try_from(self.map_mut(m::SERVICES)?)
                .map_err(map_err(m::SERVICES, "open"))?;
        map.remove(key).map_err(map_err(m::SERVICES, "remove"))
    }

    /// Checks what `apply` would need before changing anything, so a state
    /// that cannot be installed leaves the running one untouched.
    fn check(&self, desired: &DesiredState) -> Result<(), DataplaneError> {
        let new_services = desired
            .services
            .iter()
            .filter(|s| !self.services.contains_key(&service_key(s)))
            .count();
        let freed: usize = self
            .services
            .iter()
            .filter(|(k, _)| !desired.services.iter().any(|s| service_key(s) == **k))
            .count();
        if new_services > (self.service_ids.available() as usize + freed) {
            return Err(DataplaneError::Capacity {
                what: "services",
                max: MAX_SERVICES,
            });
        }
        let backends: usize = desired
            .services
            .iter()
            .map(|s| s.backends.len() + usize::from(s.sorry.is_some()))
            .sum();
        if backends > MAX_BACKENDS as usize {
            return Err(DataplaneError::Capacity {
                what: "backends",
                max: MAX_BACKENDS,
            });
        }
        if let Some(s) = desired.services.iter().find(|s| !s.scheduler.xdp_capable()) {
            return Err(DataplaneError::XdpScheduler {
                service: s.label(),
                scheduler: s.scheduler.name(),
            });
        }
        for s in &desired.services {
            for b in s.backends.iter().chain(s.sorry.iter()) {
                if b.addr.is_ipv4() != s.vip.is_ipv4() {
                    return Err(DataplaneError::FamilyMismatch {
                        service: s.label(),
                        backend: crate::dataplane::socket_label(b.addr, b.port),
                        service_family: family_name(s.vip),
                        backend_family: family_name(b.addr),
                    });
                }
            }
        }
        Ok(())
    }

    /// Installs or updates one service, touching the maps only if it changed.
    fn install(&mut self, spec: &ServiceSpec) -> Result<(), DataplaneError> {
        let key = service_key(spec);
        // A new service is always written out, even with an empty ring.
        let (mut installed, fresh) = if let Some(i) = self.services.remove(&key) {
            (i, false)
        } else {
            let (id, _) = self.allocate_service()?;
            let installed = Installed {
                spec: spec.clone(),
                id,
                slot: 1,
                ring: Vec::new(),
                backends: HashMap::new(),
                sorry: None,
            };
            (installed, true)
        };

        // Backend ids: keep those still wanted, allocate new ones, retire the rest.
        let mut wanted = HashMap::new();
        for b in &spec.backends {
            let at = (b.addr, b.port);
            let id = if let Some(id) = installed.backends.remove(&at) {
                id
            } else {
                let (id, generation) = self.allocate_backend()?;
                self.write_backend(id, b, generation)?;
                id
            };
            wanted.insert(at, id);
        }
        for (_, id) in installed.backends.drain() {
            self.retire_backend(id)?;
        }
        installed.backends = wanted;

        let sorry_at = spec.sorry.as_ref().map(|s| (s.addr, s.port));
        let sorry = match (installed.sorry.take(), &spec.sorry) {
            (Some((at, id)), Some(_)) if Some(at) == sorry_at => Some((at, id)),
            (old, new) => {
                if let Some((_, id)) = old {
                    self.retire_backend(id)?;
                }
                match new {
                    Some(s) => {
                        let (id, generation) = self.allocate_backend()?;
                        self.write_backend(id, s, generation)?;
                        Some(((s.addr, s.port), id))
                    }
                    None => None,
                }
            }
        };

        let members: Vec<RingMember> = spec
            .backends
            .iter()
            .map(|b| RingMember {
                id: installed.backends[&(b.addr, b.port)],
                weight: b.weight,
                identity: identity(b),
            })
            .collect();
        let ring = build_ring(ring_scheduler(spec.scheduler), &members);
        let changed = fresh
            || ring != installed.ring
            || sorry.map(|(_, id)| id) != installed.sorry.map(|(_, id)| id)
            || spec.scheduler != installed.spec.scheduler;
        installed.sorry = sorry;
        installed.spec = spec.clone();
        if changed {
            let slot = 1 - installed.slot;
            self.write_ring(installed.id, slot, &ring)?;
            installed.slot = slot;
            installed.ring = ring;
            self.write_service(key, service_entry(&installed))?;
        }
        self.services.insert(key, installed);
        Ok(())
    }

    fn allocate_service(&mut self) -> Result<(u32, u32), DataplaneError> {
        if let Some(id) = self.service_ids.allocate() {
            return Ok(id);
        }
        self.evict_parked()?;
        self.service_ids.allocate().ok_or(DataplaneError::Capacity {
            what: "services",
            max: MAX_SERVICES,
        })
    }

    fn allocate_backend(&mut self) -> Result<(u32, u32), DataplaneError> {
        if let Some(id) = self.backend_ids.allocate() {
            return Ok(id);
        }
        self.evict_parked()?;
        self.backend_ids.allocate().ok_or(DataplaneError::Capacity {
            what: "backends",
            max: MAX_BACKENDS,
        })
    }

    /// Stops forwarding for `key` but keeps its rings and backends.
    fn park(&mut self, key: &ServiceKey) -> Result<(), DataplaneError> {
        if let Some(installed) = self.services.remove(key) {
            self.remove_service(key)?;
            self.parked.insert(*key, installed);
        }
        Ok(())
    }

    /// Forwards for a parked `key` again, as it was.
    fn unpark(&mut self, key: &ServiceKey) -> Result<(), DataplaneError> {
        if let Some(installed) = self.parked.remove(key) {
            self.write_service(*key, service_entry(&installed))?;
            self.services.insert(*key, installed);
        }
        Ok(())
    }

    /// Frees everything parked services hold.
    fn evict_parked(&mut self) -> Result<(), DataplaneError> {
        for (_, installed) in std::mem::take(&mut self.parked) {
            self.release(&installed)?;
        }
        Ok(())
    }

    /// Retires a service's backends (their flows end) and frees its id;
    /// its `SERVICES` entry must already be gone.
    fn release(&mut self, installed: &Installed) -> Result<(), DataplaneError> {
        for id in installed.backends.values() {
            self.retire_backend(*id)?;
        }
        if let Some((_, id)) = installed.sorry {
            self.retire_backend(id)?;
        }
        self.service_ids.release(installed.id);
        Ok(())
    }

    /// Rewrites `REALS`: which service each backend's replies come back
    /// from, or that they are ambiguous (the backend serves several).
    fn write_reals(&mut self) -> Result<(), DataplaneError> {
        let mut owners: HashMap<RealKey, Vec<(ServiceKey, u32)>> = HashMap::new();
        for (key, installed) in &self.services {
            let ats = installed
                .backends
                .keys()
                .copied()
                .chain(installed.sorry.map(|(at, _)| at));
            for (addr, port) in ats {
                let (addr, family) = addr_bytes(addr);
                let real = RealKey {
                    addr,
                    port: port.to_be_bytes(),
                    proto: key.proto,
                    family,
                };
                owners.entry(real).or_default().push((*key, installed.id));
            }
        }
        let wanted: HashMap<RealKey, Real> = owners
            .into_iter()
            .map(|(real, services)| {
                let (service, id) = services[0];
                let value = Real {
                    vip: service.addr,
                    vport: service.port,
                    ambiguous: u8::from(services.len() > 1),
                    _pad: 0,
                    service: id,
                };
                (real, value)
            })
            .collect();
        let previous = std::mem::take(&mut self.reals);
        // A real that starts serving a second service (a reload adding it
        // elsewhere) turns ambiguous: its replies then need REVERSE
        // entries, which the program writes only for flows created while
        // ambiguous. Its established flows get theirs from here, before the
        // switch (no gap) and after it (flows created in between).
        let turning: HashSet<RealKey> = wanted
            .iter()
            .filter(|(real, value)| {
                value.ambiguous != 0 && previous.get(*real).is_none_or(|p| p.ambiguous == 0)
            })
            .map(|(real, _)| *real)
            .collect();
        if !turning.is_empty() {
            self.backfill_reverse(&turning)?;
        }
        let mut map: BpfHashMap<_, RealKey, Real> =
            BpfHashMap::try_from(self.map_mut(m::REALS)?).map_err(map_err(m::REALS, "open"))?;
        for (real, value) in &wanted {
            if previous.get(real) != Some(value) {
                map.insert(real, value, 0)
                    .map_err(map_err(m::REALS, "write"))?;
            }
        }
        for real in previous.keys() {
            if !wanted.contains_key(real) {
                map.remove(real).map_err(map_err(m::REALS, "remove"))?;
            }
        }
        self.reals = wanted;
        if !turning.is_empty() {
            self.backfill_reverse(&turning)?;
        }
        Ok(())
    }

    /// Writes the REVERSE entry (reply key -> VIP) of every tracked flow
    /// pinned to one of `reals`.
    fn backfill_reverse(&mut self, reals: &HashSet<RealKey>) -> Result<(), DataplaneError> {
        let mut by_id: HashMap<u32, RealKey> = HashMap::new();
        for (key, installed) in &self.services {
            let ats = installed
                .backends
                .iter()
                .map(|(at, id)| (*at, *id))
                .chain(installed.sorry);
            for ((addr, port), id) in ats {
                let (addr, family) = addr_bytes(addr);
                let real = RealKey {
                    addr,
                    port: port.to_be_bytes(),
                    proto: key.proto,
                    family,
                };
                if reals.contains(&real) {
                    by_id.insert(id, real);
                }
            }
        }
        let entries: Vec<(FlowKey, ReverseFlow)> = {
            let ct: BpfHashMap<_, FlowKey, Flow> = BpfHashMap::try_from(self.map(m::CONNTRACK)?)
                .map_err(map_err(m::CONNTRACK, "open"))?;
            ct.iter()
                .filter_map(Result::ok)
                .filter_map(|(key, flow)| {
                    let real = by_id.get(&flow.backend)?;
                    let reply = FlowKey {
                        src: real.addr,
                        dst: key.src,
                        sport: real.port,
                        dport: key.sport,
                        proto: key.proto,
                        family: key.family,
                        _pad: [0; 2],
                    };
                    let reverse = ReverseFlow {
                        vip: key.dst,
                        vport: key.dport,
                        _pad: [0; 2],
                        service: flow.service,
                    };
                    Some((reply, reverse))
                })
                .collect()
        };
        let mut reverse: BpfHashMap<_, FlowKey, ReverseFlow> =
            BpfHashMap::try_from(self.map_mut(m::REVERSE)?).map_err(map_err(m::REVERSE, "open"))?;
        for (reply, value) in &entries {
            reverse
                .insert(reply, value, 0)
                .map_err(map_err(m::REVERSE, "write"))?;
        }
        Ok(())
    }

    fn summed(map: &PerCpuArray<&MapData, Stats>, id: u32) -> Result<TrafficStats, DataplaneError> {
        let per_cpu = map.get(&id, 0).map_err(map_err("stats", "read"))?;
        let mut t = TrafficStats::default();
        for s in per_cpu.iter() {
            t.connections += s.connections;
            t.packets_in += s.packets_in;
            t.packets_out += s.packets_out;
            t.bytes_in += s.bytes_in;
            t.bytes_out += s.bytes_out;
        }
        Ok(t)
    }

    /// (active, inactive) tracked flows per backend id, ignoring flows past
    /// their timeout that the LRU has not evicted yet.
    fn connection_counts(&self) -> Result<HashMap<u32, (u64, u64)>, DataplaneError> {
        let ct: BpfHashMap<_, FlowKey, Flow> =
            BpfHashMap::try_from(self.map(m::CONNTRACK)?).map_err(map_err(m::CONNTRACK, "open"))?;
        let now = monotonic_ns();
        let settings = self.settings;
        let mut counts: HashMap<u32, (u64, u64)> = HashMap::new();
        for entry in &ct {
            let Ok((_, flow)) = entry else { continue };
            let timeout = idle_timeout_s(&settings, flow.state);
            if now.saturating_sub(flow.last_seen_ns) > u64::from(timeout) * 1_000_000_000 {
                continue;
            }
            let c = counts.entry(flow.backend).or_default();
            if flow.state == FLOW_ESTABLISHED || flow.state == m::FLOW_UDP {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        Ok(counts)
    }
}

/// The clock `bpf_ktime_get_ns` reads.
pub(super) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Dataplane for XdpDataplane {
    fn apply(&mut self, desired: &DesiredState) -> Result<(), DataplaneError> {
        self.check(desired)?;
        self.write_settings(&desired.timeouts)?;
        let wanted: Vec<ServiceKey> = desired.services.iter().map(service_key).collect();
        let stale: Vec<ServiceKey> = self
            .services
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in stale {
            self.park(&key)?;
        }
        for spec in &desired.services {
            self.unpark(&service_key(spec))?;
            self.install(spec)?;
        }
        self.order = wanted;
        self.write_reals()
    }

    fn status(&self) -> Result<Vec<ServiceStatus>, DataplaneError> {
        let service_stats: PerCpuArray<_, Stats> =
            PerCpuArray::try_from(self.map(m::SERVICE_STATS)?)
                .map_err(map_err(m::SERVICE_STATS, "open"))?;
        let backend_stats: PerCpuArray<_, Stats> =
            PerCpuArray::try_from(self.map(m::BACKEND_STATS)?)
                .map_err(map_err(m::BACKEND_STATS, "open"))?;
        let connections = self.connection_counts()?;
        let mut out = Vec::new();
        for installed in self.order.iter().filter_map(|k| self.services.get(k)) {
            let spec = &installed.spec;
            let mut backends = Vec::new();
            for b in &spec.backends {
                let id = installed.backends[&(b.addr, b.port)];
                let (active, inactive) = connections.get(&id).copied().unwrap_or_default();
                backends.push(BackendStatus {
                    addr: b.addr,
                    port: b.port,
                    weight: b.weight,
                    active_connections: active,
                    inactive_connections: inactive,
                    stats: Self::summed(&backend_stats, id)?,
                });
            }
            out.push(ServiceStatus {
                vip: spec.vip,
                port: spec.port,
                protocol: spec.protocol,
                scheduler: spec.scheduler,
                backends,
                stats: Self::summed(&service_stats, installed.id)?,
            });
        }
        Ok(out)
    }

    fn traffic(&self) -> Result<Vec<ServiceTraffic>, DataplaneError> {
        let service_stats: PerCpuArray<_, Stats> =
            PerCpuArray::try_from(self.map(m::SERVICE_STATS)?)
                .map_err(map_err(m::SERVICE_STATS, "open"))?;
        let backend_stats: PerCpuArray<_, Stats> =
            PerCpuArray::try_from(self.map(m::BACKEND_STATS)?)
                .map_err(map_err(m::BACKEND_STATS, "open"))?;
        let mut out = Vec::new();
        for installed in self.order.iter().filter_map(|k| self.services.get(k)) {
            let spec = &installed.spec;
            let mut backends = Vec::new();
            for b in &spec.backends {
                let id = installed.backends[&(b.addr, b.port)];
                backends.push((b.addr, b.port, Self::summed(&backend_stats, id)?));
            }
            out.push(ServiceTraffic {
                vip: spec.vip,
                port: spec.port,
                protocol: spec.protocol,
                stats: Self::summed(&service_stats, installed.id)?,
                backends,
            });
        }
        Ok(out)
    }

    fn flow_lister(&self) -> Result<Box<dyn FlowLister>, DataplaneError> {
        let conntrack = duplicate(self.map(m::CONNTRACK)?, m::CONNTRACK)?;
        let backends = duplicate(self.map(m::BACKENDS)?, m::BACKENDS)?;
        Ok(Box::new(XdpFlowLister::new(
            conntrack,
            backends,
            self.settings,
            monotonic_ns(),
        )?))
    }
}
