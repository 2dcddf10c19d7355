//! The data-plane end-to-end lab both data planes are tested in (XDP in
//! `tests/dataplane_e2e.rs`, IPVS in `tests/ipvs_vm.rs`): a client, the
//! balancer and three backends running TCP and UDP identity servers, the
//! services to program, and what the client sees.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    time::Duration,
};

use lb_lab::{
    lab::{Lab, VIP, VIP6, backend_addrs},
    netns::Netns,
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server, udp_identity_server},
};
use lb_userspace::dataplane::{BackendSpec, L4Protocol, SchedulerKind, ServiceSpec};

pub const BACKENDS: usize = 3;
/// The services' port on the VIPs.
pub const PORT: u16 = 80;
/// The identity servers' port on every backend.
pub const BACKEND_PORT: u16 = 8080;

/// What backend `i`'s servers answer.
pub fn backend_name(i: usize) -> String {
    format!("backend{}", i + 1)
}

/// The lab with its VIPs on the balancer and TCP and UDP identity servers
/// on every backend (IPv4 and IPv6), which stop with the returned flag.
pub fn lab_with_servers() -> (Lab, StopFlag) {
    require_root("the namespace lab");
    let lab = Lab::with_backends(BACKENDS).expect("lab");
    lab.add_vips().expect("VIPs on the balancer");
    let stop = StopFlag::default();
    for (i, ns) in lab.backends.iter().enumerate() {
        let (v4, v6) = backend_addrs(i);
        for addr in [v4, v6] {
            let ip: IpAddr = addr.parse().unwrap();
            let at = SocketAddr::new(ip, BACKEND_PORT);
            tcp_identity_server(ns, at, &backend_name(i), stop.clone()).expect("TCP server");
            udp_identity_server(ns, at, &backend_name(i), stop.clone()).expect("UDP server");
        }
    }
    (lab, stop)
}

/// The service on VIP (or VIP6):PORT with one backend per weight.
pub fn spec(
    v6: bool,
    protocol: L4Protocol,
    scheduler: SchedulerKind,
    weights: &[u32],
) -> ServiceSpec {
    let backends = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let (v4, a6) = backend_addrs(i);
            BackendSpec {
                addr: if v6 { a6 } else { v4 }.parse().unwrap(),
                port: BACKEND_PORT,
                weight: *w,
            }
        })
        .collect();
    ServiceSpec {
        vip: if v6 { VIP6 } else { VIP }.parse().unwrap(),
        port: PORT,
        protocol,
        scheduler,
        backends,
        sorry: None,
        removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
    }
}

/// Opens `count` TCP connections to `vip`:PORT from `client`, one request
/// each, spread over `threads` threads; returns how many each backend
/// answered.
pub fn tcp_identities(
    client: &Netns,
    vip: &str,
    count: usize,
    threads: usize,
) -> HashMap<String, usize> {
    let target = SocketAddr::new(vip.parse().unwrap(), PORT);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            client
                .spawn(move || {
                    let mut seen: HashMap<String, usize> = HashMap::new();
                    for _ in 0..count / threads {
                        let mut conn = IdentityConnection::open(target)
                            .expect("connection through the balancer");
                        let name = conn.ask().expect("a complete response");
                        *seen.entry(name).or_default() += 1;
                    }
                    seen
                })
                .unwrap()
        })
        .collect();
    let mut total: HashMap<String, usize> = HashMap::new();
    for w in workers {
        for (name, n) in w.join().unwrap().unwrap() {
            *total.entry(name).or_default() += n;
        }
    }
    total
}

/// Opens `n` TCP connections to `target` from `client` and asks each once;
/// they stay open.
pub fn open_connections(
    client: &Netns,
    target: SocketAddr,
    n: usize,
) -> Vec<(IdentityConnection, String)> {
    client
        .run(|| {
            (0..n)
                .map(|_| {
                    let mut c =
                        IdentityConnection::open(target).expect("connection through the balancer");
                    let name = c.ask().expect("an answer");
                    (c, name)
                })
                .collect()
        })
        .expect("client thread")
}

/// Sends `count` UDP requests to `target` from `client`, each from a new
/// socket (a new flow); asserts every answer comes from the VIP and returns
/// how many each backend answered.
pub fn udp_identities(
    client: &Netns,
    target: SocketAddr,
    count: usize,
    timeout: Duration,
) -> HashMap<String, usize> {
    client
        .run(move || {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for _ in 0..count {
                let local: SocketAddr = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                }
                .parse()
                .unwrap();
                let socket = UdpSocket::bind(local).unwrap();
                socket.set_read_timeout(Some(timeout)).unwrap();
                socket.send_to(b"who?", target).unwrap();
                let mut buf = [0u8; 64];
                let (n, from) = socket.recv_from(&mut buf).expect("an answer");
                assert_eq!(from, target, "the answer comes from the VIP");
                *seen
                    .entry(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .or_default() += 1;
            }
            seen
        })
        .unwrap()
}

/// Asserts every one of `total` requests was answered and backend `i` got
/// `shares[i]` of them within `tolerance` (relative).
pub fn assert_share<S: std::hash::BuildHasher>(
    seen: &HashMap<String, usize, S>,
    total: usize,
    shares: &[f64],
    tolerance: f64,
) {
    let sum: usize = seen.values().sum();
    assert_eq!(
        sum, total,
        "every connection got a complete response: {seen:?}"
    );
    for (i, share) in shares.iter().enumerate() {
        let got = seen.get(&backend_name(i)).copied().unwrap_or(0) as f64;
        let want = share * total as f64;
        assert!(
            (got - want).abs() <= want * tolerance,
            "{} got {got} connections, expected {want} +-{:.0}%: {seen:?}",
            backend_name(i),
            tolerance * 100.0
        );
    }
}
