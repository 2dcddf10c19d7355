//! The configuration model: what `lbd.yaml` says, as typed Rust values.
//!
//! Key names follow keepalived's where one exists (each field's doc names
//! the directive), so a keepalived user can guess them. Lists everywhere
//! rather than maps, so order is kept and each item's `name` is explicit.
//! Every struct rejects unknown keys: a typo is an error, never ignored.
//! `docs/config-reference.md` lists every key; `reference.rs` keeps it in step.

mod check;
pub(crate) mod defaults;
mod flow_sync;
pub(crate) mod shorthand;
mod virtual_server;
mod vrrp;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::{
    check::{Check, HttpCheck, MiscCheck, NegotiateCheck, NegotiateService, TcpCheck, UrlCheck},
    flow_sync::FlowSync,
    virtual_server::{
        ForwardingMethod, Protocol, RealServer, RemovedServerFlows, Scheduler, SorryServer,
        UnknownScheduler, VirtualServer,
    },
    vrrp::{
        AuthType, Authentication, InitialState, SyncGroup, TrackInterface, TrackScript,
        TrackScriptRef, VipDevice, VirtualAddress, VrrpInstance,
    },
};
use super::lenient;
use defaults::is_default;

/// A whole `lbd.yaml`. Every section may be left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Config {
    /// Files merged into this one (glob patterns relative to this file's
    /// folder, e.g. `conf.d/*.yaml`); they hold only lists. keepalived:
    /// `include`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "super::include::one_or_more"
    )]
    pub include: Vec<String>,
    /// Settings for the whole daemon. keepalived: `global_defs`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub global: Global,
    /// Which data plane forwards packets. keepalived: none (always IPVS).
    #[serde(default, skip_serializing_if = "is_default")]
    pub dataplane: DataplaneKind,
    /// Interfaces the XDP program attaches to. keepalived: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceConfig>,
    /// VRRP instances. keepalived: `vrrp_instance NAME { ... }`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vrrp_instances: Vec<VrrpInstance>,
    /// Instances that change state together. keepalived: `vrrp_sync_group`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_groups: Vec<SyncGroup>,
    /// Scripts whose result adjusts priority. keepalived: `vrrp_script NAME { ... }`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_scripts: Vec<TrackScript>,
    /// Load-balanced services. keepalived: `virtual_server IP PORT { ... }`;
    /// ldirectord: `virtual=IP:PORT`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_servers: Vec<VirtualServer>,
    /// Flow sync with the peer balancer (XDP data plane). keepalived:
    /// `lvs_sync_daemon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_sync: Option<FlowSync>,
}

/// Daemon-wide settings. keepalived: `global_defs { ... }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Global {
    /// This node's name in logs and notifications; default: the host name.
    /// keepalived: `router_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// User (and optionally `user group`) that runs scripts when a script
    /// gives none. keepalived: `script_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_user: Option<String>,
    /// Refuse scripts that a non-root user could modify. keepalived:
    /// `enable_script_security`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub enable_script_security: bool,
    /// Connection-tracking timeouts of the XDP data plane. keepalived: none
    /// (ipvsadm `--set tcp tcpfin udp`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub conntrack: ConntrackTimeouts,
    /// Group (name) whose members may use the control socket (`lbd
    /// status`, `reload`, ...); unset: root only. keepalived: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_group: Option<String>,
    /// Serve Prometheus metrics over HTTP on this address, e.g.
    /// `127.0.0.1:9100`; unset: no metrics listener. keepalived: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How long a real server removed by a reload keeps its flows (at
    /// weight 0) before it is removed anyway; default 30 s. keepalived:
    /// none (ldirectord: none; IPVS `expire_nodest_conn` drops at once).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub drain_timeout: Option<Duration>,
    /// Reload when the configuration file changes (checked every second).
    /// ldirectord: `autoreload`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub autoreload: bool,
    /// Where a MASTER puts its IPv4 virtual addresses: `owned` (a device
    /// lbd creates per VRRP interface, `lbd-IFACE`, which vanishes with
    /// the process, so a crashed lbd leaves nothing answering for them) or
    /// `interface` (on the instance's interface, as keepalived does).
    /// keepalived: none (always `interface`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub vip_device: VipDevice,
}

impl Global {
    /// `drain_timeout` when unset.
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout.unwrap_or(Self::DEFAULT_DRAIN_TIMEOUT)
    }
}

/// How long an idle flow stays pinned to its backend. Unset: the data
/// plane's built-in default (IPVS: 900 s, 120 s, 300 s).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ConntrackTimeouts {
    /// Established TCP flows. ipvsadm: `--set TCP`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub tcp: Option<Duration>,
    /// TCP flows after a FIN. ipvsadm: `--set TCPFIN`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub tcp_fin: Option<Duration>,
    /// UDP flows. ipvsadm: `--set UDP`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub udp: Option<Duration>,
}

/// Which data plane forwards packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataplaneKind {
    /// XDP, falling back to IPVS when the XDP program cannot attach.
    #[default]
    Auto,
    /// XDP only; fail when it cannot attach.
    Xdp,
    /// The kernel's IPVS (what keepalived drives).
    Ipvs,
}

/// An interface the XDP program attaches to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct InterfaceConfig {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// How XDP attaches. ip-link: `xdp` / `xdpdrv` / `xdpgeneric`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub xdp_mode: XdpMode,
}

/// XDP attach mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// Native when the driver supports it, generic (SKB) otherwise.
    #[default]
    Auto,
    /// In the driver; fail when the driver cannot.
    Native,
    /// Generic (SKB) mode: works everywhere, slower.
    Generic,
}
