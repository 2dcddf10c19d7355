//! `vrrp_instances:`, `vrrp_sync_groups:` and `vrrp_scripts:` checks: VRIDs,
//! advert intervals, references between instances, groups and scripts.

use std::{collections::HashMap, time::Duration};

use super::{AH_REFUSED, AUTH_PASS_MAX, Checker, MAX_PREEMPT_DELAY, instance_path};
use crate::config::{
    KeyPath,
    model::{Config, VrrpInstance},
};

impl Checker<'_> {
    pub(super) fn instance(&mut self, config: &Config, path: &KeyPath, instance: &VrrpInstance) {
        let name = &instance.name;
        self.advert_int(path, instance);

        if instance.version == 2 {
            for (i, vip) in instance.virtual_ipaddresses.iter().enumerate() {
                if vip.address.addr().is_ipv6() {
                    self.error(
                        &path.key("virtual_ipaddresses").index(i),
                        format!(
                            "{} is IPv6, which VRRP version 2 cannot carry; set `version: 3` \
                             or move it to virtual_ipaddresses_excluded",
                            vip.address
                        ),
                    );
                }
            }
        }
        if let Some(auth) = &instance.authentication {
            let auth_path = path.key("authentication");
            if instance.version == 3 {
                self.warning(
                    &auth_path,
                    "authentication is ignored with VRRP version 3 (RFC 5798 removed it); \
                     remove it"
                        .to_owned(),
                );
            }
            let chars = auth.auth_pass.chars().count();
            if chars > AUTH_PASS_MAX {
                let sent: String = auth.auth_pass.chars().take(AUTH_PASS_MAX).collect();
                self.warning(
                    &auth_path.key("auth_pass"),
                    format!(
                        "auth_pass is {chars} characters but only the first {AUTH_PASS_MAX} \
                         are used (`{sent}`), as keepalived does; shorten it to avoid surprises"
                    ),
                );
            }
            if auth.auth_type == crate::config::model::AuthType::Ah && instance.version != 3 {
                self.error(&auth_path.key("auth_type"), AH_REFUSED.to_owned());
            }
            if auth.auth_pass.is_empty() {
                self.error(
                    &auth_path.key("auth_pass"),
                    "auth_pass is empty; set a password or remove `authentication`".to_owned(),
                );
            }
        }
        if instance.preempt_delay > MAX_PREEMPT_DELAY {
            self.error(
                &path.key("preempt_delay"),
                format!(
                    "preempt_delay {} is out of range 0-1000 seconds",
                    instance.preempt_delay.as_secs_f64()
                ),
            );
        }
        if !instance.preempt && instance.state == crate::config::model::InitialState::Master {
            self.warning(
                &path.key("state"),
                "`preempt: false` is dropped with `state: master`: this node preempts \
                 (takes MASTER from a lower-priority peer), as keepalived clears `nopreempt` \
                 for an initial state of MASTER; set `state: backup` to keep `preempt: false`"
                    .to_owned(),
            );
        }
        if let Some(src) = instance.unicast_src_ip {
            for (i, peer) in instance.unicast_peers.iter().enumerate() {
                if peer.is_ipv4() != src.is_ipv4() {
                    self.error(
                        &path.key("unicast_peers").index(i),
                        format!(
                            "unicast peer {peer} and unicast_src_ip {src} are of different \
                             address families; use one family per instance"
                        ),
                    );
                }
            }
        }
        let defined: Vec<&str> = config
            .track_scripts
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        for (i, script) in instance.track_scripts.iter().enumerate() {
            if !defined.contains(&script.name.as_str()) {
                let hint = if defined.is_empty() {
                    "define it under the top-level `track_scripts`".to_owned()
                } else {
                    format!("defined track scripts: {}", defined.join(", "))
                };
                self.error(
                    &path.key("track_scripts").item(i, &script.name),
                    format!(
                        "vrrp instance {name} tracks script `{}`, which is not defined; {hint}",
                        script.name
                    ),
                );
            }
        }
    }

    /// RFC 3768 5.3.7: v2 counts whole seconds in 8 bits. RFC 5798 5.2.7:
    /// v3 counts centiseconds in 12 bits.
    pub(super) fn advert_int(&mut self, path: &KeyPath, instance: &VrrpInstance) {
        let path = path.key("advert_int");
        if self.is_poisoned(&path) {
            return;
        }
        let interval = instance.advert_int;
        let secs = interval.as_secs_f64();
        if instance.version == 2 {
            if interval.subsec_nanos() != 0 || !(1..=255).contains(&interval.as_secs()) {
                self.error(
                    &path,
                    format!(
                        "advert_int {secs} is not valid for VRRP version 2: use whole seconds \
                         1-255, or `version: 3` for fractions"
                    ),
                );
            }
        } else {
            let centis = interval.as_millis() / 10;
            let exact = interval == Duration::from_millis(u64::try_from(centis).unwrap_or(0) * 10);
            if !exact || !(1..=4095).contains(&centis) {
                self.error(
                    &path,
                    format!(
                        "advert_int {secs} is not valid for VRRP version 3: use 0.01-40.95 \
                         seconds in steps of 0.01"
                    ),
                );
            }
        }
    }

    /// RFC 5798 5.2.3: a VRID names one virtual router on a link; two
    /// instances with the same VRID on one interface fight each other.
    /// IPv4 and IPv6 routers have separate VRID spaces.
    pub(super) fn vrids(&mut self, config: &Config) {
        let mut seen: HashMap<(&str, bool, u8), (&str, KeyPath)> = HashMap::new();
        for (i, instance) in config.vrrp_instances.iter().enumerate() {
            let path = instance_path(i, instance).key("virtual_router_id");
            if self.is_poisoned(&path) {
                continue;
            }
            let ipv6 = instance
                .virtual_ipaddresses
                .first()
                .is_some_and(|v| v.address.addr().is_ipv6());
            let key = (
                instance.interface.as_str(),
                ipv6,
                instance.virtual_router_id,
            );
            if let Some((other, first)) = seen.get(&key) {
                let line = self.line_of(first);
                self.error(
                    &path,
                    format!(
                        "virtual_router_id {} is already used on interface {} by vrrp instance \
                         {other}{line}; \
                         give each instance on an interface its own VRID",
                        instance.virtual_router_id, instance.interface
                    ),
                );
            } else {
                seen.insert(key, (&instance.name, path));
            }
        }
    }

    pub(super) fn sync_groups(&mut self, config: &Config) {
        let instances: Vec<&str> = config
            .vrrp_instances
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        let mut member_of: HashMap<&str, &str> = HashMap::new();
        for (g, group) in config.sync_groups.iter().enumerate() {
            let path = KeyPath::root().key("sync_groups").item(g, &group.name);
            if group.group.len() < 2 {
                self.warning(
                    &path.key("group"),
                    format!(
                        "sync group {} has {} member(s); a sync group ties two or more \
                         instances together",
                        group.name,
                        group.group.len()
                    ),
                );
            }
            for (m, member) in group.group.iter().enumerate() {
                let member_path = path.key("group").index(m);
                if !instances.contains(&member.as_str()) {
                    self.error(
                        &member_path,
                        format!(
                            "sync group {} lists vrrp instance `{member}`, which is not defined",
                            group.name
                        ),
                    );
                } else if let Some(other) = member_of.insert(member, &group.name) {
                    self.error(
                        &member_path,
                        format!(
                            "vrrp instance {member} is already in sync group {other}; an \
                             instance can be in one sync group only"
                        ),
                    );
                }
            }
        }
    }

    pub(super) fn track_scripts(&mut self, config: &Config) {
        for (i, script) in config.track_scripts.iter().enumerate() {
            let path = KeyPath::root().key("track_scripts").item(i, &script.name);
            if script.script.trim().is_empty() {
                self.error(
                    &path.key("script"),
                    "script is empty; give a command".to_owned(),
                );
            }
            if script.interval.is_zero() {
                self.error(
                    &path.key("interval"),
                    "interval must be more than 0 seconds".to_owned(),
                );
            }
        }
    }
}
