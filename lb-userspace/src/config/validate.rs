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
    model::{Check, Config, ForwardingMethod, VirtualServer, VrrpInstance},
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

    fn instance(&mut self, config: &Config, path: &KeyPath, instance: &VrrpInstance) {
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
            if auth.auth_type == super::model::AuthType::Ah && instance.version != 3 {
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
        if !instance.preempt && instance.state == super::model::InitialState::Master {
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
    fn advert_int(&mut self, path: &KeyPath, instance: &VrrpInstance) {
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
    fn vrids(&mut self, config: &Config) {
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

    fn sync_groups(&mut self, config: &Config) {
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

    fn track_scripts(&mut self, config: &Config) {
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

    fn virtual_servers(&mut self, config: &Config) {
        let owned: HashSet<IpAddr> = config
            .vrrp_instances
            .iter()
            .flat_map(|i| {
                i.virtual_ipaddresses
                    .iter()
                    .chain(&i.virtual_ipaddresses_excluded)
            })
            .map(|v| v.address.addr())
            .collect();
        let mut seen = HashMap::new();
        for (v, vs) in config.virtual_servers.iter().enumerate() {
            let path = vs_path(v, vs);
            if let Some(first) = seen.insert((vs.address, vs.port, vs.protocol), path.clone()) {
                let line = self.line_of(&first);
                self.error(
                    &path.key("port"),
                    format!(
                        "virtual server {} is defined twice{line}; merge the two",
                        endpoint(vs.address, vs.port)
                    ),
                );
            }
            if !owned.contains(&vs.address) {
                self.warning(
                    &path.key("address"),
                    format!(
                        "no vrrp instance has {} in its virtual_ipaddresses, so nothing moves \
                         it on failover; add it to an instance unless it is managed elsewhere",
                        vs.address
                    ),
                );
            }
            if vs.port == 0 && vs.persistence_timeout.is_none() {
                self.error(
                    &path.key("port"),
                    "port 0 (all ports) needs persistence_timeout".to_owned(),
                );
            }
            if vs.alpha && vs.real_servers.iter().all(|rs| rs.checks.is_empty()) {
                self.warning(
                    &path.key("alpha"),
                    "alpha starts only real servers with checks down, and none has a check: \
                     it changes nothing here"
                        .to_owned(),
                );
            }
            self.real_servers(&path, vs);
        }
    }

    fn real_servers(&mut self, path: &KeyPath, vs: &VirtualServer) {
        if vs.real_servers.is_empty() && vs.sorry_server.is_none() {
            self.warning(
                path,
                format!(
                    "virtual server {} has no real_servers and no sorry_server; it will refuse \
                     every connection",
                    endpoint(vs.address, vs.port)
                ),
            );
        }
        let mut seen = HashMap::new();
        let mut total_weight: u64 = 0;
        for (r, rs) in vs.real_servers.iter().enumerate() {
            let port = rs.port.unwrap_or(vs.port);
            // Labelled as written, like paths in serde errors.
            let label = rs
                .port
                .map_or_else(|| rs.address.to_string(), |p| endpoint(rs.address, p));
            let rs_path = path.key("real_servers").item(r, label);
            total_weight += u64::from(rs.weight);
            if let Some(first) = seen.insert((rs.address, port), rs_path.clone()) {
                let line = self.line_of(&first);
                self.error(
                    &rs_path.key("address"),
                    format!(
                        "real server {} is listed twice{line}",
                        endpoint(rs.address, port)
                    ),
                );
            }
            if rs.address.is_ipv4() != vs.address.is_ipv4() && vs.method != ForwardingMethod::Tun {
                self.error(
                    &rs_path.key("address"),
                    format!(
                        "real server {} and virtual address {} are of different address \
                         families, which only `method: tun` can forward",
                        rs.address, vs.address
                    ),
                );
            }
            if vs.method != ForwardingMethod::Nat && port != vs.port {
                self.warning(
                    &rs_path.key("port"),
                    format!(
                        "`method: {}` cannot change the port: clients reach {} on port {}, not {port}",
                        method_name(vs.method),
                        rs.address,
                        vs.port
                    ),
                );
            }
            for (c, check) in rs.checks.iter().enumerate() {
                if let Check::HttpGet(http) | Check::SslGet(http) = check
                    && http.urls.is_empty()
                {
                    self.error(
                        &rs_path.key("checks").index(c),
                        "an HTTP check needs at least one entry in `urls`".to_owned(),
                    );
                }
            }
        }
        let quorum_path = path.key("quorum");
        if !vs.real_servers.is_empty()
            && u64::from(vs.quorum) > total_weight
            && !self.is_poisoned(&quorum_path)
        {
            self.warning(
                &quorum_path,
                format!(
                    "quorum {} is more than the total weight {total_weight} of the real \
                     servers, so the service can never be up",
                    vs.quorum
                ),
            );
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
