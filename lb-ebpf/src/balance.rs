//! The load balancer proper: client -> VIP packets are pinned to a backend
//! and translated to it; backend -> client replies are translated back to
//! come from the VIP. Everything else is not ours (`None`).

use aya_ebpf::{bindings::xdp_action, helpers::bpf_ktime_get_ns, programs::XdpContext};
use lb_common::{
    counters::Counter,
    hash::flow_hash,
    maps::{BACKEND_LIVE, Backend, Flow, FlowKey, NextHop, RealKey, ReverseFlow},
};

use crate::{
    conntrack::{self, Pinned},
    flow::{PacketFlow, TCP_RST, TCP_SYN},
    forward::{self, Route, send, transmit_counted},
    headers::IPPROTO_TCP,
    ingress::{self, Admission},
    maps::{
        BACKEND_STATS, BACKENDS, CONNTRACK, NEW_FLOW, REALS, REVERSE, SCRATCH, SERVICE_STATS,
        SERVICES, Scratch,
    },
    nat::{self, Endpoint, Side},
    parse::{Malformed, Packet},
    stats::{self, Direction},
    sync, time_exceeded,
    words::set_addr16,
};

/// Returned by the paths when the packet is not theirs.
const NOT_OURS: u32 = u32::MAX;
/// Returned by `to_tracked` when the flow has no live conntrack entry.
const UNTRACKED: u32 = u32::MAX - 1;

/// Handles a TCP or UDP packet if it belongs to a service or is a reply of
/// one; `None` when it is neither.
#[inline(always)]
pub(crate) fn balance(ctx: &XdpContext, packet: &Packet, flow: &PacketFlow) -> Option<u32> {
    // The service is looked up here so that a packet calls at most one of
    // the two paths: each BPF-to-BPF call is a return through the CPU's
    // return-stack mitigation.
    let action = match found_service(flow) {
        Ok(true) => match to_tracked(ctx, packet, flow) {
            UNTRACKED => to_new(ctx, packet, flow),
            action => action,
        },
        Ok(false) => from_backend(ctx, packet, flow),
        Err(Malformed) => {
            stats::count(Counter::Malformed);
            xdp_action::XDP_PASS
        }
    };
    (action != NOT_OURS).then_some(action)
}

/// Whether the packet is addressed to a service; if so, the service's
/// entry is copied to `Scratch::found`.
#[inline(always)]
fn found_service(flow: &PacketFlow) -> Result<bool, Malformed> {
    let key = &flow.key;
    let scratch = scratch()?;
    let service_key = &mut scratch.service;
    set_addr16(&mut service_key.addr, &key.dst);
    service_key.port = key.dport;
    service_key.proto = key.proto;
    service_key.family = key.family;
    let Some(service) = SERVICES.get_ptr(&*service_key) else {
        return Ok(false);
    };
    // SAFETY: a map value pointer stays valid for this program run.
    let service = unsafe { &*service };
    // Field by field: a whole-struct copy between two map values becomes
    // a call to a byte-loop memmove (LLVM cannot prove they do not overlap).
    let found = &mut scratch.found;
    found.id = service.id;
    found.ring_slot = service.ring_slot;
    found.ring_len = service.ring_len;
    found.scheduler = service.scheduler;
    found.sorry_backend = service.sorry_backend;
    Ok(true)
}

/// Separate BPF functions, each with its own stack frame, so the paths'
/// keys never share the 512-byte stack: they return a plain action. A
/// tracked flow, the common case, makes one call; a new flow two.
#[inline(never)]
fn to_tracked(ctx: &XdpContext, packet: &Packet, flow: &PacketFlow) -> u32 {
    action(try_to_tracked(ctx, packet, flow), UNTRACKED)
}

#[inline(never)]
fn to_new(ctx: &XdpContext, packet: &Packet, flow: &PacketFlow) -> u32 {
    action(try_to_new(ctx, packet, flow), NOT_OURS)
}

#[inline(never)]
fn from_backend(ctx: &XdpContext, packet: &Packet, flow: &PacketFlow) -> u32 {
    action(crate::reply::try_from_backend(ctx, packet, flow), NOT_OURS)
}

/// A path's result as an action; `none` when the path did not take it.
#[inline(always)]
fn action(result: Result<Option<u32>, Malformed>, none: u32) -> u32 {
    match result {
        Ok(Some(action)) => action,
        Ok(None) => none,
        Err(Malformed) => {
            stats::count(Counter::Malformed);
            xdp_action::XDP_PASS
        }
    }
}

/// This CPU's scratch space.
#[inline(always)]
pub(crate) fn scratch() -> Result<&'static mut Scratch, Malformed> {
    let p = SCRATCH.get_ptr_mut(0).ok_or(Malformed)?;
    // SAFETY: one slot per CPU, used by this run only.
    Ok(unsafe { &mut *p })
}

#[inline(always)]
pub(crate) fn frame_len(ctx: &XdpContext) -> u64 {
    (ctx.data_end() - ctx.data()) as u64
}

/// Client -> VIP:port of a flow with a live conntrack entry; `None` when
/// there is none (a new flow, or one whose backend is gone).
#[inline(always)]
fn try_to_tracked(
    ctx: &XdpContext,
    packet: &Packet,
    flow: &PacketFlow,
) -> Result<Option<u32>, Malformed> {
    // Every packet to a service comes here first: judge it before
    // anything else (in this frame, not the entry function's, whose stack
    // the ICMP path's frame leaves no room in).
    match ingress::admit(ctx, packet, flow)? {
        Admission::Admit => {}
        Admission::Drop(reason) => {
            stats::count(reason);
            return Ok(Some(xdp_action::XDP_DROP));
        }
        Admission::Expired => {
            stats::count(Counter::TtlExpired);
            return Ok(Some(time_exceeded::reply(ctx, packet, &flow.key)));
        }
    }
    let key = &flow.key;
    let flags = flow.tcp_flags;
    if packet.fragment {
        return Ok(None);
    }
    let Some(entry) = CONNTRACK.get_ptr_mut(key) else {
        return Ok(None);
    };
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: valid for this run; two CPUs updating one flow only race
    // on last_seen, state and the cached hop, which is harmless.
    let f = unsafe { &mut *entry };
    let backend = match conntrack::pinned_backend(f, now, flags, &conntrack::settings()) {
        Pinned::Live(backend) => backend,
        // Its real server left with `removed_server_flows: drop`: nothing
        // is sent on, and the flow is not refreshed, so it expires after
        // its idle timeout unless the server returns first (IPVS's
        // expire_nodest_conn=0).
        Pinned::Held => {
            stats::count(Counter::HeldFlow);
            return Ok(Some(xdp_action::XDP_DROP));
        }
        Pinned::Gone => return Ok(None),
    };
    let state = conntrack::next_state(f.state, flags);
    if (sync::worth_reporting(f.state, state) || sync::refresh_due(key, f.last_seen_ns, now))
        && sync::on()
    {
        sync::report(key, &backend.addr, &backend.port, state);
    }
    f.state = state;
    f.last_seen_ns = now;
    let (service, backend_id) = (f.service, f.backend);
    deliver_to_backend(
        ctx,
        packet,
        key,
        backend,
        Target {
            service,
            backend_id,
            entry: Some(f),
            now,
            new_flow: false,
        },
    )
    .map(Some)
}

/// Client -> VIP:port without a live entry: schedule it to a backend.
#[inline(always)]
fn try_to_new(
    ctx: &XdpContext,
    packet: &Packet,
    flow: &PacketFlow,
) -> Result<Option<u32>, Malformed> {
    let service = &scratch()?.found;
    let key = &flow.key;
    let tcp = key.proto == IPPROTO_TCP;
    let flags = flow.tcp_flags;
    let now = unsafe { bpf_ktime_get_ns() };
    if packet.fragment {
        // Later fragments carry no ports to balance on: the whole datagram
        // goes to the kernel, which reassembles it.
        return Ok(Some(xdp_action::XDP_PASS));
    }
    let mid_flow = tcp && flags & TCP_SYN == 0;
    let Some(backend_id) = crate::schedule::pick(service, flow_hash(key), mid_flow) else {
        stats::count(Counter::NoBackend);
        return Ok(Some(xdp_action::XDP_PASS));
    };
    let Some(backend) = BACKENDS.get(backend_id) else {
        stats::count(Counter::NoBackend);
        return Ok(Some(xdp_action::XDP_PASS));
    };
    if backend.flags & BACKEND_LIVE == 0 {
        stats::count(Counter::NoBackend);
        return Ok(Some(xdp_action::XDP_PASS));
    }
    // An RST for a flow we hold no state for is forwarded but remembered by
    // nobody: it ends something, it starts nothing.
    let remember = !(tcp && flags & TCP_RST != 0);
    let slot = NEW_FLOW.get_ptr_mut(0).ok_or(Malformed)?;
    // SAFETY: this CPU's slot, used by this run only.
    let new_entry = unsafe { &mut *slot };
    *new_entry = Flow {
        backend: backend_id,
        generation: backend.generation,
        service: service.id,
        state: conntrack::initial_state(tcp.then_some(flags)),
        last_seen_ns: now,
        to_backend: NextHop::default(),
        to_client: NextHop::default(),
    };
    let target = Target {
        service: service.id,
        backend_id,
        entry: remember.then_some(new_entry),
        now,
        new_flow: remember,
    };
    deliver_to_backend(ctx, packet, key, backend, target).map(Some)
}

/// Where a client packet goes and what to record about it.
struct Target<'a> {
    service: u32,
    backend_id: u32,
    /// The flow's entry: the live one, or a new one to insert.
    entry: Option<&'a mut Flow>,
    now: u64,
    new_flow: bool,
}

/// Translates a client packet to `backend` and sends it on.
#[inline(always)]
fn deliver_to_backend(
    ctx: &XdpContext,
    packet: &Packet,
    key: &FlowKey,
    backend: &Backend,
    target: Target<'_>,
) -> Result<u32, Malformed> {
    let scratch = scratch()?;
    let Target {
        service,
        backend_id,
        entry,
        now,
        new_flow,
    } = target;
    let cached = match &entry {
        Some(f) if !packet.vlan && forward::fresh(&f.to_backend, now) => Some(f.to_backend),
        _ => None,
    };
    let route = if cached.is_some() {
        Route::Next
    } else {
        scratch.translated = *key;
        scratch.translated.dst = backend.addr;
        scratch.translated.dport = backend.port;
        forward::route(ctx, packet, &scratch.translated, &mut scratch.fib)
    };
    if let Some(f) = entry {
        if route == Route::Next && cached.is_none() {
            f.to_backend = forward::next_hop(&scratch.fib, now);
        }
        if new_flow {
            // A new flow has no cached hop, so `scratch.translated` was
            // filled for the route lookup above.
            let _ = CONNTRACK.insert(key, &*f, 0);
            remember_reverse(key, scratch, service);
            stats::count(Counter::NewFlow);
            if sync::on() {
                sync::report(key, &backend.addr, &backend.port, f.state);
            }
        }
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
    stats::traffic(&SERVICE_STATS, service, Direction::In, bytes, new_flow);
    stats::traffic(&BACKEND_STATS, backend_id, Direction::In, bytes, new_flow);
    if route == Route::Local {
        // A real server on this host (a sorry page on 127.0.0.1, a
        // service on one of its addresses): the kernel delivers the
        // translated packet to its socket, tracked like any other flow;
        // the TC egress program translates its replies back.
        stats::count(Counter::LocalDestination);
        return Ok(xdp_action::XDP_PASS);
    }
    stats::count(Counter::ToBackend);
    match cached {
        Some(hop) => transmit_counted(ctx, packet, &hop),
        None => send(ctx, packet, route, &scratch.fib),
    }
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
