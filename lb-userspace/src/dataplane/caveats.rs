//! What a data plane cannot do with a configuration that is otherwise
//! valid, for `lbd check` and `lbd run` (`preflight`): real servers on
//! this host, and `removed_server_flows` under IPVS.
//!
//! - XDP translates a packet for a real server on this host (an address
//!   the node holds, or 127.0.0.0/8 with `route_localnet`, which lbd sets)
//!   and a TC egress program translates the replies back. IPv6 has no
//!   `route_localnet`: the kernel drops a packet for `::1` arriving on a
//!   link, whatever lbd does.
//! - IPVS delivers to a local real server without translation (its
//!   "local node" forwarding): the packet still says VIP:port, so a
//!   server listening on 127.0.0.1 only never sees it.
//! - IPVS's `expire_nodest_conn` is one sysctl per network namespace:
//!   services cannot differ between `drop` and `reset`.

use std::net::IpAddr;

use crate::config::{Config, DataplaneKind, KeyPath, RemovedServerFlows, VirtualServer};

/// A caveat: where, what, and whether `lbd run` refuses (error) or
/// starts anyway (warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caveat {
    pub path: KeyPath,
    pub message: String,
    pub refuses: bool,
}

/// Every caveat of `config` for the data plane(s) it may run.
pub fn caveats(config: &Config) -> Vec<Caveat> {
    let mut out = Vec::new();
    let may_run_ipvs = config.dataplane != DataplaneKind::Xdp;
    let may_run_xdp = config.dataplane != DataplaneKind::Ipvs;
    for (i, vs) in config.virtual_servers.iter().enumerate() {
        let path = KeyPath::root().key("virtual_servers").index(i);
        for (key, addr) in local_candidates(vs, &path) {
            if may_run_xdp && addr.is_loopback() && addr.is_ipv6() {
                out.push(Caveat {
                    path: key.clone(),
                    message: format!(
                        "{addr} cannot be reached through XDP: the kernel drops packets for ::1 \
                         that arrive on an interface (IPv6 has no route_localnet); listen on \
                         one of the node's addresses instead"
                    ),
                    refuses: false,
                });
            }
            if may_run_ipvs && addr.is_loopback() {
                let when = if config.dataplane == DataplaneKind::Auto {
                    "if `dataplane: auto` falls back to IPVS"
                } else {
                    "with the IPVS data plane"
                };
                out.push(Caveat {
                    path: key,
                    message: format!(
                        "{when}, packets for {addr} reach the local server untranslated (to \
                         {}:{}), so a server listening only on {addr} never sees them: make it \
                         listen on the VIP or on all addresses (XDP translates them)",
                        vs.address, vs.port
                    ),
                    refuses: false,
                });
            }
        }
    }
    if let Some(message) = ipvs_nodest_conflict(config) {
        out.push(Caveat {
            path: KeyPath::root().key("virtual_servers"),
            message,
            refuses: config.dataplane == DataplaneKind::Ipvs,
        });
    }
    out
}

/// The addresses of a service's real servers and sorry server, by key.
fn local_candidates(vs: &VirtualServer, path: &KeyPath) -> Vec<(KeyPath, IpAddr)> {
    let reals = vs
        .real_servers
        .iter()
        .enumerate()
        .map(|(j, rs)| (path.key("real_servers").index(j).key("address"), rs.address));
    let sorry = vs
        .sorry_server
        .iter()
        .map(|s| (path.key("sorry_server").key("address"), s.address));
    reals.chain(sorry).collect()
}

/// The `expire_nodest_conn` value the services ask IPVS for: `None` when
/// none cares (all `keep`), an error text when they disagree.
pub fn ipvs_expire_nodest_conn(config: &Config) -> Result<Option<bool>, String> {
    let mut wanted: Option<(bool, &VirtualServer)> = None;
    for vs in &config.virtual_servers {
        let value = match vs.removed_server_flows {
            RemovedServerFlows::Drop => false,
            RemovedServerFlows::Reset => true,
            RemovedServerFlows::Keep => continue,
        };
        match wanted {
            Some((v, first)) if v != value => {
                return Err(format!(
                    "the IPVS data plane cannot give {}:{} `removed_server_flows: {}` and \
                     {}:{} `{}`: IPVS's net.ipv4.vs.expire_nodest_conn is one setting for all \
                     services; make them agree (`keep` goes with either)",
                    first.address,
                    first.port,
                    first.removed_server_flows.name(),
                    vs.address,
                    vs.port,
                    vs.removed_server_flows.name(),
                ));
            }
            Some(_) => {}
            None => wanted = Some((value, vs)),
        }
    }
    Ok(wanted.map(|(v, _)| v))
}

fn ipvs_nodest_conflict(config: &Config) -> Option<String> {
    if config.dataplane == DataplaneKind::Xdp {
        return None;
    }
    let message = ipvs_expire_nodest_conn(config).err()?;
    Some(if config.dataplane == DataplaneKind::Auto {
        format!("{message} (only if `dataplane: auto` falls back to IPVS)")
    } else {
        message
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn load(yaml: &str) -> Config {
        config::load_str(yaml, "test.yaml").unwrap().config
    }

    #[test]
    fn a_loopback_sorry_server_is_a_caveat_only_where_it_cannot_work() {
        let base = "virtual_servers:\n  - address: 10.0.0.100\n    port: 80\n    sorry_server: { address: 127.0.0.1 }\n    real_servers: [{ address: 10.0.1.2 }]\n";
        let xdp = load(&format!(
            "dataplane: xdp\ninterfaces: [{{ name: eth0 }}]\n{base}"
        ));
        assert!(caveats(&xdp).is_empty(), "XDP translates to 127.0.0.1");
        let ipvs = load(&format!("dataplane: ipvs\n{base}"));
        let found = caveats(&ipvs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("untranslated"),
            "{}",
            found[0].message
        );
        assert_eq!(
            found[0].path.to_string(),
            "virtual_servers[0].sorry_server.address"
        );
        let v6 = load(&format!(
            "dataplane: xdp\ninterfaces: [{{ name: eth0 }}]\n{}",
            base.replace("127.0.0.1", "\"::1\"")
        ));
        assert!(caveats(&v6)[0].message.contains("no route_localnet"));
    }

    #[test]
    fn ipvs_refuses_services_that_disagree_on_drop_and_reset() {
        let two = |a: &str, b: &str, dataplane: &str| {
            load(&format!(
                "dataplane: {dataplane}\ninterfaces: [{{ name: eth0 }}]\nvirtual_servers:\n  - {{ address: 10.0.0.1, port: 80, removed_server_flows: {a}, real_servers: [{{ address: 10.0.1.2 }}] }}\n  - {{ address: 10.0.0.1, port: 443, removed_server_flows: {b}, real_servers: [{{ address: 10.0.1.2 }}] }}\n"
            ))
        };
        assert_eq!(
            ipvs_expire_nodest_conn(&two("drop", "keep", "ipvs")),
            Ok(Some(false))
        );
        assert_eq!(
            ipvs_expire_nodest_conn(&two("reset", "reset", "ipvs")),
            Ok(Some(true))
        );
        assert_eq!(
            ipvs_expire_nodest_conn(&two("keep", "keep", "ipvs")),
            Ok(None)
        );
        let mixed = caveats(&two("drop", "reset", "ipvs"));
        assert_eq!(mixed.len(), 1);
        assert!(mixed[0].refuses && mixed[0].message.contains("IPVS"));
        assert!(!caveats(&two("drop", "reset", "auto"))[0].refuses);
        assert!(caveats(&two("drop", "reset", "xdp")).is_empty());
    }
}
