//! The running demo: the lab, the backends' servers, the two lbd daemons,
//! the client, and what has been observed of them so far.

use std::{
    collections::{BTreeMap, VecDeque},
    net::SocketAddr,
    path::Path,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    balancer::Balancer,
    client::{self, ClientCounts, ClientStats},
    http::HttpServer,
    scenario::Action,
    sources::{self, LogTail},
    topology::{self, BACKENDS, BALANCERS, DemoLab, FRONT_INSTANCE, SERVICE_PORT, VIP},
};
use crate::traffic::StopFlag;

/// A backend's health as the view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Health {
    Up,
    Down,
    /// No health checks configured.
    Unknown,
}

/// Gaps in the client's answers from this long on are events.
const GAP_EVENT: Duration = Duration::from_millis(150);

pub(super) struct Running {
    // Field order is drop order: processes and threads before the lab.
    pub(super) balancers: Vec<Balancer>,
    servers: Vec<Option<HttpServer>>,
    client_stop: StopFlag,
    client: Option<JoinHandle<Result<()>>>,
    pub(super) stats: ClientStats,
    tails: Vec<LogTail>,
    /// Per balancer: backend address -> up, from its health checks.
    health: Vec<BTreeMap<String, bool>>,
    /// Per balancer: its last observed state ("MASTER", "stopped", ...).
    states: Vec<String>,
    /// Balancers the demo stopped on purpose.
    stopped_on_purpose: Vec<bool>,
    samples: VecDeque<(Instant, ClientCounts)>,
    seen_gaps: usize,
    seen_errors: u64,
    pub(super) checks: bool,
    pub(super) started: Instant,
    pub(super) events: Vec<(Duration, String)>,
    /// Which balancer was MASTER, each time that changed.
    pub(super) masters: Vec<String>,
    /// When each of `masters` was first seen MASTER.
    pub(super) master_since: Vec<Duration>,
    pub(super) unexpected_exits: Vec<String>,
    /// The last action and when it was taken.
    pub(super) last_action: Option<(Duration, Action)>,
    pub(super) lab: DemoLab,
}

impl Running {
    /// Builds the lab, starts the servers, balancer-a (until MASTER), then
    /// balancer-b (until BACKUP), then the client.
    pub(super) fn start(lbd: &Path, config: &Path, dir: &Path, interval: Duration) -> Result<Self> {
        let yaml = std::fs::read_to_string(config)
            .with_context(|| format!("while reading {}", config.display()))?;
        let lab = DemoLab::new().context("while creating the demo lab")?;
        let mut servers = Vec::new();
        for (i, ns) in lab.backends.iter().enumerate() {
            servers.push(Some(start_server(ns, i)?));
        }
        let mut balancers = Vec::new();
        for name in BALANCERS {
            let own = dir.join(name);
            std::fs::create_dir_all(&own)
                .with_context(|| format!("while creating {}", own.display()))?;
            balancers.push(Balancer::new(name, lbd, config, &own));
        }
        let mut running = Self {
            tails: balancers
                .iter()
                .map(|b| LogTail::new(b.log_path()))
                .collect(),
            balancers,
            servers,
            client_stop: StopFlag::default(),
            client: None,
            stats: ClientStats::default(),
            health: vec![BTreeMap::new(); BALANCERS.len()],
            states: vec!["stopped".into(); BALANCERS.len()],
            stopped_on_purpose: vec![false; BALANCERS.len()],
            samples: VecDeque::new(),
            seen_gaps: 0,
            seen_errors: 0,
            checks: sources::config_has_checks(&yaml),
            started: Instant::now(),
            events: Vec::new(),
            masters: Vec::new(),
            master_since: Vec::new(),
            unexpected_exits: Vec::new(),
            last_action: None,
            lab,
        };
        // One after the other, so the first is MASTER for sure.
        for (i, wanted) in [(0, "MASTER"), (1, "BACKUP")] {
            running.balancers[i].start(&running.lab.balancers[i])?;
            running.wait_state(i, wanted)?;
        }
        let target: SocketAddr = format!("{VIP}:{SERVICE_PORT}").parse()?;
        running.client = Some(client::start(
            &running.lab.client,
            target,
            interval,
            running.stats.clone(),
            running.client_stop.clone(),
        )?);
        running.started = Instant::now();
        running.events.clear();
        running.observe();
        Ok(running)
    }

    fn wait_state(&mut self, i: usize, wanted: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.balancers[i].exited() {
                bail!(
                    "lbd on {} exited with {status}; its log:\n{}",
                    BALANCERS[i],
                    self.log(i)
                );
            }
            let dir = self.balancers[i].state_dir();
            if sources::vrrp_state(&dir, FRONT_INSTANCE).as_deref() == Some(wanted) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{} did not become {wanted} within 15 s; its log:\n{}",
            BALANCERS[i],
            self.log(i)
        )
    }

    /// Balancer `i`'s whole log.
    pub(super) fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.balancers[i].log_path()).unwrap_or_default()
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn event(&mut self, text: String) {
        self.events.push((self.elapsed(), text));
    }

    /// Applies `action`; what it cannot do becomes an event, not an error.
    pub(super) fn act(&mut self, action: Action, why: &str) -> Result<()> {
        self.last_action = Some((self.elapsed(), action));
        match action {
            Action::StopBackend(i) => match self.servers.get_mut(i).and_then(Option::take) {
                Some(server) => {
                    server.stop()?;
                    self.event(format!("{action} ({why}): its server stopped"));
                }
                None => self.event(format!("{action} ({why}): not running")),
            },
            Action::StartBackend(i) if i < BACKENDS => {
                if self.servers[i].is_none() {
                    self.servers[i] = Some(start_server(&self.lab.backends[i], i)?);
                    self.event(format!("{action} ({why}): its server serves again"));
                }
            }
            Action::StartBackend(_) => {}
            Action::StopMaster => match self.master() {
                Some(i) => {
                    self.stopped_on_purpose[i] = true;
                    self.event(format!("{action} ({why}): SIGTERM to {}", BALANCERS[i]));
                    if let Some(status) = self.balancers[i].stop()?
                        && !status.success()
                    {
                        self.event(format!("{}: lbd exited with {status}", BALANCERS[i]));
                    }
                }
                None => self.event(format!("{action} ({why}): no balancer is MASTER")),
            },
            Action::StartBalancers => {
                for i in 0..self.balancers.len() {
                    if !self.balancers[i].running() {
                        self.stopped_on_purpose[i] = false;
                        self.balancers[i].start(&self.lab.balancers[i])?;
                        self.event(format!(
                            "{action} ({why}): {} started",
                            self.balancers[i].name
                        ));
                    }
                }
            }
        }
        self.observe();
        Ok(())
    }

    /// What `m` does: stop the MASTER, or start a stopped balancer again.
    pub(super) fn toggle_master(&self) -> Action {
        if self.balancers_running() < self.balancers.len() {
            Action::StartBalancers
        } else {
            Action::StopMaster
        }
    }

    /// What key `N` does for backend `i`.
    pub(super) fn toggle_backend(&self, i: usize) -> Action {
        if self.serving(i) {
            Action::StopBackend(i)
        } else {
            Action::StartBackend(i)
        }
    }

    fn balancers_running(&self) -> usize {
        self.states.iter().filter(|s| *s != "stopped").count()
    }

    pub(super) fn serving(&self, i: usize) -> bool {
        self.servers.get(i).is_some_and(Option::is_some)
    }

    /// The balancer that is MASTER now.
    pub(super) fn master(&self) -> Option<usize> {
        self.states.iter().position(|s| s == "MASTER")
    }

    pub(super) fn state(&self, i: usize) -> &str {
        &self.states[i]
    }

    /// Reads every source once and turns changes into events.
    pub(super) fn observe(&mut self) {
        for i in 0..self.balancers.len() {
            if let Some(status) = self.balancers[i].exited()
                && !self.stopped_on_purpose[i]
            {
                let text = format!(
                    "{}: lbd exited unexpectedly with {status}",
                    self.balancers[i].name
                );
                self.unexpected_exits.push(text.clone());
                self.event(text);
            }
            let state = if self.balancers[i].running() {
                sources::vrrp_state(&self.balancers[i].state_dir(), FRONT_INSTANCE)
                    .unwrap_or_else(|| "starting".into())
            } else {
                "stopped".into()
            };
            if state != self.states[i] {
                let text = format!("{}: {} -> {state}", self.balancers[i].name, self.states[i]);
                self.states[i] = state;
                self.event(text);
            }
            for change in sources::health_changes(&self.tails[i].read_new()) {
                let name = backend_name(&change.backend);
                let verdict = if change.up {
                    "up again: back in rotation"
                } else {
                    "DOWN: out of rotation"
                };
                self.event(format!(
                    "{}: health check says {name} {verdict}",
                    self.balancers[i].name
                ));
                self.health[i].insert(change.backend, change.up);
            }
        }
        if let Some(i) = self.master() {
            let name = BALANCERS[i].to_owned();
            if self.masters.last() != Some(&name) {
                self.masters.push(name);
                self.master_since.push(self.elapsed());
            }
        }
        self.observe_client();
    }

    fn observe_client(&mut self) {
        let now = Instant::now();
        let counts = self.stats.snapshot();
        // Short pauses are normal on a busy host; the report still has them.
        for gap in counts.gaps.iter().skip(self.seen_gaps) {
            if gap.length() < GAP_EVENT {
                continue;
            }
            let from = gap.from.saturating_duration_since(self.started);
            let to = gap.to.saturating_duration_since(self.started);
            self.events.push((
                to,
                format!(
                    "client: no answer for {:.2} s (from {:.1} s)",
                    gap.length().as_secs_f64(),
                    from.as_secs_f64()
                ),
            ));
        }
        self.seen_gaps = counts.gaps.len();
        if counts.errors > self.seen_errors {
            let text = format!(
                "client: {} error(s); last: {}",
                counts.errors - self.seen_errors,
                counts.last_error.clone().unwrap_or_default()
            );
            self.seen_errors = counts.errors;
            self.event(text);
        }
        self.samples.push_back((now, counts));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now - *t > Duration::from_secs(1))
        {
            self.samples.pop_front();
        }
    }

    /// Answers per second of each backend, and in all, over the last second.
    pub(super) fn rates(&self) -> (Vec<f64>, f64) {
        let (Some((t0, first)), Some((t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return (vec![0.0; BACKENDS], 0.0);
        };
        let secs = (*t1 - *t0).as_secs_f64().max(0.2);
        let per = (0..BACKENDS)
            .map(|i| {
                let name = topology::backend(i).0;
                let a = first.answers.get(&name).copied().unwrap_or(0);
                let b = last.answers.get(&name).copied().unwrap_or(0);
                (b - a) as f64 / secs
            })
            .collect();
        (per, (last.ok - first.ok) as f64 / secs)
    }

    /// Backend `i`'s health according to the MASTER (or any running
    /// balancer); lbd starts with every backend up.
    pub(super) fn health(&self, i: usize) -> Health {
        if !self.checks {
            return Health::Unknown;
        }
        let addr = topology::backend(i).1;
        let judge = self
            .master()
            .or_else(|| self.states.iter().position(|s| s != "stopped"));
        match judge.and_then(|j| self.health[j].get(&addr)) {
            Some(false) => Health::Down,
            _ => Health::Up,
        }
    }

    /// The longest time without an answer since `since` (after the start).
    pub(super) fn longest_gap_since(&self, since: Duration) -> Option<Duration> {
        self.stats
            .snapshot()
            .gaps
            .iter()
            .filter(|g| g.to.saturating_duration_since(self.started) > since)
            .map(client::Gap::length)
            .max()
    }

    /// Stops the client, the servers and the daemons (cleanly).
    pub(super) fn shutdown(&mut self) -> Result<()> {
        self.client_stop.stop();
        let client = self.client.take().map(JoinHandle::join);
        let mut result = Ok(());
        for balancer in &mut self.balancers {
            if let Err(e) = balancer.stop() {
                result = Err(e);
            }
        }
        for server in self.servers.iter_mut().filter_map(Option::take) {
            server.stop()?;
        }
        match client {
            Some(Ok(Ok(()))) | None => {}
            Some(Ok(Err(e))) => return Err(e.context("the client")),
            Some(Err(_)) => bail!("the client thread panicked"),
        }
        result
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // On an early return the client must not outlive its namespace.
        self.client_stop.stop();
    }
}

fn start_server(ns: &crate::netns::Netns, i: usize) -> Result<HttpServer> {
    let (name, addr) = topology::backend(i);
    HttpServer::start(ns, format!("{addr}:{SERVICE_PORT}").parse()?, &name)
}

/// `backend-N` for a backend address, else the address.
fn backend_name(addr: &str) -> String {
    (0..BACKENDS)
        .map(topology::backend)
        .find(|(_, a)| a == addr)
        .map_or_else(|| addr.to_owned(), |(n, _)| n)
}
