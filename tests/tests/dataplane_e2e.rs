//! The XDP data plane end to end: a client, the balancer and three backends
//! in network namespaces, real TCP and UDP servers and clients, the
//! balancer's program attached to its real interfaces and driven through
//! the `Dataplane` trait (so weights can change mid-run).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    time::Duration,
};

use lb_lab::{
    lab::{BALANCER_BACKEND_IF, BALANCER_CLIENT_IF, Lab, VIP, VIP6, backend_addrs},
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server, udp_identity_server},
};
use lb_userspace::{
    dataplane::{
        BackendSpec, Dataplane, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts,
    },
    xdp::{AttachMode, XdpDataplane, XdpProgram},
};

const BACKENDS: usize = 3;
const PORT: u16 = 80;
const BACKEND_PORT: u16 = 8080;

/// The lab with identity servers on every backend and the balancer's
/// program attached; dropped in field order (data plane first).
struct Setup {
    dp: XdpDataplane,
    stop: StopFlag,
    lab: Lab,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

fn backend_name(i: usize) -> String {
    format!("backend{}", i + 1)
}

fn setup() -> Setup {
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
    let mut dp = XdpDataplane::new(XdpProgram::load().expect("XDP program loads"));
    lab.balancer
        .run(|| {
            for dev in [BALANCER_CLIENT_IF, BALANCER_BACKEND_IF] {
                dp.program_mut()
                    .attach(dev, AttachMode::Native)
                    .expect("native XDP on veth");
            }
        })
        .unwrap();
    Setup { dp, stop, lab }
}

fn spec(v6: bool, protocol: L4Protocol, scheduler: SchedulerKind, weights: &[u32]) -> ServiceSpec {
    let backends = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let (v4, a6) = backend_addrs(i);
            BackendSpec {
                addr: if v6 {
                    a6.parse().unwrap()
                } else {
                    v4.parse().unwrap()
                },
                port: BACKEND_PORT,
                weight: *w,
            }
        })
        .collect();
    ServiceSpec {
        vip: if v6 {
            VIP6.parse().unwrap()
        } else {
            VIP.parse().unwrap()
        },
        port: PORT,
        protocol,
        scheduler,
        backends,
        sorry: None,
    }
}

impl Setup {
    fn apply(&mut self, services: Vec<ServiceSpec>) {
        self.dp
            .apply(&DesiredState {
                services,
                timeouts: Timeouts::default(),
            })
            .expect("the data plane accepts the services");
    }

    /// Opens `count` connections to `vip`, one request each, from 4
    /// client threads; returns how many each backend answered.
    fn connections(&self, vip: &str, count: usize) -> HashMap<String, usize> {
        let target = SocketAddr::new(vip.parse().unwrap(), PORT);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                self.lab
                    .client
                    .spawn(move || {
                        let mut seen: HashMap<String, usize> = HashMap::new();
                        for _ in 0..count / 4 {
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
        for t in threads {
            for (name, n) in t.join().unwrap().unwrap() {
                *total.entry(name).or_default() += n;
            }
        }
        total
    }
}

impl Setup {
    /// Opens `n` connections to `target` and asks each once; they stay open.
    fn open_connections(&self, target: SocketAddr, n: usize) -> Vec<(IdentityConnection, String)> {
        self.lab
            .client
            .run(|| {
                (0..n)
                    .map(|_| {
                        let mut c = IdentityConnection::open(target)
                            .expect("connection through the balancer");
                        let name = c.ask().expect("an answer");
                        (c, name)
                    })
                    .collect()
            })
            .expect("client thread")
    }
}

/// Asserts backend `i` got `share` of `total` within `tolerance` (relative).
fn assert_share(seen: &HashMap<String, usize>, total: usize, shares: &[f64], tolerance: f64) {
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

#[test]
fn rr_spreads_3000_tcp_connections_equally() {
    let mut s = setup();
    s.apply(vec![spec(
        false,
        L4Protocol::Tcp,
        SchedulerKind::RoundRobin,
        &[1, 1, 1],
    )]);
    let seen = s.connections(VIP, 3000);
    assert_share(&seen, 3000, &[1.0 / 3.0; 3], 0.02);
}

#[test]
fn wrr_3_2_1_spreads_3000_tcp_connections_by_weight() {
    let mut s = setup();
    s.apply(vec![spec(
        false,
        L4Protocol::Tcp,
        SchedulerKind::WeightedRoundRobin,
        &[3, 2, 1],
    )]);
    let seen = s.connections(VIP, 3000);
    assert_share(&seen, 3000, &[0.5, 1.0 / 3.0, 1.0 / 6.0], 0.03);
}

#[test]
fn rr_over_ipv6_spreads_3000_tcp_connections_equally() {
    let mut s = setup();
    s.apply(vec![spec(
        true,
        L4Protocol::Tcp,
        SchedulerKind::RoundRobin,
        &[1, 1, 1],
    )]);
    let seen = s.connections(VIP6, 3000);
    assert_share(&seen, 3000, &[1.0 / 3.0; 3], 0.02);
}

#[test]
fn weight_zero_mid_run_takes_no_new_connections_and_keeps_open_ones() {
    for v6 in [false, true] {
        let mut s = setup();
        let vip = if v6 { VIP6 } else { VIP };
        s.apply(vec![spec(
            v6,
            L4Protocol::Tcp,
            SchedulerKind::RoundRobin,
            &[1, 1, 1],
        )]);
        let target = SocketAddr::new(vip.parse().unwrap(), PORT);
        // Open connections, some on backend1, and keep them open.
        let mut open = s.open_connections(target, 30);
        assert!(
            open.iter().any(|(_, n)| n == "backend1"),
            "some open flows on backend1"
        );

        s.apply(vec![spec(
            v6,
            L4Protocol::Tcp,
            SchedulerKind::RoundRobin,
            &[0, 1, 1],
        )]);
        let seen = s.connections(vip, 300);
        assert_eq!(
            seen.get("backend1"),
            None,
            "no new connection reaches a weight-0 backend: {seen:?}"
        );
        assert_eq!(
            seen.values().sum::<usize>(),
            300,
            "all new connections answered: {seen:?}"
        );

        // The open connections complete, each on the backend it started on.
        s.lab
            .client
            .run(|| {
                for (conn, name) in &mut open {
                    assert_eq!(&conn.ask().expect("open connection still works"), name);
                }
            })
            .unwrap();
    }
}

#[test]
fn udp_requests_get_answers_from_every_backend() {
    let mut s = setup();
    s.apply(vec![
        spec(
            false,
            L4Protocol::Udp,
            SchedulerKind::RoundRobin,
            &[1, 1, 1],
        ),
        spec(true, L4Protocol::Udp, SchedulerKind::RoundRobin, &[1, 1, 1]),
    ]);
    for vip in [VIP, VIP6] {
        let target = SocketAddr::new(vip.parse().unwrap(), PORT);
        let seen = s
            .lab
            .client
            .run(move || {
                let mut seen: HashMap<String, usize> = HashMap::new();
                for _ in 0..300 {
                    // A new socket is a new flow, so rr moves on.
                    let local: SocketAddr = if target.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    }
                    .parse()
                    .unwrap();
                    let socket = UdpSocket::bind(local).unwrap();
                    socket
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
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
            .unwrap();
        assert_share(&seen, 300, &[1.0 / 3.0; 3], 0.02);
    }
}

#[test]
fn long_lived_connections_survive_an_emptied_conntrack_under_mh() {
    let mut s = setup();
    s.apply(vec![spec(
        false,
        L4Protocol::Tcp,
        SchedulerKind::Maglev,
        &[1, 1, 1],
    )]);
    let target = SocketAddr::new(VIP.parse().unwrap(), PORT);
    let mut open = s.open_connections(target, 30);
    // As on a node that just took over: no flow state at all.
    s.dp.clear_conntrack().unwrap();
    s.lab
        .client
        .run(|| {
            for (conn, name) in &mut open {
                for _ in 0..3 {
                    assert_eq!(
                        &conn.ask().expect("the connection survives"),
                        name,
                        "same backend"
                    );
                }
            }
        })
        .unwrap();
}

#[test]
fn open_flows_survive_their_real_server_joining_a_second_service() {
    // Replies of a real that serves two services need per-flow state the
    // program writes only for flows created while the real is shared; a
    // reload adding the real to a second service must give the flows it
    // already has theirs.
    let mut s = setup();
    let a = spec(
        false,
        L4Protocol::Tcp,
        SchedulerKind::RoundRobin,
        &[1, 1, 1],
    );
    s.apply(vec![a.clone()]);
    let target = SocketAddr::new(VIP.parse().unwrap(), PORT);
    let mut open = s.open_connections(target, 30);
    assert!(open.iter().any(|(_, n)| n == "backend1"));

    let mut b = spec(false, L4Protocol::Tcp, SchedulerKind::RoundRobin, &[1]);
    b.port = PORT + 1;
    s.apply(vec![a, b]);
    s.lab
        .client
        .run(|| {
            for (conn, name) in &mut open {
                assert_eq!(&conn.ask().expect("the open connection still works"), name);
            }
        })
        .unwrap();
}
