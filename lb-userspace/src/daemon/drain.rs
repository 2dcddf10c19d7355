//! Real servers a reload removed, kept at weight 0 (no new flows, existing
//! ones continue) until their connections reach 0 or the drain timeout
//! passes; then they are removed from the data plane.

use std::time::Instant;

use crate::dataplane::{BackendSpec, DesiredState, RealId, ServiceSpec, ServiceStatus};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Draining {
    id: RealId,
    until: Instant,
}

/// The real servers being drained.
#[derive(Clone, Debug, Default)]
pub struct Drains {
    reals: Vec<Draining>,
}

fn real_ids(desired: &DesiredState) -> Vec<RealId> {
    desired
        .services
        .iter()
        .flat_map(ServiceSpec::reals)
        .collect()
}

impl Drains {
    pub fn contains(&self, id: &RealId) -> bool {
        self.reals.iter().any(|d| d.id == *id)
    }

    pub fn len(&self) -> usize {
        self.reals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reals.is_empty()
    }

    /// After a reload from `old` (as installed, drains included) to `new`:
    /// real servers of services that stay but which `new` no longer lists
    /// start draining until `until`; those `new` lists again stop draining.
    /// A removed service goes at once, with its flows.
    pub fn reload(&mut self, old: &DesiredState, new: &DesiredState, until: Instant) {
        let kept = real_ids(new);
        let stays = |id: &RealId| new.services.iter().any(|s| s.id() == id.service);
        self.reals.retain(|d| !kept.contains(&d.id));
        for id in real_ids(old) {
            if stays(&id) && !kept.contains(&id) && !self.contains(&id) {
                self.reals.push(Draining { id, until });
            }
        }
        // A service removed while one of its servers drained: gone too.
        self.reals.retain(|d| stays(&d.id));
    }

    /// `desired` with every draining real server added at weight 0.
    pub fn overlay(&self, desired: &DesiredState) -> DesiredState {
        let mut out = desired.clone();
        for d in &self.reals {
            if let Some(s) = out.services.iter_mut().find(|s| s.id() == d.id.service) {
                s.backends.push(BackendSpec {
                    addr: d.id.addr,
                    port: d.id.port,
                    weight: 0,
                });
            }
        }
        out
    }

    /// Ends the drains whose connections reached 0 (or whose service is not
    /// installed now: no flows to keep) or whose time is up; returns them.
    pub fn expire(&mut self, status: &[ServiceStatus], now: Instant) -> Vec<RealId> {
        let mut done = Vec::new();
        self.reals.retain(|d| {
            let connections = status
                .iter()
                .find(|s| s.id() == d.id.service)
                .and_then(|s| {
                    s.backends
                        .iter()
                        .find(|b| (b.addr, b.port) == (d.id.addr, d.id.port))
                })
                .map_or(0, |b| b.active_connections + b.inactive_connections);
            let finished = connections == 0 || now >= d.until;
            if finished {
                done.push(d.id);
            }
            !finished
        });
        done
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dataplane::{BackendStatus, L4Protocol, SchedulerKind, ServiceSpec, TrafficStats};

    fn service(port: u16, reals: &[u8]) -> ServiceSpec {
        ServiceSpec {
            vip: "10.0.0.1".parse().unwrap(),
            port,
            protocol: L4Protocol::Tcp,
            scheduler: SchedulerKind::RoundRobin,
            backends: reals
                .iter()
                .map(|r| BackendSpec {
                    addr: format!("10.0.1.{r}").parse().unwrap(),
                    port: 80,
                    weight: 1,
                })
                .collect(),
            sorry: None,
            removed_server_flows: crate::config::RemovedServerFlows::default(),
        }
    }

    fn state(services: Vec<ServiceSpec>) -> DesiredState {
        DesiredState {
            services,
            ..DesiredState::default()
        }
    }

    fn status_of(desired: &DesiredState, conns: u64) -> Vec<ServiceStatus> {
        desired
            .services
            .iter()
            .map(|s| ServiceStatus {
                vip: s.vip,
                port: s.port,
                protocol: s.protocol,
                scheduler: s.scheduler,
                backends: s
                    .backends
                    .iter()
                    .map(|b| BackendStatus {
                        addr: b.addr,
                        port: b.port,
                        weight: b.weight,
                        active_connections: conns,
                        inactive_connections: 0,
                        stats: TrafficStats::default(),
                    })
                    .collect(),
                stats: TrafficStats::default(),
            })
            .collect()
    }

    #[test]
    fn a_removed_real_server_drains_at_weight_0_until_its_flows_end() {
        let t0 = Instant::now();
        let old = state(vec![service(80, &[2, 3])]);
        let new = state(vec![service(80, &[2])]);
        let mut drains = Drains::default();
        drains.reload(&old, &new, t0 + Duration::from_secs(30));
        let effective = drains.overlay(&new);
        let weights: Vec<u32> = effective.services[0]
            .backends
            .iter()
            .map(|b| b.weight)
            .collect();
        assert_eq!(weights, [1, 0], "the removed server stays, at weight 0");

        assert!(drains.expire(&status_of(&effective, 4), t0).is_empty());
        assert_eq!(drains.expire(&status_of(&effective, 0), t0).len(), 1);
        assert!(drains.is_empty());
        assert_eq!(drains.overlay(&new), new);
    }

    #[test]
    fn a_drain_ends_at_its_deadline_even_with_flows_left() {
        let t0 = Instant::now();
        let mut drains = Drains::default();
        let new = state(vec![service(80, &[2])]);
        drains.reload(
            &state(vec![service(80, &[2, 3])]),
            &new,
            t0 + Duration::from_secs(30),
        );
        let effective = drains.overlay(&new);
        assert!(
            drains
                .expire(&status_of(&effective, 4), t0 + Duration::from_secs(29))
                .is_empty()
        );
        assert_eq!(
            drains
                .expire(&status_of(&effective, 4), t0 + Duration::from_secs(30))
                .len(),
            1
        );
    }

    #[test]
    fn re_added_servers_and_removed_services_do_not_drain() {
        let t0 = Instant::now();
        let mut drains = Drains::default();
        let old = state(vec![service(80, &[2, 3]), service(443, &[2])]);
        let new = state(vec![service(80, &[2])]);
        drains.reload(&old, &new, t0);
        assert!(drains.contains(&new.services[0].id().real("10.0.1.3".parse().unwrap(), 80)));
        assert_eq!(drains.overlay(&new).services.len(), 1, "port 443 is gone");
        // Listed again: back at its configured weight, no longer draining.
        drains.reload(&drains.overlay(&new), &old, t0);
        assert!(drains.is_empty());
    }
}
