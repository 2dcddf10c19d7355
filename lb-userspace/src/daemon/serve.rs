//! The daemon's event loop: signals (SIGTERM/SIGINT stop, SIGHUP reloads,
//! SIGUSR1 is the manual failover switch), control-socket requests, health
//! check verdicts (which real servers are in a service, at what weight),
//! VRRP state changes (a service whose VIP an instance carries is installed
//! only while that instance is MASTER), and a one-second tick for draining
//! and `autoreload`. Readiness, reloads and the stop are told to systemd.

use crate::error_text::error_chain;
use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result};
use sd_notify::NotifyState;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing::{error, info, warn};

use super::{
    connections,
    control::{self, ControlRequest, Reply},
    drain::Drains,
    health::{HealthBoard, HealthView},
    http,
    protocol::{Request, Response},
    rates::RateSampler,
    reload,
    status::{self, StatusReport, unix_seconds},
};
use crate::{
    config::{self, Config, ConfigError},
    dataplane::{Dataplane, DesiredState, FlowQuery, select::ActiveDataplane, socket_label},
    health::{self, HealthHandle, Verdict},
    vrrp::{
        State,
        io::{InstanceStatus, Prepared, VrrpHandle, handover::handover_grace, serving::serving},
    },
    xdp::CounterSnapshot,
};

/// How `lbd run` was started.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub config_path: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    /// The Prometheus listener (`--metrics`, else `global.metrics_listen`).
    pub metrics: Option<SocketAddr>,
    /// Log the counters every this many seconds (0: never).
    pub stats_interval: u64,
}

/// Everything the loop owns.
struct Daemon<'a> {
    options: ServeOptions,
    config: Config,
    config_mtime: Option<FileStamp>,
    /// What the configuration asks for.
    desired: DesiredState,
    /// What the data plane has: `desired` plus drains, by VRRP state.
    installed: DesiredState,
    drains: Drains,
    /// Health per real server, as status and metrics show it.
    health: HealthBoard,
    /// The running health checks, for the configuration in `config`.
    checks: HealthHandle,
    /// Their latest decision, applied to `desired` before anything else.
    verdict: Verdict,
    dataplane: Option<&'a mut ActiveDataplane>,
    vrrp: Option<VrrpHandle>,
    started_at: SystemTime,
    reloaded_at: Option<SystemTime>,
    reloads_ok: u64,
    reloads_failed: u64,
    /// Counter samples for the rates status shows.
    rates: RateSampler,
}

/// Runs until SIGTERM or SIGINT, then stops VRRP cleanly (priority-0
/// adverts, addresses removed). `installed` is what the data plane has now.
pub async fn serve(
    options: ServeOptions,
    config: Config,
    dataplane: Option<&mut ActiveDataplane>,
    vrrp: Option<Prepared>,
    checks: health::Prepared,
    desired: DesiredState,
    installed: DesiredState,
) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("while installing SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("while installing SIGINT")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("while installing SIGUSR1")?;
    let mut sighup = signal(SignalKind::hangup()).context("while installing SIGHUP")?;

    let (requests_tx, mut requests) = mpsc::channel::<ControlRequest>(16);
    let socket = control::bind(&options.socket, config.global.control_group.as_deref())
        .context("while opening the control socket")?;
    let control_task = control::spawn(socket, requests_tx.clone());
    info!(socket = %options.socket.display(), "control socket listening");
    let metrics_task = match options.metrics {
        Some(addr) => {
            let listener = http::bind(addr)
                .await
                .with_context(|| format!("while binding the metrics listener {addr}"))?;
            info!(%addr, "Prometheus metrics at http://{addr}/metrics");
            Some(http::spawn(listener, requests_tx.clone()))
        }
        None => None,
    };
    drop(requests_tx);

    let mut daemon = Daemon {
        config_mtime: mtime(&options.config_path),
        options,
        config,
        desired,
        installed,
        drains: Drains::default(),
        health: HealthBoard::default(),
        verdict: checks.initial_verdict(),
        checks: checks.start(),
        dataplane,
        vrrp: vrrp.map(Prepared::start),
        started_at: SystemTime::now(),
        reloaded_at: None,
        reloads_ok: 0,
        reloads_failed: 0,
        rates: RateSampler::default(),
    };
    let mut states = daemon.vrrp.as_ref().map(|h| h.states.clone());
    notify(&[NotifyState::Ready, NotifyState::Status("running")]);

    let stats_interval = daemon.options.stats_interval;
    // With stats off, the timer still exists but never fires in practice.
    let mut stats = tokio::time::interval(Duration::from_secs(if stats_interval == 0 {
        86_400
    } else {
        stats_interval
    }));
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = CounterSnapshot::default();
    let result = loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM received, stopping"); break Ok(()); }
            _ = sigint.recv() => { info!("SIGINT received, stopping"); break Ok(()); }
            _ = sigusr1.recv() => daemon.sigusr1().await,
            _ = sighup.recv() => {
                info!("SIGHUP received, reloading");
                // Logged either way; nobody to answer.
                let _ = daemon.reload();
            }
            Some(request) = requests.recv() => {
                let response = daemon.handle(request.request).await;
                let _ = request.reply.send(response);
            }
            changed = daemon.checks.verdict.changed() => {
                if changed.is_err() {
                    break Err(anyhow::anyhow!("the health checks stopped unexpectedly"));
                }
                daemon.verdict = daemon.checks.verdict.borrow_and_update().clone();
                if let Err(err) = daemon.follow() {
                    break Err(err.context("while following a health check verdict"));
                }
            }
            changed = async {
                match states.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if changed.is_err() {
                    break Err(anyhow::anyhow!("the VRRP runtime stopped unexpectedly"));
                }
                if let Some(rx) = states.as_mut() {
                    rx.borrow_and_update();
                }
                if let Err(err) = daemon.follow() {
                    break Err(err.context("while following a VRRP state change"));
                }
            }
            _ = tick.tick() => {
                if let Err(err) = daemon.tick() {
                    break Err(err);
                }
            }
            _ = stats.tick(), if stats_interval > 0 => {
                if let Err(err) = daemon.log_stats(&mut last) {
                    warn!("cannot read the counters: {err:#}");
                }
            }
        }
    };
    notify(&[NotifyState::Stopping]);
    control_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    let _ = std::fs::remove_file(&daemon.options.socket);
    if let Some(handle) = daemon.vrrp.take() {
        handle.stop().await;
        info!("VRRP stopped: priority-0 adverts sent, virtual addresses removed");
        let grace = handover_grace(&daemon.config);
        if daemon.dataplane.is_some() && !grace.is_zero() {
            info!(
                grace_ms = grace.as_millis(),
                "still forwarding while the peer takes over"
            );
            tokio::time::sleep(grace).await;
        }
    }
    result
}

/// Tells systemd (when it started lbd with `Type=notify`); otherwise a no-op.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        warn!("cannot notify systemd: {err}");
    }
}

/// What tells `autoreload` the file changed: its modification time, size
/// and inode (a rename-over keeps the time coarse but changes the inode).
type FileStamp = (SystemTime, u64, u64);

fn mtime(path: &std::path::Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

impl Daemon<'_> {
    fn states(&self) -> Vec<InstanceStatus> {
        self.vrrp
            .as_ref()
            .map(|h| h.states.borrow().clone())
            .unwrap_or_default()
    }

    /// Installs and removes the services whose VIPs changed hands, and
    /// applies drains and reloads: the data plane gets `desired` plus the
    /// draining real servers, restricted to the VIPs this node serves.
    fn follow(&mut self) -> Result<()> {
        let healthy = self.verdict.apply(&self.desired);
        let wanted = serving(&self.drains.overlay(&healthy), &self.states());
        self.install(wanted, Cause::Vrrp)
    }

    /// Applies `wanted`, logging the services that come and go and why.
    fn install(&mut self, wanted: DesiredState, cause: Cause) -> Result<()> {
        if wanted == self.installed {
            return Ok(());
        }
        let Some(dataplane) = self.dataplane.as_deref_mut() else {
            self.installed = wanted;
            return Ok(());
        };
        dataplane.apply(&wanted)?;
        for service in &wanted.services {
            if !self
                .installed
                .services
                .iter()
                .any(|s| same_service(s, service))
            {
                match cause {
                    Cause::Vrrp => {
                        info!(service = %service.label(), "virtual service installed (its VIP is ours)");
                    }
                    Cause::Reload => {
                        info!(service = %service.label(), backends = service.backends.len(), "virtual service installed (reload)");
                    }
                }
            }
        }
        for service in &self.installed.services {
            if !wanted.services.iter().any(|s| same_service(s, service)) {
                match cause {
                    Cause::Vrrp => {
                        info!(service = %service.label(), "virtual service removed (its VIP is not ours)");
                    }
                    Cause::Reload => {
                        info!(service = %service.label(), "virtual service removed (reload)");
                    }
                }
            }
        }
        self.installed = wanted;
        Ok(())
    }

    /// SIGUSR1: every MASTER hands over (a priority-0 advert, its addresses
    /// removed) and then accepts whichever node is master, as with
    /// `nopreempt`, until it is elected again.
    async fn sigusr1(&self) {
        let Some(handle) = &self.vrrp else { return };
        let masters: Vec<String> = handle
            .states
            .borrow()
            .iter()
            .filter(|s| s.state == State::Master)
            .map(|s| s.name.clone())
            .collect();
        if masters.is_empty() {
            info!("SIGUSR1: manual failover asked, but no instance is MASTER");
        }
        for name in masters {
            if handle.failover(&name).await {
                info!(instance = %name, "SIGUSR1: manual failover, handed over");
            }
        }
    }

    async fn handle(&mut self, request: Request) -> Reply {
        let response = match request {
            Request::Connections(query) => return self.connections(query),
            Request::Status => match self.report().await {
                Ok(report) => Response::Status(Box::new(report)),
                Err(err) => Response::Error {
                    message: format!("{err:#}"),
                },
            },
            Request::Reload => match self.reload() {
                Ok(message) => Response::Done { message },
                Err(message) => Response::Error { message },
            },
            Request::Failover { instance } => self.failover(&instance).await,
            Request::Maintenance { instance, on } => {
                let Some(handle) = &self.vrrp else {
                    return no_vrrp().into();
                };
                match handle.maintenance(instance.as_deref(), on).await {
                    Ok(names) => Response::Done {
                        message: format!(
                            "maintenance {} for {}",
                            if on { "on" } else { "off" },
                            names.join(", ")
                        ),
                    },
                    Err(err) => Response::Error {
                        message: err.to_string(),
                    },
                }
            }
        };
        Reply::Once(response)
    }

    /// Starts a walk of the flow table; its lines stream to the client.
    fn connections(&self, query: FlowQuery) -> Reply {
        let Some(dataplane) = self.dataplane.as_deref() else {
            return Reply::Once(Response::Error {
                message: "this lbd runs no data plane: it tracks no flows".into(),
            });
        };
        match dataplane.flow_lister() {
            Ok(lister) => Reply::Stream(connections::stream(lister, query)),
            Err(err) => Reply::Once(Response::Error {
                message: format!("listing the flows: {}", error_chain(&err)),
            }),
        }
    }

    async fn failover(&self, instance: &str) -> Response {
        let Some(handle) = &self.vrrp else {
            return no_vrrp();
        };
        let state = handle
            .states
            .borrow()
            .iter()
            .find(|s| s.name == instance)
            .map(|s| s.state);
        match state {
            None => Response::Error {
                message: format!("no VRRP instance is named {instance}"),
            },
            Some(state) => {
                if handle.failover(instance).await {
                    info!(%instance, "manual failover: handed over");
                    Response::Done {
                        message: format!(
                            "{instance} handed over; it stays BACKUP until elected again"
                        ),
                    }
                } else {
                    Response::Error {
                        message: format!(
                            "{instance} is {}, not MASTER: nothing to hand over",
                            status::state_name(state)
                        ),
                    }
                }
            }
        }
    }

    /// Re-reads the configuration and applies what changed; on any error
    /// nothing changes. Returns what happened, or the error text.
    fn reload(&mut self) -> Result<String, String> {
        notify(&[NotifyState::Reloading]);
        self.config_mtime = mtime(&self.options.config_path);
        let result = self.try_reload();
        match &result {
            Ok(message) => {
                self.reloads_ok += 1;
                self.reloaded_at = Some(SystemTime::now());
                info!("{message}");
            }
            Err(message) => {
                self.reloads_failed += 1;
                error!("reload refused, nothing changed: {message}");
            }
        }
        notify(&[NotifyState::Ready]);
        result
    }

    fn try_reload(&mut self) -> Result<String, String> {
        let path = self.options.config_path.clone();
        let loaded = match config::load_file(&path) {
            Ok(loaded) => loaded,
            Err(ConfigError::Invalid { diagnostics }) => {
                let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "{} does not load:\n{}",
                    path.display(),
                    lines.join("\n")
                ));
            }
            Err(err) => return Err(error_chain(&err)),
        };
        for warning in &loaded.warnings {
            warn!("{warning}");
        }
        let unsupported = loaded.unsupported();
        if !unsupported.is_empty() {
            let lines: Vec<String> = unsupported.iter().map(ToString::to_string).collect();
            return Err(format!(
                "the configuration uses options this lbd does not implement yet:\n{}",
                lines.join("\n")
            ));
        }
        let new = loaded.config;
        reload::check(&self.config, &new).map_err(|e| e.to_string())?;
        let desired = DesiredState::from_config(&new).map_err(|e| error_chain(&e))?;
        match self.dataplane.as_deref() {
            None if !desired.services.is_empty() => {
                return Err(
                    "virtual_servers added to a node that runs no data plane: restart lbd to apply"
                        .into(),
                );
            }
            Some(ActiveDataplane::Xdp(_)) => {
                if let Some(s) = desired.services.iter().find(|s| !s.scheduler.xdp_capable()) {
                    return Err(format!(
                        "virtual server {}: scheduler {} is not implemented by the XDP data plane that runs (it does rr, wrr and mh)",
                        s.label(),
                        s.scheduler.name()
                    ));
                }
            }
            _ => {}
        }

        // Checks for the new file, prepared before anything changes so a
        // bad one refuses the reload.
        // Unchanged real servers keep their health.
        let checks = if new.virtual_servers == self.config.virtual_servers {
            None
        } else {
            let mut prepared = health::prepare(&new).map_err(|e| error_chain(&e))?;
            prepared.tracker.carry_over(&self.checks.snapshot.borrow());
            Some(prepared)
        };
        let verdict = match &checks {
            Some(prepared) => prepared.initial_verdict(),
            None => self.verdict.clone(),
        };

        let mut drains = self.drains.clone();
        let until = Instant::now() + new.global.drain_timeout();
        drains.reload(&self.drains.overlay(&self.desired), &desired, until);
        let wanted = serving(&drains.overlay(&verdict.apply(&desired)), &self.states());
        let summary = summarize(&self.desired, &desired, &drains);
        let before = self.installed.clone();
        if let Err(err) = self.install(wanted, Cause::Reload) {
            // Put back what was there; apply is per service, so a failure
            // half-way may have changed some.
            if let Some(dataplane) = self.dataplane.as_deref_mut()
                && let Err(undo) = dataplane.apply(&before)
            {
                error!("restoring the services after a failed reload failed: {undo}");
            }
            return Err(format!("the data plane refused the new services: {err:#}"));
        }
        // Health of unchanged real servers is kept; removed ones are forgotten
        // (a draining one keeps its last state until it is gone).
        let keep = drains.overlay(&desired);
        self.health.retain(|key| {
            keep.services.iter().any(|s| {
                (s.protocol, s.vip, s.port) == (key.0, key.1, key.2)
                    && s.backends
                        .iter()
                        .any(|b| (b.addr, b.port) == (key.3, key.4))
            })
        });
        if let Some(prepared) = checks {
            self.checks = prepared.start();
            self.checks.verdict.borrow_and_update();
        }
        self.verdict = verdict;
        self.config = new;
        self.desired = desired;
        self.drains = drains;
        Ok(format!("reloaded {}: {summary}", path.display()))
    }

    /// Rate samples, drains and autoreload, every second.
    fn tick(&mut self) -> Result<()> {
        if let Some(dataplane) = self.dataplane.as_deref() {
            match dataplane.traffic() {
                Ok(traffic) => self.rates.record(Instant::now(), &traffic),
                Err(err) => warn!("cannot sample the counters for rates: {err:#}"),
            }
        }
        if !self.drains.is_empty() {
            let status = match self.dataplane.as_deref() {
                Some(dp) => dp.status()?,
                None => Vec::new(),
            };
            let finished = self.drains.expire(&status, Instant::now());
            if !finished.is_empty() {
                for (protocol, vip, port, addr, rport) in &finished {
                    info!(
                        service = %format!("{protocol} {}", socket_label(*vip, *port)),
                        real_server = %socket_label(*addr, *rport),
                        "drained real server removed"
                    );
                }
                self.follow()
                    .context("while removing drained real servers")?;
            }
        }
        if self.config.global.autoreload {
            let now = mtime(&self.options.config_path);
            if now.is_some() && now != self.config_mtime {
                info!(config = %self.options.config_path.display(), "configuration file changed, reloading (autoreload)");
                let _ = self.reload();
            }
        }
        Ok(())
    }

    async fn report(&mut self) -> Result<StatusReport> {
        self.refresh_health_board();
        let mut services = match self.dataplane.as_deref() {
            Some(dp) => status::services(&dp.status()?, &self.drains, &self.health),
            None => Vec::new(),
        };
        let rates = self.rates.rates();
        rates.annotate(&mut services);
        let xdp_counters = match self.dataplane.as_deref().and_then(ActiveDataplane::xdp) {
            Some(xdp) => status::xdp_counters(&xdp.program().counters()?),
            None => std::collections::BTreeMap::new(),
        };
        let (vrrp_instances, vrrp_unmatched) = match &self.vrrp {
            Some(handle) => {
                let counters = handle.counters().await;
                (
                    status::instances(&self.states(), &counters),
                    counters.unmatched,
                )
            }
            None => (Vec::new(), 0),
        };
        Ok(StatusReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            dataplane: self.dataplane.as_deref().map(|d| d.name().to_owned()),
            config: self.options.config_path.display().to_string(),
            started_at: unix_seconds(self.started_at),
            reloaded_at: self.reloaded_at.map(unix_seconds),
            reloads_ok: self.reloads_ok,
            reloads_failed: self.reloads_failed,
            services,
            vrrp_instances,
            vrrp_unmatched,
            xdp_counters,
            rate_window_ms: rates.window.map(|w| w.as_millis() as u64),
        })
    }

    /// Copies the checks' latest results into the board status and
    /// metrics read. The snapshot lists servers in configuration order, as
    /// `desired` does.
    fn refresh_health_board(&mut self) {
        let snapshot = self.checks.snapshot.borrow().clone();
        for ((service, health), config) in self
            .desired
            .services
            .iter()
            .zip(&snapshot.services)
            .zip(&self.config.virtual_servers)
        {
            for ((backend, server), rs) in service
                .backends
                .iter()
                .zip(&health.servers)
                .zip(&config.real_servers)
            {
                if rs.checks.is_empty() {
                    continue;
                }
                let key = (
                    service.protocol,
                    service.vip,
                    service.port,
                    backend.addr,
                    backend.port,
                );
                let last_result = if server.runs == 0 {
                    Some("not checked yet".to_owned())
                } else if let (false, Some(error)) = (server.up, &server.last_error) {
                    Some(error.clone())
                } else {
                    Some("ok".to_owned())
                };
                self.health.set(
                    key,
                    HealthView {
                        up: server.up,
                        last_result,
                    },
                );
            }
        }
    }

    /// One log line per service and real server (and the XDP counters
    /// when they changed), ipvsadm-like.
    fn log_stats(&self, last: &mut CounterSnapshot) -> Result<()> {
        let Some(dataplane) = self.dataplane.as_deref() else {
            return Ok(());
        };
        if let Some(xdp) = dataplane.xdp() {
            let now = xdp.program().counters()?;
            if now == *last {
                return Ok(());
            }
            info!("XDP counters: {}", format_counters(&now));
            *last = now;
        }
        for service in dataplane.status()? {
            let s = service.stats;
            info!(
                "service {} {}: conns={} pkts_in={} pkts_out={}",
                service.protocol,
                socket_label(service.vip, service.port),
                s.connections,
                s.packets_in,
                s.packets_out
            );
            for b in &service.backends {
                info!(
                    "  -> {} weight={} active={} inactive={} conns={}",
                    socket_label(b.addr, b.port),
                    b.weight,
                    b.active_connections,
                    b.inactive_connections,
                    b.stats.connections
                );
            }
        }
        Ok(())
    }
}

/// Why the installed services change, for the log.
#[derive(Clone, Copy)]
enum Cause {
    /// A VRRP state change (or a drain ending).
    Vrrp,
    Reload,
}

fn no_vrrp() -> Response {
    Response::Error {
        message: "this lbd runs no VRRP instances".into(),
    }
}

fn same_service(a: &crate::dataplane::ServiceSpec, b: &crate::dataplane::ServiceSpec) -> bool {
    (a.protocol, a.vip, a.port) == (b.protocol, b.vip, b.port)
}

/// "services added: 1, removed: 0, changed: 2; real servers draining: 1".
fn summarize(old: &DesiredState, new: &DesiredState, drains: &Drains) -> String {
    let added = new
        .services
        .iter()
        .filter(|n| !old.services.iter().any(|o| same_service(o, n)))
        .count();
    let removed = old
        .services
        .iter()
        .filter(|o| !new.services.iter().any(|n| same_service(o, n)))
        .count();
    let changed = new
        .services
        .iter()
        .filter(|n| old.services.iter().any(|o| same_service(o, n) && o != *n))
        .count();
    format!(
        "services added: {added}, removed: {removed}, changed: {changed}; real servers draining: {}",
        drains.len()
    )
}

/// `name=value` for every counter that is not zero.
fn format_counters(snapshot: &CounterSnapshot) -> String {
    let parts: Vec<String> = snapshot
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(c, v)| format!("{}={v}", c.name()))
        .collect();
    parts.join(" ")
}
