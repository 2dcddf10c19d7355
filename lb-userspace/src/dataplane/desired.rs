//! The desired forwarding state: services and their weighted backends,
//! derived from the configuration and later adjusted by health checks.

use std::{fmt, net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ForwardingMethod, RemovedServerFlows, Scheduler};

use super::{DesiredStateError, RealId, ServiceId};

/// Everything the data plane should forward.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub services: Vec<ServiceSpec>,
    pub timeouts: Timeouts,
}

/// Idle timeouts of tracked flows (IPVS's `ipvsadm --set tcp tcpfin udp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: Duration,
    pub tcp_fin: Duration,
    pub udp: Duration,
}

impl Default for Timeouts {
    /// IPVS's defaults: 900 s, 120 s, 300 s.
    fn default() -> Self {
        Self {
            tcp: Duration::from_mins(15),
            tcp_fin: Duration::from_mins(2),
            udp: Duration::from_mins(5),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum L4Protocol {
    Tcp,
    Udp,
}

impl L4Protocol {
    pub const fn number(self) -> u8 {
        match self {
            L4Protocol::Tcp => 6,
            L4Protocol::Udp => 17,
        }
    }
}

impl fmt::Display for L4Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            L4Protocol::Tcp => "TCP",
            L4Protocol::Udp => "UDP",
        })
    }
}

/// The schedulers lbd can run: XDP implements rr, wrr and mh; IPVS all six.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    RoundRobin,
    WeightedRoundRobin,
    Maglev,
    /// Source hashing (IPVS only).
    SourceHashing,
    /// Least connections (IPVS only).
    LeastConnections,
    /// Weighted least connections (IPVS only).
    WeightedLeastConnections,
}

impl SchedulerKind {
    pub const ALL: [SchedulerKind; 6] = [
        SchedulerKind::RoundRobin,
        SchedulerKind::WeightedRoundRobin,
        SchedulerKind::Maglev,
        SchedulerKind::SourceHashing,
        SchedulerKind::LeastConnections,
        SchedulerKind::WeightedLeastConnections,
    ];

    /// The name IPVS and the configuration use.
    pub const fn name(self) -> &'static str {
        match self {
            SchedulerKind::RoundRobin => "rr",
            SchedulerKind::WeightedRoundRobin => "wrr",
            SchedulerKind::Maglev => "mh",
            SchedulerKind::SourceHashing => "sh",
            SchedulerKind::LeastConnections => "lc",
            SchedulerKind::WeightedLeastConnections => "wlc",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the XDP data plane implements it (the others need IPVS).
    pub const fn xdp_capable(self) -> bool {
        matches!(
            self,
            SchedulerKind::RoundRobin | SchedulerKind::WeightedRoundRobin | SchedulerKind::Maglev
        )
    }
}

/// A virtual service and its backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: L4Protocol,
    pub scheduler: SchedulerKind,
    pub backends: Vec<BackendSpec>,
    /// Used only while no backend has a weight above 0.
    pub sorry: Option<BackendSpec>,
    /// What becomes of the flows of a backend that leaves `backends`.
    pub removed_server_flows: RemovedServerFlows,
}

impl ServiceSpec {
    /// `TCP 10.0.0.1:80`, as ipvsadm writes it.
    pub fn label(&self) -> String {
        self.id().to_string()
    }

    pub const fn id(&self) -> ServiceId {
        ServiceId {
            protocol: self.protocol,
            vip: self.vip,
            port: self.port,
        }
    }

    /// The id of `backend` as a real server of this service.
    pub const fn real(&self, backend: &BackendSpec) -> RealId {
        self.id().real(backend.addr, backend.port)
    }

    /// Every real server's id, in order.
    pub fn reals(&self) -> impl Iterator<Item = RealId> + '_ {
        self.backends.iter().map(|b| self.real(b))
    }
}

/// A real server of a service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BackendSpec {
    pub addr: IpAddr,
    pub port: u16,
    /// 0: no new flows, existing ones continue (`inhibit_on_failure`).
    pub weight: u32,
}

pub fn socket(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl DesiredState {
    /// The forwarding state a configuration asks for, before any health
    /// check has run (every real server at its configured weight).
    pub fn from_config(config: &Config) -> Result<Self, DesiredStateError> {
        let mut timeouts = Timeouts::default();
        let conntrack = &config.global.conntrack;
        if let Some(t) = conntrack.tcp {
            timeouts.tcp = t;
        }
        if let Some(t) = conntrack.tcp_fin {
            timeouts.tcp_fin = t;
        }
        if let Some(t) = conntrack.udp {
            timeouts.udp = t;
        }
        let mut services = Vec::new();
        for vs in &config.virtual_servers {
            let label = socket(vs.address, vs.port);
            let Some(id) = ServiceId::of(vs) else {
                return Err(DesiredStateError::Protocol { service: label });
            };
            if vs.method != ForwardingMethod::Nat {
                return Err(DesiredStateError::Method { service: label });
            }
            let scheduler = match vs.scheduler {
                Scheduler::Rr => SchedulerKind::RoundRobin,
                Scheduler::Wrr => SchedulerKind::WeightedRoundRobin,
                Scheduler::Mh => SchedulerKind::Maglev,
                Scheduler::Sh => SchedulerKind::SourceHashing,
                Scheduler::Lc => SchedulerKind::LeastConnections,
                Scheduler::Wlc => SchedulerKind::WeightedLeastConnections,
                other => {
                    return Err(DesiredStateError::Scheduler {
                        service: label,
                        scheduler: other.name(),
                    });
                }
            };
            let backends = vs
                .real_servers
                .iter()
                .map(|rs| {
                    let real = id.configured_real(rs);
                    BackendSpec {
                        addr: real.addr,
                        port: real.port,
                        weight: rs.weight,
                    }
                })
                .collect();
            let sorry = vs.sorry_server.as_ref().map(|s| BackendSpec {
                addr: s.address,
                port: s.port.unwrap_or(vs.port),
                weight: 1,
            });
            services.push(ServiceSpec {
                vip: id.vip,
                port: id.port,
                protocol: id.protocol,
                scheduler,
                backends,
                sorry,
                removed_server_flows: vs.removed_server_flows,
            });
        }
        Ok(Self { services, timeouts })
    }
}
