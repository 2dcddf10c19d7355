//! The daemon's event loop: signals (SIGTERM/SIGINT stop, SIGHUP reloads,
//! SIGUSR1/SIGUSR2 write the status report, as keepalived writes its state
//! and statistics), control-socket requests, health
//! check verdicts (which real servers are in a service, at what weight),
//! VRRP state changes (a service whose VIP an instance carries is installed
//! only while that instance is MASTER), and a one-second tick for draining
//! and `autoreload`. Readiness, reloads and the stop are told to systemd.
//!
//! - this file: the loop, what it owns, and the stop;
//! - [`changes`]: following verdicts and VRRP, reloads, drains;
//! - [`requests`]: control requests, the counter log;
//! - [`dump`]: SIGUSR1/SIGUSR2's status files;
//! - [`file_watch`]: when `autoreload` acts on a changed file.

mod changes;
mod dump;
mod file_watch;
mod requests;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, Result};
use sd_notify::NotifyState;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing::{info, warn};

use super::{
    control::{self, ControlRequest},
    drain::Drains,
    health::HealthBoard,
    http,
    rates::RateSampler,
    select::ActiveDataplane,
};
use file_watch::FileWatch;

use super::apply_retry::ApplyRetry;

use crate::{
    config::Config,
    dataplane::DesiredState,
    flowsync::{self, FlowSyncHandle},
    health::{self, HealthHandle, Verdict},
    vrrp::io::{InstanceStatus, PreparedThread, VrrpHandle, handover::handover_grace},
    xdp::FlowSyncPort,
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
    /// Where SIGUSR1/SIGUSR2 write the status report (`--state-dir`).
    pub state_dir: PathBuf,
    /// Real servers draining from the start: those an earlier lbd left in
    /// the pinned XDP maps that the configuration no longer lists.
    pub drains: Drains,
}

/// Everything the loop owns.
struct Daemon<'a> {
    options: ServeOptions,
    config: Config,
    config_file: FileWatch,
    /// A change the data plane refused, retried every tick.
    apply_retry: ApplyRetry,
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
    last_reload_failed: bool,
    /// Counter samples for the rates status shows.
    rates: RateSampler,
    /// The flow sync with the peer, when configured (XDP only).
    flow_sync: Option<FlowSyncHandle>,
}

/// Runs until SIGTERM or SIGINT, then stops VRRP cleanly (priority-0
/// adverts, addresses removed). `installed` is what the data plane has now.
#[expect(
    clippy::too_many_arguments,
    reason = "each is one thing `lbd run` prepared before the loop starts"
)]
pub async fn serve(
    mut options: ServeOptions,
    config: Config,
    dataplane: Option<&mut ActiveDataplane>,
    vrrp: Option<PreparedThread>,
    checks: health::Prepared,
    desired: DesiredState,
    installed: DesiredState,
    flow_sync: Option<FlowSyncPort>,
) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("while installing SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("while installing SIGINT")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("while installing SIGUSR1")?;
    let mut sigusr2 = signal(SignalKind::user_defined2()).context("while installing SIGUSR2")?;
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
    let flow_sync = match (flow_sync, &config.flow_sync) {
        (Some(port), Some(sync)) => {
            let handle = flowsync::start(sync, port, &desired)
                .context("while starting the flow sync (`flow_sync`)")?;
            info!(
                interface = sync.interface,
                port = sync.port(),
                id = sync.id(),
                "flow sync running"
            );
            Some(handle)
        }
        _ => None,
    };

    let drains = std::mem::take(&mut options.drains);
    let vrrp = match vrrp {
        Some(prepared) => Some(
            prepared
                .start()
                .await
                .context("while starting VRRP on its thread")?,
        ),
        None => None,
    };
    let mut daemon = Daemon {
        config_file: FileWatch::new(file_watch::stamp(&options.config_path)),
        apply_retry: ApplyRetry::default(),
        options,
        config,
        desired,
        installed,
        drains,
        health: HealthBoard::default(),
        verdict: checks.initial_verdict(),
        checks: checks.start(),
        dataplane,
        vrrp,
        started_at: SystemTime::now(),
        reloaded_at: None,
        reloads_ok: 0,
        reloads_failed: 0,
        last_reload_failed: false,
        rates: RateSampler::default(),
        flow_sync,
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
    let mut last = BTreeMap::new();
    let result = loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM received, stopping"); break Ok(()); }
            _ = sigint.recv() => { info!("SIGINT received, stopping"); break Ok(()); }
            _ = sigusr1.recv() => daemon.write_dump(dump::Dump::State).await,
            _ = sigusr2.recv() => daemon.write_dump(dump::Dump::Stats).await,
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
                if let Err(err) = daemon.follow_or_retry("a health check verdict") {
                    break Err(err);
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
                if let Err(err) = daemon.follow_or_retry("a VRRP state change") {
                    break Err(err);
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
        // The grace keeps forwarding the services a MASTER carried while its
        // peer takes them over; with none (a VRRP-only node, or a BACKUP)
        // nothing is in flight and lbd exits at once.
        let forwarding = forwards_a_vip_it_masters(&daemon.installed, &handle.states.borrow());
        handle.stop().await;
        info!("VRRP stopped: priority-0 adverts sent, virtual addresses removed");
        let grace = handover_grace(&daemon.config);
        if daemon.dataplane.is_some() && forwarding && !grace.is_zero() {
            info!(
                grace_ms = grace.as_millis(),
                "still forwarding while the peer takes over"
            );
            tokio::time::sleep(grace).await;
        }
    }
    result
}

/// Whether the data plane holds a service whose VIP a MASTER instance
/// carries: the traffic the stop hands over.
fn forwards_a_vip_it_masters(installed: &DesiredState, states: &[InstanceStatus]) -> bool {
    installed.services.iter().any(|service| {
        states
            .iter()
            .any(|s| s.state == crate::vrrp::State::Master && s.vips.contains(&service.vip))
    })
}

/// Tells systemd (when it started lbd with `Type=notify`); otherwise a no-op.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        warn!("cannot notify systemd: {err}");
    }
}

impl Daemon<'_> {
    fn states(&self) -> Vec<InstanceStatus> {
        self.vrrp
            .as_ref()
            .map(|h| h.states.borrow().clone())
            .unwrap_or_default()
    }
}
