//! How long a stopping node keeps forwarding after it gave its addresses up.
//!
//! A MASTER that stops sends priority 0; the BACKUP takes over after its
//! Skew_Time, which is always shorter than one advert interval. Until then,
//! and until clients and routers have learned the new MASTER's MAC from its
//! gratuitous ARP, packets still arrive here: the data plane keeps
//! forwarding them for that long instead of dropping them.
//!
//! Tearing the data plane down at once also hurts in a lab where both
//! nodes share one kernel: detaching XDP from a veth waits for an RCU grace
//! period while holding the RTNL lock, which delays the new MASTER's
//! address add by as long.

use std::time::Duration;

use crate::config::Config;

/// Beyond the longest advert interval: time for the new MASTER's
/// gratuitous ARP to be sent and heard.
const MARGIN: Duration = Duration::from_millis(20);
/// Never hold a stop up longer than this, whatever the intervals.
const LIMIT: Duration = Duration::from_secs(2);

/// The grace period for `config`: zero without VRRP instances.
pub fn handover_grace(config: &Config) -> Duration {
    config
        .vrrp_instances
        .iter()
        .map(|i| i.advert_int)
        .max()
        .map_or(Duration::ZERO, |longest| (longest + MARGIN).min(LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        crate::config::load_str(yaml, "test.yaml")
            .expect("valid")
            .config
    }

    #[test]
    fn no_vrrp_means_no_wait() {
        assert_eq!(handover_grace(&Config::default()), Duration::ZERO);
    }

    #[test]
    fn the_longest_interval_counts_and_is_capped() {
        let yaml = |a: &str, b: &str| {
            format!(
                "vrrp_instances:\n  - {{ name: A, interface: eth0, virtual_router_id: 1, priority: 100, advert_int: {a}, version: 3, virtual_ipaddresses: [10.0.0.1/24] }}\n  - {{ name: B, interface: eth0, virtual_router_id: 2, priority: 100, advert_int: {b}, version: 3, virtual_ipaddresses: [10.0.0.2/24] }}\n"
            )
        };
        assert_eq!(
            handover_grace(&config(&yaml("0.01", "0.1"))),
            Duration::from_millis(120)
        );
        assert_eq!(handover_grace(&config(&yaml("3", "1"))), LIMIT);
    }
}
