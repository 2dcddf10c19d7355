//! Virtual servers (services) and their real servers (backends).

use std::{fmt, net::IpAddr, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    Check,
    defaults::{self, is_default},
    shorthand,
};
use crate::config::lenient;

/// A load-balanced service: one address, port and protocol. keepalived:
/// `virtual_server IP PORT { ... }`; ldirectord: `virtual=IP:PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct VirtualServer {
    /// A name for logs and status. ldirectord: `servicename`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The virtual address; normally one a VRRP instance owns. keepalived:
    /// the first argument of `virtual_server`.
    pub address: IpAddr,
    /// The service port; 0 means every port (needs persistence).
    /// keepalived: the second argument of `virtual_server`.
    #[serde(deserialize_with = "lenient::int::<_, u16, 0, 65535>")]
    pub port: u16,
    /// keepalived: `protocol TCP|UDP|SCTP` (default TCP).
    #[serde(default, skip_serializing_if = "is_default")]
    pub protocol: Protocol,
    /// How new flows pick a real server. keepalived: `lvs_sched` (its
    /// default is `wlc`; ours is `wrr`, which both data planes implement).
    #[serde(default, skip_serializing_if = "is_default")]
    pub scheduler: Scheduler,
    /// How packets reach the real servers. keepalived: `lvs_method NAT|DR|TUN`
    /// (default NAT).
    #[serde(default, skip_serializing_if = "is_default")]
    pub method: ForwardingMethod,
    /// Keep a client on the same real server for this long after its last
    /// connection. keepalived: `persistence_timeout`; ldirectord: `persistent`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub persistence_timeout: Option<Duration>,
    /// Interval between health checks. keepalived: `delay_loop` (default 60);
    /// ldirectord: `checkinterval`.
    #[serde(
        default = "defaults::delay_loop",
        skip_serializing_if = "defaults::is_delay_loop",
        deserialize_with = "lenient::positive_seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub delay_loop: Duration,
    /// Real servers with checks start down and join the pool only once
    /// every one of their checks has passed, at start and when a reload
    /// adds them (a server the reload keeps keeps its health).
    /// keepalived: `alpha`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub alpha: bool,
    /// Server used when fewer than `quorum` real servers are up.
    /// keepalived: `sorry_server IP PORT`; ldirectord: `fallback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<SorryServer>,
    /// Keep the sorry server with weight 0 instead of removing it when not
    /// needed. keepalived: `sorry_server_inhibit`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub sorry_server_inhibit: bool,
    /// Sum of the weights of healthy real servers needed for the service to
    /// be up. keepalived: `quorum` (default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 1, 65535>"
    )]
    pub quorum: u32,
    /// Margin around `quorum` before its state changes. keepalived:
    /// `hysteresis` (default 0).
    #[serde(
        default,
        skip_serializing_if = "is_default",
        deserialize_with = "lenient::int::<_, u32, 0, 65535>"
    )]
    pub hysteresis: u32,
    /// Command run when quorum is gained. keepalived: `quorum_up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_up: Option<String>,
    /// Command run when quorum is lost. keepalived: `quorum_down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_down: Option<String>,
    /// HTTP `Host:` for this service's HTTP/SSL checks. keepalived:
    /// `virtualhost`; ldirectord: `virtualhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    /// What becomes of a real server's established flows once it leaves
    /// the pool (removed by a failed check, or by a reload after its
    /// drain). IPVS: `net.ipv4.vs.expire_nodest_conn` (0: `drop`, 1:
    /// `reset`); `keep` is IPVS's weight 0.
    #[serde(default, skip_serializing_if = "is_default")]
    pub removed_server_flows: RemovedServerFlows,
    /// The backends. keepalived: `real_server IP PORT { ... }`; ldirectord:
    /// `real=IP:PORT`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub real_servers: Vec<RealServer>,
}

/// What becomes of a real server's established flows once it leaves its
/// service's pool (see docs/operations.md, "When a real server leaves").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedServerFlows {
    /// Their packets are dropped until the server returns (then they flow
    /// again) or they time out: IPVS's default, `expire_nodest_conn=0`.
    #[default]
    Drop,
    /// They are scheduled anew at their next packet: the new real server
    /// answers a TCP segment with a reset, so the client reconnects at
    /// once. IPVS's `expire_nodest_conn=1`.
    Reset,
    /// They keep going to the server as long as it answers (as at weight
    /// 0); only new flows avoid it.
    Keep,
}

impl RemovedServerFlows {
    /// The name as written in the configuration.
    pub const fn name(self) -> &'static str {
        match self {
            RemovedServerFlows::Drop => "drop",
            RemovedServerFlows::Reset => "reset",
            RemovedServerFlows::Keep => "keep",
        }
    }
}

/// Transport protocol of a virtual server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

/// How a real server is picked for a new flow: IPVS's schedulers (and
/// keepalived's `lvs_sched` names), plus `maglev` as another name for `mh`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    #[default]
    Wrr,
    /// Maglev consistent hashing: two balancers pick the same backend for
    /// a flow, so connections survive a failover.
    Mh,
    /// Least connection.
    Lc,
    /// Weighted least connection (keepalived's default).
    Wlc,
    /// Source hashing.
    Sh,
    /// Destination hashing.
    Dh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Power of two choices.
    Twos,
}

impl Scheduler {
    /// Every scheduler with its name as written in the config.
    pub const ALL: [(Scheduler, &'static str); 14] = [
        (Scheduler::Rr, "rr"),
        (Scheduler::Wrr, "wrr"),
        (Scheduler::Mh, "mh"),
        (Scheduler::Lc, "lc"),
        (Scheduler::Wlc, "wlc"),
        (Scheduler::Sh, "sh"),
        (Scheduler::Dh, "dh"),
        (Scheduler::Sed, "sed"),
        (Scheduler::Nq, "nq"),
        (Scheduler::Lblc, "lblc"),
        (Scheduler::Lblcr, "lblcr"),
        (Scheduler::Fo, "fo"),
        (Scheduler::Ovf, "ovf"),
        (Scheduler::Twos, "twos"),
    ];

    /// The name as written in the config (IPVS's name).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, name)| name)
    }
}

/// Not a scheduler name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheduler `{0}`")]
pub struct UnknownScheduler(pub String);

impl FromStr for Scheduler {
    type Err = UnknownScheduler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "maglev" {
            return Ok(Scheduler::Mh);
        }
        Self::ALL
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(sched, _)| *sched)
            .ok_or_else(|| UnknownScheduler(s.to_owned()))
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Scheduler {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Scheduler {
    /// Lenient: an unknown name is reported with the valid ones, and the
    /// rest of the file is still checked.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const VALID: [&str; 15] = [
            "rr", "wrr", "mh", "maglev", "lc", "wlc", "sh", "dh", "sed", "nq", "lblc", "lblcr",
            "fo", "ovf", "twos",
        ];
        lenient::named(deserializer, "scheduler", &VALID)
    }
}

/// How packets reach a real server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardingMethod {
    /// Rewrite the destination (and back on the reply). keepalived: `NAT`;
    /// ldirectord: `masq`.
    #[default]
    Nat,
    /// Direct routing: rewrite the MAC only. keepalived: `DR`; ldirectord:
    /// `gate`.
    Dr,
    /// IP-in-IP tunnel. keepalived: `TUN`; ldirectord: `ipip`.
    Tun,
}

/// A fallback server. keepalived: `sorry_server IP PORT`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SorryServer {
    pub address: IpAddr,
    /// Default: the virtual server's port.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 1, 65535>"
    )]
    pub port: Option<u16>,
}

/// A backend. keepalived: `real_server IP PORT { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RealServer {
    /// keepalived: the first argument of `real_server`.
    pub address: IpAddr,
    /// Default: the virtual server's port. keepalived: the second argument
    /// of `real_server`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 1, 65535>"
    )]
    pub port: Option<u16>,
    /// Share of new flows, 0-65535; 0 takes no new flows. keepalived:
    /// `weight` (default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 0, 65535>"
    )]
    pub weight: u32,
    /// On a failed check set weight 0 (existing flows continue) instead of
    /// removing the server. keepalived: `inhibit_on_failure`; ldirectord:
    /// `quiescent=yes`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub inhibit_on_failure: bool,
    /// Command run when the server comes up. keepalived: `notify_up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_up: Option<String>,
    /// Command run when the server goes down. keepalived: `notify_down`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_down: Option<String>,
    /// Health checks; all must pass. None: always up. keepalived:
    /// `TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `MISC_CHECK` blocks.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "shorthand::seq",
        serialize_with = "shorthand::ser_seq"
    )]
    pub checks: Vec<Check>,
}
