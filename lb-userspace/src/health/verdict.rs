//! The health checks' decision, applied to the configured forwarding
//! state before VRRP's filter (`vrrp::io::serving`) and the data plane.

use crate::dataplane::DesiredState;

/// Per virtual server (configuration order), per real server: in the pool
/// at a weight, or out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub services: Vec<Vec<Membership>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// In the pool; 0 takes no new flows but keeps its established ones.
    Weight(u32),
    /// Out of the pool: its flows end.
    Removed,
}

impl Verdict {
    /// `desired` (from the configuration, services in configuration
    /// order) with each backend's weight set or the backend dropped.
    pub fn apply(&self, desired: &DesiredState) -> DesiredState {
        let mut out = desired.clone();
        for (service, members) in out.services.iter_mut().zip(&self.services) {
            if service.backends.len() != members.len() {
                // Not the configuration the verdict was made for.
                continue;
            }
            let backends = std::mem::take(&mut service.backends);
            service.backends = backends
                .into_iter()
                .zip(members)
                .filter_map(|(mut backend, member)| match member {
                    Membership::Weight(w) => {
                        backend.weight = *w;
                        Some(backend)
                    }
                    Membership::Removed => None,
                })
                .collect();
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
        let verdict = Verdict {
            services: vec![vec![
                Membership::Weight(0),
                Membership::Removed,
                Membership::Weight(5),
            ]],
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
}
