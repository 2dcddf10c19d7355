//! The XDP data plane: a loaded program, what is installed in its maps
//! (planned by `super::plan`, written by `super::writer`) and what it
//! counted.

use std::collections::{BTreeMap, HashMap};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray};
use lb_common::maps::{self as m, Flow, FlowKey, Stats};

use super::{
    XdpApplyError, XdpProgram,
    flows::{XdpFlowLister, duplicate},
    plan::InstalledState,
    writer::{self, AyaMaps},
};
use crate::dataplane::{
    BackendStatus, Capabilities, Dataplane, DataplaneError, DesiredState, FlowLister,
    SchedulerKind, ServiceStatus, ServiceTraffic, TrafficStats,
};

/// The XDP data plane over a loaded [`XdpProgram`].
pub struct XdpDataplane {
    program: XdpProgram,
    installed: InstalledState,
}

fn map_err(
    map: &'static str,
    operation: &'static str,
) -> impl Fn(aya::maps::MapError) -> XdpApplyError {
    move |source| XdpApplyError::Map {
        map,
        operation,
        source: Box::new(source),
    }
}

impl XdpDataplane {
    /// Takes over a loaded program; its maps start empty (no service).
    pub fn new(program: XdpProgram) -> Self {
        Self {
            program,
            installed: InstalledState::new(),
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
    pub fn clear_conntrack(&mut self) -> Result<(), XdpApplyError> {
        let map = self
            .program
            .ebpf_mut()
            .map_mut(m::CONNTRACK)
            .ok_or(XdpApplyError::MissingMap(m::CONNTRACK))?;
        let mut ct: BpfHashMap<&mut MapData, FlowKey, Flow> =
            BpfHashMap::try_from(map).map_err(map_err(m::CONNTRACK, "open"))?;
        let keys: Vec<FlowKey> = ct.keys().filter_map(Result::ok).collect();
        for key in keys {
            let _ = ct.remove(&key);
        }
        Ok(())
    }

    /// The per-CPU traffic counters of services and of backends.
    #[expect(clippy::type_complexity, reason = "two map handles, named at the call")]
    fn stats_maps(
        &self,
    ) -> Result<(PerCpuArray<&MapData, Stats>, PerCpuArray<&MapData, Stats>), XdpApplyError> {
        let open = |name| PerCpuArray::try_from(self.map(name)?).map_err(map_err(name, "open"));
        Ok((open(m::SERVICE_STATS)?, open(m::BACKEND_STATS)?))
    }

    fn map(&self, name: &'static str) -> Result<&aya::maps::Map, XdpApplyError> {
        self.program
            .ebpf()
            .map(name)
            .ok_or(XdpApplyError::MissingMap(name))
    }

    fn summed(map: &PerCpuArray<&MapData, Stats>, id: u32) -> Result<TrafficStats, XdpApplyError> {
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
    fn connection_counts(&self) -> Result<HashMap<u32, (u64, u64)>, XdpApplyError> {
        let ct: BpfHashMap<_, FlowKey, Flow> =
            BpfHashMap::try_from(self.map(m::CONNTRACK)?).map_err(map_err(m::CONNTRACK, "open"))?;
        let now = monotonic_ns();
        // The flows expire by what was last written to SETTINGS.
        let settings = self.installed.settings();
        let mut counts: HashMap<u32, (u64, u64)> = HashMap::new();
        for entry in &ct {
            let Ok((_, flow)) = entry else { continue };
            if lb_common::conntrack::expired(flow.state, flow.last_seen_ns, now, &settings) {
                continue;
            }
            let c = counts.entry(flow.backend).or_default();
            if lb_common::conntrack::is_active(flow.state) {
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
    fn name(&self) -> &'static str {
        "XDP"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            schedulers: &[
                SchedulerKind::RoundRobin,
                SchedulerKind::WeightedRoundRobin,
                SchedulerKind::Maglev,
            ],
        }
    }

    fn counters(&self) -> Result<BTreeMap<String, u64>, DataplaneError> {
        let snapshot = self.program.counters().map_err(XdpApplyError::from)?;
        Ok(snapshot
            .iter()
            .map(|(c, v)| (c.name().to_owned(), v))
            .collect())
    }

    fn shutdown(&mut self) {
        self.program.detach_all();
    }

    fn apply(&mut self, desired: &DesiredState) -> Result<(), DataplaneError> {
        let mut maps = AyaMaps::new(self.program.ebpf_mut());
        writer::install(&mut self.installed, &mut maps, desired)
    }

    fn status(&self) -> Result<Vec<ServiceStatus>, DataplaneError> {
        let (service_stats, backend_stats) = self.stats_maps()?;
        let connections = self.connection_counts()?;
        let mut out = Vec::new();
        for installed in self.installed.in_order() {
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
        let (service_stats, backend_stats) = self.stats_maps()?;
        let mut out = Vec::new();
        for installed in self.installed.in_order() {
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
            self.installed.settings(),
            monotonic_ns(),
        )?))
    }
}
