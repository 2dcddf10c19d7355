//! Picking a backend for a flow that has none: from the service's live ring,
//! by flow hash (Maglev, and any flow already in progress) or by this CPU's
//! round-robin position (rr / wrr). Positions live per CPU, so no two cores
//! ever write the same counter.

use lb_common::maps::{MAX_SERVICES, NO_BACKEND, RING_SIZE, SCHED_MH, Service};

use crate::maps::{RINGS, RR_POSITIONS};

/// The backend id for a new flow of `service`, or `None` when no backend
/// takes new flows and there is no sorry server.
#[inline(always)]
pub(crate) fn pick(service: &Service, hash: u32, mid_flow: bool) -> Option<u32> {
    let backend = pick_id(service, hash, mid_flow);
    (backend != NO_BACKEND).then_some(backend)
}

/// `pick` as a BPF function of its own, returning `NO_BACKEND` for none:
/// only new flows call it, and its frame is not part of the caller's.
#[inline(never)]
fn pick_id(service: &Service, hash: u32, mid_flow: bool) -> u32 {
    pick_in_ring(service, hash, mid_flow).unwrap_or(NO_BACKEND)
}

#[inline(always)]
fn pick_in_ring(service: &Service, hash: u32, mid_flow: bool) -> Option<u32> {
    if service.ring_len == 0 {
        return (service.sorry_backend != NO_BACKEND).then_some(service.sorry_backend);
    }
    let len = if service.ring_len > RING_SIZE {
        RING_SIZE
    } else {
        service.ring_len
    };
    // A flow already in progress (no SYN) is placed by hash whatever the
    // scheduler: the same answer any balancer with this config would give.
    let index = if service.scheduler == SCHED_MH || mid_flow {
        hash % len
    } else {
        let position = RR_POSITIONS.get_ptr_mut(service.id)?;
        // SAFETY: per-CPU slot, not shared with other CPUs while we run.
        unsafe {
            let p = *position;
            *position = p.wrapping_add(1);
            p % len
        }
    };
    if service.id >= MAX_SERVICES {
        return None;
    }
    let ring = (service.id * 2 + (service.ring_slot & 1)) * RING_SIZE;
    RINGS.get(ring + index).copied()
}
