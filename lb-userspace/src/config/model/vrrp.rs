//! VRRP: instances, sync groups and the scripts and interfaces they track.

use std::{convert::Infallible, net::IpAddr, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    defaults::{self, is_default},
    shorthand::{self, Shorthand},
};
use crate::config::{IpPrefix, ip_prefix::IpPrefixError, lenient};

/// One virtual router. keepalived: `vrrp_instance NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct VrrpInstance {
    /// Instance name, used by sync groups and in logs. keepalived: the
    /// `vrrp_instance` block's name (`VI_1`).
    pub name: String,
    /// State at start-up; the election decides after that. keepalived:
    /// `state MASTER|BACKUP`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub state: InitialState,
    /// Interface that sends and receives adverts. keepalived: `interface`.
    pub interface: String,
    /// VRID, 1-255; unique per interface among the routers on the link.
    /// keepalived: `virtual_router_id`.
    #[serde(deserialize_with = "lenient::int::<_, u8, 1, 255>")]
    pub virtual_router_id: u8,
    /// Election priority, 1-255 (255: this node owns the addresses).
    /// keepalived: `priority` (default 100).
    #[serde(
        default = "defaults::priority",
        skip_serializing_if = "defaults::is_priority",
        deserialize_with = "lenient::int::<_, u8, 1, 255>"
    )]
    pub priority: u8,
    /// Advertisement interval. VRRPv2: whole seconds 1-255; VRRPv3:
    /// centiseconds, 0.01-40.95. keepalived: `advert_int` (default 1).
    #[serde(
        default = "defaults::advert_int",
        skip_serializing_if = "defaults::is_advert_int",
        deserialize_with = "lenient::seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub advert_int: Duration,
    /// VRRP version, 2 (RFC 3768, IPv4 only) or 3 (RFC 5798). keepalived:
    /// `version` / `vrrp_version` (default 2).
    #[serde(
        default = "defaults::vrrp_version",
        skip_serializing_if = "defaults::is_vrrp_version",
        deserialize_with = "lenient::int::<_, u8, 2, 3>"
    )]
    pub version: u8,
    /// VRRPv2 authentication. keepalived: `authentication { ... }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// The virtual addresses this instance owns when master. keepalived:
    /// `virtual_ipaddress { ADDR[/LEN] [brd B] [dev D] [label L] }`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "shorthand::seq",
        serialize_with = "shorthand::ser_seq"
    )]
    pub virtual_ipaddresses: Vec<VirtualAddress>,
    /// Addresses added with the others but not carried in adverts (for
    /// example IPv6 ones in a VRRPv2 instance). keepalived:
    /// `virtual_ipaddress_excluded { ... }`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "shorthand::seq",
        serialize_with = "shorthand::ser_seq"
    )]
    pub virtual_ipaddresses_excluded: Vec<VirtualAddress>,
    /// Source address of unicast adverts; default: the interface's primary
    /// address. keepalived: `unicast_src_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_src_ip: Option<IpAddr>,
    /// Peers to advertise to by unicast instead of multicast (clouds block
    /// multicast). keepalived: `unicast_peer { ... }`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unicast_peers: Vec<IpAddr>,
    /// Lowest TTL / hop limit accepted on adverts from `unicast_peers`.
    /// 255 (the default) accepts only peers on a connected subnet, as RFC
    /// 5798 7.1 requires; a peer behind routers arrives with 255 minus the
    /// hops, so routed peers need this set explicitly. keepalived:
    /// `unicast_peer { ADDR min_ttl N }`.
    #[serde(
        default = "defaults::unicast_min_ttl",
        skip_serializing_if = "defaults::is_unicast_min_ttl",
        deserialize_with = "lenient::int::<_, u8, 1, 255>"
    )]
    pub unicast_min_ttl: u8,
    /// A higher-priority backup takes over from a lower-priority master.
    /// `false` is keepalived's `nopreempt` (default: preempt).
    #[serde(default = "defaults::yes", skip_serializing_if = "defaults::is_yes")]
    pub preempt: bool,
    /// Wait this long after start-up before preempting. keepalived:
    /// `preempt_delay` (default 0).
    #[serde(
        default,
        skip_serializing_if = "is_default",
        deserialize_with = "lenient::seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub preempt_delay: Duration,
    /// Accept packets addressed to the virtual addresses when not their
    /// owner. keepalived: `accept` / `no_accept` (default: accept).
    #[serde(default = "defaults::yes", skip_serializing_if = "defaults::is_yes")]
    pub accept: bool,
    /// Delay before the second burst of gratuitous ARPs after becoming
    /// master. keepalived: `garp_master_delay` (default 5).
    #[serde(
        default = "defaults::garp_master_delay",
        skip_serializing_if = "defaults::is_garp_master_delay",
        deserialize_with = "lenient::seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub garp_master_delay: Duration,
    /// Gratuitous ARPs per burst. keepalived: `garp_master_repeat` (default 5).
    #[serde(
        default = "defaults::garp_master_repeat",
        skip_serializing_if = "defaults::is_garp_master_repeat",
        deserialize_with = "lenient::int::<_, u32, 1, 255>"
    )]
    pub garp_master_repeat: u32,
    /// Repeat gratuitous ARPs this often while master (heals split brain
    /// on switches that forgot). keepalived: `garp_master_refresh` (default off).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub garp_master_refresh: Option<Duration>,
    /// Gratuitous ARPs per refresh. keepalived: `garp_master_refresh_repeat`
    /// (default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 1, 255>"
    )]
    pub garp_master_refresh_repeat: u32,
    /// Scripts (from the top-level `track_scripts`) that adjust priority or
    /// fault the instance. keepalived: `track_script { NAME [weight W] }`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "shorthand::seq",
        serialize_with = "shorthand::ser_seq"
    )]
    pub track_scripts: Vec<TrackScriptRef>,
    /// Interfaces whose link state adjusts priority or faults the instance.
    /// keepalived: `track_interface { IFNAME [weight W] }`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "shorthand::seq",
        serialize_with = "shorthand::ser_seq"
    )]
    pub track_interfaces: Vec<TrackInterface>,
    /// Command run on becoming master. keepalived: `notify_master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<String>,
    /// Command run on becoming backup. keepalived: `notify_backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<String>,
    /// Command run on entering fault. keepalived: `notify_fault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<String>,
    /// Command run when the instance stops. keepalived: `notify_stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<String>,
    /// Command run on every change, with arguments `INSTANCE|GROUP NAME
    /// STATE PRIORITY`. keepalived: `notify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

/// State an instance starts in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialState {
    /// Start as master (keepalived `state MASTER`); an election still follows.
    Master,
    /// Start as backup (keepalived `state BACKUP`, its default).
    #[default]
    Backup,
}

/// VRRPv2 authentication. keepalived: `authentication { auth_type; auth_pass }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Authentication {
    /// keepalived: `auth_type PASS|AH`.
    pub auth_type: AuthType,
    /// The password; only the first 8 characters go on the wire.
    /// keepalived: `auth_pass`.
    pub auth_pass: String,
}

/// VRRPv2 authentication method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// Simple text password (RFC 2338 type 1). keepalived: `PASS`.
    Pass,
    /// IPsec AH (RFC 2338 type 2). keepalived: `AH`.
    Ah,
}

/// Where a MASTER's IPv4 virtual addresses live (`global.vip_device`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VipDevice {
    /// On `lbd-IFACE`, a tun device that vanishes with the process.
    #[default]
    Owned,
    /// On the instance's interface, as keepalived does.
    Interface,
}

/// A virtual address with keepalived's optional attributes. Written short
/// as just `ADDR[/LEN]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct VirtualAddress {
    /// Address and prefix length; without `/LEN` a host address.
    pub address: IpPrefix,
    /// Broadcast address. keepalived: `brd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brd: Option<IpAddr>,
    /// Interface to add it to; default: the instance's interface.
    /// keepalived: `dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Address label, e.g. `eth0:vip`. keepalived: `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl VirtualAddress {
    pub fn new(address: IpPrefix) -> Self {
        Self {
            address,
            brd: None,
            dev: None,
            label: None,
        }
    }
}

impl FromStr for VirtualAddress {
    type Err = IpPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self::new)
    }
}

impl Shorthand for VirtualAddress {
    const SHORT: &'static str = "an address (10.0.0.1/24)";

    fn short(&self) -> Option<String> {
        (self.brd.is_none() && self.dev.is_none() && self.label.is_none())
            .then(|| self.address.to_string())
    }
}

/// A tracked script, by name. Written short as just the name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TrackScriptRef {
    /// Name of an entry of the top-level `track_scripts`.
    pub name: String,
    /// Overrides the script's own `weight`, -253..253. keepalived: `weight`
    /// after the name in `track_script`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, i32, -253, 253>"
    )]
    pub weight: Option<i32>,
}

impl FromStr for TrackScriptRef {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self {
            name: s.to_owned(),
            weight: None,
        })
    }
}

impl Shorthand for TrackScriptRef {
    const SHORT: &'static str = "a script name";

    fn short(&self) -> Option<String> {
        self.weight.is_none().then(|| self.name.clone())
    }
}

/// A tracked interface. Written short as just the name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TrackInterface {
    /// Interface name.
    pub name: String,
    /// Added to priority while the link is up (negative: subtracted while
    /// down), -253..253; unset: link down faults the instance. keepalived:
    /// `weight` after the name in `track_interface`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, i32, -253, 253>"
    )]
    pub weight: Option<i32>,
}

impl FromStr for TrackInterface {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self {
            name: s.to_owned(),
            weight: None,
        })
    }
}

impl Shorthand for TrackInterface {
    const SHORT: &'static str = "an interface name";

    fn short(&self) -> Option<String> {
        self.weight.is_none().then(|| self.name.clone())
    }
}

/// Instances that go master, backup or fault together. keepalived:
/// `vrrp_sync_group NAME { group { ... } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SyncGroup {
    /// Group name. keepalived: the block's name.
    pub name: String,
    /// Names of the member instances. keepalived: `group { ... }`.
    pub group: Vec<String>,
    /// keepalived: `notify_master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<String>,
    /// keepalived: `notify_backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<String>,
    /// keepalived: `notify_fault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<String>,
    /// keepalived: `notify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

/// A check script for VRRP instances. keepalived: `vrrp_script NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TrackScript {
    /// Name that instances' `track_scripts` refer to. keepalived: the
    /// block's name.
    pub name: String,
    /// Command line; exit 0 is success. keepalived: `script`.
    pub script: String,
    /// Run every this long. keepalived: `interval` (default 1).
    #[serde(
        default = "defaults::script_interval",
        skip_serializing_if = "defaults::is_script_interval",
        deserialize_with = "lenient::positive_seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub interval: Duration,
    /// A run taking longer fails; default: `interval`. keepalived: `timeout`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_positive_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub timeout: Option<Duration>,
    /// -253..253. Positive: added to priority while succeeding; negative:
    /// subtracted while failing; 0: failing faults the instance.
    /// keepalived: `weight` (default 0).
    #[serde(
        default,
        skip_serializing_if = "is_default",
        deserialize_with = "lenient::int::<_, i32, -253, 253>"
    )]
    pub weight: i32,
    /// Successes in a row before the script counts as up. keepalived:
    /// `rise` (default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 1, 1000>"
    )]
    pub rise: u32,
    /// Failures in a row before the script counts as down. keepalived:
    /// `fall` (default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 1, 1000>"
    )]
    pub fall: u32,
    /// User to run as (`user` or `user group`); default:
    /// `global.script_user`. keepalived: `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}
