//! The lab `cargo xtask run` and the end-to-end tests share:
//!
//! ```text
//!  client ns          balancer ns                  switch ns         backend-i ns
//!  eth0 ------ lb-client   lb-backend ------ sw-lb [br0] sw-bI ------ eth0
//!  10.111.1.2  10.111.1.1  10.111.2.1                                10.111.2.(1+i)
//!  fd11:1::2   fd11:1::1   fd11:2::1                                 fd11:2::(1+i)
//! ```
//!
//! The client and the backends route through the balancer, as backends do in
//! IPVS NAT setups. Everything is deleted when the `Lab` drops.
//!
//! Two veth facts shape it (docs/benchmarking.md): a frame an XDP program
//! redirects into a veth is only delivered if the receiving end runs NAPI,
//! so every end has GRO on; and a host's own TCP/UDP on a veth leaves the
//! checksum to "hardware" that a redirected frame never meets, so the hosts
//! compute full checksums (tx offload off), as frames from a wire have.

use anyhow::Result;

use crate::netns::{Netns, veth};

/// The balancer's interface towards the client.
pub const BALANCER_CLIENT_IF: &str = "lb-client";
/// The balancer's interface towards the backends.
pub const BALANCER_BACKEND_IF: &str = "lb-backend";
pub const CLIENT_IP: &str = "10.111.1.2";
pub const CLIENT_IP6: &str = "fd11:1::2";
/// The first backend's addresses.
pub const BACKEND_IP: &str = "10.111.2.2";
pub const BACKEND_IP6: &str = "fd11:2::2";
/// A virtual IP in the client's subnet, for [`Lab::add_vips`].
pub const VIP: &str = "10.111.1.100";
pub const VIP6: &str = "fd11:1::100";

/// How the lab sets its interfaces' offloads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offloads {
    /// GRO on every receiving end, `tx` checksum offload off on the hosts.
    HostsComputeChecksums,
    /// Whatever the kernel sets on a new veth.
    KernelDefaults,
}

pub struct Lab {
    pub client: Netns,
    pub balancer: Netns,
    pub switch: Netns,
    pub backends: Vec<Netns>,
}

/// IPv4 and IPv6 address of backend `i` (0-based).
pub fn backend_addrs(i: usize) -> (String, String) {
    (
        format!("10.111.2.{}", i + 2),
        format!("fd11:2::{:x}", i + 2),
    )
}

impl Lab {
    /// A lab with one backend.
    pub fn new() -> Result<Self> {
        Self::with_backends(1)
    }

    /// A lab with `n` backends (at most 200) on the switch.
    pub fn with_backends(n: usize) -> Result<Self> {
        Self::build(n, Offloads::HostsComputeChecksums)
    }

    /// A lab with `n` backends whose interfaces all keep the kernel's
    /// default offloads (no `ethtool` at all): the hosts leave TCP / UDP
    /// checksums to "hardware" (`tx` on) and no veth end runs GRO, as in
    /// a container or VM deployment nobody tuned.
    pub fn with_kernel_default_offloads(n: usize) -> Result<Self> {
        Self::build(n, Offloads::KernelDefaults)
    }

    fn build(n: usize, offloads: Offloads) -> Result<Self> {
        anyhow::ensure!((1..=200).contains(&n), "a lab has 1 to 200 backends");
        let lab = Self {
            client: Netns::new("client")?,
            balancer: Netns::new("balancer")?,
            switch: Netns::new("switch")?,
            backends: (0..n)
                .map(|i| Netns::new(&format!("backend{}", i + 1)))
                .collect::<Result<_>>()?,
        };
        // Lab addresses are unique by construction: skip duplicate address
        // detection, which would leave link-local addresses (and so
        // neighbour discovery) unusable for the first second or two.
        for ns in lab.all() {
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
            ns.sysctl("net.ipv6.conf.all.accept_dad", "0")?;
        }
        veth(&lab.client, "eth0", &lab.balancer, BALANCER_CLIENT_IF)?;
        veth(&lab.balancer, BALANCER_BACKEND_IF, &lab.switch, "sw-lb")?;
        lab.switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        lab.switch.ip(&["link", "set", "br0", "up"])?;
        lab.switch.ip(&["link", "set", "sw-lb", "master", "br0"])?;
        for (i, backend) in lab.backends.iter().enumerate() {
            let port = format!("sw-b{}", i + 1);
            veth(backend, "eth0", &lab.switch, &port)?;
            lab.switch.ip(&["link", "set", &port, "master", "br0"])?;
            let (v4, v6) = backend_addrs(i);
            backend.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])?;
            backend.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0"])?;
            backend.ip(&["route", "add", "default", "via", "10.111.2.1"])?;
            backend.ip(&["-6", "route", "add", "default", "via", "fd11:2::1"])?;
        }

        lab.client
            .ip(&["addr", "add", "10.111.1.2/24", "dev", "eth0"])?;
        lab.client
            .ip(&["addr", "add", "fd11:1::2/64", "dev", "eth0"])?;
        lab.balancer
            .ip(&["addr", "add", "10.111.1.1/24", "dev", BALANCER_CLIENT_IF])?;
        lab.balancer
            .ip(&["addr", "add", "fd11:1::1/64", "dev", BALANCER_CLIENT_IF])?;
        lab.balancer
            .ip(&["addr", "add", "10.111.2.1/24", "dev", BALANCER_BACKEND_IF])?;
        lab.balancer
            .ip(&["addr", "add", "fd11:2::1/64", "dev", BALANCER_BACKEND_IF])?;
        lab.client
            .ip(&["route", "add", "default", "via", "10.111.1.1"])?;
        lab.client
            .ip(&["-6", "route", "add", "default", "via", "fd11:1::1"])?;

        lab.balancer.sysctl("net.ipv4.ip_forward", "1")?;
        lab.balancer.sysctl("net.ipv6.conf.all.forwarding", "1")?;

        if offloads == Offloads::KernelDefaults {
            return Ok(lab);
        }
        Self::ethtool(&lab.client, &["-K", "eth0", "gro", "on", "tx", "off"])?;
        for backend in &lab.backends {
            Self::ethtool(backend, &["-K", "eth0", "gro", "on", "tx", "off"])?;
        }
        for dev in [BALANCER_CLIENT_IF, BALANCER_BACKEND_IF] {
            Self::ethtool(&lab.balancer, &["-K", dev, "gro", "on"])?;
        }
        Self::ethtool(&lab.switch, &["-K", "sw-lb", "gro", "on"])?;
        Ok(lab)
    }

    /// Runs `ethtool ARGS` in `ns` (offload settings of lab veths).
    pub fn ethtool(ns: &Netns, args: &[&str]) -> Result<()> {
        crate::netns::run(ns.command("ethtool").args(args))
            .map(|_| ())
            .map_err(|e| e.context("ethtool is needed by the lab: apt-get install ethtool"))
    }

    fn all(&self) -> impl Iterator<Item = &Netns> {
        [&self.client, &self.balancer, &self.switch]
            .into_iter()
            .chain(self.backends.iter())
    }

    /// The first backend.
    pub fn backend(&self) -> &Netns {
        &self.backends[0]
    }

    /// Puts the lab VIPs on the balancer's client side, as VRRP's MASTER
    /// would, so it answers ARP / ND for them.
    pub fn add_vips(&self) -> Result<()> {
        self.balancer.ip(&[
            "addr",
            "add",
            &format!("{VIP}/32"),
            "dev",
            BALANCER_CLIENT_IF,
        ])?;
        self.balancer.ip(&[
            "addr",
            "add",
            &format!("{VIP6}/128"),
            "dev",
            BALANCER_CLIENT_IF,
            // Usable at once: duplicate address detection would hold a
            // kernel data plane (IPVS) back for a second or more.
            "nodad",
        ])
    }
}
