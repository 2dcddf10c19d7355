//! The flows a data plane tracks, as `ipvsadm -Lnc` lists them: protocol,
//! state, client, virtual address, real server and time to expiry, with
//! the filters `lbd status --connections` takes.
//!
//! A [`FlowLister`] owns what it reads (its own handle on the conntrack
//! map, or the path of `/proc/net/ip_vs_conn`), so the daemon can hand it to
//! a blocking thread and keep serving VRRP and requests while a full table
//! is walked.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    ops::ControlFlow,
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use super::{DataplaneError, L4Protocol};

/// One tracked flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEntry {
    /// "TCP" or "UDP".
    pub protocol: String,
    /// IPVS's names: `ESTABLISHED`, `SYN_RECV`, `FIN_WAIT`, `CLOSE`, `UDP`.
    pub state: String,
    pub client: SocketAddr,
    /// The virtual service's address (VIP and port).
    pub virtual_address: SocketAddr,
    /// `None` when the real server the flow was pinned to is gone (its
    /// next packet is scheduled again).
    pub real_server: Option<SocketAddr>,
    /// Seconds until the flow expires if it stays idle.
    pub expires_in_s: u64,
}

/// An address, with or without its port, as a filter (`10.0.0.1`,
/// `10.0.0.1:80`, `[fd00::1]:80`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressFilter {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl AddressFilter {
    pub fn matches(&self, at: SocketAddr) -> bool {
        self.ip == at.ip() && self.port.is_none_or(|p| p == at.port())
    }
}

impl FromStr for AddressFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(at) = s.parse::<SocketAddr>() {
            return Ok(Self {
                ip: at.ip(),
                port: Some(at.port()),
            });
        }
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>()
            .map(|ip| Self { ip, port: None })
            .map_err(|_| format!("`{s}` is not an address (10.0.0.1, 10.0.0.1:80, [fd00::1]:80)"))
    }
}

impl fmt::Display for AddressFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}", SocketAddr::new(self.ip, port)),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// Which flows to list; every filter given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowQuery {
    /// "TCP" or "UDP" (`-t`/`-u`); with `service`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The virtual service (VIP, and port if given).
    #[serde(default)]
    pub service: Option<AddressFilter>,
    #[serde(default)]
    pub real_server: Option<AddressFilter>,
    #[serde(default)]
    pub client: Option<AddressFilter>,
}

impl FlowQuery {
    pub fn matches(&self, flow: &FlowEntry) -> bool {
        self.protocol
            .as_deref()
            .is_none_or(|p| p.eq_ignore_ascii_case(&flow.protocol))
            && self.service.is_none_or(|s| s.matches(flow.virtual_address))
            && self
                .real_server
                .is_none_or(|r| flow.real_server.is_some_and(|at| r.matches(at)))
            && self.client.is_none_or(|c| c.matches(flow.client))
    }
}

/// What a walk of the table saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowScan {
    /// Entries read (live or expired, matching or not).
    pub scanned: u64,
    /// Entries passed to the caller.
    pub listed: u64,
    /// The walk stopped at the table's size before reaching its end (the
    /// table changed under it): some flows may be missing.
    pub truncated: bool,
}

/// Walks a data plane's flow table.
pub trait FlowLister: Send {
    /// Calls `each` with every live flow that matches `query`, until the
    /// table ends, `each` breaks, or as many entries as the table holds
    /// were read (a table that changes while it is walked cannot make the
    /// walk endless).
    fn list(
        &mut self,
        query: &FlowQuery,
        each: &mut dyn FnMut(FlowEntry) -> ControlFlow<()>,
    ) -> Result<FlowScan, DataplaneError>;
}

/// IPVS's name for a protocol number.
pub fn protocol_name(number: u8) -> String {
    match number {
        6 => L4Protocol::Tcp.to_string(),
        17 => L4Protocol::Udp.to_string(),
        other => format!("proto {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> FlowEntry {
        FlowEntry {
            protocol: "TCP".into(),
            state: "ESTABLISHED".into(),
            client: "10.0.0.2:40000".parse().unwrap(),
            virtual_address: "10.0.0.1:80".parse().unwrap(),
            real_server: Some("10.0.1.2:8080".parse().unwrap()),
            expires_in_s: 899,
        }
    }

    #[test]
    fn filters_match_by_address_with_or_without_port() {
        let f = flow();
        let q = |text: &str| -> FlowQuery { serde_json::from_str(text).unwrap() };
        assert!(FlowQuery::default().matches(&f));
        let by = |service: &str, real: &str, client: &str| FlowQuery {
            protocol: None,
            service: (!service.is_empty()).then(|| service.parse().unwrap()),
            real_server: (!real.is_empty()).then(|| real.parse().unwrap()),
            client: (!client.is_empty()).then(|| client.parse().unwrap()),
        };
        assert!(by("10.0.0.1:80", "10.0.1.2", "10.0.0.2").matches(&f));
        assert!(by("10.0.0.1", "10.0.1.2:8080", "10.0.0.2:40000").matches(&f));
        assert!(!by("10.0.0.1:81", "", "").matches(&f));
        assert!(!by("", "10.0.1.3", "").matches(&f));
        assert!(!by("", "", "10.0.0.3").matches(&f));
        assert!(!q(r#"{"protocol":"UDP"}"#).matches(&f));
        assert!(q(r#"{"protocol":"tcp"}"#).matches(&f));
        // A flow whose real server is gone matches no real-server filter.
        let orphan = FlowEntry {
            real_server: None,
            ..flow()
        };
        assert!(!by("", "10.0.1.2", "").matches(&orphan));
        assert!("[fd00::1]:80".parse::<AddressFilter>().unwrap().port == Some(80));
        assert!("fd00::1".parse::<AddressFilter>().unwrap().port.is_none());
        assert!("nonsense".parse::<AddressFilter>().is_err());
    }
}
