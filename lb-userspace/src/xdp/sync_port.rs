//! What the flow sync needs of the XDP data plane: the program's flow
//! events, the conntrack (and `REVERSE`) maps to install the peer's flows
//! in, and, after every change, which services and reals are installed
//! under which ids (`SyncIds`), to translate the peer's flows to.

use std::sync::Arc;

use aya::maps::{HashMap as BpfHashMap, Map, MapData, RingBuf};
use lb_common::maps::{self as m, Flow, FlowKey, ReverseFlow};
use tokio::sync::watch;

use super::{RealIds, ServiceIds, SyncIds};
use super::{
    XdpApplyError, XdpDataplane,
    dataplane::map_err,
    flows::duplicate,
    plan::{
        InstalledState,
        entries::{addr_bytes, real_key},
    },
};

/// The handles the flow-sync tasks own (second descriptors on the maps).
pub struct FlowSyncPort {
    pub events: RingBuf<MapData>,
    pub conntrack: BpfHashMap<MapData, FlowKey, Flow>,
    pub reverse: BpfHashMap<MapData, FlowKey, ReverseFlow>,
    /// The installed services' ids, replaced after every change.
    pub ids: watch::Receiver<Arc<SyncIds>>,
}

impl XdpDataplane {
    /// Turns the program's flow events on (from the next `apply`) and hands
    /// out what the flow sync needs.
    pub fn flow_sync_port(&mut self) -> Result<FlowSyncPort, XdpApplyError> {
        self.installed.flow_events = true;
        let (tx, ids) = watch::channel(Arc::new(sync_ids(&self.installed)));
        self.sync_ids = Some(tx);
        let ebpf = self.program.ebpf();
        let reopen = |name: &'static str| -> Result<Map, XdpApplyError> {
            let map = ebpf.map(name).ok_or(XdpApplyError::MissingMap(name))?;
            Map::from_map_data(duplicate(map, name)?).map_err(map_err(name, "reopen"))
        };
        Ok(FlowSyncPort {
            events: RingBuf::try_from(reopen(m::FLOW_EVENTS)?)
                .map_err(map_err(m::FLOW_EVENTS, "open"))?,
            conntrack: BpfHashMap::try_from(reopen(m::CONNTRACK)?)
                .map_err(map_err(m::CONNTRACK, "open"))?,
            reverse: BpfHashMap::try_from(reopen(m::REVERSE)?)
                .map_err(map_err(m::REVERSE, "open"))?,
            ids,
        })
    }

    /// Tells the flow sync what is installed now.
    pub(super) fn publish_sync_ids(&self) {
        if let Some(tx) = &self.sync_ids {
            let ids = sync_ids(&self.installed);
            tx.send_if_modified(|old| {
                let changed = **old != ids;
                if changed {
                    *old = Arc::new(ids);
                }
                changed
            });
        }
    }
}

/// The ids of every forwarding service and its backends (sorry server too).
pub(super) fn sync_ids(state: &InstalledState) -> SyncIds {
    let services = state
        .services
        .iter()
        .map(|(key, installed)| {
            let reals = installed
                .backends
                .iter()
                .map(|(at, id)| (*at, *id))
                .chain(installed.sorry)
                .filter_map(|(at, backend)| {
                    let generation = state.mirror.backends.get(&backend)?.generation;
                    let ambiguous = state
                        .mirror
                        .reals
                        .get(&real_key(key, at))
                        .is_some_and(|r| r.ambiguous != 0);
                    let ids = RealIds {
                        backend,
                        generation,
                        ambiguous,
                    };
                    Some(((addr_bytes(at.0).0, at.1.to_be_bytes()), ids))
                })
                .collect();
            (
                *key,
                ServiceIds {
                    id: installed.id,
                    reals,
                },
            )
        })
        .collect();
    SyncIds {
        services,
        settings: state.settings(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use lb_common::maps::{FAMILY_IPV4, FLOW_ESTABLISHED, FlowEvent, FlowKey};

    use super::sync_ids;
    use crate::{
        dataplane::{BackendSpec, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts},
        xdp::{
            plan::{InstalledState, entries::addr_bytes},
            writer::{fake::FakeMaps, install},
        },
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn service(vip: &str, reals: &[&str]) -> ServiceSpec {
        ServiceSpec {
            vip: ip(vip),
            port: 80,
            protocol: L4Protocol::Tcp,
            scheduler: SchedulerKind::WeightedRoundRobin,
            backends: reals
                .iter()
                .map(|r| BackendSpec {
                    addr: ip(r),
                    port: 8080,
                    weight: 1,
                })
                .collect(),
            sorry: None,
            removed_server_flows: crate::config::RemovedServerFlows::default(),
        }
    }

    fn node(services: &[ServiceSpec]) -> InstalledState {
        let mut state = InstalledState::new();
        let desired = DesiredState {
            services: services.to_vec(),
            timeouts: Timeouts::default(),
        };
        install(&mut state, &mut FakeMaps::default(), &desired).unwrap();
        state
    }

    /// A flow from a client to `vip`:80 pinned to `real`:8080.
    fn event(vip: &str, real: &str) -> FlowEvent {
        FlowEvent {
            key: FlowKey {
                src: addr_bytes(ip("192.0.2.7")).0,
                dst: addr_bytes(ip(vip)).0,
                sport: 40000u16.to_be_bytes(),
                dport: 80u16.to_be_bytes(),
                proto: 6,
                family: FAMILY_IPV4,
                _pad: [0; 2],
            },
            real_addr: addr_bytes(ip(real)).0,
            real_port: 8080u16.to_be_bytes(),
            state: 1,
            _pad: [0; 5],
        }
    }

    #[test]
    fn a_peers_flow_lands_on_the_same_real_under_this_nodes_own_ids() {
        let web = service("10.0.0.1", &["10.0.1.11", "10.0.1.12"]);
        let api = service("10.0.0.2", &["10.0.1.12", "10.0.1.13"]);
        // The same configuration in another order: other ids on each node.
        let a = node(&[web.clone(), api.clone()]);
        let b = node(&[api, web]);
        let e = event("10.0.0.1", "10.0.1.12");
        let on_a = sync_ids(&a).translate(&e, 5).unwrap().flow;
        let on_b = sync_ids(&b).translate(&e, 5).unwrap();
        assert_ne!(
            (on_a.service, on_a.backend),
            (on_b.flow.service, on_b.flow.backend),
            "the test needs the nodes' ids to differ"
        );
        let backend = b.mirror.backends[&on_b.flow.backend];
        assert_eq!(backend.addr, e.real_addr, "b pins it to the same real");
        assert_eq!(backend.generation, on_b.flow.generation);
        assert_eq!(on_b.flow.state, FLOW_ESTABLISHED);
        let web_key = crate::xdp::service_key(&service("10.0.0.1", &[]));
        assert_eq!(on_b.flow.service, b.services[&web_key].id);
        // 10.0.1.12 serves both services: its replies need REVERSE.
        let (_, reverse) = on_b.reverse.expect("a REVERSE entry for a shared real");
        assert_eq!(reverse.service, on_b.flow.service);
        let only_web = sync_ids(&b)
            .translate(&event("10.0.0.1", "10.0.1.11"), 5)
            .unwrap();
        assert!(only_web.reverse.is_none(), "10.0.1.11 serves one service");
    }

    #[test]
    fn a_service_given_up_is_not_offered_to_the_flow_sync() {
        let web = service("10.0.0.1", &["10.0.1.11"]);
        let api = service("10.0.0.2", &["10.0.1.13"]);
        let mut state = InstalledState::new();
        let mut maps = FakeMaps::default();
        let desired = |services: Vec<ServiceSpec>| DesiredState {
            services,
            timeouts: Timeouts::default(),
        };
        install(&mut state, &mut maps, &desired(vec![web.clone(), api])).unwrap();
        install(&mut state, &mut maps, &desired(vec![web])).unwrap();
        let ids = sync_ids(&state);
        assert_eq!(
            ids.services.len(),
            1,
            "the parked service is not forwarding"
        );
        assert!(ids.translate(&event("10.0.0.2", "10.0.1.13"), 0).is_err());
        assert!(ids.translate(&event("10.0.0.1", "10.0.1.11"), 0).is_ok());
    }
}
