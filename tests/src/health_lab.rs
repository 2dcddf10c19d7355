//! A lab where `lbd` health-checks real servers it balances to: backends
//! with identity servers on port 7000 (they answer a line with their name,
//! as the long-lived flows of `lb_lab::long_flows` ask) and health pages
//! on port 8080, `lbd` on the balancer (XDP on both of its interfaces),
//! and what a test waits for in its status.

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Result;
use lb_lab::{
    lab::{BALANCER_BACKEND_IF, Lab, VIP, backend_addrs},
    long_flows::FlowPlan,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server},
};

use crate::{
    daemon::{Daemon, temp_config, wait_for_xdp},
    http_server::HttpServer,
};

/// The checks' timing: 1 s apart, 1 s to answer, one retry.
pub const TIMING: &str =
    "connect_port: 8080, connect_timeout: 1, retry: 1, delay_before_retry: 1, delay_loop: 1";

/// Upper bound for a check's verdict to reach the data plane: a fall of
/// two runs each up to interval + timeout apart, plus the daemon's work.
pub const DETECTION: Duration = Duration::from_secs(2 * (1 + 1) + 2);

/// The identity servers' port on the backends.
pub const IDENTITY_PORT: u16 = 7000;

pub struct HealthLab {
    pub lab: Lab,
    pub lbd: Daemon,
    pub pages: Vec<HttpServer>,
    pub identity: StopFlag,
    pub config: PathBuf,
    /// What the health pages serve when they pass.
    pub page_body: String,
}

impl Drop for HealthLab {
    fn drop(&mut self) {
        self.identity.stop();
        let _ = std::fs::remove_file(&self.config);
    }
}

/// VIP:80, the service every test here balances.
pub fn vip() -> SocketAddr {
    format!("{VIP}:80").parse().unwrap()
}

/// Backend `i`'s IPv4 address.
pub fn ip(i: usize) -> String {
    backend_addrs(i).0
}

/// Backend `i`'s name, as its identity server answers.
pub fn name(i: usize) -> String {
    format!("backend{}", i + 1)
}

/// A real server entry (YAML, under `real_servers:`) for backend `i` on
/// the identity port, checked by an HTTP GET of its health page.
pub fn checked_real_server(i: usize) -> String {
    format!(
        "      - address: {}\n        port: {IDENTITY_PORT}\n        checks:\n          - http_get: {{ urls: [{{ path: /health }}], {TIMING} }}\n",
        ip(i)
    )
}

/// `n` long-lived connections to the VIP asking every 50 ms.
pub fn flow_plan(connections: usize) -> FlowPlan {
    FlowPlan {
        tcp: vip(),
        connections,
        interval: Duration::from_millis(50),
        udp: None,
    }
}

impl HealthLab {
    /// `n` backends serving their identity and a health page, and lbd on
    /// `body` (YAML after `interfaces:`, e.g. `virtual_servers:` ...).
    pub fn start(name_tag: &str, n: usize, body: &str) -> Result<Self> {
        Self::start_in(Lab::with_backends(n)?, name_tag, body)
    }

    /// As [`HealthLab::start`], in `lab` (say, one on the kernel's default
    /// offloads).
    pub fn start_in(lab: Lab, name_tag: &str, body: &str) -> Result<Self> {
        lab.add_vips()?;
        let identity = StopFlag::default();
        let mut pages = Vec::new();
        for (i, ns) in lab.backends.iter().enumerate() {
            let at: SocketAddr = format!("{}:{IDENTITY_PORT}", ip(i)).parse()?;
            tcp_identity_server(ns, at, &name(i), identity.clone())?;
            pages.push(HttpServer::start(ns, Self::page_at(i), "ok")?);
        }
        let yaml = format!(
            "dataplane: xdp\nglobal: {{ script_user: root }}\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\n{body}"
        );
        Self::start_with(lab, pages, identity, name_tag, &yaml)
    }

    /// lbd on `yaml` (a whole file) in a lab already serving.
    pub fn start_with(
        lab: Lab,
        pages: Vec<HttpServer>,
        identity: StopFlag,
        name_tag: &str,
        yaml: &str,
    ) -> Result<Self> {
        let config = temp_config(name_tag, yaml)?;
        let mut lbd = Daemon::start(&lab.balancer, &config, &[])?;
        wait_for_xdp(&lab.balancer, BALANCER_BACKEND_IF, &mut lbd)?;
        Ok(Self {
            lab,
            lbd,
            pages,
            identity,
            config,
            page_body: "ok".to_owned(),
        })
    }

    /// Backend `i`'s health page, on port 8080.
    pub fn page_at(i: usize) -> SocketAddr {
        format!("{}:8080", ip(i)).parse().unwrap()
    }

    /// Backend `i`'s health page fails (its identity server, the service
    /// itself, keeps running), and the data plane takes it out.
    pub fn fail_check(&mut self, i: usize) {
        self.pages[i].stop();
        self.wait_in_pool(i, false);
    }

    /// Backend `i`'s health page answers again, and it is back in the pool.
    pub fn pass_check(&mut self, i: usize) {
        self.pages[i] = HttpServer::start(&self.lab.backends[i], Self::page_at(i), &self.page_body)
            .expect("the health page restarts");
        self.wait_in_pool(i, true);
    }

    /// Waits until `lbd status` says backend `i` is (or is not) in its
    /// service's pool, i.e. until the data plane holds the verdict.
    pub fn wait_in_pool(&mut self, i: usize, in_pool: bool) {
        let address: std::net::IpAddr = ip(i).parse().unwrap();
        let what = format!(
            "{} {} the pool",
            name(i),
            if in_pool { "back in" } else { "out of" }
        );
        self.lbd.wait_status(&what, DETECTION * 2, |r| {
            r.services.iter().any(|s| {
                s.real_servers
                    .iter()
                    .any(|rs| rs.ip == address && rs.in_pool == in_pool)
            })
        });
    }

    /// An XDP counter from `lbd status`.
    pub fn counter(&self, name: &str) -> u64 {
        let status = self.lbd.status().expect("lbd status");
        status.xdp_counters.get(name).copied().unwrap_or(0)
    }

    /// Opens `count` new connections to the VIP and returns who answered
    /// each, in order.
    pub fn new_connections(&self, count: usize) -> Vec<String> {
        self.lab
            .client
            .run(move || {
                (0..count)
                    .map(|_| {
                        IdentityConnection::open(vip())
                            .and_then(|mut c| c.ask())
                            .unwrap_or_else(|e| format!("failed: {e:#}"))
                    })
                    .collect()
            })
            .expect("client thread")
    }
}

/// Waits up to `within` for `done`, polling.
pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
