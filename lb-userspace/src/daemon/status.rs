//! What `lbd status` shows and the metrics export: one snapshot of the
//! services (with counters, connections, draining and health) and the VRRP
//! instances, built by the daemon from its data plane and VRRP runtime.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::{drain::Drains, health::HealthBoard, health::HealthView, rates::RateView};
use crate::{
    dataplane::{ServiceStatus, TrafficStats, socket_label},
    vrrp::{
        Counters, State,
        io::{InstanceStatus, RuntimeCounters},
    },
};

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    /// "XDP", "IPVS", or `None` on a VRRP-only node.
    pub dataplane: Option<String>,
    pub config: String,
    /// Unix time (seconds) of the start and of the last successful reload.
    pub started_at: u64,
    pub reloaded_at: Option<u64>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// Whether the last reload was refused (false before any reload).
    #[serde(default)]
    pub last_reload_failed: bool,
    pub services: Vec<ServiceView>,
    pub vrrp_instances: Vec<InstanceView>,
    /// VRRP packets no instance took (bad header, unknown VRID).
    pub vrrp_unmatched: u64,
    /// The XDP program's counters by name (empty with IPVS).
    pub xdp_counters: BTreeMap<String, u64>,
    /// The window the `rates` are averaged over, in milliseconds; `None`
    /// until the daemon has two counter samples.
    #[serde(default)]
    pub rate_window_ms: Option<u64>,
    /// The flow sync's counters; `None` when it does not run.
    #[serde(default)]
    pub flow_sync: Option<crate::flowsync::FlowSyncView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// "TCP" or "UDP".
    pub protocol: String,
    pub vip: IpAddr,
    pub port: u16,
    /// `10.0.0.1:80`, `[fd00::1]:80`.
    pub address: String,
    pub scheduler: String,
    pub stats: StatsView,
    /// Per second over the report's `rate_window_ms`.
    #[serde(default)]
    pub rates: RateView,
    pub real_servers: Vec<RealServerView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerView {
    pub ip: IpAddr,
    pub port: u16,
    pub address: String,
    pub weight: u32,
    /// ipvsadm's ActiveConn and InActConn.
    pub active_connections: u64,
    pub inactive_connections: u64,
    pub stats: StatsView,
    #[serde(default)]
    pub rates: RateView,
    /// Removed by a reload; kept at weight 0 until its flows end.
    pub draining: bool,
    /// In the data plane's pool (at `weight`). False for a checked server
    /// its health check took out (`quiescent=no`, or the sorry server
    /// serving): shown so a down server never vanishes from status.
    #[serde(default = "in_pool_default")]
    pub in_pool: bool,
    /// `None` while no health check runs for it.
    pub health: Option<HealthView>,
}

impl RealServerView {
    /// A checked real server its check took out of the pool: no weight,
    /// no traffic, listed for its health.
    pub fn out_of_pool(ip: IpAddr, port: u16, health: HealthView) -> Self {
        Self {
            ip,
            port,
            address: socket_label(ip, port),
            weight: 0,
            active_connections: 0,
            inactive_connections: 0,
            stats: StatsView::default(),
            rates: RateView::default(),
            draining: false,
            in_pool: false,
            health: Some(health),
        }
    }
}

const fn in_pool_default() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl From<TrafficStats> for StatsView {
    fn from(s: TrafficStats) -> Self {
        Self {
            connections: s.connections,
            packets_in: s.packets_in,
            packets_out: s.packets_out,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub name: String,
    /// "INIT", "BACKUP", "MASTER" or "FAULT".
    pub state: String,
    /// Effective priority (configured plus tracking weights).
    pub priority: u8,
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    pub vips: Vec<IpAddr>,
    /// Unix time (seconds) the current state began.
    pub last_transition: u64,
    pub maintenance: bool,
    /// Handed over by `lbd failover` (or SIGUSR1): it stays BACKUP, accepting
    /// any master, until it is elected again (its peer stops advertising or
    /// hands over) or lbd restarts.
    #[serde(default)]
    pub handed_over: bool,
    pub counters: VrrpCountersView,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpCountersView {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// Answers to another master's adverts (split brain), and those left
    /// out because the sender was answered less than an interval ago.
    #[serde(default)]
    pub split_brain_replies: u64,
    #[serde(default)]
    pub split_brain_replies_limited: u64,
    /// Dropped adverts per reason (every reason, zeros included).
    pub dropped: BTreeMap<String, u64>,
}

impl From<&Counters> for VrrpCountersView {
    fn from(c: &Counters) -> Self {
        Self {
            adverts_sent: c.adverts_sent,
            adverts_received: c.adverts_received,
            priority_zero_sent: c.priority_zero_sent,
            priority_zero_received: c.priority_zero_received,
            became_master: c.became_master,
            released_master: c.released_master,
            split_brain_replies: c.split_brain_replies,
            split_brain_replies_limited: c.split_brain_replies_limited,
            dropped: c.drops().map(|(r, n)| (r.name().to_owned(), n)).collect(),
        }
    }
}

pub const fn state_name(state: State) -> &'static str {
    match state {
        State::Init => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// Seconds since the Unix epoch of `at`.
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The services as the data plane reports them, with draining and health,
/// and after each service's pool the checked real servers not in it
/// (removed by their check), so status shows them down.
pub fn services(
    status: &[ServiceStatus],
    drains: &Drains,
    health: &HealthBoard,
) -> Vec<ServiceView> {
    status
        .iter()
        .map(|s| {
            let mut real_servers: Vec<RealServerView> = s
                .backends
                .iter()
                .map(|b| {
                    let key = s.id().real(b.addr, b.port);
                    RealServerView {
                        ip: b.addr,
                        port: b.port,
                        address: socket_label(b.addr, b.port),
                        weight: b.weight,
                        active_connections: b.active_connections,
                        inactive_connections: b.inactive_connections,
                        stats: b.stats.into(),
                        rates: RateView::default(),
                        draining: drains.contains(&key),
                        in_pool: true,
                        health: health.view(&key),
                    }
                })
                .collect();
            let out_of_pool: Vec<RealServerView> = health
                .of_service(s.id())
                .filter(|(id, _)| {
                    !s.backends
                        .iter()
                        .any(|b| b.addr == id.addr && b.port == id.port)
                })
                .map(|(id, view)| RealServerView::out_of_pool(id.addr, id.port, view.clone()))
                .collect();
            real_servers.extend(out_of_pool);
            ServiceView {
                protocol: s.protocol.to_string(),
                vip: s.vip,
                port: s.port,
                address: socket_label(s.vip, s.port),
                scheduler: s.scheduler.name().to_owned(),
                stats: s.stats.into(),
                rates: RateView::default(),
                real_servers,
            }
        })
        .collect()
}

/// The instances with their counters; wall-clock transition times.
pub fn instances(states: &[InstanceStatus], counters: &RuntimeCounters) -> Vec<InstanceView> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    states
        .iter()
        .map(|s| {
            let since = wall - now.saturating_duration_since(s.since);
            let counters = counters
                .instances
                .iter()
                .find(|(name, _)| *name == s.name)
                .map(|(_, c)| VrrpCountersView::from(c))
                .unwrap_or_default();
            InstanceView {
                name: s.name.clone(),
                state: state_name(s.state).to_owned(),
                priority: s.priority,
                master: s.master.map(|(a, _)| a),
                master_priority: s.master.map(|(_, p)| p),
                vips: s.vips.clone(),
                last_transition: unix_seconds(since),
                maintenance: s.maintenance,
                handed_over: s.handed_over,
                counters,
            }
        })
        .collect()
}
