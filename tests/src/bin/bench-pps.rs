//! `cargo xtask bench pps`: packets per second per core through the XDP data
//! plane and through the kernel's own nftables DNAT, same topology, same
//! generator, same invocation.
//!
//! Method (shared/BENCH.md): on veth the receiver's processing runs on the
//! sender's CPU, so raw packet rates measure generator + forwarding
//! together. The fair figure is CPU time (all CPUs, /proc/stat) per
//! delivered packet, minus the same for a baseline where the first hop
//! drops every frame at XDP: what is left is the data plane's own cost.
//!
//! ```text
//!  gen ns: eth0 --- in0 [balancer ns] out0 --- eth0 :sink ns (drops UDP/9)
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aya::programs::{Xdp, XdpMode};
use etherparse::PacketBuilder;
use lb_common::maps::BARE_DROP_PROGRAM;
use lb_lab::netns::{Netns, run, veth};
use lb_userspace::{
    dataplane::{
        BackendSpec, Dataplane, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts,
    },
    xdp::{AttachMode, XdpDataplane, XdpProgram, object_bytes},
};

const RUN_FOR: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;
const FLOWS: u16 = 64;
const LB_IN_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 0x01];
const SINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x20, 0x02];
const VIP: [u8; 4] = [10, 201, 1, 100];
const GEN: [u8; 4] = [10, 201, 1, 2];
const SINK: &str = "10.201.2.2";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// XDP drops everything at the balancer's first interface.
    Baseline,
    /// The XDP data plane translates and redirects.
    Xdp,
    /// No XDP: the kernel forwards with nftables DNAT.
    Nftables,
}

struct Topology {
    generator: Netns,
    lb: Netns,
    sink: Netns,
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn topology() -> Result<Topology> {
    let t = Topology {
        generator: Netns::new("ppsgen")?,
        lb: Netns::new("ppslb")?,
        sink: Netns::new("ppssink")?,
    };
    veth(&t.generator, "eth0", &t.lb, "in0")?;
    veth(&t.lb, "out0", &t.sink, "eth0")?;
    t.lb.ip(&["link", "set", "in0", "address", &mac(LB_IN_MAC)])?;
    t.sink
        .ip(&["link", "set", "eth0", "address", &mac(SINK_MAC)])?;
    t.generator
        .ip(&["addr", "add", "10.201.1.2/24", "dev", "eth0"])?;
    t.lb.ip(&["addr", "add", "10.201.1.1/24", "dev", "in0"])?;
    t.lb.ip(&["addr", "add", "10.201.1.100/32", "dev", "in0"])?;
    t.lb.ip(&["addr", "add", "10.201.2.1/24", "dev", "out0"])?;
    t.sink
        .ip(&["addr", "add", "10.201.2.2/24", "dev", "eth0"])?;
    t.sink
        .ip(&["route", "add", "default", "via", "10.201.2.1"])?;
    // Both data planes find the sink's MAC at once.
    t.lb.ip(&[
        "neigh",
        "replace",
        SINK,
        "lladdr",
        &mac(SINK_MAC),
        "dev",
        "out0",
        "nud",
        "permanent",
    ])?;
    t.lb.sysctl("net.ipv4.ip_forward", "1")?;
    // Redirected frames need NAPI on the receiving veth end.
    run(t.sink.command("ethtool").args(["-K", "eth0", "gro", "on"]))?;
    // The sink drops the datagrams early, counted by its interface.
    run(t.sink.command("nft").args([
        "add table inet sink; add chain inet sink pre { type filter hook prerouting priority -300; }; add rule inet sink pre udp dport 9 drop",
    ]))?;
    Ok(t)
}

/// 64-byte UDP frames to VIP:9 from `FLOWS` source ports.
fn frames() -> Vec<Vec<u8>> {
    (0..FLOWS)
        .map(|i| {
            let mut f = Vec::new();
            PacketBuilder::ethernet2([0x02, 0, 0, 0, 0x30, 0x03], LB_IN_MAC)
                .ipv4(GEN, VIP, 64)
                .udp(20000 + i, 9)
                .write(&mut f, &[0u8; 18])
                .expect("frame");
            f
        })
        .collect()
}

/// Busy CPU time of all CPUs so far, in nanoseconds.
fn busy_ns() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("/proc/stat is empty")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v.get(7).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    Ok(busy * 1_000_000_000 / hz)
}

/// Packets the sink's interface received.
fn delivered(t: &Topology) -> Result<u64> {
    let out = run(t
        .sink
        .command("cat")
        .arg("/sys/class/net/eth0/statistics/rx_packets"))?;
    // `ip netns exec` remounts /sys for the namespace.
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// Sends the frames round-robin from the generator namespace for `RUN_FOR`
/// and returns how many went out.
fn generate(t: &Topology) -> Result<u64> {
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let counter = sent.clone();
    let stop = done.clone();
    let frames = frames();
    let worker = t.generator.spawn(move || -> Result<()> {
        // SAFETY: plain socket syscalls on values we own.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            if fd < 0 {
                bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
            }
            let name = std::ffi::CString::new("eth0")?;
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&LB_IN_MAC);
            let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let f = &frames[i % frames.len()];
                let rc = libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&raw const addr).cast(),
                    len,
                );
                if rc > 0 {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            libc::close(fd);
        }
        Ok(())
    })?;
    std::thread::sleep(RUN_FOR);
    done.store(true, Ordering::Relaxed);
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("generator panicked"))???;
    Ok(sent.load(Ordering::Relaxed))
}

struct Sample {
    sent: u64,
    delivered: u64,
    cpu_ns: u64,
    secs: f64,
}

fn measure(mode: Mode) -> Result<Sample> {
    let t = topology()?;
    // Held until the measurement ends: dropping detaches.
    let mut _dp = None;
    let mut _bare = None;
    match mode {
        Mode::Baseline => {
            let mut ebpf = aya::Ebpf::load(object_bytes())?;
            let drop: &mut Xdp = ebpf
                .program_mut(BARE_DROP_PROGRAM)
                .context("drop program")?
                .try_into()?;
            drop.load()?;
            t.lb.run(|| drop.attach("in0", XdpMode::Driver))??;
            _bare = Some(ebpf);
        }
        Mode::Xdp => {
            let mut dp = XdpDataplane::new(XdpProgram::load()?);
            dp.apply(&DesiredState {
                services: vec![ServiceSpec {
                    vip: VIP.into(),
                    port: 9,
                    protocol: L4Protocol::Udp,
                    scheduler: SchedulerKind::Maglev,
                    backends: vec![BackendSpec {
                        addr: SINK.parse()?,
                        port: 9,
                        weight: 1,
                    }],
                    sorry: None,
                }],
                timeouts: Timeouts::default(),
            })?;
            t.lb.run(|| -> Result<()> {
                dp.program_mut().attach("in0", AttachMode::Native)?;
                dp.program_mut().attach("out0", AttachMode::Native)?;
                Ok(())
            })??;
            _dp = Some(dp);
        }
        Mode::Nftables => {
            run(t.lb.command("nft").args([
                "add table ip nat; add chain ip nat pre { type nat hook prerouting priority dstnat; }; add rule ip nat pre ip daddr 10.201.1.100 udp dport 9 dnat to 10.201.2.2:9",
            ]))?;
        }
    }
    let before_rx = delivered(&t)?;
    let before_cpu = busy_ns()?;
    let start = Instant::now();
    let sent = generate(&t)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu_ns = busy_ns()? - before_cpu;
    let got = delivered(&t)? - before_rx;
    Ok(Sample {
        sent,
        delivered: got,
        cpu_ns,
        secs,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    println!(
        "packet rate through the balancer namespace: 64-byte UDP, {FLOWS} flows, {RUN_FOR:?} per run, median of {ROUNDS} runs"
    );
    let mut cost = std::collections::HashMap::new();
    for mode in [Mode::Baseline, Mode::Xdp, Mode::Nftables] {
        let mut per_packet = Vec::new();
        let mut rates = Vec::new();
        for _ in 0..ROUNDS {
            let s = measure(mode)?;
            let counted = if mode == Mode::Baseline {
                s.sent
            } else {
                s.delivered
            };
            if counted == 0 {
                bail!("{mode:?}: nothing was delivered ({} sent)", s.sent);
            }
            per_packet.push(s.cpu_ns as f64 / counted as f64);
            rates.push(counted as f64 / s.secs);
        }
        let ns = median(per_packet);
        let pps = median(rates);
        cost.insert(format!("{mode:?}"), ns);
        println!(
            "  {:<10} {:>9.0} pkt/s delivered   {:>7.0} ns CPU per packet",
            format!("{mode:?}"),
            pps,
            ns
        );
    }
    let base = cost["Baseline"];
    let xdp = cost["Xdp"] - base;
    let nft = cost["Nftables"] - base;
    println!("data plane's own cost per packet (minus the XDP-drop baseline):");
    println!(
        "  XDP       {xdp:>7.0} ns  = {:>9.0} pkt/s per core",
        1e9 / xdp
    );
    println!(
        "  nftables  {nft:>7.0} ns  = {:>9.0} pkt/s per core",
        1e9 / nft
    );
    println!(
        "  XDP / nftables packets per second per core: {:.2}x (target >= 5x)",
        nft / xdp
    );
    Ok(())
}
