//! `lbd run`: load the configuration, remove the virtual addresses a crash
//! left behind, open the data plane (`dataplane::select`: XDP attached to
//! the configured interfaces, or IPVS), run
//! the VRRP instances, and on SIGINT/SIGTERM hand over (priority-0 adverts,
//! addresses removed) and detach. SIGUSR1 is the manual failover switch.
//!
//! The data plane follows VRRP: a service whose VIP an instance carries is
//! installed only while that instance is MASTER (`vrrp::io::serving`).
//! The health checks decide first which real servers are in it and at
//! what weight (`health::Verdict`); VRRP's filter applies to that.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result, bail};
use lb_userspace::{
    config,
    dataplane::{
        Dataplane, DesiredState,
        select::{self, ActiveDataplane},
    },
    health::{self, Verdict},
    ipvs::IpvsOptions,
    vrrp::{
        State,
        io::{
            self as vrrp_io, InstanceStatus, Prepared, RuntimeOptions, VrrpHandle,
            handover::handover_grace, notify::DEFAULT_STATE_DIR, serving::serving,
        },
    },
    xdp::CounterSnapshot,
};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, info, warn};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The configuration file.
    #[arg(short, long)]
    pub(crate) config: PathBuf,
    /// Log the XDP counters every SECONDS when they changed (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub(crate) stats_interval: u64,
    /// Directory of the per-instance VRRP state files (`NAME.state`,
    /// holding `STATE=MASTER` and so on).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub(crate) state_dir: PathBuf,
}

pub(crate) fn run(args: &RunArgs) -> Result<ExitCode> {
    let loaded = config::load_file(&args.config)
        .with_context(|| format!("while loading {}", args.config.display()))?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    // Refuse rather than silently ignore what this build cannot do yet.
    let unsupported = loaded.unsupported();
    if !unsupported.is_empty() {
        let list: Vec<String> = unsupported.iter().map(ToString::to_string).collect();
        bail!(
            "the configuration uses options this lbd does not implement yet:\n{}",
            list.join("\n")
        );
    }
    let config = loaded.config;
    if config.interfaces.is_empty()
        && config.vrrp_instances.is_empty()
        && config.virtual_servers.is_empty()
    {
        bail!(
            "{}: no interfaces to attach to: list them under `interfaces:`",
            args.config.display()
        );
    }
    let desired = DesiredState::from_config(&config)?;
    let health = health::prepare(&config).context("while preparing the health checks")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    // First, before anything else can fail or take time: the VIPs an
    // earlier crash left behind must go (a BACKUP never holds one).
    let vrrp = if config.vrrp_instances.is_empty() {
        None
    } else {
        let options = RuntimeOptions {
            state_dir: args.state_dir.clone(),
            ..RuntimeOptions::default()
        };
        Some(
            runtime
                .block_on(vrrp_io::prepare(&config, &options))
                .context("while setting up VRRP")?,
        )
    };

    // A VRRP-only node (no services, no interfaces) needs no data plane.
    let mut dataplane = if config.interfaces.is_empty() && config.virtual_servers.is_empty() {
        None
    } else {
        let ipvs = IpvsOptions {
            run_dir: args.state_dir.clone(),
        };
        Some(select::open(&config, &desired, &ipvs).context("while opening the data plane")?)
    };
    // Before the instances start none is MASTER: only the services whose
    // VIP no instance carries are installed.
    let initial = vrrp
        .as_ref()
        .map_or_else(Vec::new, Prepared::initial_states);
    let mut installed = serving(&health.initial_verdict().apply(&desired), &initial);
    if let Some(dataplane) = &mut dataplane {
        dataplane
            .apply(&installed)
            .context("while installing the virtual services")?;
        for service in &installed.services {
            info!(
                service = %service.label(),
                scheduler = service.scheduler.name(),
                backends = service.backends.len(),
                "virtual service installed"
            );
        }
    }
    info!(
        interfaces = config.interfaces.len(),
        vrrp_instances = config.vrrp_instances.len(),
        "lbd running"
    );

    let result = runtime.block_on(serve(
        dataplane.as_mut(),
        vrrp,
        health,
        &desired,
        &mut installed,
        args.stats_interval,
        handover_grace(&config),
    ));
    if let Some(dataplane) = &mut dataplane {
        dataplane.shutdown();
    }
    result?;
    info!("lbd stopped");
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGINT or SIGTERM, following VRRP state changes and logging
/// the counters meanwhile; then stops VRRP cleanly.
async fn serve(
    mut dataplane: Option<&mut ActiveDataplane>,
    vrrp: Option<Prepared>,
    health: health::Prepared,
    desired: &DesiredState,
    installed: &mut DesiredState,
    stats_interval: u64,
    grace: Duration,
) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("while installing SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("while installing SIGINT")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("while installing SIGUSR1")?;
    let handle = vrrp.map(Prepared::start);
    let mut states = handle.as_ref().map(|h| h.states.clone());
    let health = health.start();
    let mut verdict = health.verdict.clone();
    // The configured state with the health checks' decisions applied;
    // VRRP's filter comes after.
    let mut healthy = verdict.borrow_and_update().apply(desired);
    // With stats off, the timer still exists but never fires in practice.
    let period = Duration::from_secs(if stats_interval == 0 {
        86_400
    } else {
        stats_interval
    });
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = CounterSnapshot::default();
    let result = loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM received, stopping"); break Ok(()); }
            _ = sigint.recv() => { info!("SIGINT received, stopping"); break Ok(()); }
            _ = sigusr1.recv() => {
                if let Some(handle) = &handle {
                    manual_failover(handle).await;
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
                let now = states
                    .as_mut()
                    .map(|rx| rx.borrow_and_update().clone())
                    .unwrap_or_default();
                if let Some(dataplane) = dataplane.as_deref_mut()
                    && let Err(err) = follow_vrrp(dataplane, &healthy, installed, &now)
                {
                    break Err(err);
                }
            }
            changed = verdict.changed() => {
                if changed.is_err() {
                    break Err(anyhow::anyhow!("the health checks stopped unexpectedly"));
                }
                healthy = follow_health(&verdict.borrow_and_update(), desired);
                let now = states
                    .as_ref()
                    .map(|rx| rx.borrow().clone())
                    .unwrap_or_default();
                if let Some(dataplane) = dataplane.as_deref_mut()
                    && let Err(err) = follow_vrrp(dataplane, &healthy, installed, &now)
                {
                    break Err(err);
                }
            }
            _ = ticker.tick(), if stats_interval > 0 && dataplane.is_some() => {
                if let Some(dataplane) = dataplane.as_deref() {
                    if let Some(xdp) = dataplane.xdp() {
                        let now = xdp.program().counters()?;
                        if now != last {
                            info!("XDP counters: {}", format_counters(&now));
                            log_services(dataplane)?;
                            last = now;
                        }
                    } else {
                        log_services(dataplane)?;
                    }
                }
            }
        }
    };
    if let Some(handle) = handle {
        handle.stop().await;
        info!("VRRP stopped: priority-0 adverts sent, virtual addresses removed");
        if dataplane.is_some() && !grace.is_zero() {
            info!(
                grace_ms = grace.as_millis(),
                "still forwarding while the peer takes over"
            );
            tokio::time::sleep(grace).await;
        }
    }
    result
}

/// SIGUSR1, the manual failover switch: every MASTER hands over (a
/// priority-0 advert, its addresses removed) and then accepts whichever
/// node is master, as with `nopreempt`, until it is elected again.
async fn manual_failover(handle: &VrrpHandle) {
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

/// The configured state as the health checks now see it.
fn follow_health(verdict: &Verdict, desired: &DesiredState) -> DesiredState {
    let healthy = verdict.apply(desired);
    for service in &healthy.services {
        let weights: Vec<String> = service
            .backends
            .iter()
            .map(|b| {
                format!(
                    "{}={}",
                    lb_userspace::dataplane::socket_label(b.addr, b.port),
                    b.weight
                )
            })
            .collect();
        debug!(service = %service.label(), backends = %weights.join(" "), "real servers after health checks");
    }
    healthy
}

/// Installs and removes the services whose VIPs changed hands, and
/// applies changed backend sets.
fn follow_vrrp(
    dataplane: &mut dyn Dataplane,
    desired: &DesiredState,
    installed: &mut DesiredState,
    states: &[InstanceStatus],
) -> Result<()> {
    let wanted = serving(desired, states);
    if wanted == *installed {
        return Ok(());
    }
    dataplane
        .apply(&wanted)
        .context("while following a VRRP or health state change")?;
    for service in &wanted.services {
        if !installed.services.contains(service) {
            info!(service = %service.label(), "virtual service installed (its VIP is ours)");
        }
    }
    for service in &installed.services {
        if !wanted.services.contains(service) {
            info!(service = %service.label(), "virtual service removed (its VIP is not ours)");
        }
    }
    *installed = wanted;
    Ok(())
}

/// One line per service and backend, ipvsadm-like.
fn log_services(dataplane: &dyn Dataplane) -> Result<()> {
    for service in dataplane.status()? {
        let s = service.stats;
        info!(
            "service {} {}: conns={} pkts_in={} pkts_out={}",
            service.protocol,
            lb_userspace::dataplane::socket_label(service.vip, service.port),
            s.connections,
            s.packets_in,
            s.packets_out
        );
        for b in &service.backends {
            info!(
                "  -> {} weight={} active={} inactive={} conns={}",
                lb_userspace::dataplane::socket_label(b.addr, b.port),
                b.weight,
                b.active_connections,
                b.inactive_connections,
                b.stats.connections
            );
        }
    }
    Ok(())
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
