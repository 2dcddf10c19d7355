//! The one way every part of lbd names a virtual service and a real server:
//! the desired state, health verdicts and their board, drains, status,
//! metrics and both data planes. Keys by value, never by position, so a
//! reload that reorders or inserts services cannot misalign anything.
//!
//! (The XDP maps' own keys, `lb_common::maps::{ServiceKey, RealKey}`, are
//! the kernel's wire layout; these are the daemon's.)

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use super::desired::{L4Protocol, socket};
use crate::config::{Protocol, RealServer, VirtualServer};

/// A virtual service: protocol, VIP and port (ipvsadm's `-t|-u VIP:PORT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceId {
    pub protocol: L4Protocol,
    pub vip: IpAddr,
    pub port: u16,
}

/// A real server of one service (the same address in two services is two
/// real servers, with their own weight, health and drain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RealId {
    pub service: ServiceId,
    pub addr: IpAddr,
    pub port: u16,
}

impl ServiceId {
    /// The id of a configured virtual server; `None` for a protocol no
    /// data plane forwards (SCTP, refused before anything runs).
    pub fn of(vs: &VirtualServer) -> Option<Self> {
        let protocol = match vs.protocol {
            Protocol::Tcp => L4Protocol::Tcp,
            Protocol::Udp => L4Protocol::Udp,
            Protocol::Sctp => return None,
        };
        Some(Self {
            protocol,
            vip: vs.address,
            port: vs.port,
        })
    }

    /// One of its real servers, at `addr:port`.
    pub const fn real(self, addr: IpAddr, port: u16) -> RealId {
        RealId {
            service: self,
            addr,
            port,
        }
    }

    /// A configured real server of it (its port defaults to the VIP's).
    pub fn configured_real(self, rs: &RealServer) -> RealId {
        self.real(rs.address, rs.port.unwrap_or(self.port))
    }
}

impl fmt::Display for ServiceId {
    /// `TCP 10.0.0.1:80`, as ipvsadm writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol, socket(self.vip, self.port))
    }
}

impl FromStr for ServiceId {
    type Err = ();

    /// Reads back what `Display` wrote.
    fn from_str(s: &str) -> Result<Self, ()> {
        let (proto, sock) = s.trim().split_once(' ').ok_or(())?;
        let protocol = match proto {
            "TCP" => L4Protocol::Tcp,
            "UDP" => L4Protocol::Udp,
            _ => return Err(()),
        };
        let sock = SocketAddr::from_str(sock.trim()).map_err(|_| ())?;
        Ok(Self {
            protocol,
            vip: sock.ip(),
            port: sock.port(),
        })
    }
}

impl fmt::Display for RealId {
    /// `10.0.0.2:80 of TCP 10.0.0.1:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", socket(self.addr, self.port), self.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_read_back_what_they_write() {
        for text in ["TCP 10.0.0.1:80", "UDP [fd00::1]:53"] {
            let id: ServiceId = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
        assert!("SCTP 10.0.0.1:80".parse::<ServiceId>().is_err());
    }

    #[test]
    fn a_real_server_port_defaults_to_the_services() {
        let config = crate::config::load_str(
            "virtual_servers:\n  - address: 10.0.0.1\n    port: 80\n    real_servers:\n      \
             - address: 10.0.0.2\n      - { address: 10.0.0.3, port: 8080 }\n",
            "test.yaml",
        )
        .unwrap()
        .config;
        let vs = &config.virtual_servers[0];
        let id = ServiceId::of(vs).unwrap();
        let reals: Vec<String> = vs
            .real_servers
            .iter()
            .map(|rs| id.configured_real(rs).to_string())
            .collect();
        assert_eq!(
            reals,
            [
                "10.0.0.2:80 of TCP 10.0.0.1:80",
                "10.0.0.3:8080 of TCP 10.0.0.1:80"
            ]
        );
    }
}
