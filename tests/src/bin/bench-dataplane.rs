//! `cargo xtask bench dataplane`: the XDP program's own cost per packet.
//!
//! `BPF_PROG_TEST_RUN` with a large repeat count on each path (new flow,
//! established flow, reply, pass-through), next to a bare `XDP_PASS`
//! program measured in the same run, inside a namespace whose FIB answers
//! every lookup. Prints the median of several runs and the ratios; absolute
//! nanoseconds vary with the machine, ratios much less (docs/benchmarking.md).
//!
//! Then the program's load time (the verifier's work, which every `lbd run`
//! with XDP waits for), against the bare program and, when
//! `LBD_BENCH_REFERENCE_OBJECT` names another build of the object (e.g.
//! main's), against that object's program, loaded in the same invocation.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use etherparse::PacketBuilder;
use lb_common::maps::{BARE_PASS_PROGRAM, SETTINGS, Settings, XDP_PROGRAM};
use lb_tests::nat_lab::{BACKEND1_MAC, CLIENT_MAC, LB_BACKEND_MAC, LB_CLIENT_MAC, NatFixture};
use lb_userspace::dataplane::{BackendSpec, L4Protocol, SchedulerKind, ServiceSpec};

const REPEAT: u32 = 1_000_000;
const RUNS: usize = 9;
/// Loads of each program for the load-time figures (each takes seconds).
const LOADS: usize = 5;
const CLIENT: [u8; 4] = [10, 0, 0, 1];
const VIP: [u8; 4] = [10, 0, 0, 100];
const BACKEND: [u8; 4] = [10, 1, 0, 1];
const OTHER_HOST: [u8; 4] = [10, 1, 0, 200];

fn tcp(
    macs: ([u8; 6], [u8; 6]),
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    syn: bool,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src, dst, 64)
        .tcp(ports.0, ports.1, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut f = Vec::new();
    // 64-byte frames, as in the packet-rate measurements.
    b.write(&mut f, &[0u8; 10]).expect("frame");
    f
}

/// The fastest and the median of `RUNS` runs of `REPEAT`, in ns per packet.
/// The fastest run is the one least disturbed by whatever else the machine
/// did, so ratios are taken between fastest runs.
fn time(fx: &NatFixture, xdp: &Xdp, frame: &[u8], ingress: u32) -> Result<Timing> {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let mut out = vec![0u8; frame.len() + 256];
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&u32::try_from(frame.len())?.to_ne_bytes());
        ctx[12..16].copy_from_slice(&ingress.to_ne_bytes());
        let result = fx
            .lab
            .ns
            .run(|| {
                xdp.test_run(TestRunOptions {
                    data_in: Some(frame),
                    data_out: Some(&mut out),
                    ctx_in: Some(&ctx),
                    repeat: REPEAT,
                    ..TestRunOptions::default()
                })
            })?
            .context("BPF_PROG_TEST_RUN")?;
        // The kernel reports the mean time of one repetition.
        samples.push(duration_ns(result.duration));
    }
    samples.sort_by(f64::total_cmp);
    Ok(Timing {
        best: samples[0],
        median: samples[RUNS / 2],
    })
}

#[derive(Clone, Copy)]
struct Timing {
    best: f64,
    median: f64,
}

fn duration_ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn main() -> Result<()> {
    let service = ServiceSpec {
        vip: VIP.into(),
        port: 80,
        protocol: L4Protocol::Tcp,
        scheduler: SchedulerKind::Maglev,
        backends: (1..=10)
            .map(|i| BackendSpec {
                addr: [10, 1, 0, if i == 1 { 1 } else { 100 + i }].into(),
                port: 8080,
                weight: 1,
            })
            .collect(),
        sorry: None,
        removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
    };
    let mut fx = NatFixture::new(vec![service]);
    let client_if = fx.lab.client_if;
    let backend_if = fx.lab.backend_if;

    // The reference program, loaded from the same object.
    let mut bare_ebpf =
        aya::Ebpf::load(lb_userspace::xdp::object_bytes()).context("loading the object")?;
    let bare: &mut Xdp = bare_ebpf
        .program_mut(BARE_PASS_PROGRAM)
        .context("the bare program is in the object")?
        .try_into()?;
    bare.load()?;

    let syn = tcp((CLIENT_MAC, LB_CLIENT_MAC), CLIENT, VIP, (40000, 80), true);
    let ack = tcp((CLIENT_MAC, LB_CLIENT_MAC), CLIENT, VIP, (40001, 80), false);
    // The flow of `ack` lands on some backend; its reply must come from it.
    let _ = fx.client_sends(&ack);
    let backend_ip = {
        let v = fx.client_sends(&ack);
        [v.output[30], v.output[31], v.output[32], v.output[33]]
    };
    let reply = tcp(
        (BACKEND1_MAC, LB_BACKEND_MAC),
        backend_ip,
        CLIENT,
        (8080, 40001),
        false,
    );
    let pass = tcp(
        (CLIENT_MAC, LB_CLIENT_MAC),
        CLIENT,
        OTHER_HOST,
        (40002, 22),
        true,
    );
    let _ = BACKEND;
    // The ingress policy's costliest admitted case (the option walk) and
    // its cheapest drop.
    let with_options = {
        let mut ip = etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, CLIENT, VIP)?;
        ip.options = [1u8, 1, 1, 0][..].try_into()?;
        let mut th = etherparse::TcpHeader::new(40001, 80, 1, 64240);
        th.ack = true;
        th.acknowledgment_number = 1;
        let payload = [0u8; 10];
        ip.set_payload_len(th.header_len() + payload.len())?;
        th.checksum = th.calc_checksum_ipv4(&ip, &payload)?;
        let mut f = Vec::new();
        etherparse::Ethernet2Header {
            source: CLIENT_MAC,
            destination: LB_CLIENT_MAC,
            ether_type: etherparse::EtherType::IPV4,
        }
        .write(&mut f)?;
        ip.write(&mut f)?;
        th.write(&mut f)?;
        f.extend_from_slice(&payload);
        f
    };
    let mut bad_checksum = ack.clone();
    bad_checksum[24] ^= 0x5a;

    let reference = time(&fx, bare, &pass, client_if)?;
    let program = fx.dp.program().program()?;
    let established = time(&fx, program, &ack, client_if)?;
    let reply_ns = time(&fx, program, &reply, backend_if)?;
    let pass_ns = time(&fx, program, &pass, client_if)?;
    let options_ns = time(&fx, program, &with_options, client_if)?;
    let dropped_ns = time(&fx, program, &bad_checksum, client_if)?;
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 46]);
    let arp_ns = time(&fx, program, &arp, client_if)?;

    // New flows: with a zero SYN timeout every repetition of the same SYN
    // finds its entry expired and goes through scheduling and insertion.
    write_settings(
        &mut fx,
        Settings {
            tcp_syn_s: 0,
            ..Settings::IPVS_DEFAULTS
        },
    )?;
    let program = fx.dp.program().program()?;
    let new_flow = time(&fx, program, &syn, client_if)?;

    // Flow sync on: an established packet pays only the refresh check
    // (a flow is reported when it starts, changes state, or every ~8.6 s).
    write_settings(
        &mut fx,
        Settings {
            flags: lb_common::maps::SETTINGS_FLOW_SYNC,
            ..Settings::IPVS_DEFAULTS
        },
    )?;
    let program = fx.dp.program().program()?;
    let established_sync = time(&fx, program, &ack, client_if)?;

    println!(
        "XDP program cost per packet (BPF_PROG_TEST_RUN, {REPEAT} repeats, {RUNS} runs, 64-byte frames)"
    );
    println!(
        "{:<38} {:>9} {:>9} {:>12}",
        "path", "best ns", "median ns", "x bare (best)"
    );
    for (name, ns) in [
        ("bare XDP_PASS program (reference)", reference),
        ("new flow (Maglev pick + conntrack)", new_flow),
        ("established flow (NAT + redirect)", established),
        ("established flow, flow sync on", established_sync),
        ("reply (reverse NAT + redirect)", reply_ns),
        ("established, 4 bytes of IPv4 options", options_ns),
        ("policy drop (bad IPv4 checksum)", dropped_ns),
        ("pass-through (not a service)", pass_ns),
        ("ARP (parse and counters only)", arp_ns),
    ] {
        println!(
            "{name:<38} {:>9.1} {:>9.1} {:>12.2}x",
            ns.best,
            ns.median,
            ns.best / reference.best
        );
    }
    println!("target: established flow <= 3x the bare program");
    load_times()
}

/// The median wall-clock time of loading `program` from `object` (parsing
/// the ELF, creating its maps, and the kernel verifying the program), and
/// how many instructions the verifier processed (the machine-independent
/// part of that time).
/// Replaces the program's `SETTINGS` (the paths below need other timeouts
/// or flags than the fixture installs).
fn write_settings(fx: &mut NatFixture, value: Settings) -> Result<()> {
    let mut settings: aya::maps::Array<_, Settings> = aya::maps::Array::try_from(
        fx.dp
            .program_mut()
            .ebpf_mut()
            .map_mut(SETTINGS)
            .context("SETTINGS")?,
    )?;
    settings.set(0, value, 0)?;
    Ok(())
}

fn load_time(object: &[u8], program: &str) -> Result<(Duration, Option<u32>)> {
    let mut verified = None;
    let mut samples = Vec::with_capacity(LOADS);
    for _ in 0..LOADS {
        let started = Instant::now();
        let mut ebpf = aya::Ebpf::load(object).context("loading the object")?;
        let xdp: &mut Xdp = ebpf
            .program_mut(program)
            .with_context(|| format!("{program} is in the object"))?
            .try_into()?;
        xdp.load().with_context(|| format!("verifying {program}"))?;
        samples.push(started.elapsed());
        verified = xdp.info()?.verified_instruction_count();
        drop(ebpf);
    }
    samples.sort();
    Ok((samples[LOADS / 2], verified))
}

fn load_times() -> Result<()> {
    let object = lb_userspace::xdp::object_bytes();
    let bare = load_time(object, BARE_PASS_PROGRAM)?;
    let this = load_time(object, XDP_PROGRAM)?;
    let reference = match std::env::var_os("LBD_BENCH_REFERENCE_OBJECT") {
        Some(path) => {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading {}", path.to_string_lossy()))?;
            // aya wants the ELF 8-byte aligned; a Vec<u64> copy is.
            let mut aligned = vec![0u64; bytes.len().div_ceil(8)];
            bytemuck_copy(&mut aligned, &bytes);
            let aligned = &as_bytes(&aligned)[..bytes.len()];
            Some((path, load_time(aligned, XDP_PROGRAM)?))
        }
        None => None,
    };
    println!();
    println!("Program load time (ELF, maps and verifier; median of {LOADS} loads)");
    println!(
        "{:<38} {:>9} {:>14} {:>16}",
        "program", "ms", "x reference", "insns verified"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let insns = |n: Option<u32>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let base = reference.as_ref().map_or(this.0, |(_, (d, _))| *d);
    println!(
        "{:<38} {:>9.1} {:>14} {:>16}",
        "bare XDP_PASS program",
        ms(bare.0),
        "",
        insns(bare.1)
    );
    if let Some((path, (d, n))) = &reference {
        println!(
            "{:<38} {:>9.1} {:>13.2}x {:>16}",
            format!("{XDP_PROGRAM} from {}", path.to_string_lossy()),
            ms(*d),
            1.0,
            insns(*n)
        );
    }
    println!(
        "{:<38} {:>9.1} {:>13.2}x {:>16}",
        format!("{XDP_PROGRAM} (this build)"),
        ms(this.0),
        ms(this.0) / ms(base),
        insns(this.1)
    );
    if reference.is_none() {
        println!("(set LBD_BENCH_REFERENCE_OBJECT to another build's lb-ebpf.o for a reference)");
    }
    Ok(())
}

fn bytemuck_copy(dst: &mut [u64], src: &[u8]) {
    for (word, chunk) in dst.iter_mut().zip(src.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_ne_bytes(b);
    }
}

fn as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding; the slice covers exactly the words.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) }
}
