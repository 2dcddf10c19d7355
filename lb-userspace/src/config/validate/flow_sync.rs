//! `flow_sync:` checks: one way of reaching the peer, addresses that can
//! do what they are listed for, one address family.

use std::net::IpAddr;

use super::Checker;
use crate::config::{
    KeyPath,
    model::{Config, DataplaneKind, FlowSync},
};

impl Checker<'_> {
    pub(super) fn flow_sync(&mut self, config: &Config) {
        let Some(sync) = &config.flow_sync else {
            return;
        };
        let path = KeyPath::root().key("flow_sync");
        if sync.interface.is_empty() {
            self.error(
                &path.key("interface"),
                "flow_sync.interface is empty: name the interface facing the peer".to_owned(),
            );
        }
        match (&sync.group, sync.peers.is_empty()) {
            (None, true) => self.error(
                &path,
                "flow_sync needs `peers: [ADDRESS, ...]` (unicast) or `group: ADDRESS` \
                 (multicast, e.g. 224.0.0.81) to know where to send"
                    .to_owned(),
            ),
            (Some(group), _) if !group.is_multicast() => self.error(
                &path.key("group"),
                format!("flow_sync.group {group} is not a multicast address (e.g. 224.0.0.81)"),
            ),
            _ => {}
        }
        self.flow_sync_peers(&path, sync);
        if config.dataplane == DataplaneKind::Ipvs {
            self.warning(
                &path,
                "flow_sync runs with the XDP data plane only and is ignored with `dataplane: ipvs` \
                 (IPVS has its own sync daemon: `ipvsadm --start-daemon`)"
                    .to_owned(),
            );
        }
    }

    fn flow_sync_peers(&mut self, path: &KeyPath, sync: &FlowSync) {
        let family = |a: &IpAddr| a.is_ipv4();
        let first = sync.group.iter().chain(&sync.peers).next().map(family);
        for (i, peer) in sync.peers.iter().enumerate() {
            let at = path.key("peers").index(i);
            if peer.is_multicast() || peer.is_unspecified() {
                self.error(
                    &at,
                    format!(
                        "flow_sync peer {peer} is not a unicast address; for multicast use `group`"
                    ),
                );
            } else if Some(family(peer)) != first {
                self.error(
                    &at,
                    format!(
                        "flow_sync peer {peer} is not of the address family of the first peer or the group"
                    ),
                );
            }
        }
    }
}
