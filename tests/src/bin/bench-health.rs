//! `cargo xtask bench health`: what 1,000 real servers checked every
//! second with HTTP_GET cost the daemon. Targets (figures printed, never
//! a pass/fail): under 10 % of one core and under 50 MiB resident.
//!
//! In one namespace: 1,000 HTTP servers on 127.0.0.1 ports 20000-20999
//! (one tokio thread serving them all, counting the requests), and `lbd`
//! with 10 virtual servers of 100 real servers each, every real server
//! with an `http_get` every second. After a warm-up, lbd's CPU time
//! (utime + stime from /proc) over the measuring window and its resident
//! memory (VmRSS, VmHWM) are printed, with the checks the servers saw,
//! beside lbd's memory with no services at all.
//!
//! The reference, measured first in the same run: a bare client (one
//! tokio thread, no bookkeeping) making the same 1,000 HTTP exchanges a
//! second. On loopback the kernel charges both ends' TCP work to the
//! connecting process, so most of either figure is the kernel's; lbd's
//! own cost is the difference.

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lb_lab::netns::Netns;
use lb_tests::daemon::{Daemon, temp_config, wait_for_xdp};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SERVICES: usize = 10;
const PER_SERVICE: usize = 100;
const FIRST_PORT: u16 = 20_000;
const WARM_UP: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(30);

fn main() -> Result<()> {
    let servers = SERVICES * PER_SERVICE;
    let ns = Netns::new("benchhealth")?;
    // Something to attach XDP to; no traffic crosses it.
    ns.ip(&[
        "link", "add", "lbbench0", "type", "veth", "peer", "name", "lbbench1",
    ])?;
    ns.ip(&["link", "set", "lbbench0", "up"])?;
    ns.ip(&["link", "set", "lbbench1", "up"])?;
    let requests = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let requests = requests.clone();
        ns.spawn(move || serve_pages(servers, &requests, &ready_tx))?;
    }
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the HTTP servers did not start")??;

    let idle = idle_memory(&ns)?;
    let floor = ns
        .spawn(move || bare_client(servers))?
        .join()
        .map_err(|_| anyhow::anyhow!("the bare client panicked"))???;
    let mut yaml =
        String::from("dataplane: xdp\ninterfaces:\n  - name: lbbench0\nvirtual_servers:\n");
    for s in 0..SERVICES {
        write!(
            yaml,
            "  - address: 10.200.0.{}\n    port: 80\n    delay_loop: 1\n    real_servers:\n",
            s + 1
        )?;
        for r in 0..PER_SERVICE {
            let port = FIRST_PORT + u16::try_from(s * PER_SERVICE + r)?;
            writeln!(
                yaml,
                "      - {{ address: 127.0.0.1, port: {port}, checks: [{{ http_get: {{ urls: [{{ path: /health }}], connect_timeout: 2 }} }}] }}"
            )?;
        }
    }
    let config = temp_config("bench-health", &yaml)?;
    let mut lbd = Daemon::start(&ns, &config, &[])?;
    wait_for_xdp(&ns, "lbbench0", &mut lbd)?;
    println!(
        "health checks: {servers} real servers ({SERVICES} virtual servers x {PER_SERVICE}), \
         HTTP_GET every 1 s against local servers; warm-up {WARM_UP:?}, window {WINDOW:?}"
    );
    std::thread::sleep(WARM_UP);
    let pid = lbd.pid();
    let (cpu0, req0, t0) = (
        cpu_ticks(pid)?,
        requests.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(WINDOW);
    let (cpu1, req1, elapsed) = (
        cpu_ticks(pid)?,
        requests.load(Ordering::Relaxed),
        t0.elapsed(),
    );
    if let Some(status) = lbd.try_wait()? {
        bail!("lbd exited with {status}; its log:\n{}", lbd.log());
    }
    // SAFETY: sysconf has no memory preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let share = |ticks: u64| ticks as f64 / hz / elapsed.as_secs_f64();
    let (user, system) = (share(cpu1.0 - cpu0.0), share(cpu1.1 - cpu0.1));
    let cpu = user + system;
    let rss = status_kib(pid, "VmRSS:")?;
    let hwm = status_kib(pid, "VmHWM:")?;
    let checks = (req1 - req0) as f64 / elapsed.as_secs_f64();
    let log = lbd.log();
    let down = log.matches("Removing service").count();
    println!("  checks answered    {checks:>8.0} /s (expected ~{servers})");
    println!(
        "  lbd CPU            {:>8.2} % of one core   (target < 10 %)   {}",
        cpu * 100.0,
        verdict(cpu < 0.10)
    );
    println!(
        "  lbd resident       {:>8.1} MiB (peak {:.1} MiB)   (target < 50 MiB)   {}",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        verdict(hwm < 50 * 1024)
    );
    println!(
        "    of which user {:.2} %, kernel {:.2} % (sockets: connect, send, close)",
        user * 100.0,
        system * 100.0
    );
    println!(
        "  bare client, same exchanges {:>6.2} % of one core (user {:.2} %, kernel {:.2} %); \
         lbd minus bare client: {:+.2} points",
        (floor.0 + floor.1) * 100.0,
        floor.0 * 100.0,
        floor.1 * 100.0,
        (cpu - floor.0 - floor.1) * 100.0
    );
    println!(
        "  lbd with no services     {:>8.1} MiB (peak {:.1} MiB, loading the XDP program): \
         the checks add {:.1} MiB",
        idle.0 as f64 / 1024.0,
        idle.1 as f64 / 1024.0,
        (rss as f64 - idle.0 as f64) / 1024.0
    );
    println!("  servers marked down during the run: {down}");
    lbd.signal_and_wait(libc::SIGTERM, Duration::from_secs(10))?;
    let _ = std::fs::remove_file(config);
    Ok(())
}

/// The reference for memory: lbd attached with no services (VmRSS,
/// VmHWM in KiB).
fn idle_memory(ns: &Netns) -> Result<(u64, u64)> {
    let config = temp_config(
        "bench-health-idle",
        "dataplane: xdp\ninterfaces:\n  - name: lbbench0\n",
    )?;
    let mut lbd = Daemon::start(ns, &config, &[])?;
    wait_for_xdp(ns, "lbbench0", &mut lbd)?;
    std::thread::sleep(Duration::from_secs(2));
    let memory = (
        status_kib(lbd.pid(), "VmRSS:")?,
        status_kib(lbd.pid(), "VmHWM:")?,
    );
    lbd.signal_and_wait(libc::SIGTERM, Duration::from_secs(10))?;
    let _ = std::fs::remove_file(config);
    Ok(memory)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The reference: `count` servers asked `GET /health` every second, the
/// first asks spread over the second, by a client that only connects,
/// writes, reads and closes (with a reset, as lbd). Returns its thread's
/// user and kernel CPU share over [`WINDOW`] / 3.
fn bare_client(count: usize) -> Result<(f64, f64)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for i in 0..count {
            let port = FIRST_PORT + u16::try_from(i)?;
            let offset = Duration::from_secs(1) * u32::try_from(i)? / u32::try_from(count)?;
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                        continue;
                    };
                    let _ = socket.set_zero_linger();
                    let Ok(mut conn) = socket.connect(([127, 0, 0, 1], port).into()).await else {
                        continue;
                    };
                    let _ = conn
                        .write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
                        .await;
                    let mut buf = [0u8; 1024];
                    while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            });
        }
        tokio::time::sleep(WARM_UP).await;
        let window = WINDOW / 3;
        let before = thread_ticks()?;
        tokio::time::sleep(window).await;
        let after = thread_ticks()?;
        // SAFETY: sysconf has no memory preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let share = |t: u64| t as f64 / hz / window.as_secs_f64();
        Ok((share(after.0 - before.0), share(after.1 - before.1)))
    })
}

fn thread_ticks() -> Result<(u64, u64)> {
    ticks_of(&std::fs::read_to_string("/proc/thread-self/stat")?)
}

/// Serves `count` ports from one thread until the process ends.
fn serve_pages(
    count: usize,
    requests: &Arc<AtomicU64>,
    ready: &std::sync::mpsc::Sender<Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    runtime.block_on(async {
        let mut listeners = Vec::new();
        for i in 0..count {
            let port = FIRST_PORT + u16::try_from(i).expect("ports fit");
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    let _ = ready.send(Err(anyhow::anyhow!("binding 127.0.0.1:{port}: {e}")));
                    return;
                }
            }
        }
        for listener in listeners {
            let requests = requests.clone();
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    let requests = requests.clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        let mut got = Vec::new();
                        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                            }
                        }
                        requests.fetch_add(1, Ordering::Relaxed);
                        let _ = conn
                            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .await;
                    });
                }
            });
        }
        let _ = ready.send(Ok(()));
        std::future::pending::<()>().await;
    });
}

/// utime and stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> Result<(u64, u64)> {
    ticks_of(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

fn ticks_of(stat: &str) -> Result<(u64, u64)> {
    // Fields after the command name (which may hold spaces) in parens.
    let rest = stat.rsplit_once(") ").context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok((utime, stime))
}

fn status_kib(pid: i32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .context("no such field")?
        .parse()
        .map_err(Into::into)
}
