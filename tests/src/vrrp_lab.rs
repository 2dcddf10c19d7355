//! A VRRP lab: two balancer nodes and a client on two bridged LANs, each
//! node running a real `lbd run` (or, for interop, keepalived).
//!
//! ```text
//!   node "a" ns          switch ns               node "b" ns
//!   eth0 10.120.0.11 --- [br0] --- 10.120.0.12 eth0
//!   eth1 10.121.0.11 --- [br1] --- 10.121.0.12 eth1
//!                          |
//!                 client ns eth0 10.120.0.2
//! ```
//!
//! VIPs: 10.120.0.100 on the first LAN, 10.121.0.100 on the second. Each
//! node answers UDP on port [`IDENTITY_PORT`] with its name, so the client
//! can tell which node the VIP leads to.

use std::{
    fmt::Write as _,
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lb_lab::{
    netns::{Netns, veth},
    traffic::{StopFlag, udp_identity_server},
};

use crate::daemon::Daemon;

pub const VIP: &str = "10.120.0.100";
pub const VIP2: &str = "10.121.0.100";
pub const CLIENT_IP: &str = "10.120.0.2";
pub const IDENTITY_PORT: u16 = 7777;

/// A node's addresses on the two LANs.
pub fn node_ip(index: usize, lan: usize) -> String {
    format!("10.{}.0.{}", 120 + lan, 11 + index)
}

pub struct VrrpLab {
    pub switch: Netns,
    pub client: Netns,
    pub nodes: Vec<Node>,
    stop: StopFlag,
    servers: Vec<JoinHandle<Result<()>>>,
}

/// One balancer node: its namespace, its files and (when running) its lbd.
pub struct Node {
    pub name: &'static str,
    pub ns: Netns,
    pub dir: PathBuf,
    pub daemon: Option<Daemon>,
}

impl VrrpLab {
    /// The lab with nodes "a" and "b".
    pub fn new() -> Result<Self> {
        let switch = Netns::new("vsw")?;
        let client = Netns::new("vcl")?;
        switch.ip(&["link", "add", "br0", "type", "bridge"])?;
        switch.ip(&["link", "add", "br1", "type", "bridge"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        switch.ip(&["link", "set", "br1", "up"])?;
        let mut nodes = Vec::new();
        for (index, name) in ["a", "b"].into_iter().enumerate() {
            let ns = Netns::new(&format!("vn{name}"))?;
            ns.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
            ns.sysctl("net.ipv6.conf.all.accept_dad", "0")?;
            for lan in 0..2 {
                let port = format!("sw-{name}{lan}");
                veth(&ns, &format!("eth{lan}"), &switch, &port)?;
                switch.ip(&["link", "set", &port, "master", &format!("br{lan}")])?;
                ns.ip(&[
                    "addr",
                    "add",
                    &format!("{}/24", node_ip(index, lan)),
                    "dev",
                    &format!("eth{lan}"),
                ])?;
            }
            let dir = temp_dir(name)?;
            nodes.push(Node {
                name,
                ns,
                dir,
                daemon: None,
            });
        }
        veth(&client, "eth0", &switch, "sw-client")?;
        switch.ip(&["link", "set", "sw-client", "master", "br0"])?;
        client.ip(&["addr", "add", &format!("{CLIENT_IP}/24"), "dev", "eth0"])?;

        let stop = StopFlag::default();
        let mut servers = Vec::new();
        for node in &nodes {
            let addr: SocketAddr = format!("0.0.0.0:{IDENTITY_PORT}").parse()?;
            servers.push(udp_identity_server(
                &node.ns,
                addr,
                node.name,
                stop.clone(),
            )?);
        }
        Ok(Self {
            switch,
            client,
            nodes,
            stop,
            servers,
        })
    }

    pub fn a(&mut self) -> &mut Node {
        &mut self.nodes[0]
    }

    pub fn b(&mut self) -> &mut Node {
        &mut self.nodes[1]
    }

    /// Which nodes hold `vip` now.
    pub fn holders(&self, vip: &str) -> Result<Vec<&'static str>> {
        let mut out = Vec::new();
        for node in &self.nodes {
            if node.holds(vip)? {
                out.push(node.name);
            }
        }
        Ok(out)
    }

    /// Waits until exactly `node` holds `vip`; errors with both logs.
    pub fn wait_sole_holder(&self, vip: &str, node: &str, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let holders = self.holders(vip)?;
            if holders == [node] {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!(
                    "after {timeout:?} {vip} is held by {holders:?}, expected only {node}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Which node the client reaches through `vip` (UDP), retrying for up
    /// to `timeout` while no answer comes or another node answers.
    pub fn reached_through(&self, vip: &str, expected: &str, timeout: Duration) -> Result<()> {
        let target: SocketAddr = format!("{vip}:{IDENTITY_PORT}").parse()?;
        let start = Instant::now();
        let mut last = String::from("no answer");
        while start.elapsed() < timeout {
            let answer = self.client.run(move || ask(target))??;
            match answer {
                Some(name) if name == expected => return Ok(()),
                Some(name) => last = format!("node {name} answered"),
                None => last = "no answer".into(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the client did not reach node {expected} through {vip} within {timeout:?}: {last}\n{}",
            self.logs()
        )
    }

    /// Both daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = n
                    .daemon
                    .as_ref()
                    .map_or_else(|| "(not running)".into(), Daemon::log);
                format!("--- node {} log ---\n{log}", n.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for VrrpLab {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.daemon = None;
        }
        self.stop.stop();
        for server in self.servers.drain(..) {
            let _ = server.join();
        }
        for node in &self.nodes {
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}

impl Node {
    /// Writes `config` and starts `lbd run` with this node's state dir.
    pub fn start(&mut self, config: &str) -> Result<()> {
        self.start_wrapped(&[], config)
    }

    /// `start`, with `lbd` run by `wrapper` (`env VAR=1`, say).
    pub fn start_wrapped(&mut self, wrapper: &[&str], config: &str) -> Result<()> {
        // A previous daemon's drop deletes the log file the new one writes.
        // Its pinned XDP state stays, as across `systemctl restart`: the new
        // one adopts it.
        if let Some(mut previous) = self.daemon.take() {
            previous.keep_pins();
        }
        let path = self.dir.join("lbd.yaml");
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let state_dir = self.state_dir();
        let daemon = Daemon::start_wrapped(
            &self.ns,
            wrapper,
            &path,
            &["--state-dir", state_dir.to_str().context("utf-8 path")?],
        )?;
        self.daemon = Some(daemon);
        Ok(())
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The `STATE=` line of `instance`'s state file, if written.
    pub fn state_file(&self, instance: &str) -> Option<String> {
        std::fs::read_to_string(self.state_dir().join(format!("{instance}.state"))).ok()
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("the node's lbd was started")
    }

    /// Sends `signal` and waits for the exit; returns the exit status.
    pub fn stop(&mut self, signal: i32) -> Result<std::process::ExitStatus> {
        let daemon = self.daemon.as_mut().context("lbd is not running")?;
        daemon.signal_and_wait(signal, Duration::from_secs(10))
    }

    pub fn holds(&self, vip: &str) -> Result<bool> {
        holds(&self.ns, vip)
    }

    /// Waits until the node's log contains `text`.
    pub fn wait_log(&mut self, text: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let daemon = self.daemon();
            let log = daemon.log();
            if log.contains(text) {
                return Ok(());
            }
            if let Some(status) = daemon.try_wait()? {
                bail!(
                    "lbd on node {} exited with {status}; its log:\n{log}",
                    self.name
                );
            }
            if start.elapsed() > timeout {
                bail!(
                    "node {} did not log `{text}` within {timeout:?}; its log:\n{log}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `ns` has `vip` on any interface.
pub fn holds(ns: &Netns, vip: &str) -> Result<bool> {
    let out = ns.command("ip").args(["-o", "addr", "show"]).output()?;
    if !out.status.success() {
        bail!(
            "ip addr show failed in {}: {}",
            ns.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let needle = format!(" {vip}/");
    Ok(String::from_utf8_lossy(&out.stdout).contains(&needle))
}

/// One UDP question to `target`; `None` when nothing answers in 300 ms.
fn ask(target: SocketAddr) -> Result<Option<String>> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(300)))?;
    socket.send_to(b"who?", target)?;
    let mut buf = [0u8; 64];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        // No ARP answer yet: the kernel reports the host unreachable.
        Err(_) => Ok(None),
    }
}

/// A private directory for a node's config, log, state and scripts:
/// root-owned, mode 0755, so scripts in it pass lbd's permission checks.
fn temp_dir(node: &str) -> Result<PathBuf> {
    use std::{
        os::unix::fs::PermissionsExt as _,
        sync::atomic::{AtomicU32, Ordering},
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lbd-vrrp-{}-{n}-{node}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Writes an executable script (mode 0755) at `path`.
pub fn write_script(path: &Path, body: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Settings of one node's VRRP instance in [`instance_config`].
#[derive(Clone, Debug)]
pub struct InstanceSpec {
    pub name: &'static str,
    pub interface: &'static str,
    pub vrid: u8,
    pub priority: u8,
    pub vip: &'static str,
    pub prefix_len: u8,
    /// `advert_int` in seconds (v3 allows hundredths).
    pub advert_int: &'static str,
    pub version: u8,
    /// Extra YAML lines for the instance, each indented by four spaces.
    pub extra: String,
}

impl InstanceSpec {
    /// VI_1 on eth0 with VIP, v3 every 0.2 s.
    pub fn vi1(priority: u8) -> Self {
        Self {
            name: "VI_1",
            interface: "eth0",
            vrid: 51,
            priority,
            vip: VIP,
            prefix_len: 24,
            advert_int: "0.2",
            version: 3,
            extra: String::new(),
        }
    }

    /// VI_2 on eth1 with VIP2, v3 every 0.2 s.
    pub fn vi2(priority: u8) -> Self {
        Self {
            name: "VI_2",
            interface: "eth1",
            vrid: 52,
            vip: VIP2,
            ..Self::vi1(priority)
        }
    }

    #[must_use]
    pub fn with(mut self, line: &str) -> Self {
        self.extra.push_str("    ");
        self.extra.push_str(line);
        self.extra.push('\n');
        self
    }
}

/// The YAML of one node: XDP on eth0 and the given instances; `rest` is
/// appended at top level (track_scripts, sync_groups).
pub fn node_config(instances: &[InstanceSpec], rest: &str) -> String {
    let mut yaml = String::from("interfaces:\n  - name: eth0\nvrrp_instances:\n");
    for i in instances {
        let _ = write!(
            yaml,
            "  - name: {}\n    interface: {}\n    virtual_router_id: {}\n    priority: {}\n    \
             version: {}\n    advert_int: {}\n    virtual_ipaddresses: [\"{}/{}\"]\n    \
             garp_master_delay: 1\n{}",
            i.name,
            i.interface,
            i.vrid,
            i.priority,
            i.version,
            i.advert_int,
            i.vip,
            i.prefix_len,
            i.extra
        );
    }
    yaml.push_str(rest);
    yaml
}
