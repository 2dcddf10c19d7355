//! What a data plane reports: per service and backend, like `ipvsadm -Ln`.

use std::net::IpAddr;

use super::{L4Protocol, SchedulerKind, ServiceId};

/// Packet, byte and connection counters since the data plane started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficStats {
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStatus {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// Tracked flows in the established state (ipvsadm's ActiveConn).
    pub active_connections: u64,
    /// Tracked flows in any other state (ipvsadm's InActConn).
    pub inactive_connections: u64,
    pub stats: TrafficStats,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: L4Protocol,
    pub scheduler: SchedulerKind,
    pub backends: Vec<BackendStatus>,
    pub stats: TrafficStats,
}

impl ServiceStatus {
    pub const fn id(&self) -> ServiceId {
        ServiceId {
            protocol: self.protocol,
            vip: self.vip,
            port: self.port,
        }
    }
}

/// A service's counters without connection counts, which cost a walk of
/// the flow table: what the rate sampler reads every second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTraffic {
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: L4Protocol,
    pub stats: TrafficStats,
    /// (address, port, counters) per backend.
    pub backends: Vec<(IpAddr, u16, TrafficStats)>,
}

impl From<&ServiceStatus> for ServiceTraffic {
    fn from(s: &ServiceStatus) -> Self {
        Self {
            vip: s.vip,
            port: s.port,
            protocol: s.protocol,
            stats: s.stats,
            backends: s
                .backends
                .iter()
                .map(|b| (b.addr, b.port, b.stats))
                .collect(),
        }
    }
}
