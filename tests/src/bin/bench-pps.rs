//! `cargo xtask bench pps`: packets per second per core through the XDP data
//! plane and through the kernel's own nftables DNAT, same topology, same
//! generator, same invocation.
//!
//! Method (docs/benchmarking.md): on veth the receiver's processing runs on the
//! sender's CPU, so raw packet rates measure generator + forwarding
//! together. The fair figure is CPU time per delivered packet (the sending
//! thread's, which the kernel charges with the receive work done in its
//! context, plus ksoftirqd's: so other work on the machine does not count),
//! minus the same for a baseline where the first hop drops every frame at
//! XDP: what is left is the data plane's own cost.
//!
//! The generator hands frames over in batches, as a NIC does (see
//! `generate`), and both data planes receive them the same way: as XDP
//! frames on the balancer's veth. The kernel's path pays for building an
//! skb per frame, as it would behind a NIC driver; that is part of its
//! cost, and is printed on its own (a drop in the ingress hook).
//!
//! `LB_BENCH_DEBUG=1` prints each interface's veth statistics and the XDP
//! counters after every run: where frames went when a figure looks wrong.
//!
//! ```text
//!  gen ns: eth0 --- in0 [balancer ns] out0 --- eth0 :sink ns (XDP drop)
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aya::programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode};
use lb_common::{
    generator,
    maps::{BARE_DROP_PROGRAM, GENERATOR_PROGRAM},
};
use lb_lab::netns::{Netns, run, veth};
use lb_userspace::{
    dataplane::{
        BackendSpec, Dataplane, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts,
    },
    xdp::{AttachMode, XdpDataplane, XdpProgram, object_bytes},
};

const RUN_FOR: Duration = Duration::from_secs(3);
const ROUNDS: usize = 5;
/// Frames per `BPF_PROG_TEST_RUN` call of the generator.
const CHUNK: u32 = 20_000;
const SINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x20, 0x02];
const SINK: &str = "10.201.2.2";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// XDP drops everything at the balancer's first interface.
    XdpDrop,
    /// The kernel drops everything in the first interface's ingress hook.
    KernelDrop,
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
    t.lb.ip(&[
        "link",
        "set",
        "in0",
        "address",
        &mac(generator::BALANCER_MAC),
    ])?;
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
    // The generator's frames arrive through the veth's NAPI: an XDP program
    // gives in0 one, and for the kernel's path GRO does, building an skb
    // per frame as a NIC driver would.
    run(t.lb.command("ethtool").args(["-K", "in0", "gro", "on"]))?;
    Ok(t)
}

/// CPU time of all `ksoftirqd` threads so far, in nanoseconds: receive work
/// the kernel deferred out of the generator's context.
fn ksoftirqd_ns() -> Result<u64> {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc")? {
        let path = entry?.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.starts_with("ksoftirqd/") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // Fields after the ")" that ends the command name: utime is the
        // 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        ticks += fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    }
    Ok(ticks * 1_000_000_000 / clock_ticks())
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100)
}

/// CPU time the calling thread used so far, in nanoseconds. On veth the
/// receive side runs in the sender's context, and the kernel charges that
/// softirq time to the sending thread too, so this counts generation and
/// forwarding but nothing else the machine runs meanwhile.
fn thread_cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &raw mut usage);
        usage
    };
    let ns = |t: libc::timeval| {
        u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_usec).unwrap_or(0) * 1_000
    };
    ns(usage.ru_utime) + ns(usage.ru_stime)
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

/// Sends frames from the generator namespace for `RUN_FOR`; returns how
/// many went out and the sending thread's CPU time.
///
/// The generator is an XDP program run by `BPF_PROG_TEST_RUN` in live-frames
/// mode: the kernel transmits its frames out of the generator's interface
/// in batches of 64, which is how a NIC hands packets to a data plane. One
/// frame per `sendto` would make every packet pay a NAPI round of its own
/// at each hop, and that fixed veth cost would swamp both data planes.
fn generate(t: &Topology) -> Result<(u64, u64)> {
    let worker = t.generator.spawn(move || -> Result<(u64, u64)> {
        let frame = generator::FRAME;
        let mut ebpf = aya::Ebpf::load(object_bytes())?;
        let generator: &mut Xdp = ebpf
            .program_mut(GENERATOR_PROGRAM)
            .context("generator program")?
            .try_into()?;
        generator.load()?;
        let name = std::ffi::CString::new("eth0")?;
        // SAFETY: a NUL-terminated name we own.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            bail!("the generator namespace has no eth0");
        }
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, ...
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&u32::try_from(frame.len())?.to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        let cpu_before = thread_cpu_ns();
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < RUN_FOR {
            generator
                .test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ctx_in: Some(&ctx),
                    repeat: CHUNK,
                    attrs: TestRunAttrs::new().xdp_live_frames(64),
                    ..TestRunOptions::default()
                })
                .context("BPF_PROG_TEST_RUN with live frames")?;
            sent += u64::from(CHUNK);
        }
        Ok((sent, thread_cpu_ns() - cpu_before))
    })?;
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("generator panicked"))??
}

struct Sample {
    sent: u64,
    delivered: u64,
    cpu_ns: u64,
    secs: f64,
}

/// Attaches the drop-everything program to `ifname` in `ns`; detached when
/// the returned object is dropped.
fn attach_drop(ns: &Netns, ifname: &str) -> Result<aya::Ebpf> {
    let mut ebpf = aya::Ebpf::load(object_bytes())?;
    let drop: &mut Xdp = ebpf
        .program_mut(BARE_DROP_PROGRAM)
        .context("drop program")?
        .try_into()?;
    drop.load()?;
    ns.run(|| drop.attach(ifname, XdpMode::Driver))??;
    Ok(ebpf)
}

fn measure(mode: Mode) -> Result<Sample> {
    let t = topology()?;
    // The sink drops every frame as it arrives, at XDP: the cheapest end
    // for both data planes, so the ratio is not diluted by the sink's own
    // IP stack. XDP on the sink's veth end also gives it the NAPI that
    // redirected frames need (docs/benchmarking.md); it counts them as received.
    let _sink = attach_drop(&t.sink, "eth0")?;
    // Held until the measurement ends: dropping detaches.
    let mut dataplane = None;
    let first_hop_drop = if mode == Mode::XdpDrop {
        Some(attach_drop(&t.lb, "in0")?)
    } else {
        None
    };
    match mode {
        Mode::KernelDrop => {
            run(t.lb.command("nft").args([
                "add table netdev base; add chain netdev base in { type filter hook ingress device in0 priority -500; }; add rule netdev base in udp dport 9 drop",
            ]))?;
        }
        Mode::XdpDrop => {}
        Mode::Xdp => {
            let mut dp = XdpDataplane::new(XdpProgram::load()?);
            dp.apply(&DesiredState {
                services: vec![ServiceSpec {
                    vip: generator::VIP.into(),
                    port: 9,
                    protocol: L4Protocol::Udp,
                    scheduler: SchedulerKind::Maglev,
                    backends: vec![BackendSpec {
                        addr: SINK.parse()?,
                        port: 9,
                        weight: 1,
                    }],
                    sorry: None,
                    removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
                }],
                timeouts: Timeouts::default(),
            })?;
            t.lb.run(|| -> Result<()> {
                dp.program_mut().attach("in0", AttachMode::Native)?;
                dp.program_mut().attach("out0", AttachMode::Native)?;
                Ok(())
            })??;
            dataplane = Some(dp);
        }
        Mode::Nftables => {
            run(t.lb.command("nft").args([
                "add table ip nat; add chain ip nat pre { type nat hook prerouting priority dstnat; }; add rule ip nat pre ip daddr 10.201.1.100 udp dport 9 dnat to 10.201.2.2:9",
            ]))?;
        }
    }
    let before_rx = delivered(&t)?;
    let before_deferred = ksoftirqd_ns()?;
    let start = Instant::now();
    let (sent, sender_ns) = generate(&t)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu_ns = sender_ns + (ksoftirqd_ns()? - before_deferred);
    let got = delivered(&t)? - before_rx;
    drop(first_hop_drop);
    if std::env::var_os("LB_BENCH_DEBUG").is_some() {
        for (ns, ifname) in [
            (&t.generator, "eth0"),
            (&t.lb, "in0"),
            (&t.lb, "out0"),
            (&t.sink, "eth0"),
        ] {
            let out = run(ns.command("ethtool").args(["-S", ifname]))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let nonzero: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim_end().ends_with(": 0"))
                .collect();
            eprintln!("{mode:?} {ifname}: {}", nonzero.join(" |"));
        }
        if let Some(dp) = &dataplane {
            let counters = dp.program().counters()?;
            let nonzero: Vec<String> = counters
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|(c, v)| format!("{}={v}", c.name()))
                .collect();
            eprintln!("{mode:?} XDP counters: {}", nonzero.join(" "));
        }
    }
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
        "packet rate through the balancer namespace: 64-byte UDP, {} flows, {RUN_FOR:?} per run, median of {ROUNDS} runs",
        generator::FLOWS
    );
    let mut cost = std::collections::HashMap::new();
    for mode in [Mode::XdpDrop, Mode::Xdp, Mode::KernelDrop, Mode::Nftables] {
        let mut per_packet = Vec::new();
        let mut rates = Vec::new();
        for _ in 0..ROUNDS {
            let s = measure(mode)?;
            let counted = if matches!(mode, Mode::XdpDrop | Mode::KernelDrop) {
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
    let base = cost["XdpDrop"];
    let xdp = cost["Xdp"] - base;
    let nft = cost["Nftables"] - base;
    println!(
        "the kernel's receive alone (skb, GRO, ingress-hook drop): {:.0} ns per packet more than an XDP drop",
        cost["KernelDrop"] - base
    );
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
