//! Which services the data plane should forward given the VRRP states: a
//! service whose VIP some instance carries is forwarded only while one of
//! those instances is MASTER; a service whose VIP no instance carries is
//! always forwarded. So a BACKUP never forwards a VIP's traffic, even
//! traffic that reaches it by a stale neighbour cache.

use std::net::IpAddr;

use super::InstanceStatus;
use crate::{dataplane::DesiredState, vrrp::State};

/// `desired` less the services whose VIP belongs to instances none of
/// which is MASTER.
pub fn serving(desired: &DesiredState, states: &[InstanceStatus]) -> DesiredState {
    let owned = |vip: IpAddr| states.iter().any(|s| s.vips.contains(&vip));
    let mastered = |vip: IpAddr| {
        states
            .iter()
            .any(|s| s.state == State::Master && s.vips.contains(&vip))
    };
    DesiredState {
        services: desired
            .services
            .iter()
            .filter(|s| !owned(s.vip) || mastered(s.vip))
            .cloned()
            .collect(),
        timeouts: desired.timeouts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{L4Protocol, SchedulerKind, ServiceSpec};

    fn service(vip: &str) -> ServiceSpec {
        ServiceSpec {
            vip: vip.parse().unwrap(),
            port: 80,
            protocol: L4Protocol::Tcp,
            scheduler: SchedulerKind::RoundRobin,
            backends: Vec::new(),
            sorry: None,
        }
    }

    fn status(state: State, vip: &str) -> InstanceStatus {
        InstanceStatus {
            name: "VI_1".into(),
            state,
            priority: 100,
            vips: vec![vip.parse().unwrap()],
            master: None,
            since: std::time::Instant::now(),
            maintenance: false,
        }
    }

    #[test]
    fn only_a_master_forwards_its_vips_and_unowned_vips_always_forward() {
        let desired = DesiredState {
            services: vec![service("10.0.0.100"), service("10.0.0.200")],
            ..DesiredState::default()
        };
        let vips = |d: &DesiredState| {
            d.services
                .iter()
                .map(|s| s.vip.to_string())
                .collect::<Vec<_>>()
        };
        let backup = [status(State::Backup, "10.0.0.100")];
        assert_eq!(vips(&serving(&desired, &backup)), ["10.0.0.200"]);
        let master = [status(State::Master, "10.0.0.100")];
        assert_eq!(
            vips(&serving(&desired, &master)),
            ["10.0.0.100", "10.0.0.200"]
        );
        assert_eq!(vips(&serving(&desired, &[])).len(), 2);
    }
}
