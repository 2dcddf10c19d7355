//! `virtual_servers:` checks: addresses and ports, forwarding methods the
//! data plane can do, real servers, checks and quorum.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use super::{Checker, endpoint, method_name, vs_path};
use crate::config::{
    KeyPath,
    model::{Check, Config, ForwardingMethod, VirtualServer},
};

impl Checker<'_> {
    pub(super) fn virtual_servers(&mut self, config: &Config) {
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

    pub(super) fn real_servers(&mut self, path: &KeyPath, vs: &VirtualServer) {
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
