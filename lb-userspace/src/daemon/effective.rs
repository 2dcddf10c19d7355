//! The one pipeline from the configuration to what the data plane holds,
//! as a pure function, used at start and on every change (a health
//! verdict, a VRRP transition, a reload, a drain ending):
//!
//! ```text
//! desired (config) -> health verdict -> drains -> VRRP filter -> data plane
//! ```
//!
//! - the verdict sets each checked real server's weight or drops it
//!   (`health::Verdict`, keyed by `RealId`);
//! - drains add back, at weight 0, real servers a reload removed while
//!   their connections finish (`Drains`);
//! - VRRP's filter drops a service whose VIP some instance carries only
//!   while every one of those instances is in FAULT (its link is down).
//!   A BACKUP keeps its services installed, as keepalived keeps IPVS's:
//!   a BACKUP about to become MASTER then serves before it claims the
//!   VIP (no packet reaches a VIP whose service is not there yet, which
//!   the kernel would answer with a reset), and a MASTER that just handed
//!   over keeps forwarding the flows that neighbours with stale caches
//!   still send it, to the same real servers, until their caches move.
//!   VRRP
//!   itself knows nothing of virtual servers (as in keepalived).

use std::net::IpAddr;

use super::drain::Drains;
use crate::{
    dataplane::DesiredState,
    health::Verdict,
    vrrp::{State, io::InstanceStatus},
};

/// What the data plane should hold now.
pub fn effective(
    desired: &DesiredState,
    verdict: &Verdict,
    drains: &Drains,
    states: &[InstanceStatus],
) -> DesiredState {
    serving(&drains.overlay(&verdict.apply(desired)), states)
}

/// `desired` less the services whose VIP belongs to instances that are
/// all in FAULT.
fn serving(desired: &DesiredState, states: &[InstanceStatus]) -> DesiredState {
    let owners = |vip: IpAddr| states.iter().filter(move |s| s.vips.contains(&vip));
    let faulted =
        |vip: IpAddr| owners(vip).next().is_some() && owners(vip).all(|s| s.state == State::Fault);
    DesiredState {
        services: desired
            .services
            .iter()
            .filter(|s| !faulted(s.vip))
            .cloned()
            .collect(),
        timeouts: desired.timeouts,
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Instant};

    use super::*;
    use crate::{config, health::Membership};

    const TWO: &str = "
virtual_servers:
  - address: 10.0.0.100
    port: 80
    real_servers: [{ address: 10.0.1.2 }, { address: 10.0.1.3, weight: 4 }]
  - address: 10.0.0.200
    port: 53
    protocol: udp
    real_servers: [{ address: 10.0.1.9 }]
";

    fn desired(yaml: &str) -> DesiredState {
        let config = config::load_str(yaml, "test.yaml").unwrap().config;
        DesiredState::from_config(&config).unwrap()
    }

    fn instance(state: State, vip: &str) -> InstanceStatus {
        InstanceStatus {
            name: "VI_1".into(),
            state,
            priority: 100,
            vips: vec![vip.parse().unwrap()],
            master: None,
            since: Instant::now(),
            maintenance: false,
            handed_over: false,
        }
    }

    /// (service, [(real server, weight)]) of a state, for assertions.
    fn view(state: &DesiredState) -> Vec<(String, Vec<(String, u32)>)> {
        state
            .services
            .iter()
            .map(|s| {
                let reals = s
                    .backends
                    .iter()
                    .map(|b| (b.addr.to_string(), b.weight))
                    .collect();
                (s.label(), reals)
            })
            .collect()
    }

    #[test]
    fn a_vips_services_are_installed_unless_its_instances_are_all_in_fault() {
        let desired = desired(TWO);
        let none = (Verdict::default(), Drains::default());
        let labels = |states: &[InstanceStatus]| -> Vec<String> {
            view(&effective(&desired, &none.0, &none.1, states))
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        };
        let both = ["TCP 10.0.0.100:80", "UDP 10.0.0.200:53"];
        let backup = [instance(State::Backup, "10.0.0.100")];
        assert_eq!(labels(&backup), both, "a BACKUP serves before it claims");
        let master = [instance(State::Master, "10.0.0.100")];
        assert_eq!(labels(&master), both);
        let fault = [instance(State::Fault, "10.0.0.100")];
        assert_eq!(labels(&fault), ["UDP 10.0.0.200:53"]);
        let one_up = [
            instance(State::Fault, "10.0.0.100"),
            instance(State::Backup, "10.0.0.100"),
        ];
        assert_eq!(labels(&one_up), both, "one instance not in FAULT keeps it");
        assert_eq!(labels(&[]), both, "no VRRP: everything forwards");
    }

    #[test]
    fn the_verdict_comes_first_then_drains_then_vrrp() {
        let old = desired(TWO);
        // A reload removed 10.0.1.3 (it drains); health has removed
        // 10.0.1.2: the service keeps only the draining server, at 0.
        let new = desired(&TWO.replace(", { address: 10.0.1.3, weight: 4 }", ""));
        let mut drains = Drains::default();
        drains.reload(&old, &new, Instant::now());
        let ids: Vec<_> = old.services[0].reals().collect();
        let verdict = Verdict {
            reals: BTreeMap::from([(ids[0], Membership::Removed)]),
        };
        let master = [instance(State::Master, "10.0.0.100")];
        assert_eq!(
            view(&effective(&new, &verdict, &drains, &master))[0],
            (
                "TCP 10.0.0.100:80".to_owned(),
                vec![("10.0.1.3".to_owned(), 0)]
            )
        );
        // In FAULT none of it is installed, verdict and drains or not.
        let backup = [instance(State::Fault, "10.0.0.100")];
        assert_eq!(
            view(&effective(&new, &verdict, &drains, &backup)),
            [(
                "UDP 10.0.0.200:53".to_owned(),
                vec![("10.0.1.9".to_owned(), 1)]
            )]
        );
    }

    #[test]
    fn reordering_services_in_the_file_does_not_move_a_verdict() {
        let desired_a = desired(TWO);
        let ids: Vec<_> = desired_a.services[0].reals().collect();
        let verdict = Verdict {
            reals: BTreeMap::from([(ids[1], Membership::Weight(0))]),
        };
        // The same services, the UDP one first.
        let (first, second) = TWO.split_at(TWO.find("  - address: 10.0.0.200").unwrap());
        let swapped = format!(
            "virtual_servers:\n{second}{}",
            first.trim_start_matches("\nvirtual_servers:\n")
        );
        let desired_b = desired(&swapped);
        let none = Drains::default();
        let mut a = view(&effective(&desired_a, &verdict, &none, &[]));
        let mut b = view(&effective(&desired_b, &verdict, &none, &[]));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(a.contains(&(
            "TCP 10.0.0.100:80".to_owned(),
            vec![("10.0.1.2".to_owned(), 1), ("10.0.1.3".to_owned(), 0)]
        )));
    }
}
