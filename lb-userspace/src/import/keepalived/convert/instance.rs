//! `vrrp_instance NAME { ... }`: one virtual router, its addresses, peers
//! and what it tracks.

use std::{net::IpAddr, time::Duration};

use crate::{
    config::{
        AuthType, Authentication, InitialState, IpPrefix, TrackInterface, TrackScript,
        TrackScriptRef, VirtualAddress, VrrpInstance,
    },
    import::keepalived::Directive,
};

use super::{context::Context, global::InstanceDefaults, version};

/// Settings that are required, or whose default comes from `global_defs`
/// when the instance sets none.
#[derive(Default)]
struct Inherited {
    interface: Option<String>,
    version: Option<u8>,
    garp_master_delay: Option<Duration>,
    garp_master_repeat: Option<u32>,
    /// Zero: refresh explicitly off (keepalived's `0`).
    garp_master_refresh: Option<Duration>,
    garp_master_refresh_repeat: Option<u32>,
    virtual_router_id: Option<u8>,
}

pub(super) fn convert(
    cx: &mut Context,
    block: &Directive,
    defaults: &InstanceDefaults,
    scripts: &[TrackScript],
) -> Option<VrrpInstance> {
    let name = cx.block_name(block)?;
    // keepalived's defaults, which are also lbd's.
    let mut v = VrrpInstance {
        name,
        state: InitialState::Backup,
        interface: String::new(),
        virtual_router_id: 0,
        priority: 100,
        advert_int: Duration::from_secs(1),
        version: 2,
        authentication: None,
        virtual_ipaddresses: Vec::new(),
        virtual_ipaddresses_excluded: Vec::new(),
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        unicast_min_ttl: 255,
        preempt: true,
        preempt_delay: Duration::ZERO,
        accept: true,
        garp_master_delay: Duration::from_secs(5),
        garp_master_repeat: 5,
        garp_master_refresh: None,
        garp_master_refresh_repeat: 1,
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify_stop: None,
        notify: None,
    };
    let mut own = Inherited::default();
    for d in &block.children {
        match d.name.as_str() {
            "state" => v.state = state(cx, d).unwrap_or(v.state),
            "interface" => own.interface = cx.arg(d).map(str::to_owned),
            "virtual_router_id" => own.virtual_router_id = cx.int(d, 1, 255),
            "priority" => v.priority = cx.int(d, 1, 255).unwrap_or(v.priority),
            "advert_int" => v.advert_int = cx.seconds(d).unwrap_or(v.advert_int),
            "version" => own.version = cx.int(d, 2, 3),
            "authentication" => v.authentication = authentication(cx, d),
            "virtual_ipaddress" => v.virtual_ipaddresses.extend(addresses(cx, d)),
            "virtual_ipaddress_excluded" => {
                v.virtual_ipaddresses_excluded.extend(addresses(cx, d));
            }
            // keepalived parses both with one handler into one source
            // address (vrrp_parser.c): lbd's `unicast_src_ip` is also the
            // source of multicast adverts.
            "unicast_src_ip" | "mcast_src_ip" => v.unicast_src_ip = unicast_src_ip(cx, d),
            "unicast_peer" => {
                let (addresses, min_ttl) = peers(cx, d);
                v.unicast_peers.extend(addresses);
                v.unicast_min_ttl = min_ttl;
            }
            // keepalived's opt-in check that a unicast advert comes from a
            // listed peer: lbd always checks.
            "check_unicast_src" => {}
            "nopreempt" => v.preempt = !cx.flag(d),
            "preempt" => v.preempt = cx.flag(d),
            "preempt_delay" => v.preempt_delay = preempt_delay(cx, d).unwrap_or(v.preempt_delay),
            "accept" => v.accept = cx.flag(d),
            "no_accept" => v.accept = !cx.flag(d),
            "garp_master_delay" => own.garp_master_delay = cx.seconds(d),
            "garp_master_repeat" => own.garp_master_repeat = cx.int(d, 1, 255),
            "garp_master_refresh" => {
                own.garp_master_refresh = cx.seconds(d);
            }
            "garp_master_refresh_repeat" => own.garp_master_refresh_repeat = cx.int(d, 1, 255),
            "track_script" => v.track_scripts.extend(track_scripts(cx, d, scripts)),
            "track_interface" => v.track_interfaces.extend(track_interfaces(cx, d)),
            "notify_master" => v.notify_master = cx.script(d),
            "notify_backup" => v.notify_backup = cx.script(d),
            "notify_fault" => v.notify_fault = cx.script(d),
            "notify_stop" => v.notify_stop = cx.script(d),
            "notify" => v.notify = cx.script(d),
            _ => cx.unknown(d),
        }
    }
    let Some(interface) = own.interface.or_else(|| defaults.interface.clone()) else {
        cx.skip(
            block,
            "no `interface` (keepalived would guess eth0); add one and import again",
        );
        return None;
    };
    let Some(vrid) = own.virtual_router_id else {
        cx.skip(
            block,
            "no valid `virtual_router_id`; add one and import again",
        );
        return None;
    };
    v.interface = interface;
    v.virtual_router_id = vrid;
    v.version = own.version.or(defaults.version).unwrap_or(v.version);
    v.garp_master_delay = own
        .garp_master_delay
        .or(defaults.garp_master_delay)
        .unwrap_or(v.garp_master_delay);
    v.garp_master_repeat = own
        .garp_master_repeat
        .or(defaults.garp_master_repeat)
        .unwrap_or(v.garp_master_repeat);
    v.garp_master_refresh = own
        .garp_master_refresh
        .or(defaults.garp_master_refresh)
        .filter(|d| !d.is_zero());
    v.garp_master_refresh_repeat = own
        .garp_master_refresh_repeat
        .or(defaults.garp_master_refresh_repeat)
        .unwrap_or(v.garp_master_refresh_repeat);
    version::fit(cx, block, &mut v);
    Some(v)
}

/// keepalived refuses more than 1000 s (vrrp_parser.c), and so does lbd.
fn preempt_delay(cx: &mut Context, d: &Directive) -> Option<Duration> {
    let delay = cx.seconds(d)?;
    if delay > Duration::from_secs(1000) {
        cx.skip(d, "more than keepalived's and lbd's limit of 1000 seconds");
        return None;
    }
    Some(delay)
}

fn state(cx: &mut Context, d: &Directive) -> Option<InitialState> {
    let value = cx.arg(d)?;
    match value.to_ascii_uppercase().as_str() {
        "MASTER" => Some(InitialState::Master),
        "BACKUP" => Some(InitialState::Backup),
        _ => {
            cx.skip(d, format!("`{value}` is neither MASTER nor BACKUP"));
            None
        }
    }
}

fn authentication(cx: &mut Context, block: &Directive) -> Option<Authentication> {
    let mut auth_type = None;
    let mut auth_pass = None;
    for d in &block.children {
        match d.name.as_str() {
            "auth_type" => match cx.arg(d).map(str::to_ascii_uppercase).as_deref() {
                Some("PASS") => auth_type = Some(AuthType::Pass),
                Some("AH") => auth_type = Some(AuthType::Ah),
                Some(other) => cx.skip(d, format!("unknown type `{other}` (PASS or AH)")),
                None => {}
            },
            "auth_pass" if d.args.iter().all(String::is_empty) => cx.skip(d, "empty password"),
            "auth_pass" => auth_pass = cx.arg(d).map(str::to_owned),
            _ => cx.unknown(d),
        }
    }
    match (auth_type, auth_pass) {
        (Some(auth_type), Some(auth_pass)) => Some(Authentication {
            auth_type,
            auth_pass,
        }),
        (None, None) => None,
        _ => {
            cx.skip(block, "needs both `auth_type` and `auth_pass`");
            None
        }
    }
}

/// `virtual_ipaddress { ADDR[/LEN] [brd B] [dev D] [label L] ... }`, one
/// address per line.
fn addresses(cx: &mut Context, block: &Directive) -> Vec<VirtualAddress> {
    block
        .children
        .iter()
        .filter_map(|d| address(cx, d))
        .collect()
}

fn address(cx: &mut Context, line: &Directive) -> Option<VirtualAddress> {
    let prefix: IpPrefix = match line.name.parse() {
        Ok(prefix) => prefix,
        Err(e) => {
            cx.skip(line, format!("not an address: {e}"));
            return None;
        }
    };
    let mut vip = VirtualAddress::new(prefix);
    let mut args = line.args.iter();
    while let Some(option) = args.next() {
        match option.as_str() {
            // Flags of `ip address add` that lbd does not pass on.
            "home" | "-nodad" | "nodad" | "noprefixroute" | "autojoin" | "no_track" => {
                cx.skip(
                    line,
                    format!("option `{option}` ignored: lbd adds plain addresses"),
                );
            }
            _ => {
                let Some(value) = args.next() else {
                    cx.skip(line, format!("option `{option}` has no value; ignored"));
                    break;
                };
                match option.as_str() {
                    "brd" => match value.parse() {
                        Ok(brd) => vip.brd = Some(brd),
                        Err(_) => cx.skip(line, format!("`brd {value}` ignored: not an address")),
                    },
                    "dev" => vip.dev = Some(value.clone()),
                    "label" => vip.label = Some(value.clone()),
                    _ => cx.skip(
                        line,
                        format!("option `{option} {value}` ignored: lbd sets only brd, dev, label"),
                    ),
                }
            }
        }
    }
    Some(vip)
}

/// `unicast_peer { ADDR [min_ttl N] [max_ttl N] }`, one peer per line:
/// the addresses and the lowest TTL to accept from them.
fn peers(cx: &mut Context, block: &Directive) -> (Vec<IpAddr>, u8) {
    let mut out = Vec::new();
    let mut min_ttls: Vec<u8> = Vec::new();
    for line in &block.children {
        let Ok(addr) = line.name.parse() else {
            cx.skip(line, "not an IP address");
            continue;
        };
        out.push(addr);
        let mut args = line.args.iter();
        let mut min_ttl = None;
        while let Some(option) = args.next() {
            let value = args.next().map(|v| v.parse::<u8>());
            match (option.as_str(), value) {
                ("min_ttl", Some(Ok(ttl))) if ttl > 0 => min_ttl = Some(ttl),
                ("max_ttl", Some(Ok(u8::MAX))) => {}
                ("max_ttl", Some(Ok(_))) => cx.skip(
                    line,
                    "max_ttl ignored: lbd sets no upper TTL limit (its adverts leave with 255)",
                ),
                _ => cx.skip(
                    line,
                    format!(
                        "`{option}` ignored: only `min_ttl N` and `max_ttl N` (1-255) may follow"
                    ),
                ),
            }
        }
        min_ttls.push(min_ttl.unwrap_or(u8::MAX));
    }
    let lowest = min_ttls.iter().copied().min().unwrap_or(u8::MAX);
    if min_ttls.iter().any(|t| *t != lowest) {
        cx.change(
            block,
            format!(
                "lbd has one `unicast_min_ttl` for every peer: the lowest, {lowest}, applies to all"
            ),
        );
    } else if lowest == u8::MAX && !out.is_empty() {
        // keepalived checks no TTL on unicast unless told; lbd holds peers
        // to 255 (RFC 5798 7.1), which a routed peer cannot meet.
        cx.change(
            block,
            "lbd accepts adverts from these peers only with TTL 255 (peers on a connected \
             subnet, RFC 5798 7.1); keepalived checked no TTL: for peers behind a router set \
             `unicast_min_ttl` (255 minus the hops)",
        );
    }
    (out, lowest)
}

/// `NAME [weight W]` lines of `track_script` / `track_interface`.
fn name_and_weight(cx: &mut Context, line: &Directive) -> Option<i32> {
    match line.args.as_slice() {
        [] => None,
        [keyword, value] if keyword == "weight" => {
            let weight = value
                .parse::<i32>()
                .ok()
                .filter(|w| (-253..=253).contains(w));
            if weight.is_none() {
                cx.skip(
                    line,
                    format!("weight `{value}` ignored: not from -253 to 253"),
                );
            }
            weight
        }
        _ => {
            cx.skip(
                line,
                "only `weight W` may follow the name; the rest was ignored",
            );
            None
        }
    }
}

fn track_scripts(
    cx: &mut Context,
    block: &Directive,
    known: &[TrackScript],
) -> Vec<TrackScriptRef> {
    let mut out = Vec::new();
    for line in &block.children {
        if !known.iter().any(|s| s.name == line.name) {
            cx.skip(line, "no imported `vrrp_script` has this name");
            continue;
        }
        let weight = name_and_weight(cx, line);
        out.push(TrackScriptRef {
            name: line.name.clone(),
            weight,
        });
    }
    out
}

fn track_interfaces(cx: &mut Context, block: &Directive) -> Vec<TrackInterface> {
    block
        .children
        .iter()
        .map(|line| TrackInterface {
            name: line.name.clone(),
            weight: name_and_weight(cx, line),
        })
        .collect()
}

/// `unicast_src_ip ADDR[/LEN]`: keepalived takes a prefix length and uses
/// only the address (its `inet_stosockaddr`), so lbd does too.
fn unicast_src_ip(cx: &mut Context, d: &Directive) -> Option<IpAddr> {
    let value = cx.arg(d)?;
    let (address, prefix) = match value.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (value, None),
    };
    match address.parse() {
        Ok(ip) => {
            if let Some(prefix) = prefix {
                cx.change(
                    d,
                    format!("the prefix length /{prefix} is dropped: adverts are sent from {ip}"),
                );
            }
            Some(ip)
        }
        Err(e) => {
            cx.skip(d, format!("`{value}`: {e}"));
            None
        }
    }
}
