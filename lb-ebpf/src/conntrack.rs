//! Flow state: which backend a flow is pinned to. The rules (how the state
//! follows TCP's flags, the idle timeout of each state) are
//! `lb_common::conntrack`'s, shared with the daemon's connection counts.

pub(crate) use lb_common::conntrack::{initial_state, next_state};
use lb_common::{
    conntrack,
    maps::{BACKEND_LIVE, Backend, Flow, Settings},
};

use crate::maps::{BACKENDS, SETTINGS};

#[inline(always)]
pub(crate) fn settings() -> Settings {
    match SETTINGS.get(0) {
        Some(s) if s.tcp_established_s != 0 => *s,
        _ => Settings::IPVS_DEFAULTS,
    }
}

/// The backend `flow` is pinned to, if the flow may keep carrying packets:
/// not idle past its timeout, not a new connection reusing the ports of a
/// closed one, and its backend still there (not a newer one reusing the id).
#[inline(always)]
pub(crate) fn pinned_backend(
    flow: &Flow,
    now: u64,
    tcp_flags: u8,
    s: &Settings,
) -> Option<&'static Backend> {
    if conntrack::expired(flow.state, flow.last_seen_ns, now, s) {
        return None;
    }
    if conntrack::reuses_closed(flow.state, tcp_flags) {
        return None;
    }
    let backend = BACKENDS.get(flow.backend)?;
    (backend.flags & BACKEND_LIVE != 0 && backend.generation == flow.generation).then_some(backend)
}
