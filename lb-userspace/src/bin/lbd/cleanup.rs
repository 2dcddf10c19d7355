//! `lbd cleanup`: for systemd's `ExecStopPost`, removes what a stopped lbd
//! may have left (after a crash): its marked virtual addresses and its
//! recorded IPVS services. Safe to run after a clean stop (nothing left);
//! refuses, changing nothing, while an lbd holds the same claims.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use lb_userspace::{
    config,
    daemon::{cleanup, lock::Claims},
    defaults::STATE_DIR as DEFAULT_STATE_DIR,
};

#[derive(clap::Args)]
pub(crate) struct CleanupArgs {
    /// The configuration lbd ran with (for its instances' interfaces).
    #[arg(short, long)]
    pub(crate) config: PathBuf,
    /// lbd's state directory (where it records its IPVS services).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub(crate) state_dir: PathBuf,
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
        .block_on(cleanup::remove_vips(&loaded.config))
        .context("while removing lbd's virtual addresses")?;
    for (interface, address) in &removed {
        println!("removed virtual address {address} from {interface}");
    }
    if cleanup::remove_ipvs(&args.state_dir).context("while removing lbd's IPVS services")? {
        println!("removed the IPVS services lbd recorded");
    }
    Ok(ExitCode::SUCCESS)
}
