//! The health checks' decision, applied to the configured forwarding
//! state before drains and VRRP's filter (`daemon::effective`).

use std::collections::BTreeMap;

use crate::dataplane::{DesiredState, RealId};

/// Per real server: in the pool at a weight, or out. Keyed by id, so a
/// verdict made for one configuration applies to another by what is the
/// same in both; a real server it does not know keeps its configured
/// weight (not checked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub reals: BTreeMap<RealId, Membership>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// In the pool; 0 takes no new flows but keeps its established ones.
    Weight(u32),
    /// Out of the pool: its flows end.
    Removed,
}

impl Verdict {
    /// `desired` with each judged backend's weight set or the backend
    /// dropped.
    pub fn apply(&self, desired: &DesiredState) -> DesiredState {
        let mut out = desired.clone();
        for service in &mut out.services {
            let id = service.id();
            service
                .backends
                .retain_mut(|b| match self.reals.get(&id.real(b.addr, b.port)) {
                    Some(Membership::Weight(w)) => {
                        b.weight = *w;
                        true
                    }
                    Some(Membership::Removed) => false,
                    None => true,
                });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    #[test]
    fn weights_are_set_and_removed_servers_dropped() {
        let cfg = config::load_str(
            "
virtual_servers:
  - address: 10.0.0.100
    port: 80
    real_servers: [{ address: 10.0.0.2, weight: 3 }, { address: 10.0.0.3 }, { address: 10.0.0.4 }]
",
            "test.yaml",
        )
        .unwrap()
        .config;
        let desired = DesiredState::from_config(&cfg).unwrap();
        let service = &desired.services[0];
        let ids: Vec<RealId> = service.reals().collect();
        let verdict = Verdict {
            reals: BTreeMap::from([
                (ids[0], Membership::Weight(0)),
                (ids[1], Membership::Removed),
                (ids[2], Membership::Weight(5)),
            ]),
        };
        let applied = verdict.apply(&desired);
        let got: Vec<(String, u32)> = applied.services[0]
            .backends
            .iter()
            .map(|b| (b.addr.to_string(), b.weight))
            .collect();
        assert_eq!(
            got,
            [("10.0.0.2".to_owned(), 0), ("10.0.0.4".to_owned(), 5)]
        );
    }

    #[test]
    fn a_verdict_follows_servers_by_id_when_the_configuration_moves_them() {
        // Made for [.2, .3]; applied to a reload that put .5 first and
        // removed .2: .3 stays out, .5 (not judged) keeps its weight.
        let old = config::load_str(
            "virtual_servers:\n  - { address: 10.0.0.100, port: 80, real_servers: [{ address: 10.0.0.2 }, { address: 10.0.0.3 }] }\n",
            "old.yaml",
        )
        .unwrap()
        .config;
        let new = config::load_str(
            "virtual_servers:\n  - { address: 10.0.0.100, port: 80, real_servers: [{ address: 10.0.0.5, weight: 7 }, { address: 10.0.0.3 }] }\n",
            "new.yaml",
        )
        .unwrap()
        .config;
        let old_ids: Vec<RealId> = DesiredState::from_config(&old).unwrap().services[0]
            .reals()
            .collect();
        let verdict = Verdict {
            reals: BTreeMap::from([
                (old_ids[0], Membership::Weight(1)),
                (old_ids[1], Membership::Removed),
            ]),
        };
        let applied = verdict.apply(&DesiredState::from_config(&new).unwrap());
        let got: Vec<(String, u32)> = applied.services[0]
            .backends
            .iter()
            .map(|b| (b.addr.to_string(), b.weight))
            .collect();
        assert_eq!(got, [("10.0.0.5".to_owned(), 7)]);
    }
}
