//! What `lbd top` shows and how its keys change it, with no terminal in
//! sight: the latest report, the sort order, and the picked service.

use std::cmp::Reverse;

use crate::daemon::status::{RealServerView, ServiceView, StatusReport};

/// What the services and real servers are ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Protocol, address, port (`ipvsadm --sort`).
    #[default]
    Address,
    /// New connections per second, busiest first.
    Cps,
    /// Packets in per second, busiest first.
    InPps,
    /// Bytes in per second, busiest first.
    InBps,
    /// Active connections, most first.
    Active,
}

impl SortKey {
    /// The next key, as `s` steps through them.
    #[must_use]
    pub const fn next(self) -> Self {
        match self {
            SortKey::Address => SortKey::Cps,
            SortKey::Cps => SortKey::InPps,
            SortKey::InPps => SortKey::InBps,
            SortKey::InBps => SortKey::Active,
            SortKey::Active => SortKey::Address,
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            SortKey::Address => "address",
            SortKey::Cps => "CPS",
            SortKey::InPps => "InPPS",
            SortKey::InBps => "InBPS",
            SortKey::Active => "active conns",
        }
    }
}

/// A key press, as the view understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Quit,
    Up,
    Down,
    NextSort,
}

/// The view's state between redraws.
#[derive(Debug, Default)]
pub struct TopState {
    pub report: Option<StatusReport>,
    /// Why the last refresh failed (the last good report stays shown).
    pub error: Option<String>,
    pub sort: SortKey,
    /// The picked service, by its label ("TCP 10.0.0.1:80"), so it stays
    /// picked when the order changes.
    pub(super) picked: Option<String>,
}

pub fn label(s: &ServiceView) -> String {
    format!("{} {}", s.protocol, s.address)
}

fn active(s: &ServiceView) -> u64 {
    s.real_servers.iter().map(|r| r.active_connections).sum()
}

impl TopState {
    /// The services in the current order.
    pub fn services(&self) -> Vec<&ServiceView> {
        let mut services: Vec<&ServiceView> = self
            .report
            .as_ref()
            .map(|r| r.services.iter().collect())
            .unwrap_or_default();
        match self.sort {
            SortKey::Address => services.sort_by_key(|s| (s.protocol.clone(), s.vip, s.port)),
            SortKey::Cps => services.sort_by_key(|s| Reverse(s.rates.cps)),
            SortKey::InPps => services.sort_by_key(|s| Reverse(s.rates.in_pps)),
            SortKey::InBps => services.sort_by_key(|s| Reverse(s.rates.in_bps)),
            SortKey::Active => services.sort_by_key(|s| Reverse(active(s))),
        }
        services
    }

    /// The picked service's index in [`Self::services`] (the first when
    /// none is picked or it is gone).
    pub fn picked_index(&self) -> Option<usize> {
        let services = self.services();
        if services.is_empty() {
            return None;
        }
        let found = self
            .picked
            .as_ref()
            .and_then(|p| services.iter().position(|s| label(s) == *p));
        Some(found.unwrap_or(0))
    }

    /// The picked service's real servers, in the current order.
    pub fn real_servers(&self) -> Option<(&ServiceView, Vec<&RealServerView>)> {
        let service = *self.services().get(self.picked_index()?)?;
        let mut reals: Vec<&RealServerView> = service.real_servers.iter().collect();
        match self.sort {
            SortKey::Address => reals.sort_by_key(|r| (r.ip, r.port)),
            SortKey::Cps => reals.sort_by_key(|r| Reverse(r.rates.cps)),
            SortKey::InPps => reals.sort_by_key(|r| Reverse(r.rates.in_pps)),
            SortKey::InBps => reals.sort_by_key(|r| Reverse(r.rates.in_bps)),
            SortKey::Active => reals.sort_by_key(|r| Reverse(r.active_connections)),
        }
        Some((service, reals))
    }

    /// Applies a key; `false` when the view should end.
    pub fn key(&mut self, key: Key) -> bool {
        match key {
            Key::Quit => return false,
            Key::NextSort => self.sort = self.sort.next(),
            Key::Up | Key::Down => {
                let services = self.services();
                if let Some(at) = self.picked_index() {
                    let to = if key == Key::Up {
                        at.saturating_sub(1)
                    } else {
                        (at + 1).min(services.len() - 1)
                    };
                    self.picked = Some(label(services[to]));
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> StatusReport {
        let service = |port: u16, cps: u64, reals: &[(&str, u64)]| {
            let reals: Vec<String> = reals
                .iter()
                .map(|(ip, cps)| {
                    format!(
                        r#"{{"ip":"{ip}","port":80,"address":"{ip}:80","weight":1,
                        "active_connections":{cps},"inactive_connections":0,"draining":false,"health":null,
                        "rates":{{"cps":{cps},"in_pps":0,"out_pps":0,"in_bps":0,"out_bps":0}},
                        "stats":{{"connections":0,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0}}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"protocol":"TCP","vip":"10.0.0.1","port":{port},"address":"10.0.0.1:{port}","scheduler":"rr",
                "stats":{{"connections":0,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0}},
                "rates":{{"cps":{cps},"in_pps":0,"out_pps":0,"in_bps":0,"out_bps":0}},
                "real_servers":[{}]}}"#,
                reals.join(",")
            )
        };
        let services = [
            service(80, 5, &[("10.0.1.2", 1), ("10.0.1.3", 4)]),
            service(443, 50, &[("10.0.1.9", 50)]),
        ];
        serde_json::from_str(&format!(
            r#"{{"version":"0","dataplane":"XDP","config":"c","started_at":0,"reloaded_at":null,
            "reloads_ok":0,"reloads_failed":0,"vrrp_instances":[],"vrrp_unmatched":0,"xdp_counters":{{}},
            "services":[{}]}}"#,
            services.join(",")
        ))
        .unwrap()
    }

    fn order(state: &TopState) -> Vec<u16> {
        state.services().iter().map(|s| s.port).collect()
    }

    #[test]
    fn s_steps_the_sort_and_the_picked_service_stays_picked() {
        let mut state = TopState {
            report: Some(report()),
            ..TopState::default()
        };
        assert_eq!(order(&state), [80, 443]);
        assert_eq!(
            state.real_servers().unwrap().0.port,
            80,
            "the first by default"
        );
        assert!(state.key(Key::Down));
        assert_eq!(state.real_servers().unwrap().0.port, 443);
        assert!(state.key(Key::Down), "past the end stays on the last");
        assert_eq!(state.real_servers().unwrap().0.port, 443);

        state.key(Key::NextSort);
        assert_eq!(state.sort, SortKey::Cps);
        assert_eq!(order(&state), [443, 80], "busiest first");
        assert_eq!(state.real_servers().unwrap().0.port, 443, "still picked");
        state.key(Key::Down);
        let (service, reals) = state.real_servers().unwrap();
        assert_eq!(service.port, 80);
        let reals: Vec<&str> = reals.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(reals, ["10.0.1.3:80", "10.0.1.2:80"], "by CPS too");
        assert!(!state.key(Key::Quit));
    }
}
