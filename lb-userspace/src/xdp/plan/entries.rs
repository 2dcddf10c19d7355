//! The map keys and values a desired state turns into: pure conversions
//! from the daemon's types to `lb_common::maps`'s.

use std::net::IpAddr;

use lb_common::maps::{
    BACKEND_LIVE, Backend, FAMILY_IPV4, FAMILY_IPV6, Flow, FlowKey, NO_BACKEND, RealKey,
    ReverseFlow, SETTINGS_FLOW_SYNC, Service, ServiceKey, Settings,
};

use super::Installed;
use crate::dataplane::{BackendSpec, SchedulerKind, ServiceSpec, Timeouts};
use crate::xdp::rings::RingScheduler;

/// An address as the maps hold it: 16 bytes (IPv4 in the first 4) and its
/// family.
pub(crate) fn addr_bytes(addr: IpAddr) -> ([u8; 16], u8) {
    match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (b, FAMILY_IPV4)
        }
        IpAddr::V6(a) => (a.octets(), FAMILY_IPV6),
    }
}

pub(crate) fn service_key(spec: &ServiceSpec) -> ServiceKey {
    let (addr, family) = addr_bytes(spec.vip);
    ServiceKey {
        addr,
        port: spec.port.to_be_bytes(),
        proto: spec.protocol.number(),
        family,
    }
}

/// The `REALS` key of a backend at `(addr, port)` of a service whose key is
/// `service` (replies come back over the service's protocol).
pub(crate) fn real_key(service: &ServiceKey, (addr, port): (IpAddr, u16)) -> RealKey {
    let (addr, family) = addr_bytes(addr);
    RealKey {
        addr,
        port: port.to_be_bytes(),
        proto: service.proto,
        family,
    }
}

/// The XDP program's scheduler; `check` refused the IPVS-only ones, which
/// would otherwise run as wrr.
pub(crate) fn ring_scheduler(kind: SchedulerKind) -> RingScheduler {
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
pub(crate) fn identity(b: &BackendSpec) -> Vec<u8> {
    let (addr, family) = addr_bytes(b.addr);
    let mut id = vec![family];
    id.extend_from_slice(&addr);
    id.extend_from_slice(&b.port.to_be_bytes());
    id
}

/// The `SERVICES` value that forwards by `installed`'s live ring.
pub(crate) fn service_entry(installed: &Installed) -> Service {
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

/// The live `BACKENDS` value of `spec` in its id's `generation`.
pub(crate) fn backend_entry(spec: &BackendSpec, generation: u32) -> Backend {
    let (addr, family) = addr_bytes(spec.addr);
    Backend {
        addr,
        port: spec.port.to_be_bytes(),
        family,
        flags: BACKEND_LIVE,
        generation,
    }
}

/// `SETTINGS` for the configured timeouts (at least a second each: 0 would
/// expire every flow at once), with flow events on when `flow_events`.
pub(crate) fn settings_entry(t: &Timeouts, flow_events: bool) -> Settings {
    let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1);
    Settings {
        tcp_established_s: secs(t.tcp),
        tcp_fin_s: secs(t.tcp_fin),
        udp_s: secs(t.udp),
        flags: if flow_events { SETTINGS_FLOW_SYNC } else { 0 },
        ..Settings::IPVS_DEFAULTS
    }
}

/// The `REVERSE` entries (reply key -> VIP) of the tracked `flows` pinned to
/// one of `backends` (id -> the backend's `REALS` key).
pub(crate) fn reverse_entries(
    backends: &std::collections::BTreeMap<u32, RealKey>,
    flows: impl IntoIterator<Item = (FlowKey, Flow)>,
) -> Vec<(FlowKey, ReverseFlow)> {
    flows
        .into_iter()
        .filter_map(|(key, flow)| {
            let real = backends.get(&flow.backend)?;
            Some(ReverseFlow::of_flow(
                &key,
                real.addr,
                real.port,
                flow.service,
            ))
        })
        .collect()
}
