//! The desired forwarding state: services and their weighted backends,
//! derived from the configuration and later adjusted by health checks.

use std::{fmt, net::IpAddr, time::Duration};

use crate::config::{Config, ForwardingMethod, Protocol, Scheduler};

use super::DesiredStateError;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
}

impl ServiceSpec {
    /// `TCP 10.0.0.1:80`, as ipvsadm writes it.
    pub fn label(&self) -> String {
        format!("{} {}", self.protocol, socket(self.vip, self.port))
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
            let protocol = match vs.protocol {
                Protocol::Tcp => L4Protocol::Tcp,
                Protocol::Udp => L4Protocol::Udp,
                Protocol::Sctp => {
                    return Err(DesiredStateError::Protocol { service: label });
                }
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
                .map(|rs| BackendSpec {
                    addr: rs.address,
                    port: rs.port.unwrap_or(vs.port),
                    weight: rs.weight,
                })
                .collect();
            let sorry = vs.sorry_server.as_ref().map(|s| BackendSpec {
                addr: s.address,
                port: s.port.unwrap_or(vs.port),
                weight: 1,
            });
            services.push(ServiceSpec {
                vip: vs.address,
                port: vs.port,
                protocol,
                scheduler,
                backends,
                sorry,
            });
        }
        Ok(Self { services, timeouts })
    }
}
