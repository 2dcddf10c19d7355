//! Flow state: which backend a flow is pinned to. The rules (how the state
//! follows TCP's flags, the idle timeout of each state) are
//! `lb_common::conntrack`'s, shared with the daemon's connection counts.

pub(crate) use lb_common::conntrack::{initial_state, next_state};
use lb_common::{
    conntrack,
    maps::{BACKEND_HOLD, BACKEND_LIVE, Backend, Flow, Settings},
};

use crate::maps::{BACKENDS, SETTINGS};

#[inline(always)]
pub(crate) fn settings() -> Settings {
    match SETTINGS.get(0) {
        Some(s) if s.tcp_established_s != 0 => *s,
        _ => Settings::IPVS_DEFAULTS,
    }
}

/// Where a tracked flow's packets go.
pub(crate) enum Pinned {
    /// To its backend.
    Live(&'static Backend),
    /// Nowhere for now: its backend left with `removed_server_flows: drop`.
    Held,
    /// The flow is over (idle, reused ports, backend gone): schedule anew.
    Gone,
}

/// Where `flow`'s packet goes: to its backend if the flow may keep carrying
/// packets (not idle past its timeout, not a new connection reusing the
/// ports of a closed one, and its backend still there, not a newer one
/// reusing the id), held if its backend left but may return.
#[inline(always)]
pub(crate) fn pinned_backend(flow: &Flow, now: u64, tcp_flags: u8, s: &Settings) -> Pinned {
    if conntrack::expired(flow.state, flow.last_seen_ns, now, s)
        || conntrack::reuses_closed(flow.state, tcp_flags)
    {
        return Pinned::Gone;
    }
    let Some(backend) = BACKENDS.get(flow.backend) else {
        return Pinned::Gone;
    };
    if backend.generation != flow.generation {
        Pinned::Gone
    } else if backend.flags & BACKEND_LIVE != 0 {
        Pinned::Live(backend)
    } else if backend.flags & BACKEND_HOLD != 0 {
        Pinned::Held
    } else {
        Pinned::Gone
    }
}
