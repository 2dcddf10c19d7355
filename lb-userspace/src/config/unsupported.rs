//! What `lbd run` cannot do yet. A config that sets any of it is refused
//! with "not supported yet: KEY" rather than half-run: a balancer that
//! silently ignores its health checks is worse than one that will not start.
//!
//! This is the one place to update when a later change implements a key.

use std::fmt;

use super::{
    Config, Diagnostic, KeyPath, Loaded, Severity,
    model::{ConntrackTimeouts, DataplaneKind, Global, InterfaceConfig},
    validate::vs_path,
};

/// A key set in the config that this build does not implement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedKey {
    pub path: KeyPath,
}

impl fmt::Display for UnsupportedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not supported yet: {}", self.path)
    }
}

impl Config {
    /// Every option this config sets that `lbd run` does not implement
    /// yet, in file order. Empty: `lbd run` can do everything asked.
    pub fn unsupported(&self) -> Vec<UnsupportedKey> {
        // Destructured in full so a new field does not compile until it
        // is sorted into supported or not.
        let Config {
            global,
            dataplane,
            interfaces,
            vrrp_instances,
            sync_groups,
            track_scripts,
            virtual_servers,
        } = self;
        let mut out = Vec::new();
        let mut add = |path: KeyPath| out.push(UnsupportedKey { path });
        let root = KeyPath::root();

        let Global {
            router_id: _, // supported
            script_user,
            enable_script_security,
            conntrack,
        } = global;
        let global_path = root.key("global");
        if script_user.is_some() {
            add(global_path.key("script_user"));
        }
        if *enable_script_security {
            add(global_path.key("enable_script_security"));
        }
        let ConntrackTimeouts { tcp, tcp_fin, udp } = conntrack;
        for (key, value) in [("tcp", tcp), ("tcp_fin", tcp_fin), ("udp", udp)] {
            if value.is_some() {
                add(global_path.key("conntrack").key(key));
            }
        }

        match dataplane {
            DataplaneKind::Auto | DataplaneKind::Xdp => {}
            DataplaneKind::Ipvs => add(root.key("dataplane")),
        }

        for InterfaceConfig {
            name: _,
            xdp_mode: _,
        } in interfaces
        {} // supported

        for (i, instance) in vrrp_instances.iter().enumerate() {
            add(root.key("vrrp_instances").item(i, &instance.name));
        }
        for (i, group) in sync_groups.iter().enumerate() {
            add(root.key("sync_groups").item(i, &group.name));
        }
        for (i, script) in track_scripts.iter().enumerate() {
            add(root.key("track_scripts").item(i, &script.name));
        }
        for (i, vs) in virtual_servers.iter().enumerate() {
            add(vs_path(i, vs));
        }
        out
    }
}

impl Loaded {
    /// `Config::unsupported` as errors with the line and column of each key.
    pub fn unsupported(&self) -> Vec<Diagnostic> {
        self.config
            .unsupported()
            .into_iter()
            .map(|key| {
                let pos = self.pos(&key.path);
                Diagnostic {
                    file: self.origin.clone(),
                    line: pos.line,
                    column: pos.column,
                    severity: Severity::Error,
                    message: key.to_string(),
                }
            })
            .collect()
    }
}
