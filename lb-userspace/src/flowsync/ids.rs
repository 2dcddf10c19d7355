//! Translating a synced flow, named by addresses, to this balancer's own
//! ids: the program's service and backend ids are handed out by each
//! daemon's planner in its own order, so the peer's mean nothing here.

use lb_common::maps::{Flow, FlowEvent, FlowKey, NextHop, ReverseFlow, ServiceKey};

use crate::xdp::SyncIds;

/// Why a synced flow cannot be installed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Untranslatable {
    /// No such service forwards here (yet: a BACKUP installs it on takeover).
    Service,
    /// The service has no such real server here.
    Real,
}

/// A synced flow in this balancer's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    pub flow: Flow,
    /// The `REVERSE` entry (reply key -> VIP) when the real is ambiguous.
    pub reverse: Option<(FlowKey, ReverseFlow)>,
}

/// The service key a flow is addressed to.
pub fn service_of(key: &FlowKey) -> ServiceKey {
    ServiceKey {
        addr: key.dst,
        port: key.dport,
        proto: key.proto,
        family: key.family,
    }
}

impl SyncIds {
    /// `event` as this balancer's conntrack entry, last seen at `last_seen_ns`.
    pub fn translate(&self, event: &FlowEvent, last_seen_ns: u64) -> Result<Local, Untranslatable> {
        let key = &event.key;
        let service = self
            .services
            .get(&service_of(key))
            .ok_or(Untranslatable::Service)?;
        let real = service
            .reals
            .get(&(event.real_addr, event.real_port))
            .ok_or(Untranslatable::Real)?;
        let flow = Flow {
            backend: real.backend,
            generation: real.generation,
            service: service.id,
            state: u32::from(event.state),
            last_seen_ns,
            to_backend: NextHop::default(),
            to_client: NextHop::default(),
        };
        let reverse = real
            .ambiguous
            .then(|| ReverseFlow::of_flow(key, event.real_addr, event.real_port, service.id));
        Ok(Local { flow, reverse })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use lb_common::maps::{FAMILY_IPV4, FLOW_ESTABLISHED, Settings};

    use super::*;
    use crate::xdp::{RealIds, ServiceIds};

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    }

    const VIP: [u8; 4] = [198, 51, 100, 1];

    fn event(real: [u8; 4]) -> FlowEvent {
        FlowEvent {
            key: FlowKey {
                src: v4([192, 0, 2, 7]),
                dst: v4(VIP),
                sport: 40000u16.to_be_bytes(),
                dport: 80u16.to_be_bytes(),
                proto: 6,
                family: FAMILY_IPV4,
                _pad: [0; 2],
            },
            real_addr: v4(real),
            real_port: 8080u16.to_be_bytes(),
            state: 1,
            _pad: [0; 5],
        }
    }

    /// This node's ids: the service is 3 here (the peer may say 0), the
    /// real 10.0.0.2 is backend 17 in generation 4.
    fn ids(ambiguous: bool) -> SyncIds {
        let mut reals = HashMap::new();
        reals.insert(
            (v4([10, 0, 0, 2]), 8080u16.to_be_bytes()),
            RealIds {
                backend: 17,
                generation: 4,
                ambiguous,
            },
        );
        let mut services = HashMap::new();
        services.insert(
            ServiceKey {
                addr: v4(VIP),
                port: 80u16.to_be_bytes(),
                proto: 6,
                family: FAMILY_IPV4,
            },
            ServiceIds { id: 3, reals },
        );
        SyncIds {
            services,
            settings: Settings::IPVS_DEFAULTS,
        }
    }

    #[test]
    fn a_flow_gets_this_nodes_service_and_backend_ids() {
        let local = ids(false).translate(&event([10, 0, 0, 2]), 99).unwrap();
        assert_eq!(local.flow.service, 3);
        assert_eq!((local.flow.backend, local.flow.generation), (17, 4));
        assert_eq!(local.flow.state, FLOW_ESTABLISHED);
        assert_eq!(local.flow.last_seen_ns, 99);
        assert_eq!(
            local.flow.to_backend,
            NextHop::default(),
            "no next hop cached"
        );
        assert!(
            local.reverse.is_none(),
            "an unambiguous real needs no REVERSE entry"
        );
    }

    #[test]
    fn a_real_shared_by_services_gets_its_reverse_entry() {
        let e = event([10, 0, 0, 2]);
        let (reply, value) = ids(true).translate(&e, 0).unwrap().reverse.unwrap();
        assert_eq!(reply.src, e.real_addr);
        assert_eq!(reply.sport, e.real_port);
        assert_eq!((reply.dst, reply.dport), (e.key.src, e.key.sport));
        assert_eq!(
            (value.vip, value.vport, value.service),
            (e.key.dst, e.key.dport, 3)
        );
    }

    #[test]
    fn unknown_reals_and_services_are_refused() {
        assert_eq!(
            ids(false).translate(&event([10, 0, 0, 9]), 0),
            Err(Untranslatable::Real)
        );
        let mut other_port = event([10, 0, 0, 2]);
        other_port.key.dport = 443u16.to_be_bytes();
        assert_eq!(
            ids(false).translate(&other_port, 0),
            Err(Untranslatable::Service)
        );
        let mut udp = event([10, 0, 0, 2]);
        udp.key.proto = 17;
        assert_eq!(ids(false).translate(&udp, 0), Err(Untranslatable::Service));
    }
}
