//! The small lab `cargo xtask run` and the end-to-end tests share:
//!
//! ```text
//!  client ns            balancer ns                     backend ns
//!  eth0 ---------- lb-client   lb-backend ---------- eth0
//!  10.111.1.2/24   10.111.1.1  10.111.2.1            10.111.2.2/24
//!  fd11:1::2/64    fd11:1::1   fd11:2::1             fd11:2::2/64
//! ```
//!
//! The client and the backend route through the balancer, as backends do in
//! IPVS NAT setups. Everything is deleted when the `Lab` drops.

use anyhow::Result;

use crate::netns::{Netns, veth};

/// The balancer's interface towards the client.
pub const BALANCER_CLIENT_IF: &str = "lb-client";
/// The balancer's interface towards the backend.
pub const BALANCER_BACKEND_IF: &str = "lb-backend";
pub const CLIENT_IP: &str = "10.111.1.2";
pub const BACKEND_IP: &str = "10.111.2.2";
pub const CLIENT_IP6: &str = "fd11:1::2";
pub const BACKEND_IP6: &str = "fd11:2::2";

pub struct Lab {
    pub client: Netns,
    pub balancer: Netns,
    pub backend: Netns,
}

impl Lab {
    pub fn new() -> Result<Self> {
        let lab = Self {
            client: Netns::new("client")?,
            balancer: Netns::new("balancer")?,
            backend: Netns::new("backend")?,
        };
        // Lab addresses are unique by construction: skip duplicate address
        // detection, which would leave link-local addresses (and so
        // neighbour discovery) unusable for the first second or two.
        for ns in [&lab.client, &lab.balancer, &lab.backend] {
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
            ns.sysctl("net.ipv6.conf.all.accept_dad", "0")?;
        }
        veth(&lab.client, "eth0", &lab.balancer, BALANCER_CLIENT_IF)?;
        veth(&lab.balancer, BALANCER_BACKEND_IF, &lab.backend, "eth0")?;

        lab.client
            .ip(&["addr", "add", "10.111.1.2/24", "dev", "eth0"])?;
        lab.client
            .ip(&["addr", "add", "fd11:1::2/64", "dev", "eth0"])?;
        lab.balancer
            .ip(&["addr", "add", "10.111.1.1/24", "dev", BALANCER_CLIENT_IF])?;
        lab.balancer.ip(&[
            "addr",
            "add",
            "fd11:1::1/64",
            "dev",
            BALANCER_CLIENT_IF,
            "nodad",
        ])?;
        lab.balancer
            .ip(&["addr", "add", "10.111.2.1/24", "dev", BALANCER_BACKEND_IF])?;
        lab.balancer.ip(&[
            "addr",
            "add",
            "fd11:2::1/64",
            "dev",
            BALANCER_BACKEND_IF,
            "nodad",
        ])?;
        lab.backend
            .ip(&["addr", "add", "10.111.2.2/24", "dev", "eth0"])?;
        lab.backend
            .ip(&["addr", "add", "fd11:2::2/64", "dev", "eth0"])?;

        lab.client
            .ip(&["route", "add", "default", "via", "10.111.1.1"])?;
        lab.client
            .ip(&["-6", "route", "add", "default", "via", "fd11:1::1"])?;
        lab.backend
            .ip(&["route", "add", "default", "via", "10.111.2.1"])?;
        lab.backend
            .ip(&["-6", "route", "add", "default", "via", "fd11:2::1"])?;

        lab.balancer.sysctl("net.ipv4.ip_forward", "1")?;
        lab.balancer.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        Ok(lab)
    }

    /// The balancer's interfaces, for the daemon's configuration.
    pub fn balancer_interfaces(&self) -> [&'static str; 2] {
        [BALANCER_CLIENT_IF, BALANCER_BACKEND_IF]
    }
}
