//! Semantic checks: what serde cannot see because it needs more than one
//! value (duplicate VRIDs, references between sections) or knowledge of the
//! protocols (VRRPv2 advert granularity). Every check runs; each problem is
//! reported at the value it is about.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    time::Duration,
};

use super::{
    Diagnostic, KeyPath, Severity,
    model::{Config, ForwardingMethod, VirtualServer, VrrpInstance},
    spans::{Node, Pos},
};

/// keepalived's limit for `preempt_delay` (vrrp_parser.c).
const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// RFC 3768 5.3.2 (v2 auth data): 8 octets of password.
/// Why `auth_type: ah` is refused; `vrrp::params` says the same.
pub(crate) const AH_REFUSED: &str = "auth_type ah is not supported (IPsec AH was dropped from \
    VRRP by RFC 3768, and keepalived's AH variant does not interoperate with other peers); \
    use `auth_type: pass`, or remove `authentication` for none";
const AUTH_PASS_MAX: usize = 8;

mod flow_sync;
mod services;
mod vrrp;

pub(crate) struct Checker<'a> {
    /// The main file and those it includes; a `Pos` indexes them.
    files: &'a [String],
    tree: Option<&'a Node>,
    /// Values already reported as out of range: their placeholders must
    /// not cause a second, confusing error (two bad VRIDs are no duplicate).
    poisoned: &'a HashSet<Pos>,
    out: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        files: &'a [String],
        tree: Option<&'a Node>,
        poisoned: &'a HashSet<Pos>,
    ) -> Self {
        Self {
            files,
            tree,
            poisoned,
            out: Vec::new(),
        }
    }

    /// Runs every check and returns what they found.
    pub(crate) fn run(mut self, config: &Config) -> Vec<Diagnostic> {
        self.interfaces(config);
        self.unique_names(config);
        for (i, instance) in config.vrrp_instances.iter().enumerate() {
            self.instance(config, &instance_path(i, instance), instance);
        }
        self.vrids(config);
        self.sync_groups(config);
        self.track_scripts(config);
        self.virtual_servers(config);
        self.flow_sync(config);
        self.out
    }

    pub(crate) fn pos(&self, path: &KeyPath) -> Pos {
        self.tree.map(|t| t.pos_of(path)).unwrap_or_default()
    }

    fn is_poisoned(&self, path: &KeyPath) -> bool {
        self.tree
            .is_some_and(|t| self.poisoned.contains(&t.pos_of(path)))
    }

    fn report(&mut self, severity: Severity, path: &KeyPath, message: String) {
        let pos = self.pos(path);
        self.out.push(Diagnostic {
            file: self.files[pos.file].clone(),
            line: pos.line,
            column: pos.column,
            severity,
            message,
        });
    }

    fn error(&mut self, path: &KeyPath, message: String) {
        self.report(Severity::Error, path, message);
    }

    fn warning(&mut self, path: &KeyPath, message: String) {
        self.report(Severity::Warning, path, message);
    }

    /// "line 7" of a path, to point at the other half of a conflict; with
    /// included files, "conf.d/web.yaml:7", since the halves may be in two.
    fn line_of(&self, path: &KeyPath) -> String {
        let pos = self.pos(path);
        match (pos.line, self.files.len()) {
            (0, _) => String::new(),
            (line, 1) => format!(" (line {line})"),
            (line, _) => format!(" ({}:{line})", self.files[pos.file]),
        }
    }

    fn interfaces(&mut self, config: &Config) {
        let mut seen = HashMap::new();
        for (i, interface) in config.interfaces.iter().enumerate() {
            let path = KeyPath::root()
                .key("interfaces")
                .item(i, &interface.name)
                .key("name");
            if let Some(first) = seen.insert(interface.name.as_str(), path.clone()) {
                let line = self.line_of(&first);
                self.error(
                    &path,
                    format!(
                        "interface {} is listed twice{line}; list it once",
                        interface.name
                    ),
                );
            }
        }
    }

    /// Names are how sections refer to each other, so each must be unique.
    fn unique_names(&mut self, config: &Config) {
        let sections: [(&str, &str, Vec<&str>); 3] = [
            (
                "vrrp_instances",
                "vrrp instance",
                config
                    .vrrp_instances
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect(),
            ),
            (
                "sync_groups",
                "sync group",
                config.sync_groups.iter().map(|x| x.name.as_str()).collect(),
            ),
            (
                "track_scripts",
                "track script",
                config
                    .track_scripts
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect(),
            ),
        ];
        for (key, what, names) in sections {
            let mut seen = HashMap::new();
            for (i, name) in names.into_iter().enumerate() {
                let path = KeyPath::root().key(key).item(i, name).key("name");
                if let Some(first) = seen.insert(name, path.clone()) {
                    let line = self.line_of(&first);
                    self.error(
                        &path,
                        format!("{what} name `{name}` is already used{line}; names must be unique"),
                    );
                }
            }
        }
    }
}

fn instance_path(index: usize, instance: &VrrpInstance) -> KeyPath {
    KeyPath::root()
        .key("vrrp_instances")
        .item(index, &instance.name)
}

/// How a virtual server is named in paths: its name, else `ADDR:PORT`.
pub(crate) fn vs_path(index: usize, vs: &VirtualServer) -> KeyPath {
    let label = vs
        .name
        .clone()
        .unwrap_or_else(|| endpoint(vs.address, vs.port));
    KeyPath::root().key("virtual_servers").item(index, label)
}

/// `10.0.0.1:80`, `[2001:db8::1]:80`.
fn endpoint(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn method_name(method: ForwardingMethod) -> &'static str {
    match method {
        ForwardingMethod::Nat => "nat",
        ForwardingMethod::Dr => "dr",
        ForwardingMethod::Tun => "tun",
    }
}
