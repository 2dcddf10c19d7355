//! VRRP keeps its timing while the rest of the daemon is busy: with a full
//! conntrack table, every `lbd status` (and every `/metrics` scrape) walks
//! all of it, two syscalls per flow, on the daemon's loop. Adverts every
//! 0.1 s must not pause for that, or the peer takes over (Master_Down at
//! about 0.35 s). lbd runs VRRP on a thread of its own for this.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aya::maps::{HashMap as BpfHashMap, Map, MapData};
use lb_common::maps::{FAMILY_IPV4, FLOW_ESTABLISHED, Flow, FlowKey};
use lb_lab::privileges::require_root;
use lb_tests::{
    advert_watch::{AdvertWatch, longest_gap},
    daemon::test_pin_dir,
    vrrp_lab::{InstanceSpec, VIP, VrrpLab, node_config, node_ip},
};

const ADVERT: Duration = Duration::from_millis(100);
/// The bound: an advert at most this late.
const SLACK: Duration = Duration::from_millis(20);
/// Status requests in a loop for this long.
const BUSY_FOR: Duration = Duration::from_secs(5);
/// Flows put into the master's conntrack table (it holds 262,144).
const FLOWS: u32 = 250_000;
const WAIT: Duration = Duration::from_secs(10);

fn spec(priority: u8) -> InstanceSpec {
    InstanceSpec {
        advert_int: "0.1",
        ..InstanceSpec::vi1(priority)
    }
}

/// A virtual server on the VIP, so status counts flows per real server.
fn services() -> String {
    format!(
        "virtual_servers:\n  - address: {VIP}\n    port: 80\n    real_servers:\n      - address: 10.120.0.50\n        port: 80\n"
    )
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn adverts_keep_their_interval_while_status_walks_a_full_conntrack_table() {
    require_root("the VRRP lab");
    let mut lab = VrrpLab::new().expect("lab");
    lab.a()
        .start(&node_config(&[spec(150)], &services()))
        .unwrap();
    lab.b()
        .start(&node_config(&[spec(100)], &services()))
        .unwrap();
    lab.wait_sole_holder(VIP, "a", WAIT).unwrap();
    let filled = fill_conntrack(&test_pin_dir(&lab.nodes[0].state_dir()).unwrap());
    // b may have been MASTER for a moment at start-up, before a's first
    // advert: only what happens from here on counts.
    let b_before = takeovers(&lab, 1);
    let master: Ipv4Addr = node_ip(0, 0).parse().unwrap();

    let watch = AdvertWatch::start(&lab.client, "eth0").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let walks = Arc::new(AtomicU64::new(0));
    let socket = lab.a().daemon().socket().to_owned();
    let asker = {
        let (stop, walks) = (stop.clone(), walks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let asked = lb_userspace::daemon::control::request(
                    &socket,
                    &lb_userspace::daemon::protocol::Request::Status,
                );
                if asked.is_ok() {
                    walks.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let started = Instant::now();
    std::thread::sleep(BUSY_FOR);
    stop.store(true, Ordering::Relaxed);
    asker.join().unwrap();
    let busy_for = started.elapsed();
    let seen = watch.finish().unwrap();
    let walks = walks.load(Ordering::Relaxed);
    eprintln!(
        "{filled} flows; {walks} status walks in {busy_for:?} ({:?} each)",
        busy_for / u32::try_from(walks.max(1)).unwrap_or(u32::MAX)
    );
    assert!(walks > 0, "no status request was answered");

    let (gap, adverts) = longest_gap(&seen, master);
    eprintln!("the MASTER sent {adverts} adverts, longest gap {gap:?}");
    assert!(
        gap <= ADVERT + SLACK,
        "the MASTER's adverts paused for {gap:?} while status walked conntrack\n{}",
        lab.logs()
    );
    assert_eq!(lab.holders(VIP).unwrap(), ["a"], "{}", lab.logs());
    assert_eq!(
        takeovers(&lab, 1),
        b_before,
        "the backup took over:\n{}",
        lab.logs()
    );
}

/// How often node `index` has become MASTER so far.
fn takeovers(lab: &VrrpLab, index: usize) -> usize {
    lab.nodes[index]
        .daemon
        .as_ref()
        .expect("the node runs lbd")
        .log()
        .matches("Entering MASTER STATE")
        .count()
}

/// Puts `FLOWS` live established flows into the pinned `CONNTRACK` map of
/// the daemon pinned at `pin_dir`; returns how many went in.
fn fill_conntrack(pin_dir: &std::path::Path) -> u32 {
    let data = MapData::from_pin(pin_dir.join("CONNTRACK")).expect("the pinned CONNTRACK map");
    let mut conntrack: BpfHashMap<MapData, FlowKey, Flow> =
        BpfHashMap::try_from(Map::LruHashMap(data)).expect("CONNTRACK is an LRU hash");
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into `now` only.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut now) };
    let now_ns =
        u64::try_from(now.tv_sec).unwrap() * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap();
    let mut vip = [0u8; 16];
    vip[..4].copy_from_slice(&VIP.parse::<Ipv4Addr>().unwrap().octets());
    let mut inserted = 0;
    for i in 0..FLOWS {
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[198, 18, (i >> 16) as u8, (i >> 8) as u8]);
        let key = FlowKey {
            src,
            dst: vip,
            sport: (1024 + (i & 0xff) as u16).to_be_bytes(),
            dport: 80u16.to_be_bytes(),
            proto: libc::IPPROTO_TCP as u8,
            family: FAMILY_IPV4,
            _pad: [0; 2],
        };
        let flow = Flow {
            state: FLOW_ESTABLISHED,
            last_seen_ns: now_ns,
            ..Flow::default()
        };
        if conntrack.insert(key, flow, 0).is_ok() {
            inserted += 1;
        }
    }
    assert!(inserted >= FLOWS * 9 / 10, "only {inserted} flows went in");
    inserted
}
