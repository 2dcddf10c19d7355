//! The demo's namespaces and wiring, deleted when [`DemoLab`] drops:
//!
//! ```text
//!  client ns                 switch ns                  balancer-a / -b ns
//!  eth0 10.112.1.2 ---- sw-client [br-front] sw-X-f ---- lb-front 10.112.1.11 / .12
//!                                 [br-back]  sw-X-b ---- lb-back  10.112.2.11 / .12
//!  backend-N ns                       |
//!  eth0 10.112.2.2N ---- sw-beN ------+
//! ```
//!
//! The VRRP MASTER holds the VIP 10.112.1.100 on its front and the
//! backends' gateway 10.112.2.1 on its back (the embedded config). As in
//! [`crate::lab`], ports that receive XDP-redirected frames run GRO (NAPI),
//! and the hosts compute full checksums (tx offload off).

use anyhow::Result;

use crate::netns::{Netns, run, veth};

pub const CLIENT_IP: &str = "10.112.1.2";
pub const VIP: &str = "10.112.1.100";
pub const SERVICE_PORT: u16 = 80;
pub const GATEWAY: &str = "10.112.2.1";
pub const FRONT_IF: &str = "lb-front";
pub const BACK_IF: &str = "lb-back";
/// The instance whose state says which balancer is MASTER.
pub const FRONT_INSTANCE: &str = "VI_FRONT";
pub const BALANCERS: [&str; 2] = ["balancer-a", "balancer-b"];
pub const BACKENDS: usize = 3;

/// Backend `i` (0-based): its name and address.
pub fn backend(i: usize) -> (String, String) {
    (format!("backend-{}", i + 1), format!("10.112.2.{}", 21 + i))
}

/// Balancer `i`'s front and back addresses.
pub fn balancer_addrs(i: usize) -> (String, String) {
    (
        format!("10.112.1.{}", 11 + i),
        format!("10.112.2.{}", 11 + i),
    )
}

pub struct DemoLab {
    pub client: Netns,
    pub switch: Netns,
    pub balancers: Vec<Netns>,
    pub backends: Vec<Netns>,
}

impl DemoLab {
    pub fn new() -> Result<Self> {
        let lab = Self {
            client: Netns::new("dclient")?,
            switch: Netns::new("dswitch")?,
            balancers: vec![Netns::new("dlb-a")?, Netns::new("dlb-b")?],
            backends: (0..BACKENDS)
                .map(|i| Netns::new(&format!("dbackend{}", i + 1)))
                .collect::<Result<_>>()?,
        };
        for bridge in ["br-front", "br-back"] {
            lab.switch.ip(&["link", "add", bridge, "type", "bridge"])?;
            lab.switch.ip(&["link", "set", bridge, "up"])?;
        }
        lab.plug(&lab.client, "eth0", "sw-client", "br-front")?;
        lab.client
            .ip(&["addr", "add", &format!("{CLIENT_IP}/24"), "dev", "eth0"])?;
        host_offloads(&lab.client)?;

        for (i, balancer) in lab.balancers.iter().enumerate() {
            let letter = ["a", "b"][i];
            let (front, back) = balancer_addrs(i);
            for (dev, port, bridge, addr) in [
                (FRONT_IF, format!("sw-{letter}-f"), "br-front", &front),
                (BACK_IF, format!("sw-{letter}-b"), "br-back", &back),
            ] {
                lab.plug(balancer, dev, &port, bridge)?;
                balancer.ip(&["addr", "add", &format!("{addr}/24"), "dev", dev])?;
                ethtool(balancer, &["-K", dev, "gro", "on"])?;
                // The balancer's XDP program redirects into this veth: its
                // peer must run NAPI to receive the frame.
                ethtool(&lab.switch, &["-K", &port, "gro", "on"])?;
            }
            balancer.sysctl("net.ipv4.ip_forward", "1")?;
        }

        for (i, ns) in lab.backends.iter().enumerate() {
            let (_, addr) = backend(i);
            lab.plug(ns, "eth0", &format!("sw-be{}", i + 1), "br-back")?;
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            // Replies go through the MASTER, which translates them back.
            ns.ip(&["route", "add", "default", "via", GATEWAY])?;
            host_offloads(ns)?;
        }
        Ok(lab)
    }

    /// Every namespace's name, to check afterwards that none is left.
    pub fn names(&self) -> Vec<String> {
        [&self.client, &self.switch]
            .into_iter()
            .chain(&self.balancers)
            .chain(&self.backends)
            .map(|ns| ns.name().to_owned())
            .collect()
    }

    /// A veth from `ns:dev` to a port of `bridge` in the switch.
    fn plug(&self, ns: &Netns, dev: &str, port: &str, bridge: &str) -> Result<()> {
        veth(ns, dev, &self.switch, port)?;
        self.switch.ip(&["link", "set", port, "master", bridge])
    }
}

/// GRO on (NAPI for redirected frames), checksums computed in software.
fn host_offloads(ns: &Netns) -> Result<()> {
    ethtool(ns, &["-K", "eth0", "gro", "on", "tx", "off"])
}

fn ethtool(ns: &Netns, args: &[&str]) -> Result<()> {
    run(ns.command("ethtool").args(args))
        .map(|_| ())
        .map_err(|e| e.context("ethtool is needed by the lab: apt-get install ethtool"))
}
