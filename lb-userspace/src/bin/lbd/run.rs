//! `lbd run`: load the configuration, refuse what cannot run (the checks
//! `lbd check` makes), claim the state directory and interfaces (one lbd
//! at a time, `daemon::lock`), remove the virtual addresses a crash left
//! behind, open the data plane (`dataplane::select`: XDP attached to
//! the configured interfaces, or IPVS), run
//! the VRRP instances, then hand over to the daemon's loop
//! (`lb_userspace::daemon::serve`: control socket, reloads, metrics,
//! signals); on SIGINT/SIGTERM hand over (priority-0 adverts, addresses
//! removed) and leave the XDP program attached with its maps pinned
//! (`xdp::pins`), for the next `lbd run` to adopt with its flows; `lbd
//! cleanup` detaches it.
//!
//! The data plane follows the health checks and VRRP: the checks decide
//! which real servers are in a service and at what weight
//! (`health::Verdict`), and a service whose VIP an instance carries is
//! installed only while that instance is MASTER (`daemon::effective`).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Instant};

use anyhow::{Context, Result, bail};
use lb_userspace::{
    config,
    daemon::{
        self, DEFAULT_SOCKET, ServeOptions, drain::Drains, effective::effective, fd_limit,
        lock::Claims, preflight, select,
    },
    dataplane::DesiredState,
    defaults::STATE_DIR as DEFAULT_STATE_DIR,
    health,
    ipvs::IpvsOptions,
    vrrp::io::{self as vrrp_io, PreparedThread, RuntimeOptions},
    xdp::pins,
};
use tracing::{info, warn};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", default_value = lb_userspace::defaults::CONFIG_FILE)]
    pub(crate) config: PathBuf,
    /// Log the XDP counters every SECONDS when they changed (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub(crate) stats_interval: u64,
    /// Directory of the per-instance VRRP state files (`NAME.state`,
    /// holding `STATE=MASTER` and so on).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub(crate) state_dir: PathBuf,
    /// The control socket `lbd status`, `reload`, `failover` and
    /// `maintenance` use (mode 0600, or 0660 for `global.control_group`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub(crate) socket: PathBuf,
    /// Serve Prometheus metrics at http://ADDRESS:PORT/metrics (overrides
    /// `global.metrics_listen`).
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Directory on bpffs where the XDP program's maps and links are pinned,
    /// so a restart keeps the flows [default: /sys/fs/bpf/lbd/default, or
    /// /sys/fs/bpf/lbd/<state dir with / as -> for another --state-dir].
    #[arg(long, value_name = "DIR")]
    pub(crate) pin_dir: Option<PathBuf>,
}

pub(crate) fn run(args: &RunArgs) -> Result<ExitCode> {
    let loaded = config::load_file(&args.config)
        .with_context(|| format!("while loading {}", args.config.display()))?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    // Refuse rather than half-run, with what `lbd check` says, before
    // anything on the host is touched.
    let refusals = preflight::refusals(&loaded);
    if !refusals.is_empty() {
        bail!("{}", preflight::render(&refusals));
    }
    let config = loaded.config;
    // One lbd per state directory and per managed interface: a second
    // start stops here, having changed nothing. Held until we return.
    let _claims =
        Claims::acquire(&config, &args.state_dir).context("refusing to start a second lbd")?;
    match fd_limit::raise_open_files() {
        Ok((before, after)) if after > before => {
            info!(before, after, "raised the open-files limit");
        }
        Ok(_) => {}
        Err(err) => warn!("cannot raise the open-files limit: {err}"),
    }
    let desired = DesiredState::from_config(&config)?;
    // Bad regexes, unsafe scripts and unreadable CA files fail here.
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
        Some(vrrp_io::prepare_on_own_thread(&config, &options).context("while setting up VRRP")?)
    };

    // A VRRP-only node (no services, no interfaces) needs no data plane.
    let (mut dataplane, flow_sync) =
        if config.interfaces.is_empty() && config.virtual_servers.is_empty() {
            (None, None)
        } else {
            let ipvs = IpvsOptions {
                run_dir: args.state_dir.clone(),
            };
            let pin_dir = args
                .pin_dir
                .clone()
                .unwrap_or_else(|| pins::default_pin_dir(&args.state_dir));
            let opened = select::open(&config, &desired, &ipvs, &pin_dir)
                .context("while opening the data plane")?;
            (Some(opened.dataplane), opened.flow_sync)
        };
    // Real servers an earlier lbd left in the pinned maps that the
    // configuration dropped since drain, as after a reload.
    let mut drains = Drains::default();
    if let Some(adopted) = dataplane.as_ref().and_then(|d| d.adopted()) {
        drains.reload(
            &adopted,
            &desired,
            Instant::now() + config.global.drain_timeout(),
        );
        if !drains.is_empty() {
            info!(
                reals = drains.len(),
                "real servers no longer configured drain from the adopted XDP state"
            );
        }
    }
    // Before the instances start none is MASTER: only the services whose
    // VIP no instance carries are installed.
    let initial = vrrp
        .as_ref()
        .map_or_else(Vec::new, PreparedThread::initial_states);
    let installed = effective(&desired, &health.initial_verdict(), &drains, &initial);
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

    let options = ServeOptions {
        config_path: args.config.clone(),
        socket: args.socket.clone(),
        metrics: args.metrics.or(config.global.metrics_listen),
        stats_interval: args.stats_interval,
        state_dir: args.state_dir.clone(),
        drains,
    };
    let result = runtime.block_on(daemon::serve(
        options,
        config,
        dataplane.as_mut(),
        vrrp,
        health,
        desired,
        installed,
        flow_sync,
    ));
    // Dropping the runtime would wait for its blocking threads, such as a
    // `lbd status -c` walk of a large flow table still streaming to a
    // client; they only read, so the stop does not wait for them.
    runtime.shutdown_background();
    if let Some(dataplane) = &mut dataplane {
        dataplane.shutdown();
    }
    result?;
    info!("lbd stopped");
    Ok(ExitCode::SUCCESS)
}
