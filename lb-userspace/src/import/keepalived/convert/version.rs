//! What keepalived fixes up in an instance after reading it, done the same
//! way so the imported instance passes `lbd check`: an IPv6 instance needs
//! VRRPv3, addresses of the other family are not advertised, and VRRPv2
//! counts whole seconds.

use std::time::Duration;

use crate::{config::VrrpInstance, import::keepalived::Directive};

use super::context::Context;

pub(super) fn fit(cx: &mut Context, block: &Directive, v: &mut VrrpInstance) {
    // keepalived takes the instance's family from its first address.
    let Some(first) = v.virtual_ipaddresses.first() else {
        return whole_seconds(cx, block, v);
    };
    let ipv6 = first.address.addr().is_ipv6();
    let (same, other): (Vec<_>, Vec<_>) = v
        .virtual_ipaddresses
        .drain(..)
        .partition(|a| a.address.addr().is_ipv6() == ipv6);
    if !other.is_empty() {
        cx.change(
            block,
            "addresses of the other IP family moved to virtual_ipaddresses_excluded, as keepalived does",
        );
    }
    v.virtual_ipaddresses = same;
    v.virtual_ipaddresses_excluded.extend(other);
    if ipv6 && v.version == 2 {
        cx.change(
            block,
            "VRRPv2 cannot carry IPv6; version 3 is used, as keepalived does",
        );
        v.version = 3;
    }
    whole_seconds(cx, block, v);
}

/// RFC 3768 5.3.7: a VRRPv2 advert interval is whole seconds.
fn whole_seconds(cx: &mut Context, block: &Directive, v: &mut VrrpInstance) {
    if v.version != 2 || v.advert_int.subsec_nanos() == 0 {
        return;
    }
    let rounded = Duration::from_secs(v.advert_int.as_secs_f64().round().max(1.0) as u64);
    cx.change(
        block,
        format!(
            "advert_int {} is not whole seconds, which VRRPv2 needs: {} s is used",
            v.advert_int.as_secs_f64(),
            rounded.as_secs()
        ),
    );
    v.advert_int = rounded;
}
