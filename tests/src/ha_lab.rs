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

use std::{fmt::Write as _, net::SocketAddr, thread::JoinHandle, time::Duration};

use anyhow::Result;
use lb_lab::{
    lab::Lab,
    long_flows::{FlowPlan, FlowReport, LongFlows},
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

    /// The flows the tests and the bench hold through the VIP: 300 TCP
    /// connections asking every 50 ms, and a UDP stream.
    pub fn flow_plan() -> FlowPlan {
        FlowPlan {
            tcp: Self::vip(),
            connections: 300,
            interval: Duration::from_millis(50),
            udp: Some(Self::vip()),
        }
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

/// What happens to the MASTER (node a) while flows run through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing: the reference for stall figures.
    Nothing,
    /// `kill -TERM`: a clean handover.
    Sigterm,
    /// `lbd failover VI_1`.
    ManualFailover,
    /// `kill -9`: no goodbye.
    Sigkill,
    /// SIGTERM, then the same configuration started again: b carries the
    /// flows meanwhile and a (preempting) takes them back.
    Restart,
    /// As `Restart`, with a changed configuration (a real server's weight).
    RestartChanged,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Nothing,
        Event::Sigterm,
        Event::ManualFailover,
        Event::Sigkill,
        Event::Restart,
        Event::RestartChanged,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::Nothing => "nothing (reference)",
            Event::Sigterm => "SIGTERM failover",
            Event::ManualFailover => "lbd failover",
            Event::Sigkill => "SIGKILL of the MASTER",
            Event::Restart => "restart of the MASTER",
            Event::RestartChanged => "restart with a changed config",
        }
    }
}

/// How long flows run after an event settles before they are counted.
pub const SETTLE: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(15);

impl HaLab {
    /// Starts a at priority 150 and b at 100 with `scheduler` and `rest`
    /// (top-level YAML for both) and waits until a holds both VIPs.
    pub fn elected(scheduler: &str, rest: &str) -> Result<Self> {
        let mut lab = Self::new()?;
        lab.vrrp
            .a()
            .start(&pair_config(150, scheduler, &[], rest))?;
        lab.vrrp
            .b()
            .start(&pair_config(100, scheduler, &[], rest))?;
        lab.vrrp.wait_sole_holder(VIP, "a", WAIT)?;
        lab.vrrp.wait_sole_holder(VIP2, "a", WAIT)?;
        Ok(lab)
    }

    /// An elected pair (as [`HaLab::elected`]) with [`HaLab::flow_plan`]'s
    /// flows open through a, then `event`: the lab and what the flows went
    /// through. Errors carry both nodes' logs.
    pub fn flows_through(event: Event, scheduler: &str, rest: &str) -> Result<(Self, FlowReport)> {
        let mut lab = Self::elected(scheduler, rest)?;
        let flows = LongFlows::start(&lab.vrrp.client, Self::flow_plan())
            .map_err(|e| e.context(format!("opening the flows\n{}", lab.vrrp.logs())))?;
        // Let them settle into their rhythm before anything happens.
        std::thread::sleep(Duration::from_millis(500));
        if let Err(e) = lab.happen(event, scheduler, rest) {
            return Err(e.context(format!("{}\n{}", event.name(), lab.vrrp.logs())));
        }
        let report = flows.finish()?;
        Ok((lab, report))
    }

    /// Makes `event` happen to node a (started with `scheduler`, `rest`)
    /// and waits until the pair has settled: b serving after a failover, a
    /// serving again after a restart.
    pub fn happen(&mut self, event: Event, scheduler: &str, rest: &str) -> Result<()> {
        match event {
            Event::Nothing => {}
            Event::Sigterm => {
                let status = self.vrrp.a().stop(libc::SIGTERM)?;
                anyhow::ensure!(status.success(), "lbd exited with {status}");
                self.vrrp.wait_sole_holder(VIP, "b", WAIT)?;
            }
            Event::ManualFailover => {
                let out = self.vrrp.a().daemon().ctl(&["failover", "VI_1"])?;
                anyhow::ensure!(
                    out.status.success(),
                    "lbd failover: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                self.vrrp.wait_sole_holder(VIP, "b", WAIT)?;
            }
            Event::Sigkill => {
                self.vrrp.a().stop(libc::SIGKILL)?;
                self.vrrp.wait_sole_holder(VIP, "b", WAIT)?;
            }
            Event::Restart | Event::RestartChanged => {
                let status = self.vrrp.a().stop(libc::SIGTERM)?;
                anyhow::ensure!(status.success(), "lbd exited with {status}");
                self.vrrp.wait_sole_holder(VIP, "b", WAIT)?;
                let mut config = pair_config(150, scheduler, &[], rest);
                if event == Event::RestartChanged {
                    config = config.replacen(
                        &format!("port: {BACKEND_PORT} }}"),
                        &format!("port: {BACKEND_PORT}, weight: 3 }}"),
                        1,
                    );
                }
                self.vrrp.a().start(&config)?;
                self.vrrp.wait_sole_holder(VIP, "a", WAIT)?;
                self.vrrp.wait_sole_holder(VIP2, "a", WAIT)?;
            }
        }
        std::thread::sleep(SETTLE);
        Ok(())
    }
}
