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
//! - VRRP's filter keeps a service whose VIP some instance carries only
//!   while one of those instances is MASTER, so a BACKUP never forwards a
//!   VIP's traffic, even traffic a stale neighbour cache sends it; a
//!   service whose VIP no instance carries is always forwarded. VRRP
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

/// `desired` less the services whose VIP belongs to instances none of
/// which is MASTER.
fn serving(desired: &DesiredState, states: &[InstanceStatus]) -> DesiredState {
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
    fn only_a_master_forwards_its_vips_and_unowned_vips_always_forward() {
        let desired = desired(TWO);
        let none = (Verdict::default(), Drains::default());
        let labels = |states: &[InstanceStatus]| -> Vec<String> {
            view(&effective(&desired, &none.0, &none.1, states))
                .into_iter()
                .map(|(s, _)| s)
                .collect()
        };
        let backup = [instance(State::Backup, "10.0.0.100")];
        assert_eq!(labels(&backup), ["UDP 10.0.0.200:53"]);
        let master = [instance(State::Master, "10.0.0.100")];
        assert_eq!(labels(&master), ["TCP 10.0.0.100:80", "UDP 10.0.0.200:53"]);
        assert_eq!(labels(&[]).len(), 2, "no VRRP: everything forwards");
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
        // As BACKUP none of it is installed, verdict and drains or not.
        let backup = [instance(State::Backup, "10.0.0.100")];
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
