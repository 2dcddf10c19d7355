//! `vrrp_script NAME { ... }`: a check script whose result adjusts the
//! priority of the instances tracking it.

use std::time::Duration;

use crate::{config::TrackScript, import::keepalived::Directive};

use super::context::Context;

pub(super) fn convert(cx: &mut Context, block: &Directive) -> Option<TrackScript> {
    let name = cx.block_name(block)?;
    let mut command = None;
    let mut s = TrackScript {
        name,
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        rise: 1,
        fall: 1,
        user: None,
    };
    for d in &block.children {
        match d.name.as_str() {
            // keepalived runs the whole line: `script killall -0 haproxy`.
            "script" if d.args.iter().all(|a| a.trim().is_empty()) => {
                cx.skip(d, "no command given");
            }
            "script" => command = Some(d.args.join(" ")),
            "interval" => s.interval = cx.seconds(d).unwrap_or(s.interval),
            "timeout" => s.timeout = cx.seconds(d),
            "weight" => s.weight = script_weight(cx, d).unwrap_or(s.weight),
            "rise" => s.rise = cx.int(d, 1, 1000).unwrap_or(s.rise),
            "fall" => s.fall = cx.int(d, 1, 1000).unwrap_or(s.fall),
            "user" if d.args.is_empty() => cx.skip(d, "no user given"),
            "user" => s.user = Some(d.args.join(" ")),
            _ => cx.unknown(d),
        }
    }
    let Some(command) = command else {
        cx.skip(block, "no `script` to run");
        return None;
    };
    s.script = command;
    Some(s)
}

/// `weight W [reverse]`.
fn script_weight(cx: &mut Context, d: &Directive) -> Option<i32> {
    let Some((value, rest)) = d.args.split_first() else {
        cx.skip(d, "no value");
        return None;
    };
    if !rest.is_empty() {
        cx.skip(
            d,
            format!("`{}` ignored: lbd has no reversed weights", rest.join(" ")),
        );
    }
    let weight = value
        .parse::<i32>()
        .ok()
        .filter(|w| (-253..=253).contains(w));
    if weight.is_none() {
        cx.skip(d, format!("`{value}` is not a weight from -253 to 253"));
    }
    weight
}
