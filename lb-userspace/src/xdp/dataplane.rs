//! The XDP data plane: a loaded program, what is installed in its maps
//! (planned by `super::plan`, written by `super::writer`) and what it
//! counted.

use std::collections::{BTreeMap, HashMap};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray};
use lb_common::maps::{self as m, Flow, FlowKey, Stats};

use super::{
    XdpApplyError, XdpProgram,
    flows::{XdpFlowLister, duplicate},
    pins::PinDir,
    plan::{InstalledState, adopt::Snapshot},
    writer::{self, AyaMaps},
};
use crate::dataplane::{
    BackendStatus, Capabilities, Dataplane, DataplaneError, DesiredState, FlowLister,
    SchedulerKind, ServiceStatus, ServiceTraffic, TrafficStats,
};

/// The XDP data plane over a loaded [`XdpProgram`].
pub struct XdpDataplane {
    pub(super) program: XdpProgram,
    pub(super) installed: InstalledState,
    /// Where the flow sync learns the installed ids (`sync_port`).
    pub(super) sync_ids: Option<tokio::sync::watch::Sender<std::sync::Arc<super::SyncIds>>>,
    /// The services an earlier lbd left in the pinned maps.
    adopted: Option<DesiredState>,
    /// Where the maps and links are pinned: they outlive this process
    /// (unless on a bpffs of its own mount namespace).
    pin_dir: Option<PinDir>,
    /// The pins were made by this process and nothing was installed yet:
    /// a start that fails before its first apply removes them again.
    fresh_pins: bool,
}

pub(super) fn map_err(
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
            sync_ids: None,
            adopted: None,
            pin_dir: None,
            fresh_pins: false,
        }
    }

    /// Over a program whose maps and links are pinned in `pin_dir`, which
    /// start empty; `fresh` when this process made the pins.
    pub(super) fn pinned(program: XdpProgram, pins: &PinDir, fresh: bool) -> Self {
        let mut dataplane = Self::new(program);
        dataplane.pin_dir = Some(pins.clone());
        dataplane.fresh_pins = fresh;
        dataplane
    }

    /// Over a program whose pinned maps hold what `snapshot` says: planned
    /// from as if this process had installed it.
    pub(super) fn adopting(program: XdpProgram, snapshot: &Snapshot, pins: &PinDir) -> Self {
        let mut dataplane = Self::pinned(program, pins, false);
        dataplane.installed = InstalledState::adopt(snapshot);
        dataplane.adopted = Some(dataplane.installed.as_desired());
        dataplane
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
        // The flows expire by what was last written to SETTINGS.
        let flows = ct
            .iter()
            .filter_map(|entry| entry.ok().map(|(_, flow)| flow));
        Ok(count_connections(
            flows,
            &self.installed.mirror.backends,
            monotonic_ns(),
            &self.installed.settings(),
        ))
    }
}

/// (active, inactive) live flows per backend id. A flow pinned to an
/// earlier occupant of a reused id (another generation) is not the current
/// backend's: counting it would show a new real server with its
/// predecessor's connections.
fn count_connections(
    flows: impl Iterator<Item = Flow>,
    backends: &BTreeMap<u32, m::Backend>,
    now: u64,
    settings: &m::Settings,
) -> HashMap<u32, (u64, u64)> {
    let mut counts: HashMap<u32, (u64, u64)> = HashMap::new();
    for flow in flows {
        if lb_common::conntrack::expired(flow.state, flow.last_seen_ns, now, settings) {
            continue;
        }
        if backends
            .get(&flow.backend)
            .is_none_or(|b| b.generation != flow.generation)
        {
            continue;
        }
        let c = counts.entry(flow.backend).or_default();
        if lb_common::conntrack::is_active(flow.state) {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    counts
}

/// The clock `bpf_ktime_get_ns` reads.
pub(crate) fn monotonic_ns() -> u64 {
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
        match &self.pin_dir {
            Some(pins) if pins.lasting() => tracing::info!(
                pin_dir = %pins.path().display(),
                "XDP program left attached, its maps and links pinned: the next `lbd run` adopts them and keeps the flows; `lbd cleanup` removes them"
            ),
            Some(pins) => tracing::warn!(
                pin_dir = %pins.path().display(),
                "XDP program left pinned on the bpffs this lbd mounted: if that mount was in a mount namespace of its own (`ip netns exec`), it goes with it and the program is detached; else `lbd cleanup` removes them"
            ),
            None => {}
        }
    }

    fn adopted(&self) -> Option<DesiredState> {
        self.adopted.clone()
    }

    fn apply(&mut self, desired: &DesiredState) -> Result<(), DataplaneError> {
        if super::local_reals::wants_route_localnet(desired) {
            for (interface, _) in self.program.attached() {
                if let Err(e) = super::local_reals::enable_route_localnet(interface) {
                    tracing::warn!(
                        interface,
                        error = %e,
                        "setting route_localnet failed: real servers on 127.0.0.0/8 are not \
                         reachable through this interface"
                    );
                }
            }
        }
        let mut maps = AyaMaps::new(self.program.ebpf_mut());
        let result = writer::install(&mut self.installed, &mut maps, desired);
        self.publish_sync_ids();
        result?;
        self.fresh_pins = false;
        Ok(())
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

impl Drop for XdpDataplane {
    fn drop(&mut self) {
        if let (true, Some(pins)) = (self.fresh_pins, &self.pin_dir) {
            let _ = pins.remove_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use lb_common::maps::{Backend, FLOW_ESTABLISHED, Settings};

    use super::*;

    #[test]
    fn flows_of_an_earlier_occupant_of_a_reused_id_are_not_counted() {
        let backends = BTreeMap::from([(
            3,
            Backend {
                generation: 2,
                ..Backend::default()
            },
        )]);
        let flow = |generation| Flow {
            backend: 3,
            generation,
            state: FLOW_ESTABLISHED,
            last_seen_ns: 1_000,
            ..Flow::default()
        };
        let settings = Settings::default();
        let counts = count_connections(
            [flow(1), flow(1), flow(2)].into_iter(),
            &backends,
            1_000,
            &settings,
        );
        assert_eq!(
            counts.get(&3),
            Some(&(1, 0)),
            "only the current generation's"
        );
        let gone = Flow {
            backend: 9,
            ..flow(2)
        };
        assert!(count_connections([gone].into_iter(), &backends, 1_000, &settings).is_empty());
    }
}
