//! `cargo xtask run`: builds `lbd`, creates the lab (client - balancer -
//! backend namespaces), runs `lbd` in the balancer on the embedded lab
//! config, sends client traffic through it, and shows the XDP counters move.
//! Stops on Ctrl-C or after `--duration`, leaving nothing behind.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, ExitStatus},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use lb_lab::{
    lab::{BACKEND_IP, BACKEND_IP6, BALANCER_CLIENT_IF, Lab, VIP, VIP6},
    traffic::{StopFlag, Tally, tcp_client, tcp_echo_server, udp_client, udp_echo_server},
};

use crate::{
    build::{self, BuildArgs},
    cmd::{self, step},
    setup,
};

const DEFAULT_CONFIG: &str = include_str!("../lab/default.yaml");

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<u64>,
    /// Run lbd with this configuration instead of the embedded lab config.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
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
    let lab = step(
        "create the lab (client, balancer, backend namespaces)",
        || {
            let lab = Lab::new()?;
            // As a VRRP master would: the balancer answers ARP / ND for them.
            lab.add_vips()?;
            Ok(lab)
        },
    )?;
    let outcome = run_in_lab(&lab, &lbd, &config, args.duration);
    let names: Vec<String> = [&lab.client, &lab.balancer, &lab.switch]
        .into_iter()
        .chain(lab.backends.iter())
        .map(|ns| ns.name().to_owned())
        .collect();
    drop(lab);
    let leftovers: Vec<&String> = names
        .iter()
        .filter(|n| std::path::Path::new("/run/netns").join(n).exists())
        .collect();
    ensure!(
        leftovers.is_empty(),
        "namespaces left behind: {leftovers:?}"
    );
    eprintln!("[xtask] lab removed: no namespace, interface or process left");
    outcome
}

fn write_default_config() -> Result<PathBuf> {
    let dir = cmd::workspace_root().join("target").join("lab");
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    let path = dir.join("lbd.yaml");
    std::fs::write(&path, DEFAULT_CONFIG)
        .with_context(|| format!("while writing {}", path.display()))?;
    eprintln!(
        "[xtask] lab config written to {} (edit it and re-run with --config)",
        path.display()
    );
    Ok(path)
}

fn run_in_lab(
    lab: &Lab,
    lbd: &std::path::Path,
    config: &std::path::Path,
    duration: Option<u64>,
) -> Result<()> {
    let stop = StopFlag::default();
    let mut threads = Vec::new();
    // The backend serves on its own addresses ...
    let backend_udp4: SocketAddr = format!("{BACKEND_IP}:7777").parse()?;
    let backend_tcp4: SocketAddr = format!("{BACKEND_IP}:8080").parse()?;
    let backend_udp6: SocketAddr = format!("[{BACKEND_IP6}]:7777").parse()?;
    for addr in [backend_udp4, backend_udp6] {
        threads.push(udp_echo_server(lab.backend(), addr, stop.clone())?);
    }
    threads.push(tcp_echo_server(lab.backend(), backend_tcp4, stop.clone())?);
    // ... and the client only knows the VIPs (the embedded config's services).
    let udp4: SocketAddr = format!("{VIP}:7777").parse()?;
    let tcp4: SocketAddr = format!("{VIP}:8080").parse()?;
    let udp6: SocketAddr = format!("[{VIP6}]:7777").parse()?;

    let mut daemon = lab
        .balancer
        .command(lbd)
        .args(["run", "--stats-interval", "1", "--config"])
        .arg(config)
        .spawn()
        .context("while starting lbd in the balancer namespace")?;
    let result = drive(
        lab,
        &mut daemon,
        duration,
        &stop,
        &mut threads,
        [udp4, tcp4, udp6],
    );
    stop.stop();
    let status = stop_daemon(&mut daemon)?;
    for thread in threads {
        if let Ok(Err(e)) = thread.join() {
            eprintln!("[xtask] traffic thread: {e:#}");
        }
    }
    result?;
    ensure!(status.success(), "lbd exited with {status}");
    Ok(())
}

fn drive(
    lab: &Lab,
    daemon: &mut Child,
    duration: Option<u64>,
    stop: &StopFlag,
    threads: &mut Vec<std::thread::JoinHandle<Result<()>>>,
    [udp4, tcp4, udp6]: [SocketAddr; 3],
) -> Result<()> {
    step("wait for lbd to attach XDP", || wait_attached(lab, daemon))?;
    let tallies = [
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    ];
    let every = Duration::from_millis;
    threads.push(udp_client(
        &lab.client,
        udp4,
        every(20),
        tallies[0].clone(),
        stop.clone(),
    )?);
    threads.push(tcp_client(
        &lab.client,
        tcp4,
        every(100),
        tallies[1].clone(),
        stop.clone(),
    )?);
    threads.push(udp_client(
        &lab.client,
        udp6,
        every(50),
        tallies[2].clone(),
        stop.clone(),
    )?);

    match duration {
        Some(s) => eprintln!("[xtask] client traffic flowing for {s} s (Ctrl-C stops)"),
        None => eprintln!("[xtask] client traffic flowing; Ctrl-C stops"),
    }
    let start = Instant::now();
    let mut next_report = Duration::from_secs(1);
    while !INTERRUPTED.load(Ordering::Relaxed)
        && duration.is_none_or(|d| start.elapsed() < Duration::from_secs(d))
    {
        if let Some(status) = daemon.try_wait()? {
            bail!("lbd exited early with {status}");
        }
        if start.elapsed() >= next_report {
            eprintln!(
                "[xtask] client answers: udp4 {}/{}  tcp4 {}/{}  udp6 {}/{}",
                tallies[0].answered(),
                tallies[0].sent(),
                tallies[1].answered(),
                tallies[1].sent(),
                tallies[2].answered(),
                tallies[2].sent(),
            );
            next_report += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let answered: u64 = tallies.iter().map(|t| t.answered()).sum();
    ensure!(
        answered > 0,
        "no client request was answered through the balancer"
    );
    Ok(())
}

/// Waits until the balancer's interfaces show an XDP program, or lbd dies.
fn wait_attached(lab: &Lab, daemon: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(status) = daemon.try_wait()? {
            bail!("lbd exited with {status} before attaching");
        }
        let out = lab
            .balancer
            .command("ip")
            .args(["link", "show", "dev", BALANCER_CLIENT_IF])
            .output()?;
        if String::from_utf8_lossy(&out.stdout).contains("xdp") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("lbd did not attach XDP to {BALANCER_CLIENT_IF} within 15 s")
}

/// SIGTERM, then SIGKILL if it does not stop within 5 s.
fn stop_daemon(daemon: &mut Child) -> Result<ExitStatus> {
    if let Some(status) = daemon.try_wait()? {
        return Ok(status);
    }
    let pid = i32::try_from(daemon.id()).context("pid out of range")?;
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(status) = daemon.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.kill()?;
    bail!("lbd did not stop within 5 s of SIGTERM and was killed")
}
