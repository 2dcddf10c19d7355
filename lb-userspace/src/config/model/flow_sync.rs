//! Flow sync between the two balancers of a pair. keepalived:
//! `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N]
//! [ttl N] [group IP]` (IPVS's sync daemon); conntrackd does the same for
//! netfilter.

use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};

use crate::config::lenient;

/// Stream new and closing flows to the peer and install the peer's, so a
/// takeover keeps flows that the new MASTER's scheduler would send
/// elsewhere (rr, wrr; replies of real servers shared by several services).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FlowSync {
    /// Interface the sync datagrams leave and arrive on. keepalived:
    /// `lvs_sync_daemon INTERFACE`.
    pub interface: String,
    /// The peer balancers' addresses: sent to (unicast) unless `group` is
    /// set, and the only senders accepted when listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<IpAddr>,
    /// A multicast group to send to and listen on. keepalived: `group`
    /// (IPVS's default 224.0.0.81).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    /// UDP port. keepalived: `port` (default 8848).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 1, 65535>"
    )]
    pub port: Option<u16>,
    /// Sync id: datagrams of another id are refused, so several pairs can
    /// share a network. keepalived: `id` (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u8, 0, 255>"
    )]
    pub id: Option<u8>,
    /// Largest datagram, in bytes. keepalived: `maxlen`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 68, 65507>"
    )]
    pub maxlen: Option<u16>,
    /// TTL (hop limit) of multicast datagrams. keepalived: `ttl` (default 1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u8, 1, 255>"
    )]
    pub ttl: Option<u8>,
    /// How long a flow may wait for others to fill its datagram.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_positive_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub interval: Option<Duration>,
}

impl FlowSync {
    /// IPVS's sync port.
    pub const DEFAULT_PORT: u16 = 8848;
    /// Fits a 1500-byte MTU over IPv4 (24 flows).
    pub const DEFAULT_MAXLEN: u16 = 1472;
    pub const DEFAULT_TTL: u8 = 1;
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(Self::DEFAULT_PORT)
    }

    pub fn id(&self) -> u8 {
        self.id.unwrap_or(0)
    }

    pub fn maxlen(&self) -> u16 {
        self.maxlen.unwrap_or(Self::DEFAULT_MAXLEN)
    }

    pub fn ttl(&self) -> u8 {
        self.ttl.unwrap_or(Self::DEFAULT_TTL)
    }

    pub fn interval(&self) -> Duration {
        self.interval.unwrap_or(Self::DEFAULT_INTERVAL)
    }
}
