//! A MASTER under a flood of junk adverts (10,000 a second, RFC 5798's
//! split-brain case from two spoofed lower-priority "masters", plus
//! corrupt ones): its own adverts keep their interval (gaps within the
//! interval + 20 ms), it answers each sender at most once per interval
//! instead of once per advert, and it keeps the VIP.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use lb_lab::privileges::require_root;
use lb_tests::{
    advert_watch::{AdvertWatch, Seen, longest_gap},
    vrrp_lab::{InstanceSpec, VIP, VrrpLab, node_config, node_ip},
};
use lb_userspace::vrrp::{Advert, Auth, Version, ipv4_packet};

const WAIT: Duration = Duration::from_secs(10);
/// The MASTER's advert interval in this test.
const ADVERT: Duration = Duration::from_secs(1);
/// The bound on how late an advert may be under the flood.
const SLACK: Duration = Duration::from_millis(20);
const FLOOD_RATE: u64 = 10_000;
const FLOOD_FOR: Duration = Duration::from_secs(6);
/// The spoofed senders of lower-priority adverts (on the LAN's subnet).
const SENDERS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 120, 0, 50), Ipv4Addr::new(10, 120, 0, 51)];

/// VI_1 at priority 150 advertising every second, without XDP.
fn config() -> String {
    let vi1 = InstanceSpec {
        advert_int: "1",
        ..InstanceSpec::vi1(150)
    };
    node_config(&[vi1], "").replacen("interfaces:\n  - name: eth0\n", "", 1)
}

/// The flood's packets: a valid VRRPv3 advert for VRID 51 at priority 100
/// from each spoofed sender, and one with a broken checksum.
fn flood_packets() -> Vec<Vec<u8>> {
    let vip: IpAddr = VIP.parse().unwrap();
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let advert = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 100,
        interval: 100,
        auth: Auth::NONE,
        addresses: vec![vip],
        checksum: 0,
    };
    let mut packets: Vec<Vec<u8>> = SENDERS
        .iter()
        .map(|src| {
            let message = advert.encode((*src).into(), group.into()).unwrap();
            ipv4_packet(*src, group, 1, &message).unwrap()
        })
        .collect();
    let mut corrupt = packets[0].clone();
    corrupt[20 + 6] ^= 0xff;
    packets.push(corrupt);
    packets
}

/// Sends `packets` round-robin at [`FLOOD_RATE`] until `stop`; counts
/// what went out in `sent`.
fn flood(packets: &[Vec<u8>], stop: &AtomicBool, sent: &AtomicU64) -> anyhow::Result<()> {
    // SAFETY: plain socket call; IPPROTO_RAW implies IP_HDRINCL.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    anyhow::ensure!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let ifname = c"eth0";
    // SAFETY: a NUL-terminated name of the length passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.to_bytes_with_nul().len() as u32,
        );
    }
    // SAFETY: sockaddr_in is plain data.
    let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    to.sin_family = libc::AF_INET as u16;
    to.sin_addr.s_addr = u32::from(Ipv4Addr::new(224, 0, 0, 18)).to_be();
    let start = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // Paced by the clock: send what is due, then sleep a little.
        let due = (start.elapsed().as_secs_f64() * FLOOD_RATE as f64) as u64;
        while n < due {
            let p = &packets[(n % packets.len() as u64) as usize];
            // SAFETY: p and to are valid for the lengths passed.
            let rc = unsafe {
                libc::sendto(
                    fd,
                    p.as_ptr().cast(),
                    p.len(),
                    0,
                    (&raw const to).cast(),
                    size_of::<libc::sockaddr_in>() as u32,
                )
            };
            if rc >= 0 {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            n += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    // SAFETY: we own the descriptor.
    unsafe { libc::close(fd) };
    Ok(())
}

/// User plus system CPU time of `pid`, in clock ticks (USER_HZ, 100).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

fn during(seen: &[Seen], from: Instant, to: Instant) -> Vec<Seen> {
    seen.iter()
        .filter(|s| s.at >= from && s.at <= to)
        .copied()
        .collect()
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_master_under_an_advert_flood_keeps_its_interval_and_answers_once_per_interval() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.a().start(&config()).unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    let master: Ipv4Addr = node_ip(0, 0).parse().unwrap();

    let watch = AdvertWatch::start(&lab.client, "eth0").unwrap();
    // A quiet second first, so the watch has the MASTER's rhythm.
    std::thread::sleep(ADVERT + ADVERT / 2);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let packets = flood_packets();
    let pid = lab.a().daemon().pid();
    let cpu_before = cpu_ticks(pid);
    let flood_started = Instant::now();
    let flooder = {
        let (stop, sent) = (stop.clone(), sent.clone());
        lab.client
            .spawn(move || flood(&packets, &stop, &sent))
            .unwrap()
    };
    std::thread::sleep(FLOOD_FOR);
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap().unwrap().unwrap();
    let flood_ended = Instant::now();
    let cpu_used = (cpu_ticks(pid) - cpu_before) as f64 / 100.0;
    std::thread::sleep(ADVERT / 2);
    let seen = watch.finish().unwrap();

    let flooded_for = flood_ended - flood_started;
    let sent = sent.load(Ordering::Relaxed);
    let rate = sent as f64 / flooded_for.as_secs_f64();
    eprintln!(
        "flood: {sent} adverts in {flooded_for:?} ({rate:.0}/s); lbd used {:.0}% of a CPU",
        cpu_used / flooded_for.as_secs_f64() * 100.0
    );
    assert!(
        rate >= FLOOD_RATE as f64 * 0.8,
        "the flood reached only {rate:.0} adverts/s of {FLOOD_RATE}: the test did not flood \
         (machine too busy?), so it says nothing"
    );

    let window = during(&seen, flood_started, flood_ended);
    let (gap, own) = longest_gap(&window, master);
    eprintln!("MASTER under flood: {own} adverts, longest gap {gap:?}");
    assert!(
        gap <= ADVERT + SLACK,
        "the MASTER's adverts paused for {gap:?} under the flood (interval {ADVERT:?}); \
         its backups would take over at 3 intervals\n{}",
        lab.logs()
    );
    // The answers to the senders are adverts too, and could hide a late
    // periodic one from the gap above: check each periodic advert on its
    // own. The last one before the flood sets the rhythm (the timer is
    // re-armed from when it was due, so the rhythm does not drift).
    let anchor = seen
        .iter()
        .filter(|s| s.src == master && s.at < flood_started)
        .map(|s| s.at)
        .next_back()
        .expect("the MASTER advertised before the flood");
    let own_times: Vec<Instant> = window
        .iter()
        .filter(|s| s.src == master)
        .map(|s| s.at)
        .collect();
    let mut due = anchor + ADVERT;
    let mut late = Vec::new();
    let mut checked = 0;
    while due + SLACK < flood_ended {
        let on_time = own_times
            .iter()
            .any(|t| *t + Duration::from_millis(10) >= due && *t <= due + SLACK);
        if due > flood_started && !on_time {
            late.push(due - flood_started);
        }
        checked += 1;
        due += ADVERT;
    }
    eprintln!(
        "{checked} periodic adverts due during the flood, {} late",
        late.len()
    );
    assert!(
        late.is_empty(),
        "periodic adverts due at {late:?} into the flood did not go out within {SLACK:?}; \
         adverts seen at {:?}",
        own_times
            .iter()
            .map(|t| t.saturating_duration_since(flood_started))
            .collect::<Vec<_>>()
    );
    // Its own adverts (one per interval) plus at most one answer per
    // interval to each of the two senders, +1 each for the window's edges.
    let intervals = (flooded_for.as_secs_f64() / ADVERT.as_secs_f64()).ceil() as usize + 1;
    let limit = intervals * (1 + SENDERS.len());
    assert!(
        own <= limit,
        "the MASTER sent {own} adverts in {flooded_for:?} of flood: more than one answer per \
         interval per sender (at most {limit})"
    );
    assert!(
        own > intervals,
        "the MASTER sent only {own} adverts in {} intervals: it did not answer the senders",
        intervals - 1
    );
    // The flood reached the instance (the watch cannot see the client's
    // own transmissions: it listens for incoming IP only).
    let report = lab.a().daemon().status().unwrap();
    let counters = &report.vrrp_instances[0].counters;
    eprintln!(
        "MASTER's counters: {} answered, {} left unanswered, {} with a bad checksum",
        counters.split_brain_replies,
        counters.split_brain_replies_limited,
        counters.dropped.get("checksum").copied().unwrap_or(0)
    );
    assert!(
        counters.split_brain_replies_limited > sent / 3,
        "the flood hardly reached the instance ({} of {sent} adverts counted): {counters:?}",
        counters.split_brain_replies_limited
    );
    assert_eq!(lab.holders(VIP).unwrap(), ["a"], "{}", lab.logs());
}
