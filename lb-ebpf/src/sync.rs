//! Flow-sync events: what the daemon streams to the peer balancer so that
//! it can take over flows whose backend it would not pick itself (rr, wrr;
//! replies of reals several services share). Reported only while the
//! daemon set `SETTINGS_FLOW_SYNC`, and only when a flow starts, becomes
//! established, or starts closing, and every few seconds while it carries
//! packets (so the peer's copy does not expire): never per packet of an
//! established flow. A full ring loses the event and counts it; the packet goes on.

use aya_ebpf::{macros::map, maps::RingBuf};
use lb_common::{
    counters::Counter,
    maps::{
        FLOW_CLOSE, FLOW_ESTABLISHED, FLOW_EVENTS_BYTES, FLOW_FIN, FLOW_SYNC_REFRESH_SHIFT,
        FlowEvent, FlowKey, Settings,
    },
};

use crate::{stats, words};

#[map(name = "FLOW_EVENTS")]
static FLOW_EVENTS: RingBuf = RingBuf::with_byte_size(FLOW_EVENTS_BYTES, 0);

/// Whether the daemon asked for flow events.
#[inline(always)]
pub(crate) fn enabled(s: &Settings) -> bool {
    s.flags & lb_common::maps::SETTINGS_FLOW_SYNC != 0
}

/// Whether going from `before` to `after` is a change the peer must hear
/// of: established (so its copy gets the long timeout) or closing (so its
/// copy gets the short one).
#[inline(always)]
pub(crate) fn worth_reporting(before: u32, after: u32) -> bool {
    before != after && (after == FLOW_ESTABLISHED || after == FLOW_FIN || after == FLOW_CLOSE)
}

/// Whether a packet at `now` of a flow last seen at `last_seen` crosses
/// its refresh boundary (see `FLOW_SYNC_REFRESH_SHIFT`): a shift, an add
/// and a compare, the only cost an established packet pays. Each flow's
/// boundaries are offset by its client port, so busy flows do not all
/// refresh in the same instant and overflow the ring.
#[inline(always)]
pub(crate) fn refresh_due(key: &FlowKey, last_seen: u64, now: u64) -> bool {
    let offset = u64::from(u16::from_ne_bytes(key.sport)) << (FLOW_SYNC_REFRESH_SHIFT - 16);
    ((now + offset) >> FLOW_SYNC_REFRESH_SHIFT) != ((last_seen + offset) >> FLOW_SYNC_REFRESH_SHIFT)
}

/// Queues one event. Its own BPF function, so its stack and code stay off
/// the established-packet path that never calls it.
#[inline(never)]
pub(crate) fn report(key: &FlowKey, real_addr: &[u8; 16], real_port: &[u8; 2], state: u32) {
    let Some(mut entry) = FLOW_EVENTS.reserve::<FlowEvent>(0) else {
        stats::count(Counter::FlowEventsLost);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: the reservation is a writable, 8-byte aligned FlowEvent.
    unsafe {
        words::copy(&raw mut (*event).key, key);
        words::set_addr16(&mut (*event).real_addr, real_addr);
        (*event).real_port = *real_port;
        #[expect(clippy::cast_possible_truncation, reason = "FLOW_* states fit a byte")]
        {
            (*event).state = state as u8;
        }
        (*event)._pad = [0; 5];
    }
    entry.submit(0);
}

/// Whether flow events are on, read only where one may be reported.
#[inline(always)]
pub(crate) fn on() -> bool {
    crate::maps::SETTINGS.get(0).is_some_and(enabled)
}
