//! `cargo xtask bench flows`: how long `lbd status -c` takes to walk a full
//! XDP flow table (262,144 flows), against the floor of walking the same
//! map with aya's plain iterator in the same run.
//!
//! Loads the XDP program (not attached: nothing is forwarded), installs one
//! service with four real servers, fills `CONNTRACK` with established
//! flows pinned to them, then times, several runs each, median and fastest:
//! - the floor: aya's iterator over keys and values, nothing else;
//! - the lister `lbd status -c` runs, every flow turned into an entry;
//! - the same, serialised as the daemon sends it (JSON lines of 1,000);
//! - the lister with a filter that matches one client (a full walk too).
//!
//! Then [`stalls`]: established flows through a balancer pair across a
//! failover, a crash and restarts.

mod stalls;

use std::{
    io::Write as _,
    net::{IpAddr, Ipv4Addr},
    ops::ControlFlow,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use aya::maps::{Array, HashMap as BpfHashMap};
use lb_common::maps::{
    BACKENDS, Backend, CONNTRACK, CONNTRACK_ENTRIES, FAMILY_IPV4, FLOW_ESTABLISHED, Flow, FlowKey,
};
use lb_userspace::{
    daemon::{connections::BATCH, protocol::Response},
    dataplane::{
        BackendSpec, Dataplane, DesiredState, FlowEntry, FlowQuery, L4Protocol, SchedulerKind,
        ServiceSpec,
    },
    xdp::{XdpDataplane, XdpProgram},
};

const RUNS: usize = 5;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Installs the service and fills the table; returns the flows it holds.
fn fill(dp: &mut XdpDataplane) -> Result<u64> {
    let backends = (0..4)
        .map(|i| BackendSpec {
            addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1 + i)),
            port: 8080,
            weight: 1,
        })
        .collect();
    dp.apply(&DesiredState {
        services: vec![ServiceSpec {
            vip: IpAddr::V4(VIP),
            port: 80,
            protocol: L4Protocol::Tcp,
            scheduler: SchedulerKind::RoundRobin,
            backends,
            sorry: None,
            removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
        }],
        ..DesiredState::default()
    })?;
    let ebpf = dp.program_mut().ebpf_mut();
    let generations: Vec<u32> = {
        let array: Array<_, Backend> = Array::try_from(ebpf.map(BACKENDS).context("BACKENDS")?)?;
        (0..4)
            .map(|id| array.get(&id, 0).map(|b| b.generation))
            .collect::<Result<_, _>>()?
    };
    let mut ct: BpfHashMap<_, FlowKey, Flow> =
        BpfHashMap::try_from(ebpf.map_mut(CONNTRACK).context("CONNTRACK")?)?;
    let now = monotonic_ns();
    for i in 0..CONNTRACK_ENTRIES {
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[10, 2, (i >> 16) as u8, (i >> 8) as u8]);
        let key = FlowKey {
            src,
            dst: {
                let mut d = [0u8; 16];
                d[..4].copy_from_slice(&VIP.octets());
                d
            },
            sport: (1024 + (i & 0xff) as u16).to_be_bytes(),
            dport: 80u16.to_be_bytes(),
            proto: 6,
            family: FAMILY_IPV4,
            _pad: [0; 2],
        };
        let backend = i % 4;
        let flow = Flow {
            backend,
            generation: generations[backend as usize],
            state: FLOW_ESTABLISHED,
            last_seen_ns: now,
            ..Flow::default()
        };
        ct.insert(key, flow, 0)?;
    }
    Ok(ct.keys().filter_map(Result::ok).count() as u64)
}

/// Median and fastest of `RUNS` runs of `f`, which returns a count that
/// must be the same every run.
fn time(what: &str, mut f: impl FnMut() -> Result<u64>) -> Result<(Duration, Duration, u64)> {
    let mut samples = Vec::new();
    let mut count = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        count = f()?;
        samples.push(start.elapsed());
    }
    samples.sort();
    let (median, fastest) = (samples[RUNS / 2], samples[0]);
    println!(
        "{what:<48} {:>8.1} ms median {:>8.1} ms fastest  ({count} flows)",
        median.as_secs_f64() * 1e3,
        fastest.as_secs_f64() * 1e3
    );
    Ok((median, fastest, count))
}

fn list(dp: &XdpDataplane, query: &FlowQuery, mut each: impl FnMut(FlowEntry)) -> Result<u64> {
    let scan = dp.flow_lister()?.list(query, &mut |f| {
        each(f);
        ControlFlow::Continue(())
    })?;
    Ok(scan.listed)
}

fn main() -> Result<()> {
    let mut dp = XdpDataplane::new(XdpProgram::load().context("loading the XDP program")?);
    let held = fill(&mut dp)?;
    println!(
        "flow table: {held} of {CONNTRACK_ENTRIES} entries held after inserting {CONNTRACK_ENTRIES}"
    );

    let (floor, floor_fast, _) = time("floor: aya iter (key + value)", || {
        let ct: BpfHashMap<_, FlowKey, Flow> =
            BpfHashMap::try_from(dp.program().ebpf().map(CONNTRACK).context("CONNTRACK")?)?;
        Ok(ct.iter().filter_map(Result::ok).count() as u64)
    })?;
    let (lister, lister_fast, _) = time("lbd status -c walk (entries built)", || {
        list(&dp, &FlowQuery::default(), |_| {})
    })?;
    let (json, json_fast, _) = time("walk + JSON lines of 1,000 (the daemon's side)", || {
        let mut sink = std::io::sink();
        let mut batch = Vec::with_capacity(BATCH);
        let mut flush = |batch: &mut Vec<FlowEntry>| -> Result<()> {
            let line = serde_json::to_string(&Response::Flows {
                flows: std::mem::take(batch),
            })?;
            Ok(sink.write_all(line.as_bytes())?)
        };
        let n = list(&dp, &FlowQuery::default(), |f| {
            batch.push(f);
            if batch.len() == BATCH {
                let _ = flush(&mut batch);
            }
        })?;
        flush(&mut batch)?;
        Ok(n)
    })?;
    let one = FlowQuery {
        client: Some("10.2.0.0:1024".parse().map_err(anyhow::Error::msg)?),
        ..FlowQuery::default()
    };
    let (filtered, filtered_fast, _) =
        time("walk with --client (one match)", || list(&dp, &one, |_| {}))?;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("ratios to the floor (median / fastest):");
    for (what, m, f) in [
        ("walk", lister, lister_fast),
        ("walk + JSON", json, json_fast),
        ("walk with a filter", filtered, filtered_fast),
    ] {
        println!(
            "  {what:<20} {:.2} / {:.2}",
            ratio(m, floor),
            ratio(f, floor_fast)
        );
    }
    drop(dp);
    stalls::run()
}
