//! Flow state: which backend a flow is pinned to, and enough of TCP's state
//! to expire it with IPVS's timeouts and to count ActiveConn / InActConn.

use lb_common::maps::{
    BACKEND_LIVE, Backend, FLOW_CLOSE, FLOW_ESTABLISHED, FLOW_FIN, FLOW_SYN, FLOW_UDP, Flow,
    Settings,
};

use crate::{
    flow::{TCP_FIN, TCP_RST, TCP_SYN},
    maps::{BACKENDS, SETTINGS},
};

const NS_PER_SEC: u64 = 1_000_000_000;

#[inline(always)]
pub(crate) fn settings() -> Settings {
    match SETTINGS.get(0) {
        Some(s) if s.tcp_established_s != 0 => *s,
        _ => Settings::IPVS_DEFAULTS,
    }
}

#[inline(always)]
fn timeout_ns(state: u32, s: &Settings) -> u64 {
    let secs = match state {
        FLOW_ESTABLISHED => s.tcp_established_s,
        FLOW_FIN => s.tcp_fin_s,
        FLOW_CLOSE => s.tcp_close_s,
        FLOW_UDP => s.udp_s,
        _ => s.tcp_syn_s,
    };
    u64::from(secs) * NS_PER_SEC
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
    if now.saturating_sub(flow.last_seen_ns) > timeout_ns(flow.state, s) {
        return None;
    }
    let reused = tcp_flags & TCP_SYN != 0 && (flow.state == FLOW_FIN || flow.state == FLOW_CLOSE);
    if reused {
        return None;
    }
    let backend = BACKENDS.get(flow.backend)?;
    (backend.flags & BACKEND_LIVE != 0 && backend.generation == flow.generation).then_some(backend)
}

/// The state of a new flow whose first packet has `tcp_flags` (`None`: UDP).
#[inline(always)]
pub(crate) fn initial_state(tcp_flags: Option<u8>) -> u32 {
    match tcp_flags {
        None => FLOW_UDP,
        Some(f) if f & TCP_SYN != 0 => FLOW_SYN,
        // Picked up mid-flow (after a failover): it was established.
        Some(_) => FLOW_ESTABLISHED,
    }
}

/// The state after a packet with `tcp_flags` in either direction.
#[inline(always)]
pub(crate) fn next_state(state: u32, tcp_flags: u8) -> u32 {
    if state == FLOW_UDP {
        return FLOW_UDP;
    }
    if tcp_flags & TCP_RST != 0 {
        FLOW_CLOSE
    } else if tcp_flags & TCP_FIN != 0 {
        if state == FLOW_CLOSE {
            FLOW_CLOSE
        } else {
            FLOW_FIN
        }
    } else if state == FLOW_SYN && tcp_flags & TCP_SYN == 0 {
        FLOW_ESTABLISHED
    } else {
        state
    }
}
