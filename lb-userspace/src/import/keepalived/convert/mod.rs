//! keepalived directives to the lbd model. Lenient by design: anything that
//! does not map becomes a skipped entry, so one odd directive never stops an
//! import; `lbd check` then judges the result.

mod checks;
mod context;
mod global;
mod instance;
mod reasons;
mod script;
mod sync_daemon;
mod sync_group;
mod version;
mod virtual_server;

use crate::{
    config::{Config, InterfaceConfig, VirtualServer, XdpMode},
    import::{Imported, Skipped},
};

use super::{Directive, Parsed};
use context::Context;

/// Converts a parsed keepalived.conf. Sections are taken in dependency order
/// (globals, scripts, instances, sync groups) so references can be checked
/// against what was actually imported; keepalived itself does not care
/// about their order in the file.
pub(crate) fn convert(parsed: &Parsed) -> Imported {
    let mut cx = Context::default();
    let mut config = Config::default();
    for include in &parsed.unmatched_includes {
        cx.skipped.push(Skipped::new(
            format!("include {}", include.pattern),
            &include.at,
            "matched no files (keepalived ignores this too)",
        ));
    }
    let top = &parsed.directives;
    let named = |name: &'static str| top.iter().filter(move |d| d.name == name);

    let mut instance_defaults = global::InstanceDefaults::default();
    for d in named("global_defs") {
        global::convert(
            &mut cx,
            d,
            &mut config.global,
            &mut instance_defaults,
            &mut config.flow_sync,
        );
    }
    for d in named("vrrp_script") {
        config.track_scripts.extend(script::convert(&mut cx, d));
    }
    for d in named("vrrp_instance") {
        let instance = instance::convert(&mut cx, d, &instance_defaults, &config.track_scripts);
        let Some(instance) = instance else { continue };
        if config
            .vrrp_instances
            .iter()
            .any(|i| i.name == instance.name)
        {
            cx.skip(
                d,
                "an earlier vrrp_instance has this name; only the first is imported",
            );
        } else {
            config.vrrp_instances.push(instance);
        }
    }
    for d in named("vrrp_sync_group") {
        let group = sync_group::convert(&mut cx, d, &config.vrrp_instances, &config.sync_groups);
        config.sync_groups.extend(group);
    }
    for d in named("virtual_server") {
        let Some(vs) = virtual_server::convert(&mut cx, d) else {
            continue;
        };
        let same = |o: &VirtualServer| {
            (o.address, o.port, o.protocol) == (vs.address, vs.port, vs.protocol)
        };
        if config.virtual_servers.iter().any(same) {
            cx.skip(
                d,
                "an earlier virtual_server has this address, port and protocol",
            );
        } else {
            config.virtual_servers.push(vs);
        }
    }
    for d in top.iter().filter(|d| !is_section(d)) {
        cx.unknown(d);
    }
    config.interfaces = attach_interfaces(&config);
    let mut skipped = cx.skipped;
    // Conversion runs section by section; the user reads the files top down,
    // in the order keepalived reads them.
    let file_order = |s: &Skipped| parsed.files.iter().position(|f| *f == s.at.file);
    skipped.sort_by_key(|s| (file_order(s), s.at.line));
    let mut changed = cx.changed;
    changed.sort_by_key(|s| (file_order(s), s.at.line));
    Imported {
        config,
        skipped,
        changed,
    }
}

fn is_section(d: &Directive) -> bool {
    matches!(
        d.name.as_str(),
        "global_defs" | "vrrp_script" | "vrrp_instance" | "vrrp_sync_group" | "virtual_server"
    )
}

/// keepalived has no list of interfaces to attach to; the VRRP instances'
/// interfaces are where the virtual addresses live, so where traffic for the
/// virtual servers arrives. With no virtual server there is nothing to
/// forward: a VRRP-only node gets no XDP program.
fn attach_interfaces(config: &Config) -> Vec<InterfaceConfig> {
    if config.virtual_servers.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<&str> = Vec::new();
    for instance in &config.vrrp_instances {
        if !names.contains(&instance.interface.as_str()) {
            names.push(&instance.interface);
        }
    }
    names
        .into_iter()
        .map(|name| InterfaceConfig {
            name: name.to_owned(),
            xdp_mode: XdpMode::Auto,
        })
        .collect()
}
