//! The maps shared with the daemon; layouts live in `lb_common::maps`.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray},
};
use lb_common::maps::{
    Backend, CONNTRACK_ENTRIES, Flow, FlowKey, MAX_BACKENDS, MAX_SERVICES, REVERSE_ENTRIES,
    RING_SIZE, Real, RealKey, ReverseFlow, Service, ServiceKey, Settings, Stats,
};

#[map(name = "SERVICES")]
pub(crate) static SERVICES: HashMap<ServiceKey, Service> =
    HashMap::with_max_entries(MAX_SERVICES, 0);

#[map(name = "BACKENDS")]
pub(crate) static BACKENDS: Array<Backend> = Array::with_max_entries(MAX_BACKENDS, 0);

/// Two rings per service: entry `(id * 2 + slot) * RING_SIZE + i`.
#[map(name = "RINGS")]
pub(crate) static RINGS: Array<u32> = Array::with_max_entries(MAX_SERVICES * 2 * RING_SIZE, 0);

#[map(name = "RR_POSITIONS")]
pub(crate) static RR_POSITIONS: PerCpuArray<u32> = PerCpuArray::with_max_entries(MAX_SERVICES, 0);

#[map(name = "CONNTRACK")]
pub(crate) static CONNTRACK: LruHashMap<FlowKey, Flow> =
    LruHashMap::with_max_entries(CONNTRACK_ENTRIES, 0);

#[map(name = "REALS")]
pub(crate) static REALS: HashMap<RealKey, Real> = HashMap::with_max_entries(MAX_BACKENDS, 0);

#[map(name = "REVERSE")]
pub(crate) static REVERSE: LruHashMap<FlowKey, ReverseFlow> =
    LruHashMap::with_max_entries(REVERSE_ENTRIES, 0);

#[map(name = "SERVICE_STATS")]
pub(crate) static SERVICE_STATS: PerCpuArray<Stats> =
    PerCpuArray::with_max_entries(MAX_SERVICES, 0);

#[map(name = "BACKEND_STATS")]
pub(crate) static BACKEND_STATS: PerCpuArray<Stats> =
    PerCpuArray::with_max_entries(MAX_BACKENDS, 0);

#[map(name = "SETTINGS")]
pub(crate) static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// Per-CPU scratch space for the large temporaries of one packet: the BPF
/// stack (512 bytes) cannot hold them all.
#[repr(C)]
pub(crate) struct Scratch {
    pub(crate) fib: aya_ebpf::bindings::bpf_fib_lookup,
    /// The packet's flow key after translation.
    pub(crate) translated: FlowKey,
    /// The other direction's key (reply or client side).
    pub(crate) other: FlowKey,
    /// The service a client packet is for.
    pub(crate) service: ServiceKey,
    /// That service's entry, copied here for `to_backend`: handing it a
    /// map pointer as an argument costs that function 32 more stack bytes
    /// than the 512-byte budget has.
    pub(crate) found: Service,
}

/// A new conntrack entry being built (72 bytes: too big for the stack).
#[map(name = "NEW_FLOW")]
pub(crate) static NEW_FLOW: PerCpuArray<Flow> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "SCRATCH")]
pub(crate) static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// The packet's own flow key, built in map memory: on the stack the
/// compiler splits the 40-byte key into single bytes, each spilled to a
/// separate 8-byte slot, which alone would use half the stack.
#[map(name = "FLOW_SCRATCH")]
pub(crate) static FLOW_SCRATCH: PerCpuArray<crate::flow::PacketFlow> =
    PerCpuArray::with_max_entries(1, 0);
