//! The XDP data plane behind veths that keep the kernel's default offloads:
//! hosts that leave their TCP / UDP checksums to "hardware" (`tx` on, so
//! their frames carry only the pseudo-header sum: CHECKSUM_PARTIAL) and
//! receiving ends without GRO. This is a container or VM deployment nobody
//! tuned, and the lab of the other end-to-end tests hides it (it turns
//! `tx` off and GRO on). No `ethtool` runs here.
//!
//! What the kernel does there (measured with this lab, 5 TCP connections
//! and 5 UDP requests each): attached in native mode, none got through (the
//! balancer's veths counted the redirected frames as rx_queue drops: a
//! veth delivers a redirected frame only if its peer runs NAPI, and frames
//! from a `tx`-offloading sender carry only the pseudo-header sum in their
//! checksum field, which native XDP forwards as is); attached in generic
//! mode, all got through (the packet stays an skb, its CHECKSUM_PARTIAL
//! state travels with it, and the redirect uses the peer's normal receive
//! path). So `xdp_mode: auto` attaches to a veth in generic mode.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use lb_lab::{
    lab::{BALANCER_BACKEND_IF, BALANCER_CLIENT_IF, Lab, VIP, backend_addrs},
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server, udp_identity_server},
};
use lb_tests::e2e::{BACKEND_PORT, PORT, backend_name, spec};
use lb_userspace::{
    dataplane::{Dataplane, DesiredState, L4Protocol, SchedulerKind, Timeouts},
    xdp::{AttachMode, AttachedMode, XdpDataplane, XdpProgram},
};

const BACKENDS: usize = 2;

struct Setup {
    dp: XdpDataplane,
    stop: StopFlag,
    lab: Lab,
    modes: Vec<AttachedMode>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

fn setup(mode: AttachMode) -> Setup {
    require_root("the namespace lab");
    let lab = Lab::with_kernel_default_offloads(BACKENDS).expect("lab");
    lab.add_vips().expect("VIPs on the balancer");
    let stop = StopFlag::default();
    for (i, ns) in lab.backends.iter().enumerate() {
        let (v4, _) = backend_addrs(i);
        let at = SocketAddr::new(v4.parse().unwrap(), BACKEND_PORT);
        tcp_identity_server(ns, at, &backend_name(i), stop.clone()).expect("TCP server");
        udp_identity_server(ns, at, &backend_name(i), stop.clone()).expect("UDP server");
    }
    let mut dp = XdpDataplane::new(XdpProgram::load().expect("XDP program loads"));
    let modes = lab
        .balancer
        .run(|| {
            [BALANCER_CLIENT_IF, BALANCER_BACKEND_IF]
                .into_iter()
                .map(|dev| dp.program_mut().attach(dev, mode).expect("XDP attaches"))
                .collect()
        })
        .unwrap();
    dp.apply(&DesiredState {
        services: vec![
            spec(false, L4Protocol::Tcp, SchedulerKind::RoundRobin, &[1, 1]),
            spec(false, L4Protocol::Udp, SchedulerKind::RoundRobin, &[1, 1]),
        ],
        timeouts: Timeouts::default(),
    })
    .expect("services install");
    Setup {
        dp,
        stop,
        lab,
        modes,
    }
}

/// How many of `n` TCP connections to the VIP got their answer.
fn tcp_answers(s: &Setup, n: usize) -> usize {
    let target = SocketAddr::new(VIP.parse().unwrap(), PORT);
    s.lab
        .client
        .run(move || {
            (0..n)
                .filter(|_| {
                    IdentityConnection::open(target)
                        .and_then(|mut c| c.ask())
                        .is_ok()
                })
                .count()
        })
        .unwrap()
}

/// How many of `n` UDP requests to the VIP were answered from the VIP.
fn udp_answers(s: &Setup, n: usize) -> usize {
    let target = SocketAddr::new(VIP.parse().unwrap(), PORT);
    s.lab
        .client
        .run(move || {
            (0..n)
                .filter(|_| {
                    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                    socket
                        .set_read_timeout(Some(Duration::from_secs(1)))
                        .unwrap();
                    socket.send_to(b"who?", target).unwrap();
                    let mut buf = [0u8; 64];
                    matches!(socket.recv_from(&mut buf), Ok((_, from)) if from == target)
                })
                .count()
        })
        .unwrap()
}

fn counters(s: &Setup) -> HashMap<&'static str, u64> {
    s.dp.program()
        .counters()
        .expect("counters")
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(c, v)| (c.name(), v))
        .collect()
}

/// The mode `lbd` picks by default (`xdp_mode: auto`) makes the deployment
/// work: every connection and every datagram is answered.
#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn default_offload_veths_connect_through_the_balancer_in_auto_mode() {
    let s = setup(AttachMode::Auto);
    let tcp = tcp_answers(&s, 10);
    let udp = udp_answers(&s, 10);
    assert!(
        tcp == 10 && udp == 10,
        "behind veths with default offloads ({:?}), {tcp} of 10 TCP connections and {udp} of 10 \
         UDP requests were answered; XDP counters: {:?}",
        s.modes,
        counters(&s)
    );
}
