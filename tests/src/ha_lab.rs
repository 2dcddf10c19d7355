//! A balancer pair as users run it: the VRRP lab's two nodes with XDP on
//! both LANs, a sync group holding the front VIP and the backends' gateway
//! VIP together, and three backends on the second LAN that route their
//! replies through the gateway VIP.
//!
//! ```text
//!   client 10.120.0.2 --- [br0] --- eth0 of nodes a, b (VIP 10.120.0.100)
//!                         [br1] --- eth1 of nodes a, b (VIP 10.121.0.100)
//!                           |
//!        backends 10.121.0.21-23, default via 10.121.0.100, port 7000
//! ```
//!
//! Each backend answers TCP lines and UDP datagrams on port 7000 with its
//! name (`backend1`..), so a long-lived flow can tell whether it moved.

use std::{fmt::Write as _, net::SocketAddr, thread::JoinHandle};

use anyhow::Result;
use lb_lab::{
    lab::Lab,
    netns::{Netns, veth},
    traffic::{StopFlag, tcp_identity_server, udp_identity_server},
};

use crate::vrrp_lab::{InstanceSpec, VIP, VIP2, VrrpLab};

/// The port the balancers serve on the VIP, TCP and UDP.
pub const SERVICE_PORT: u16 = 80;
/// The port the backends answer on.
pub const BACKEND_PORT: u16 = 7000;

pub fn backend_ip(i: usize) -> String {
    format!("10.121.0.{}", 21 + i)
}

/// The VRRP lab plus three backends behind the pair.
pub struct HaLab {
    pub vrrp: VrrpLab,
    pub backends: Vec<Netns>,
    stop: StopFlag,
    servers: Vec<JoinHandle<Result<()>>>,
}

impl HaLab {
    pub fn new() -> Result<Self> {
        let vrrp = VrrpLab::new()?;
        let stop = StopFlag::default();
        let mut backends = Vec::new();
        let mut servers = Vec::new();
        for i in 0..3 {
            let ns = Netns::new(&format!("hb{i}"))?;
            let port = format!("sw-hb{i}");
            veth(&ns, "eth0", &vrrp.switch, &port)?;
            vrrp.switch.ip(&["link", "set", &port, "master", "br1"])?;
            ns.ip(&[
                "addr",
                "add",
                &format!("{}/24", backend_ip(i)),
                "dev",
                "eth0",
            ])?;
            ns.ip(&["route", "add", "default", "via", VIP2])?;
            let at: SocketAddr = format!("{}:{BACKEND_PORT}", backend_ip(i)).parse()?;
            let name = format!("backend{}", i + 1);
            servers.push(tcp_identity_server(&ns, at, &name, stop.clone())?);
            servers.push(udp_identity_server(&ns, at, &name, stop.clone())?);
            backends.push(ns);
        }
        for node in &vrrp.nodes {
            node.ns.sysctl("net.ipv4.ip_forward", "1")?;
            for dev in ["eth0", "eth1"] {
                Lab::ethtool(&node.ns, &["-K", dev, "gro", "on"])?;
            }
        }
        // As in the single-balancer lab: veths leave checksums to an
        // offload a redirected frame never meets, so the hosts send full
        // checksums as frames from a wire have, and the ports frames are
        // redirected into run NAPI (GRO on).
        Lab::ethtool(&vrrp.client, &["-K", "eth0", "gro", "on", "tx", "off"])?;
        for ns in &backends {
            Lab::ethtool(ns, &["-K", "eth0", "gro", "on", "tx", "off"])?;
        }
        for port in ["sw-a0", "sw-a1", "sw-b0", "sw-b1", "sw-client"] {
            Lab::ethtool(&vrrp.switch, &["-K", port, "gro", "on"])?;
        }
        Ok(Self {
            vrrp,
            backends,
            stop,
            servers,
        })
    }

    pub fn vip() -> SocketAddr {
        SocketAddr::new(VIP.parse().expect("an address"), SERVICE_PORT)
    }
}

impl Drop for HaLab {
    fn drop(&mut self) {
        self.stop.stop();
        for server in self.servers.drain(..) {
            let _ = server.join();
        }
    }
}

/// One node's YAML: VI_1 (front VIP) and VI_2 (gateway VIP) at `priority`
/// in sync group G1, XDP on both LANs, and VIP:80 over TCP and UDP to the
/// three backends with `scheduler`. `extra_instance` lines go into both
/// instances (e.g. `nopreempt: true`); `rest` is appended at top level.
pub fn pair_config(priority: u8, scheduler: &str, extra_instance: &[&str], rest: &str) -> String {
    let mut yaml = String::from("interfaces:\n  - name: eth0\n  - name: eth1\nvrrp_instances:\n");
    for spec in [InstanceSpec::vi1(priority), InstanceSpec::vi2(priority)] {
        let spec = extra_instance.iter().fold(spec, |s, l| s.with(l));
        let _ = write!(
            yaml,
            "  - name: {}\n    interface: {}\n    virtual_router_id: {}\n    priority: {}\n    \
             version: {}\n    advert_int: {}\n    virtual_ipaddresses: [\"{}/{}\"]\n{}",
            spec.name,
            spec.interface,
            spec.vrid,
            spec.priority,
            spec.version,
            spec.advert_int,
            spec.vip,
            spec.prefix_len,
            spec.extra
        );
    }
    yaml.push_str("sync_groups:\n  - name: G1\n    group: [VI_1, VI_2]\nvirtual_servers:\n");
    for protocol in ["tcp", "udp"] {
        let _ = write!(
            yaml,
            "  - address: {VIP}\n    port: {SERVICE_PORT}\n    protocol: {protocol}\n    \
             scheduler: {scheduler}\n    real_servers:\n"
        );
        for i in 0..3 {
            let _ = writeln!(
                yaml,
                "      - {{ address: {}, port: {BACKEND_PORT} }}",
                backend_ip(i)
            );
        }
    }
    yaml.push_str(rest);
    yaml
}
