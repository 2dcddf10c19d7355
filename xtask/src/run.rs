//! `cargo xtask run`: builds `lbd` and runs the demo (`lb_lab::demo`): a
//! client, two balancers (a VRRP pair running lbd with XDP) and three HTTP
//! backends in network namespaces, with a live view and keys, or a scripted
//! scenario. Stops on `q`, Ctrl-C or after `--duration`, leaving nothing
//! behind.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use lb_lab::demo::{self, Options, Scenario};

use crate::{
    build::{self, BuildArgs},
    cmd, setup,
};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Stop after this many seconds (default: run until q or Ctrl-C, or
    /// until the scenario ends).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<u64>,
    /// Run both balancers on this configuration instead of the embedded
    /// one (which is written to target/lab/lbd.yaml to start from).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Play the scripted sequence instead of waiting for keys: backend-2
    /// down and up again, the MASTER down and up again.
    #[arg(long)]
    pub(crate) scenario: bool,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub(crate) fn run(args: &RunArgs) -> Result<()> {
    setup::setup()?;
    let lbd = build::build(&BuildArgs { release: false })?;
    catch_interrupts();

    let config = match &args.config {
        Some(path) => path.clone(),
        None => write_default_config()?,
    };
    let live = demo::interactive();
    if !live && args.duration.is_none() && !args.scenario {
        eprintln!("[xtask] stdout is not a terminal: plain lines; Ctrl-C stops");
    }
    eprintln!(
        "[xtask] creating the lab: client, balancer-a and -b (lbd, VRRP, XDP), 3 HTTP backends"
    );
    let report = demo::run(&Options {
        lbd,
        config,
        duration: args.duration.map(Duration::from_secs),
        scenario: args.scenario.then(Scenario::standard),
        live,
        interrupted: &INTERRUPTED,
        request_interval: Duration::from_millis(20),
    })?;
    println!("{report}");
    ensure!(
        report.leftovers.is_empty(),
        "namespaces left behind: {:?}",
        report.leftovers
    );
    ensure!(
        report.unexpected_exits.is_empty(),
        "a balancer's lbd exited by itself (see above)"
    );
    Ok(())
}

fn write_default_config() -> Result<PathBuf> {
    let dir = cmd::workspace_root().join("target").join("lab");
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    let path = dir.join("lbd.yaml");
    std::fs::write(&path, demo::DEFAULT_CONFIG)
        .with_context(|| format!("while writing {}", path.display()))?;
    eprintln!(
        "[xtask] config written to {} (edit it and re-run with --config)",
        path.display()
    );
    Ok(path)
}
