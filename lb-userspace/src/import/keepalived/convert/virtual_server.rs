//! `virtual_server IP PORT { ... }` and its `real_server`s.

use std::{net::IpAddr, time::Duration};

use crate::{
    config::{ForwardingMethod, Protocol, RealServer, Scheduler, SorryServer, VirtualServer},
    import::keepalived::Directive,
};

use super::{
    checks::{self, Inherit},
    context::Context,
};

/// `persistence_timeout` written without a value (keepalived: 6 minutes).
const DEFAULT_PERSISTENCE: Duration = Duration::from_mins(6);

pub(super) fn convert(cx: &mut Context, block: &Directive) -> Option<VirtualServer> {
    let (address, port) = match block.args.as_slice() {
        [kind, _] if kind == "fwmark" => {
            cx.skip(
                block,
                "lbd balances by address and port, not by firewall mark",
            );
            return None;
        }
        [kind, _] if kind == "group" => {
            cx.skip(
                block,
                "lbd has no virtual server groups; write one virtual_server each",
            );
            return None;
        }
        [address, port] => (address.parse::<IpAddr>().ok(), port.parse::<u16>().ok()),
        _ => (None, None),
    };
    let (Some(address), Some(port)) = (address, port) else {
        cx.skip(block, "expected `virtual_server ADDRESS PORT`");
        return None;
    };
    let mut vs = VirtualServer {
        name: None,
        address,
        port,
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Wrr,
        method: ForwardingMethod::Nat,
        persistence_timeout: None,
        delay_loop: Duration::from_mins(1),
        alpha: false,
        sorry_server: None,
        sorry_server_inhibit: false,
        // IPVS's default expire_nodest_conn=0, which lbd's default keeps.
        removed_server_flows: crate::config::RemovedServerFlows::Drop,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        virtualhost: None,
        real_servers: Vec::new(),
    };
    // None: not written; Some(None): written but unusable (already reported).
    let mut scheduler = None;
    let mut inherit = Inherit::default();
    // Real servers come last: they inherit settings written after them.
    let mut real_servers = Vec::new();
    for d in &block.children {
        match d.name.as_str() {
            // `lb_algo` and `lb_kind` are keepalived's older names.
            "lvs_sched" | "lb_algo" => scheduler = Some(scheduler_of(cx, d)),
            "lvs_method" | "lb_kind" => vs.method = method(cx, d).unwrap_or(vs.method),
            "protocol" => vs.protocol = protocol(cx, d).unwrap_or(vs.protocol),
            "persistence_timeout" if d.args.is_empty() => {
                vs.persistence_timeout = Some(DEFAULT_PERSISTENCE);
            }
            "persistence_timeout" => vs.persistence_timeout = cx.seconds(d),
            "sorry_server" => vs.sorry_server = sorry_server(cx, d),
            "sorry_server_inhibit" => vs.sorry_server_inhibit = cx.flag(d),
            "alpha" => vs.alpha = cx.flag(d),
            "quorum" => vs.quorum = cx.int(d, 1, 65535).unwrap_or(vs.quorum),
            "hysteresis" => vs.hysteresis = cx.int(d, 0, 65535).unwrap_or(vs.hysteresis),
            "quorum_up" => vs.quorum_up = cx.script(d),
            "quorum_down" => vs.quorum_down = cx.script(d),
            "virtualhost" => vs.virtualhost = cx.arg(d).map(str::to_owned),
            "real_server" => real_servers.push(d),
            // A virtual server's delay_loop is its own setting, not only a default.
            "delay_loop" => vs.delay_loop = cx.seconds(d).unwrap_or(vs.delay_loop),
            _ if inherit.take(cx, d) => {}
            _ => cx.unknown(d),
        }
    }
    if scheduler.is_none() {
        cx.change(
            block,
            "no lvs_sched: keepalived's default `wlc` became lbd's default `wrr`",
        );
    }
    vs.scheduler = scheduler.flatten().unwrap_or(Scheduler::Wrr);
    vs.real_servers = real_servers
        .into_iter()
        .filter_map(|d| real_server(cx, d, &inherit))
        .collect();
    Some(vs)
}

fn scheduler_of(cx: &mut Context, d: &Directive) -> Option<Scheduler> {
    let value = cx.arg(d)?;
    match value.to_ascii_lowercase().parse() {
        Ok(s) => Some(s),
        Err(e) => {
            cx.skip(d, e.to_string());
            None
        }
    }
}

/// `lvs_method NAT|DR|TUN [tunnel options]`.
fn method(cx: &mut Context, d: &Directive) -> Option<ForwardingMethod> {
    let Some((value, rest)) = d.args.split_first() else {
        cx.skip(d, "no value");
        return None;
    };
    let method = match value.to_ascii_uppercase().as_str() {
        "NAT" => ForwardingMethod::Nat,
        "DR" => ForwardingMethod::Dr,
        "TUN" => ForwardingMethod::Tun,
        _ => {
            cx.skip(d, format!("unknown method `{value}` (NAT, DR or TUN)"));
            return None;
        }
    };
    if !rest.is_empty() {
        cx.skip(
            d,
            format!(
                "`{}` ignored: lbd tunnels with plain IP-in-IP",
                rest.join(" ")
            ),
        );
    }
    Some(method)
}

fn protocol(cx: &mut Context, d: &Directive) -> Option<Protocol> {
    let value = cx.arg(d)?;
    match value.to_ascii_uppercase().as_str() {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => {
            cx.skip(d, format!("unknown protocol `{value}` (TCP, UDP or SCTP)"));
            None
        }
    }
}

/// `sorry_server IP PORT`.
fn sorry_server(cx: &mut Context, d: &Directive) -> Option<SorryServer> {
    let parsed = match d.args.as_slice() {
        [address, port] => address.parse().ok().zip(nonzero_port(port)),
        _ => None,
    };
    let Some((address, port)) = parsed else {
        cx.skip(d, "expected `sorry_server ADDRESS PORT`");
        return None;
    };
    Some(SorryServer {
        address,
        port: Some(port),
    })
}

fn nonzero_port(text: &str) -> Option<u16> {
    text.parse().ok().filter(|p| *p != 0)
}

/// `real_server IP [PORT] { ... }`.
fn real_server(cx: &mut Context, block: &Directive, outer: &Inherit) -> Option<RealServer> {
    let parsed = match block.args.as_slice() {
        [address] => address.parse().ok().map(|a| (a, None)),
        [address, port] => address
            .parse()
            .ok()
            .zip(nonzero_port(port))
            .map(|(a, p)| (a, Some(p))),
        _ => None,
    };
    let Some((address, port)) = parsed else {
        cx.skip(block, "expected `real_server ADDRESS PORT`");
        return None;
    };
    let mut rs = RealServer {
        address,
        port,
        weight: 1,
        inhibit_on_failure: false,
        notify_up: None,
        notify_down: None,
        checks: Vec::new(),
    };
    let mut inherit = Inherit::default();
    let mut checkers = Vec::new();
    for d in &block.children {
        match d.name.as_str() {
            "weight" => rs.weight = cx.int(d, 0, 65535).unwrap_or(rs.weight),
            "inhibit_on_failure" => rs.inhibit_on_failure = cx.flag(d),
            "notify_up" => rs.notify_up = cx.script(d),
            "notify_down" => rs.notify_down = cx.script(d),
            name if checks::CHECKERS.contains(&name) => checkers.push(d),
            _ if inherit.take(cx, d) => {}
            _ => cx.unknown(d),
        }
    }
    // Checkers come last: they inherit settings written after them.
    let inherit = outer.under(&inherit);
    rs.checks = checkers
        .into_iter()
        .filter_map(|d| checks::checker(cx, d, &inherit))
        .collect();
    Some(rs)
}
