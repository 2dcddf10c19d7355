//! `vrrp_sync_group NAME { group { ... } }`: instances that change state
//! together.

use crate::{
    config::{SyncGroup, VrrpInstance},
    import::keepalived::Directive,
};

use super::context::Context;

/// `groups` are the sync groups imported so far: an instance belongs to one.
pub(super) fn convert(
    cx: &mut Context,
    block: &Directive,
    instances: &[VrrpInstance],
    groups: &[SyncGroup],
) -> Option<SyncGroup> {
    let name = cx.block_name(block)?;
    let mut g = SyncGroup {
        name,
        group: Vec::new(),
        notify_master: None,
        notify_backup: None,
        notify_fault: None,
        notify: None,
    };
    for d in &block.children {
        match d.name.as_str() {
            "group" => g.group.extend(members(cx, d, instances, groups)),
            "notify_master" => g.notify_master = cx.script(d),
            "notify_backup" => g.notify_backup = cx.script(d),
            "notify_fault" => g.notify_fault = cx.script(d),
            "notify" => g.notify = cx.script(d),
            _ => cx.unknown(d),
        }
    }
    if g.group.is_empty() {
        cx.skip(block, "no imported instance in its `group`");
        return None;
    }
    Some(g)
}

/// `group { VI_1 VI_2 }`: names one per line or several on a line.
fn members(
    cx: &mut Context,
    block: &Directive,
    instances: &[VrrpInstance],
    groups: &[SyncGroup],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in &block.children {
        for name in std::iter::once(&line.name).chain(&line.args) {
            if !instances.iter().any(|i| &i.name == name) {
                cx.skip(line, format!("`{name}` is not an imported vrrp_instance"));
            } else if let Some(other) = groups.iter().find(|g| g.group.contains(name)) {
                cx.skip(
                    line,
                    format!("`{name}` is already in sync group {}", other.name),
                );
            } else if !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    out
}
