//! `lbd cleanup`: for systemd's `ExecStopPost`, removes what a stopped lbd
//! may have left: its marked virtual addresses and its recorded IPVS
//! services (after a crash), and its pinned XDP program and maps (after
//! any stop: removing the pins detaches the program), except while systemd
//! restarts the unit (`--systemd-unit`), when the next lbd adopts them.
//! Safe to run twice; refuses, changing nothing, while an lbd holds the
//! same claims.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use lb_userspace::{
    config,
    daemon::systemd_jobs,
    daemon::{cleanup, lock::Claims},
    defaults::STATE_DIR as DEFAULT_STATE_DIR,
    xdp::pins::{self, PinDir},
};

#[derive(clap::Args)]
pub(crate) struct CleanupArgs {
    /// The configuration lbd ran with (for its instances' interfaces).
    #[arg(short, long, value_name = "FILE", default_value = lb_userspace::defaults::CONFIG_FILE)]
    pub(crate) config: PathBuf,
    /// lbd's state directory (where it records its IPVS services).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub(crate) state_dir: PathBuf,
    /// The pin directory lbd ran with (`lbd run --pin-dir`; the same
    /// default).
    #[arg(long, value_name = "DIR")]
    pub(crate) pin_dir: Option<PathBuf>,
    /// The systemd unit lbd runs as (`%n` in the unit): while systemd is
    /// restarting it, the pinned XDP program and maps are kept for the
    /// next lbd to adopt with its flows.
    #[arg(long, value_name = "UNIT")]
    pub(crate) systemd_unit: Option<String>,
}

pub(crate) fn cleanup(args: &CleanupArgs) -> Result<ExitCode> {
    let loaded = config::load_file(&args.config)
        .with_context(|| format!("while loading {}", args.config.display()))?;
    // Only ever after a process that is gone: while an lbd runs with this
    // state directory or on these interfaces, its addresses are live.
    let _claims = Claims::acquire(&loaded.config, &args.state_dir)
        .context("refusing to clean up while lbd runs")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    let removed = runtime
        .block_on(cleanup::remove_vips(&loaded.config, &args.state_dir))
        .context("while removing lbd's virtual addresses")?;
    for (interface, address) in &removed {
        println!("removed virtual address {address} from {interface}");
    }
    if cleanup::remove_ipvs(&args.state_dir).context("while removing lbd's IPVS services")? {
        println!("removed the IPVS services lbd recorded");
    }
    let pin_dir = args
        .pin_dir
        .clone()
        .unwrap_or_else(|| pins::default_pin_dir(&args.state_dir));
    let restarting = match &args.systemd_unit {
        // Unknown: keep them. A stale pin costs memory until the next
        // start adopts it; a removed one costs every flow.
        Some(unit) => systemd_jobs::restarting(unit).unwrap_or_else(|e| {
            eprintln!("cannot tell whether systemd restarts {unit} ({e}): keeping the XDP pins");
            true
        }),
        None => false,
    };
    if restarting {
        println!(
            "systemd is restarting the unit: kept the pinned XDP program and maps in {} for the next lbd",
            pin_dir.display()
        );
    } else if PinDir::at(&pin_dir)
        .remove_all()
        .context("while removing the pinned XDP program and maps")?
    {
        println!(
            "removed the pinned XDP program and maps in {} (the program is detached)",
            pin_dir.display()
        );
    }
    if !restarting {
        for interface in &loaded.config.interfaces {
            if lb_userspace::xdp::detach_stale_egress(&interface.name) {
                println!("removed the TC egress program from {}", interface.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
