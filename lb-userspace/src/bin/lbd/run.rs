//! `lbd run`: load the configuration, attach the XDP program to the
//! configured interfaces, report its counters, and detach on SIGINT/SIGTERM.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, Result, bail};
use lb_userspace::{
    config::{self, DataplaneKind, XdpMode},
    dataplane::{Dataplane, DesiredState},
    xdp::{AttachMode, CounterSnapshot, XdpDataplane, XdpProgram},
};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The configuration file.
    #[arg(short, long)]
    pub(crate) config: PathBuf,
    /// Log the XDP counters every SECONDS when they changed (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub(crate) stats_interval: u64,
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
    // unsupported() already refuses ipvs; this keeps the match honest.
    if config.dataplane == DataplaneKind::Ipvs {
        bail!("not supported yet: dataplane: ipvs");
    }
    if config.interfaces.is_empty() {
        bail!(
            "{}: no interfaces to attach to: list them under `interfaces:`",
            args.config.display()
        );
    }

    let desired = DesiredState::from_config(&config)?;
    let mut program = XdpProgram::load().context("while loading the XDP program")?;
    for interface in &config.interfaces {
        let mode = match interface.xdp_mode {
            XdpMode::Auto => AttachMode::Auto,
            XdpMode::Native => AttachMode::Native,
            XdpMode::Generic => AttachMode::Generic,
        };
        program
            .attach(&interface.name, mode)
            .with_context(|| format!("while attaching XDP to interface {}", interface.name))?;
    }
    let mut dataplane = XdpDataplane::new(program);
    dataplane
        .apply(&desired)
        .context("while installing the virtual services")?;
    for service in &desired.services {
        info!(
            service = %service.label(),
            scheduler = service.scheduler.name(),
            backends = service.backends.len(),
            "virtual service installed"
        );
    }
    info!(interfaces = config.interfaces.len(), "lbd running");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    runtime.block_on(serve(&dataplane, args.stats_interval))?;

    dataplane.program_mut().detach_all();
    info!("lbd stopped");
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGINT or SIGTERM, logging the counters meanwhile.
async fn serve(dataplane: &XdpDataplane, stats_interval: u64) -> Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("while installing SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("while installing SIGINT")?;
    // With stats off, the timer still exists but never fires in practice.
    let period = Duration::from_secs(if stats_interval == 0 {
        86_400
    } else {
        stats_interval
    });
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = CounterSnapshot::default();
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM received, stopping"); return Ok(()); }
            _ = sigint.recv() => { info!("SIGINT received, stopping"); return Ok(()); }
            _ = ticker.tick(), if stats_interval > 0 => {
                let now = dataplane.program().counters()?;
                if now != last {
                    info!("XDP counters: {}", format_counters(&now));
                    log_services(dataplane)?;
                    last = now;
                }
            }
        }
    }
}

/// One line per service and backend, ipvsadm-like.
fn log_services(dataplane: &XdpDataplane) -> Result<()> {
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
