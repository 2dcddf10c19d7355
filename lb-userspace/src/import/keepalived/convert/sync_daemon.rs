//! `lvs_sync_daemon INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N]
//! [ttl N] [group ADDRESS]` (in `global_defs`): IPVS's connection sync,
//! which becomes lbd's `flow_sync`. IPVS syncs over multicast, to
//! 224.0.0.81 unless `group` says otherwise, so the import does too.

use std::net::{IpAddr, Ipv4Addr};

use crate::{config::FlowSync, import::keepalived::Directive};

use super::context::Context;

/// IPVS's default sync group.
const IPVS_GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81));

pub(super) fn convert(cx: &mut Context, d: &Directive) -> Option<FlowSync> {
    let [interface, instance, options @ ..] = d.args.as_slice() else {
        cx.skip(
            d,
            "needs an interface and a VRRP instance: `lvs_sync_daemon eth1 VI_1`",
        );
        return None;
    };
    let mut sync = FlowSync {
        interface: interface.clone(),
        peers: Vec::new(),
        group: Some(IPVS_GROUP),
        port: None,
        id: None,
        maxlen: None,
        ttl: None,
        interval: None,
    };
    let mut words = options.iter();
    while let Some(key) = words.next() {
        let Some(value) = words.next() else {
            cx.skip(d, format!("`{key}` has no value; it was ignored"));
            break;
        };
        let bad = |cx: &mut Context, what: &str| {
            cx.skip(d, format!("`{key} {value}`: {what}; it was ignored"));
        };
        match key.as_str() {
            "id" => match value.parse() {
                Ok(v) => sync.id = Some(v),
                Err(_) => bad(cx, "not a number from 0 to 255"),
            },
            "maxlen" => match value.parse::<u16>() {
                Ok(v) if (68..=65507).contains(&v) => sync.maxlen = Some(v),
                _ => bad(cx, "not a number from 68 to 65507"),
            },
            "port" => match value.parse::<u16>() {
                Ok(v) if v != 0 => sync.port = Some(v),
                _ => bad(cx, "not a port from 1 to 65535"),
            },
            "ttl" => match value.parse::<u8>() {
                Ok(v) if v != 0 => sync.ttl = Some(v),
                _ => bad(cx, "not a number from 1 to 255"),
            },
            "group" => match value.parse::<IpAddr>() {
                Ok(a) if a.is_multicast() => sync.group = Some(a),
                _ => bad(cx, "not a multicast address"),
            },
            _ => bad(cx, "unknown option"),
        }
    }
    cx.skip(
        d,
        format!(
            "the sync does not follow `{instance}`: each lbd sends the flows it forwards \
             (the MASTER's) and installs its peer's; the rest was imported as `flow_sync`"
        ),
    );
    Some(sync)
}
