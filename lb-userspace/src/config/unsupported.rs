//! What `lbd run` cannot do yet. A config that sets any of it is refused
//! with "not supported yet: KEY" rather than half-run: a balancer that
//! silently ignores its health checks is worse than one that will not start.
//!
//! This is the one place to update when a later change implements a key.

use std::fmt;

use super::{
    Config, Diagnostic, KeyPath, Loaded,
    model::{
        Check, ForwardingMethod, Global, InterfaceConfig, NegotiateService, Protocol, RealServer,
        Scheduler, VirtualServer,
    },
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
            include: _, // supported: merged while loading
            global,
            // Supported: auto, xdp, ipvs. Whether XDP can run a scheduler is
            // `dataplane::select`'s error, which names the alternatives.
            dataplane: _,
            interfaces,
            vrrp_instances,
            sync_groups: _,   // supported
            track_scripts: _, // supported
            virtual_servers,
            flow_sync: _, // supported with XDP (`dataplane: ipvs` warns)
        } = self;
        let mut out = Vec::new();
        let mut add = |path: KeyPath| out.push(UnsupportedKey { path });
        let root = KeyPath::root();

        let Global {
            router_id: _,              // supported
            script_user: _,            // supported: the default script user
            enable_script_security: _, // supported: always enforced
            conntrack: _,              // supported: flow timeouts (XDP), `ipvsadm --set` (IPVS)
            control_group: _,          // supported: the control socket's group
            metrics_listen: _,         // supported: the Prometheus listener
            drain_timeout: _,          // supported: reload drains removed real servers
            autoreload: _,             // supported: reload on file change
            vip_device: _,             // supported: where VIPs live
        } = global;

        for InterfaceConfig {
            name: _,
            xdp_mode: _,
        } in interfaces
        {} // supported

        for (i, instance) in vrrp_instances.iter().enumerate() {
            // Accept_Mode off means dropping traffic to the VIPs, which
            // needs packet filtering lbd does not do.
            if !instance.accept {
                add(root
                    .key("vrrp_instances")
                    .item(i, &instance.name)
                    .key("accept"));
            }
        }
        for (i, vs) in virtual_servers.iter().enumerate() {
            unsupported_in_virtual_server(&vs_path(i, vs), vs, &mut add);
        }
        out
    }
}

/// The parts of a virtual server the data planes do not do yet: they
/// forward with NAT by rr, wrr or mh (XDP and IPVS) or sh, lc, wlc (IPVS).
fn unsupported_in_virtual_server(
    path: &KeyPath,
    vs: &VirtualServer,
    add: &mut impl FnMut(KeyPath),
) {
    let VirtualServer {
        name: _,
        address: _,
        port: _,
        protocol,
        scheduler,
        method,
        persistence_timeout,
        delay_loop: _, // paces health checks
        alpha: _,      // supported: health checks
        sorry_server: _,
        sorry_server_inhibit,
        quorum: _,               // supported: health checks
        hysteresis: _,           // supported: health checks
        quorum_up: _,            // supported: health checks
        quorum_down: _,          // supported: health checks
        virtualhost: _,          // used by health checks
        removed_server_flows: _, // both data planes (IPVS: see ipvs::nodest)
        real_servers,
    } = vs;
    if *protocol == Protocol::Sctp {
        add(path.key("protocol"));
    }
    if !matches!(
        scheduler,
        Scheduler::Rr
            | Scheduler::Wrr
            | Scheduler::Mh
            | Scheduler::Sh
            | Scheduler::Lc
            | Scheduler::Wlc
    ) {
        add(path.key("scheduler"));
    }
    if *method != ForwardingMethod::Nat {
        add(path.key("method"));
    }
    if persistence_timeout.is_some() {
        add(path.key("persistence_timeout"));
    }
    if *sorry_server_inhibit {
        add(path.key("sorry_server_inhibit"));
    }
    for (i, rs) in real_servers.iter().enumerate() {
        let RealServer {
            address: _,
            port: _,
            weight: _,
            inhibit_on_failure: _, // supported: health checks
            notify_up: _,          // supported: health checks
            notify_down: _,        // supported: health checks
            checks,
        } = rs;
        let rs_path = path.key("real_servers").index(i);
        for (j, check) in checks.iter().enumerate() {
            // ldirectord's protocol dialogues beyond HTTP(S) and a plain
            // request/reply are not spoken yet.
            if let Check::Negotiate(negotiate) = check
                && !matches!(
                    negotiate.service,
                    NegotiateService::Http | NegotiateService::Https | NegotiateService::Simpletcp
                )
            {
                add(rs_path
                    .key("checks")
                    .index(j)
                    .key("negotiate")
                    .key("service"));
            }
        }
    }
}

impl Loaded {
    /// `Config::unsupported` as errors with the line and column of each key.
    pub fn unsupported(&self) -> Vec<Diagnostic> {
        self.config
            .unsupported()
            .into_iter()
            .map(|key| self.error_at(&key.path, key.to_string()))
            .collect()
    }
}
