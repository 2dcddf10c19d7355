//! The XDP program's flow-sync events, run with `BPF_PROG_TEST_RUN`: with
//! flow sync on, a flow is reported when it starts, when it becomes
//! established and when it starts closing, named by addresses (never by
//! the program's local ids); packets of an established flow report nothing,
//! and with flow sync off nothing is reported at all.

use etherparse::PacketBuilder;
use lb_common::maps::{FAMILY_IPV4, FLOW_ESTABLISHED, FLOW_FIN, FLOW_SYN, FLOW_UDP, FlowEvent};
use lb_tests::nat_lab::{
    BACKEND1, BACKEND1_MAC, CLIENT, CLIENT_MAC, LB_BACKEND_MAC, LB_CLIENT_MAC, NatFixture, VIP,
};
use lb_userspace::{
    dataplane::{
        BackendSpec, Dataplane, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts,
    },
    xdp::FlowSyncPort,
};

fn services() -> Vec<ServiceSpec> {
    [L4Protocol::Tcp, L4Protocol::Udp]
        .into_iter()
        .map(|protocol| ServiceSpec {
            vip: VIP.into(),
            port: 80,
            protocol,
            scheduler: SchedulerKind::WeightedRoundRobin,
            backends: vec![BackendSpec {
                addr: BACKEND1.into(),
                port: 8080,
                weight: 1,
            }],
            sorry: None,
            removed_server_flows: lb_userspace::config::RemovedServerFlows::default(),
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Seg {
    Syn,
    Ack,
    Fin,
}

fn client_tcp(seg: Seg) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1000, 64240);
    let b = match seg {
        Seg::Syn => b.syn(),
        Seg::Ack => b.ack(2000),
        Seg::Fin => b.ack(2000).fin(),
    };
    let mut frame = Vec::new();
    b.write(&mut frame, b"x").unwrap();
    frame
}

fn client_udp() -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, LB_CLIENT_MAC)
        .ipv4(CLIENT, VIP, 64)
        .udp(40001, 80)
        .write(&mut frame, b"x")
        .unwrap();
    frame
}

fn backend_fin() -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(BACKEND1_MAC, LB_BACKEND_MAC)
        .ipv4(BACKEND1, CLIENT, 64)
        .tcp(8080, 40000, 3000, 64240)
        .ack(1001)
        .fin()
        .write(&mut frame, b"")
        .unwrap();
    frame
}

/// Flow sync turned on the way the daemon does: the port taken, then the
/// services (re)applied, which writes the flag to `SETTINGS`.
fn turn_on(fx: &mut NatFixture) -> FlowSyncPort {
    let port = fx.dp.flow_sync_port().expect("the flow-sync handles");
    fx.dp
        .apply(&DesiredState {
            services: services(),
            timeouts: Timeouts::default(),
        })
        .expect("services install");
    port
}

fn drain(port: &mut FlowSyncPort) -> Vec<FlowEvent> {
    let mut out = Vec::new();
    while let Some(item) = port.events.next() {
        assert_eq!(
            item.len(),
            size_of::<FlowEvent>(),
            "one whole event per record"
        );
        // SAFETY: a FlowEvent's worth of bytes; any bit pattern is valid.
        out.push(unsafe { item.as_ptr().cast::<FlowEvent>().read_unaligned() });
    }
    out
}

fn states(events: &[FlowEvent]) -> Vec<u32> {
    events.iter().map(|e| u32::from(e.state)).collect()
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_tcp_flow_is_reported_when_it_starts_establishes_and_closes_only() {
    let mut fx = NatFixture::new(services());
    let mut port = turn_on(&mut fx);
    fx.client_sends(&client_tcp(Seg::Syn));
    fx.client_sends(&client_tcp(Seg::Ack));
    for _ in 0..5 {
        fx.client_sends(&client_tcp(Seg::Ack));
    }
    fx.backend_sends(&backend_fin());
    fx.client_sends(&client_tcp(Seg::Fin));
    let events = drain(&mut port);
    // A refresh (same state again) is due if the clock crossed a multiple
    // of 2^33 ns during the test: at most one, never one per packet.
    let mut changes = states(&events);
    changes.dedup();
    assert_eq!(
        changes,
        vec![FLOW_SYN, FLOW_ESTABLISHED, FLOW_FIN],
        "start, established, the backend's FIN"
    );
    assert!(
        events.len() <= 4,
        "an event per packet: {:?}",
        states(&events)
    );
    let e = events[0];
    let mut client = [0u8; 16];
    client[..4].copy_from_slice(&CLIENT);
    let mut vip = [0u8; 16];
    vip[..4].copy_from_slice(&VIP);
    let mut real = [0u8; 16];
    real[..4].copy_from_slice(&BACKEND1);
    assert_eq!((e.key.src, e.key.dst), (client, vip));
    assert_eq!(
        (e.key.sport, e.key.dport),
        (40000u16.to_be_bytes(), 80u16.to_be_bytes())
    );
    assert_eq!((e.key.proto, e.key.family), (6, FAMILY_IPV4));
    assert_eq!(
        (e.real_addr, e.real_port),
        (real, 8080u16.to_be_bytes()),
        "the real by address"
    );
    assert!(events.iter().all(|x| x.key == e.key), "all about one flow");
    assert_eq!(fx.counter(lb_common::counters::Counter::FlowEventsLost), 0);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_udp_flow_is_reported_once() {
    let mut fx = NatFixture::new(services());
    let mut port = turn_on(&mut fx);
    for _ in 0..3 {
        fx.client_sends(&client_udp());
    }
    let mut changes = states(&drain(&mut port));
    assert!(changes.len() <= 2, "an event per datagram: {changes:?}");
    changes.dedup();
    assert_eq!(changes, vec![FLOW_UDP]);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn nothing_is_reported_while_flow_sync_is_off() {
    let mut fx = NatFixture::new(services());
    // The flow starts while off; only what happens after turning on shows.
    fx.client_sends(&client_tcp(Seg::Syn));
    let mut port = turn_on(&mut fx);
    fx.client_sends(&client_tcp(Seg::Ack));
    fx.client_sends(&client_tcp(Seg::Ack));
    let mut changes = states(&drain(&mut port));
    changes.dedup();
    assert_eq!(
        changes,
        vec![FLOW_ESTABLISHED],
        "the SYN sent while off was not reported"
    );
}
