//! The load balancer proper: client -> VIP packets are pinned to a backend
//! and translated to it; backend -> client replies are translated back to
//! come from the VIP. Everything else is not ours (`None`).

use aya_ebpf::{bindings::xdp_action, helpers::bpf_ktime_get_ns, programs::XdpContext};
use lb_common::{
    counters::Counter,
    hash::flow_hash,
    maps::{BACKEND_LIVE, Flow, FlowKey, RealKey, ReverseFlow, ServiceKey},
};

use crate::{
    conntrack,
    flow::{PacketFlow, TCP_FIN, TCP_RST, TCP_SYN},
    forward::{self, Route},
    headers::IPPROTO_TCP,
    maps::{
        BACKEND_STATS, BACKENDS, CONNTRACK, REALS, REVERSE, SCRATCH, SERVICE_STATS, SERVICES,
        Scratch,
    },
    nat::{self, Endpoint, Side},
    parse::{Malformed, Packet},
    stats::{self, Direction},
};

/// Returned by the two paths when the packet is not theirs.
const NOT_OURS: u32 = u32::MAX;

/// Handles a TCP or UDP packet if it belongs to a service or is a reply of
/// one; `None` when it is neither.
#[inline(always)]
pub(crate) fn balance(ctx: &XdpContext, packet: &Packet, flow: &PacketFlow) -> Option<u32> {
    let action = to_backend(ctx, packet, flow);
    if action != NOT_OURS {
        return Some(action);
    }
    let action = from_backend(ctx, packet, flow);
    (action != NOT_OURS).then_some(action)
}

/// Separate BPF functions, each with its own stack frame, so the two paths'
/// keys never share the 512-byte stack: they return a plain action.
#[inline(never)]
fn to_backend(ctx: &XdpContext, packet: &Packet, flow: &PacketFlow) -> u32 {
    match try_to_backend(ctx, packet, flow) {
        Ok(Some(action)) => action,
        Ok(None) => NOT_OURS,
        Err(Malformed) => {
            stats::count(Counter::Malformed);
            xdp_action::XDP_PASS
        }
    }
}

#[inline(never)]
fn from_backend(ctx: &XdpContext, packet: &Packet, flow: &PacketFlow) -> u32 {
    match try_from_backend(ctx, packet, flow) {
        Ok(Some(action)) => action,
        Ok(None) => NOT_OURS,
        Err(Malformed) => {
            stats::count(Counter::Malformed);
            xdp_action::XDP_PASS
        }
    }
}

/// This CPU's scratch space.
#[inline(always)]
fn scratch() -> Result<&'static mut Scratch, Malformed> {
    let p = SCRATCH.get_ptr_mut(0).ok_or(Malformed)?;
    // SAFETY: one slot per CPU, used by this run only.
    Ok(unsafe { &mut *p })
}

#[inline(always)]
fn frame_len(ctx: &XdpContext) -> u64 {
    (ctx.data_end() - ctx.data()) as u64
}

/// Client -> VIP:port.
#[inline(always)]
fn try_to_backend(
    ctx: &XdpContext,
    packet: &Packet,
    flow: &PacketFlow,
) -> Result<Option<u32>, Malformed> {
    let key = &flow.key;
    let service_key = ServiceKey {
        addr: key.dst,
        port: key.dport,
        proto: key.proto,
        family: key.family,
    };
    let Some(service) = SERVICES.get_ptr(&service_key) else {
        return Ok(None);
    };
    // SAFETY: a map value pointer stays valid for this program run.
    let service = unsafe { &*service };
    if packet.fragment {
        // Later fragments carry no ports to balance on: the whole datagram
        // goes to the kernel, which reassembles it.
        return Ok(Some(xdp_action::XDP_PASS));
    }
    let tcp = key.proto == IPPROTO_TCP;
    let flags = flow.tcp_flags;
    if tcp && flags & (TCP_SYN | TCP_FIN) == (TCP_SYN | TCP_FIN) {
        // Never valid; a classic scan. No backend should see it.
        stats::count(Counter::BadTcpFlags);
        return Ok(Some(xdp_action::XDP_DROP));
    }

    let now = unsafe { bpf_ktime_get_ns() };
    let settings = conntrack::settings();
    let mut pinned = None;
    if let Some(entry) = CONNTRACK.get_ptr_mut(key) {
        // SAFETY: valid for this run; concurrent updates of one flow from two
        // CPUs only race on last_seen/state, which is harmless.
        let mut f = unsafe { *entry };
        if conntrack::usable(&f, now, flags, &settings) {
            f.state = conntrack::next_state(f.state, flags);
            f.last_seen_ns = now;
            unsafe { *entry = f };
            pinned = Some(f.backend);
        }
    }
    let new_flow = pinned.is_none();
    let backend_id = if let Some(id) = pinned {
        id
    } else {
        let mid_flow = tcp && flags & TCP_SYN == 0;
        let Some(id) = crate::schedule::pick(service, flow_hash(key), mid_flow) else {
            stats::count(Counter::NoBackend);
            return Ok(Some(xdp_action::XDP_PASS));
        };
        id
    };
    let Some(backend) = BACKENDS.get(backend_id) else {
        stats::count(Counter::NoBackend);
        return Ok(Some(xdp_action::XDP_PASS));
    };
    if backend.flags & BACKEND_LIVE == 0 {
        stats::count(Counter::NoBackend);
        return Ok(Some(xdp_action::XDP_PASS));
    }

    let scratch = scratch()?;
    scratch.translated = *key;
    scratch.translated.dst = backend.addr;
    scratch.translated.dport = backend.port;
    let route = forward::route(ctx, packet, &scratch.translated, &mut scratch.fib);
    if route == Route::Local {
        stats::count(Counter::LocalDestination);
        return Ok(Some(xdp_action::XDP_PASS));
    }
    // An RST for a flow we hold no state for is forwarded but remembered by
    // nobody: it ends something, it starts nothing.
    if new_flow && !(tcp && flags & TCP_RST != 0) {
        let state = conntrack::initial_state(tcp.then_some(flags));
        let entry = Flow {
            backend: backend_id,
            generation: backend.generation,
            service: service.id,
            state,
            last_seen_ns: now,
        };
        let _ = CONNTRACK.insert(key, &entry, 0);
        remember_reverse(key, scratch, service.id);
        stats::count(Counter::NewFlow);
    }
    nat::rewrite(
        ctx,
        packet,
        Side::Destination,
        &Endpoint {
            addr: &key.dst,
            port: &key.dport,
        },
        &Endpoint {
            addr: &backend.addr,
            port: &backend.port,
        },
    )?;
    let bytes = frame_len(ctx);
    stats::traffic(&SERVICE_STATS, service.id, Direction::In, bytes, new_flow);
    stats::traffic(&BACKEND_STATS, backend_id, Direction::In, bytes, new_flow);
    stats::count(Counter::ToBackend);
    send(ctx, packet, route, &scratch.fib).map(Some)
}

/// For a backend that serves several services its replies are ambiguous:
/// remember which VIP this flow came through.
#[inline(always)]
fn remember_reverse(client_key: &FlowKey, scratch: &mut Scratch, service: u32) {
    let translated = &scratch.translated;
    let real_key = RealKey {
        addr: translated.dst,
        port: translated.dport,
        proto: translated.proto,
        family: translated.family,
    };
    let Some(real) = REALS.get_ptr(&real_key) else {
        return;
    };
    // SAFETY: valid for this run.
    if unsafe { (*real).ambiguous } == 0 {
        return;
    }
    let reply = &mut scratch.other;
    *reply = *translated;
    reply.src = translated.dst;
    reply.dst = translated.src;
    reply.sport = translated.dport;
    reply.dport = translated.sport;
    let reverse = ReverseFlow {
        vip: client_key.dst,
        vport: client_key.dport,
        _pad: [0; 2],
        service,
    };
    let _ = REVERSE.insert(&scratch.other, &reverse, 0);
}

/// Backend -> client: a reply, translated back to come from the VIP.
#[inline(always)]
fn try_from_backend(
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
    let scratch = scratch()?;
    scratch.translated = *key;
    scratch.translated.src = vip;
    scratch.translated.sport = vport;
    let route = forward::route(ctx, packet, &scratch.translated, &mut scratch.fib);
    if route == Route::Local {
        // The backend talks to this host itself (a health check's answer):
        // not a reply of a balanced flow.
        return Ok(None);
    }
    let client_key = &mut scratch.other;
    *client_key = *key;
    client_key.src = key.dst;
    client_key.dst = vip;
    client_key.sport = key.dport;
    client_key.dport = vport;
    let mut backend_id = None;
    if let Some(entry) = CONNTRACK.get_ptr_mut(&scratch.other) {
        // SAFETY: valid for this run.
        unsafe {
            (*entry).state = conntrack::next_state((*entry).state, flow.tcp_flags);
            (*entry).last_seen_ns = bpf_ktime_get_ns();
            backend_id = Some((*entry).backend);
        }
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
    send(ctx, packet, route, &scratch.fib).map(Some)
}

/// Transmits a translated packet along `route`, or hands it to the kernel.
#[inline(always)]
pub(crate) fn send(
    ctx: &XdpContext,
    packet: &Packet,
    route: Route,
    fib: &aya_ebpf::bindings::bpf_fib_lookup,
) -> Result<u32, Malformed> {
    match route {
        // VLAN-tagged frames leave through the kernel's VLAN devices.
        Route::Next if !packet.vlan => {
            let action = forward::transmit(ctx, packet, fib)?;
            if action == xdp_action::XDP_PASS {
                stats::count(Counter::KernelForward);
            } else {
                stats::count(Counter::Redirect);
            }
            Ok(action)
        }
        _ => {
            stats::count(Counter::KernelForward);
            Ok(xdp_action::XDP_PASS)
        }
    }
}
