//! `global_defs`: daemon settings, and the defaults it sets for every
//! `vrrp_instance` that does not set its own.

use std::time::Duration;

use crate::{
    config::{FlowSync, Global},
    import::keepalived::Directive,
};

use super::context::Context;

/// keepalived's `vrrp_*` globals and `default_interface`, applied per instance.
#[derive(Debug, Default)]
pub(super) struct InstanceDefaults {
    pub(super) interface: Option<String>,
    pub(super) version: Option<u8>,
    pub(super) garp_master_delay: Option<Duration>,
    pub(super) garp_master_repeat: Option<u32>,
    /// Zero: refresh explicitly off.
    pub(super) garp_master_refresh: Option<Duration>,
    pub(super) garp_master_refresh_repeat: Option<u32>,
}

pub(super) fn convert(
    cx: &mut Context,
    block: &Directive,
    global: &mut Global,
    defaults: &mut InstanceDefaults,
    flow_sync: &mut Option<FlowSync>,
) {
    for d in &block.children {
        match d.name.as_str() {
            "router_id" => global.router_id = cx.arg(d).map(str::to_owned),
            // `script_user USER [GROUP]`
            "script_user" if d.args.is_empty() => cx.skip(d, "no user given"),
            "script_user" => global.script_user = Some(d.args.join(" ")),
            "enable_script_security" => global.enable_script_security = cx.flag(d),
            "lvs_timeouts" => lvs_timeouts(cx, d, global),
            "lvs_sync_daemon" => {
                if let Some(sync) = super::sync_daemon::convert(cx, d) {
                    *flow_sync = Some(sync);
                }
            }
            "default_interface" => defaults.interface = cx.arg(d).map(str::to_owned),
            "vrrp_version" => defaults.version = cx.int(d, 2, 3),
            "vrrp_garp_master_delay" => defaults.garp_master_delay = cx.seconds(d),
            "vrrp_garp_master_repeat" => defaults.garp_master_repeat = cx.int(d, 1, 255),
            "vrrp_garp_master_refresh" => {
                defaults.garp_master_refresh = cx.seconds(d);
            }
            "vrrp_garp_master_refresh_repeat" => {
                defaults.garp_master_refresh_repeat = cx.int(d, 1, 255);
            }
            _ => cx.unknown(d),
        }
    }
}

/// `lvs_timeouts [tcp N] [tcpfin N] [udp N]`: IPVS's connection timeouts,
/// which are the data plane's conntrack timeouts in lbd.
fn lvs_timeouts(cx: &mut Context, d: &Directive, global: &mut Global) {
    let mut args = d.args.iter();
    while let Some(key) = args.next() {
        let value = args
            .next()
            .and_then(|v| crate::import::values::parse_seconds(v));
        let slot = match key.as_str() {
            "tcp" => &mut global.conntrack.tcp,
            "tcpfin" => &mut global.conntrack.tcp_fin,
            "udp" => &mut global.conntrack.udp,
            _ => {
                cx.skip(
                    d,
                    format!("unknown timeout `{key}`; the rest of the line was ignored"),
                );
                return;
            }
        };
        let Some(value) = value else {
            cx.skip(
                d,
                format!("`{key}` needs a number of seconds; the rest was ignored"),
            );
            return;
        };
        *slot = Some(value);
    }
}
