//! Names, sizes and layouts of the maps the XDP program and the daemon share.
//!
//! Addresses are 16 bytes for both families (IPv4 in the first 4 bytes, the
//! rest zero) and ports stay in network byte order, so the program copies
//! header bytes into keys without swapping.
//!
//! Structs made of byte arrays carry an explicit `align`, chosen so that
//! it adds no padding: the BPF program then copies and compares them a
//! word at a time. At byte alignment LLVM copies byte by byte or calls a
//! byte-loop `memcpy`, which cost a quarter of the per-packet time.

/// Per-CPU array of `u64`, indexed by [`crate::counters::Counter`].
pub const COUNTERS: &str = "COUNTERS";
/// Hash: [`ServiceKey`] -> [`Service`].
pub const SERVICES: &str = "SERVICES";
/// Array of [`Backend`], indexed by backend id.
pub const BACKENDS: &str = "BACKENDS";
/// Array of `u32` backend ids: two rings of [`RING_SIZE`] per service.
pub const RINGS: &str = "RINGS";
/// Per-CPU array of `u32`: each CPU's round-robin position per service.
pub const RR_POSITIONS: &str = "RR_POSITIONS";
/// LRU hash: [`FlowKey`] (client -> VIP) -> [`Flow`].
pub const CONNTRACK: &str = "CONNTRACK";
/// Hash: [`RealKey`] (a backend's address, port, protocol) -> [`Real`], for
/// translating replies back without per-flow state.
pub const REALS: &str = "REALS";
/// LRU hash: [`FlowKey`] (backend -> client) -> [`ReverseFlow`], only for
/// backends that serve several services, whose replies are ambiguous.
pub const REVERSE: &str = "REVERSE";
/// Per-CPU array of [`Stats`] per service id.
pub const SERVICE_STATS: &str = "SERVICE_STATS";
/// Per-CPU array of [`Stats`] per backend id.
pub const BACKEND_STATS: &str = "BACKEND_STATS";
/// Array of one [`Settings`].
pub const SETTINGS: &str = "SETTINGS";
/// Ring buffer of [`FlowEvent`]s for the flow sync, written only while
/// [`SETTINGS_FLOW_SYNC`] is set.
pub const FLOW_EVENTS: &str = "FLOW_EVENTS";

/// Name of the XDP entry point in the object file.
pub const XDP_PROGRAM: &str = "lb_xdp";
/// The TC egress program that translates the replies of real servers on
/// this host (their sockets answer from their own address, which the XDP
/// program, on ingress only, never sees) back to the VIP.
pub const EGRESS_PROGRAM: &str = "lb_tc_egress";
/// A program that only returns `XDP_PASS`: the benchmarks' reference.
pub const BARE_PASS_PROGRAM: &str = "lb_bare_pass";
/// A program that only returns `XDP_DROP`: the packet-rate baseline.
pub const BARE_DROP_PROGRAM: &str = "lb_bare_drop";
/// The packet-rate benchmark's generator (see [`crate::generator`]).
pub const GENERATOR_PROGRAM: &str = "lb_bench_generate";

pub const MAX_SERVICES: u32 = 128;
pub const MAX_BACKENDS: u32 = 4096;
/// Entries of one lookup ring. Prime, as Maglev needs; large against the
/// backend count so weights are honoured finely and a removed backend's
/// share is spread evenly.
pub const RING_SIZE: u32 = 16381;
pub const CONNTRACK_ENTRIES: u32 = 262_144;
pub const REVERSE_ENTRIES: u32 = 65_536;
/// Bytes of the `FLOW_EVENTS` ring (a power of two and a multiple of the
/// page size): 16,384 events, a second of new flows at a high rate, while
/// the daemon drains it every few milliseconds.
pub const FLOW_EVENTS_BYTES: u32 = 1 << 20;
/// "No backend" in a ring or a service's sorry slot.
pub const NO_BACKEND: u32 = u32::MAX;

pub const FAMILY_IPV4: u8 = 4;
pub const FAMILY_IPV6: u8 = 6;

/// Scheduler kinds (u32 constants, not an enum: map values must accept any
/// bit pattern).
pub const SCHED_RR: u32 = 0;
pub const SCHED_WRR: u32 = 1;
pub const SCHED_MH: u32 = 2;

/// A virtual service: (VIP, port, protocol).
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub addr: [u8; 16],
    /// Network byte order.
    pub port: [u8; 2],
    pub proto: u8,
    pub family: u8,
}

/// What the program needs to pick a backend for a new flow. Replaced as a
/// whole (hash-map updates are atomic for readers), which is what makes a
/// backend-set change atomic: the new ring is written to the inactive slot
/// first, then this value flips `ring_slot`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Index into the per-service arrays (rings, stats, rr positions).
    pub id: u32,
    /// Which of the service's two rings is live (0 or 1).
    pub ring_slot: u32,
    /// Valid entries in the live ring; 0 when no backend takes new flows.
    pub ring_len: u32,
    /// One of the `SCHED_*` constants.
    pub scheduler: u32,
    /// Backend used while `ring_len` is 0, or [`NO_BACKEND`].
    pub sorry_backend: u32,
    pub _pad: u32,
}

/// A real server. Its id is its index in `BACKENDS`.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backend {
    pub addr: [u8; 16],
    /// Network byte order.
    pub port: [u8; 2],
    pub family: u8,
    /// [`BACKEND_LIVE`] while the backend takes packets, [`BACKEND_HOLD`]
    /// while it is out of its service and its flows' packets are dropped
    /// until it returns; neither: gone, its flows are scheduled again.
    pub flags: u8,
    /// Bumped each time the id is reused, so a flow pinned to an earlier
    /// occupant of this id is not sent to the new one.
    pub generation: u32,
}

pub const BACKEND_LIVE: u8 = 1;
/// The backend left its service (`removed_server_flows: drop`, IPVS's
/// `expire_nodest_conn=0`): packets of flows pinned to it are dropped, and
/// flow again when it returns under the same id and generation.
pub const BACKEND_HOLD: u8 = 2;

/// One direction of a flow, as it appears in the packet's headers.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Network byte order.
    pub sport: [u8; 2],
    /// Network byte order.
    pub dport: [u8; 2],
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// Conntrack entry of a client -> VIP flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub backend: u32,
    /// The backend's generation when the flow was pinned.
    pub generation: u32,
    pub service: u32,
    /// One of the `FLOW_*` states.
    pub state: u32,
    /// `bpf_ktime_get_ns()` of the last packet in either direction.
    pub last_seen_ns: u64,
    /// Where this flow's packets to the backend go next.
    pub to_backend: NextHop,
    /// Where this flow's replies to the client go next.
    pub to_client: NextHop,
}

/// A FIB answer cached in a flow, so established packets skip the lookup.
/// Trusted for [`NEXT_HOP_TTL_NS`] after `looked_up_ns`, then looked up again
/// (a neighbour's MAC or a route may change).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    pub smac: [u8; 6],
    pub dmac: [u8; 6],
    /// 0: nothing cached.
    pub looked_up_ns: u64,
}

/// How long a cached next hop is trusted.
pub const NEXT_HOP_TTL_NS: u64 = 1_000_000_000;

/// Flow states, IPVS-like: ActiveConn counts `FLOW_ESTABLISHED`, InActConn
/// the other TCP states.
pub const FLOW_SYN: u32 = 0;
pub const FLOW_ESTABLISHED: u32 = 1;
pub const FLOW_FIN: u32 = 2;
pub const FLOW_CLOSE: u32 = 3;
pub const FLOW_UDP: u32 = 4;

/// A backend's (address, port, protocol), for replies.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RealKey {
    pub addr: [u8; 16],
    /// Network byte order.
    pub port: [u8; 2],
    pub proto: u8,
    pub family: u8,
}

/// The one service a real belongs to, or a mark that it serves several.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Real {
    pub vip: [u8; 16],
    /// Network byte order.
    pub vport: [u8; 2],
    /// 1 when the real serves several services: replies need `REVERSE`.
    pub ambiguous: u8,
    pub _pad: u8,
    pub service: u32,
}

/// Where a reply from an ambiguous real goes back from.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReverseFlow {
    pub vip: [u8; 16],
    /// Network byte order.
    pub vport: [u8; 2],
    pub _pad: [u8; 2],
    pub service: u32,
}

impl ReverseFlow {
    /// The `REVERSE` entry of the client flow `key` pinned to the real
    /// server `real_addr:real_port` of `service`: the key its replies carry,
    /// and the VIP they must leave from.
    #[must_use]
    pub fn of_flow(
        key: &FlowKey,
        real_addr: [u8; 16],
        real_port: [u8; 2],
        service: u32,
    ) -> (FlowKey, ReverseFlow) {
        let reply = FlowKey {
            src: real_addr,
            dst: key.src,
            sport: real_port,
            dport: key.sport,
            proto: key.proto,
            family: key.family,
            _pad: [0; 2],
        };
        let value = ReverseFlow {
            vip: key.dst,
            vport: key.dport,
            _pad: [0; 2],
            service,
        };
        (reply, value)
    }
}

/// Traffic counters of a service or a backend (per CPU, summed by userspace).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub connections: u64,
}

/// Program-wide settings written by the daemon.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Idle timeouts per flow state, in seconds (IPVS defaults 900/120/300).
    pub tcp_established_s: u32,
    pub tcp_fin_s: u32,
    pub tcp_syn_s: u32,
    pub tcp_close_s: u32,
    pub udp_s: u32,
    /// `SETTINGS_*` bits.
    pub flags: u32,
}

/// [`Settings::flags`]: report new and closing flows in `FLOW_EVENTS`.
pub const SETTINGS_FLOW_SYNC: u32 = 1;

/// A flow that carries packets is reported again each time the clock
/// (offset per flow) crosses a multiple of `1 << FLOW_SYNC_REFRESH_SHIFT`
/// ns (about 8.6 s), so the peer's copy does not expire while the flow is
/// busy here.
pub const FLOW_SYNC_REFRESH_SHIFT: u32 = 33;

/// What happened to a flow, for the flow sync: its key (client -> VIP),
/// the real server it is pinned to, and its state after the packet. The
/// real is named by address, not by the program's backend id: ids are
/// local to each balancer.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowEvent {
    pub key: FlowKey,
    pub real_addr: [u8; 16],
    /// Network byte order.
    pub real_port: [u8; 2],
    /// One of the `FLOW_*` states (fits a byte).
    pub state: u8,
    pub _pad: [u8; 5],
}

impl Settings {
    /// IPVS's defaults (`ipvsadm --set 900 120 300`; SYN_RECV 60 s, CLOSE 10 s).
    pub const IPVS_DEFAULTS: Settings = Settings {
        tcp_established_s: 900,
        tcp_fin_s: 120,
        tcp_syn_s: 60,
        tcp_close_s: 10,
        udp_s: 300,
        flags: 0,
    };
}

/// Version of what the maps' keys and values mean. A restarted lbd adopts
/// the maps an earlier one pinned only when their layout (this, and each
/// map's type, key and value sizes, entries) is the same: bump it when a
/// field changes meaning or place without changing a size.
pub const LAYOUT_VERSION: u32 = 2;

const _: () = assert!(core::mem::size_of::<ServiceKey>() == 20);
const _: () = assert!(core::mem::size_of::<Service>() == 24);
const _: () = assert!(core::mem::size_of::<Backend>() == 24);
const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
const _: () = assert!(core::mem::size_of::<NextHop>() == 24);
const _: () = assert!(core::mem::size_of::<Flow>() == 72);
const _: () = assert!(core::mem::size_of::<RealKey>() == 20);
const _: () = assert!(core::mem::size_of::<Real>() == 24);
const _: () = assert!(core::mem::size_of::<ReverseFlow>() == 24);
const _: () = assert!(core::mem::size_of::<Stats>() == 40);
const _: () = assert!(core::mem::size_of::<Settings>() == 24);
const _: () = assert!(core::mem::size_of::<FlowEvent>() == 64);

#[cfg(feature = "user")]
mod pod {
    use super::{
        Backend, Flow, FlowEvent, FlowKey, NextHop, Real, RealKey, ReverseFlow, Service,
        ServiceKey, Settings, Stats,
    };

    // SAFETY: each is repr(C), Copy, made only of integers and byte arrays,
    // with explicit padding fields so every bit pattern is valid.
    unsafe impl aya::Pod for ServiceKey {}
    unsafe impl aya::Pod for Service {}
    unsafe impl aya::Pod for Backend {}
    unsafe impl aya::Pod for FlowKey {}
    unsafe impl aya::Pod for Flow {}
    unsafe impl aya::Pod for NextHop {}
    unsafe impl aya::Pod for RealKey {}
    unsafe impl aya::Pod for Real {}
    unsafe impl aya::Pod for ReverseFlow {}
    unsafe impl aya::Pod for Stats {}
    unsafe impl aya::Pod for Settings {}
    unsafe impl aya::Pod for FlowEvent {}
}
