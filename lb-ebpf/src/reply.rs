//! Backend -> client: a reply, translated back to come from the VIP. (The
//! replies of a real server on this host never arrive here: they leave
//! through the TC egress program, `egress.rs`.)

use aya_ebpf::{bindings::xdp_action, helpers::bpf_ktime_get_ns, programs::XdpContext};
use lb_common::{counters::Counter, maps::RealKey};

use crate::{
    balance::{frame_len, scratch},
    conntrack,
    flow::PacketFlow,
    forward::{self, Route, send, transmit_counted},
    maps::{BACKEND_STATS, CONNTRACK, REALS, REVERSE, SERVICE_STATS},
    nat::{self, Endpoint, Side},
    parse::{Malformed, Packet},
    stats::{self, Direction},
    sync,
};

/// Backend -> client: a reply, translated back to come from the VIP.
#[inline(always)]
pub(crate) fn try_from_backend(
    ctx: &XdpContext,
    packet: &Packet,
    flow: &PacketFlow,
) -> Result<Option<u32>, Malformed> {
    let key = &flow.key;
    let real_key = RealKey {
        addr: key.src,
        port: key.sport,
        proto: key.proto,
        family: key.family,
    };
    let Some(real) = REALS.get_ptr(&real_key) else {
        return Ok(None);
    };
    // SAFETY: valid for this run.
    let real = unsafe { *real };
    let (vip, vport, service) = if real.ambiguous == 0 {
        (real.vip, real.vport, real.service)
    } else {
        let Some(reverse) = REVERSE.get_ptr(key) else {
            return Ok(None);
        };
        let reverse = unsafe { *reverse };
        (reverse.vip, reverse.vport, reverse.service)
    };
    if packet.fragment {
        return Ok(Some(xdp_action::XDP_PASS));
    }
    if forward::expiring(ctx, packet)? {
        // Untranslated, so the kernel's Time Exceeded goes back to the
        // backend that sent it, and nothing about the backend reaches the
        // client.
        stats::count(Counter::TtlExpired);
        return Ok(Some(xdp_action::XDP_PASS));
    }
    let scratch = scratch()?;
    let now = unsafe { bpf_ktime_get_ns() };
    let client_key = &mut scratch.other;
    *client_key = *key;
    client_key.src = key.dst;
    client_key.dst = vip;
    client_key.sport = key.dport;
    client_key.dport = vport;
    let entry = CONNTRACK.get_ptr_mut(&scratch.other);
    // SAFETY: valid for this run.
    let entry = entry.map(|e| unsafe { &mut *e });
    let cached = match &entry {
        Some(f) if !packet.vlan && forward::fresh(&f.to_client, now) => Some(f.to_client),
        _ => None,
    };
    let route = if cached.is_some() {
        Route::Next
    } else {
        scratch.translated = *key;
        scratch.translated.src = vip;
        scratch.translated.sport = vport;
        let route = forward::route(ctx, packet, &scratch.translated, &mut scratch.fib);
        if route == Route::Local {
            // The backend talks to this host itself (a health check's
            // answer): not a reply of a balanced flow.
            return Ok(None);
        }
        route
    };
    let mut backend_id = None;
    if let Some(f) = entry {
        let state = conntrack::next_state(f.state, flow.tcp_flags);
        if sync::worth_reporting(f.state, state) && sync::on() {
            sync::report(&scratch.other, &key.src, &key.sport, state);
        }
        f.state = state;
        f.last_seen_ns = now;
        if route == Route::Next && cached.is_none() {
            f.to_client = forward::next_hop(&scratch.fib, now);
        }
        backend_id = Some(f.backend);
    }
    nat::rewrite(
        ctx,
        packet,
        Side::Source,
        &Endpoint {
            addr: &key.src,
            port: &key.sport,
        },
        &Endpoint {
            addr: &vip,
            port: &vport,
        },
    )?;
    let bytes = frame_len(ctx);
    stats::traffic(&SERVICE_STATS, service, Direction::Out, bytes, false);
    if let Some(id) = backend_id {
        stats::traffic(&BACKEND_STATS, id, Direction::Out, bytes, false);
    }
    stats::count(Counter::FromBackend);
    match cached {
        Some(hop) => transmit_counted(ctx, packet, &hop).map(Some),
        None => send(ctx, packet, route, &scratch.fib).map(Some),
    }
}
