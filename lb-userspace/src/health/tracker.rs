//! The health bookkeeping of keepalived's `ipwrapper.c`, sans-IO: check
//! results in, events and a [`Verdict`] out.
//!
//! - A real server is alive while every one of its checkers is up; it
//!   starts alive, or down with `alpha` until each checker has passed.
//!   A checker that is down comes up only on a passing run (its retries
//!   never bring it up).
//! - A virtual server has quorum while the weights of its alive servers
//!   add up to `quorum`; with `hysteresis` it is gained at
//!   `quorum + hysteresis` and lost below `quorum - hysteresis`.
//! - Without quorum and with a sorry server, the alive servers leave the
//!   pool and the sorry server serves.

use std::time::SystemTime;

use super::{
    CheckId, ServerIndex, ServiceIndex, endpoint_label,
    events::Event,
    snapshot::{HealthSnapshot, ServerHealth, ServiceHealth},
    verdict::{Membership, Verdict},
};
use crate::{
    config::Config,
    dataplane::{RealId, ServiceId as DataplaneServiceId},
};

/// One check run's result, as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub check: CheckId,
    /// This run passed.
    pub ok: bool,
    /// The checker's confirmed state (after `retry`).
    pub up: bool,
    /// `misc_dynamic`: the weight the script asked for.
    pub weight: Option<u32>,
    /// Why this run failed.
    pub error: Option<String>,
    /// When it ended (wall clock, for status).
    pub at: SystemTime,
}

#[derive(Clone, Debug)]
pub struct Tracker {
    services: Vec<ServiceState>,
    snapshot: HealthSnapshot,
}

#[derive(Clone, Debug)]
struct ServiceState {
    label: String,
    quorum: u32,
    hysteresis: u32,
    sorry: Option<String>,
    quorum_up: bool,
    servers: Vec<ServerState>,
}

#[derive(Clone, Debug)]
struct ServerState {
    /// `None` only in a virtual server no data plane forwards (SCTP).
    id: Option<RealId>,
    label: String,
    weight: u32,
    dynamic_weight: Option<u32>,
    inhibit: bool,
    checks_up: Vec<bool>,
}

impl ServerState {
    fn alive(&self) -> bool {
        self.checks_up.iter().all(|up| *up)
    }

    fn effective_weight(&self) -> u32 {
        self.dynamic_weight.unwrap_or(self.weight)
    }
}

impl ServiceState {
    /// keepalived's weigh_live_realservers.
    fn live_weight(&self) -> u64 {
        self.servers
            .iter()
            .filter(|s| s.alive())
            .map(|s| u64::from(s.effective_weight()))
            .sum()
    }

    fn membership(&self, server: &ServerState) -> Membership {
        let out = if server.inhibit {
            Membership::Weight(0)
        } else {
            Membership::Removed
        };
        if !self.quorum_up && self.sorry.is_some() {
            out
        } else if server.alive() {
            Membership::Weight(server.effective_weight())
        } else {
            out
        }
    }
}

impl Tracker {
    /// Every real server alive at its configured weight; call [`Tracker::start`]
    /// next for the initial quorum.
    pub fn from_config(config: &Config) -> Self {
        let services: Vec<ServiceState> = config
            .virtual_servers
            .iter()
            .map(|vs| ServiceState {
                label: endpoint_label(vs.address, vs.protocol, vs.port),
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                sorry: vs
                    .sorry_server
                    .as_ref()
                    .map(|s| endpoint_label(s.address, vs.protocol, s.port.unwrap_or(vs.port))),
                quorum_up: true,
                servers: vs
                    .real_servers
                    .iter()
                    .map(|rs| ServerState {
                        id: DataplaneServiceId::of(vs).map(|id| id.configured_real(rs)),
                        label: endpoint_label(rs.address, vs.protocol, rs.port.unwrap_or(vs.port)),
                        weight: rs.weight,
                        dynamic_weight: None,
                        inhibit: rs.inhibit_on_failure,
                        checks_up: vec![!vs.alpha; rs.checks.len()],
                    })
                    .collect(),
            })
            .collect();
        let snapshot = HealthSnapshot {
            services: services
                .iter()
                .map(|s| ServiceHealth {
                    virtual_server: s.label.clone(),
                    quorum_up: true,
                    servers: s
                        .servers
                        .iter()
                        .map(|rs| ServerHealth {
                            id: rs.id,
                            checks: rs.checks_up.len(),
                            real_server: rs.label.clone(),
                            up: rs.alive(),
                            effective_weight: Some(rs.weight),
                            consecutive_successes: 0,
                            consecutive_failures: 0,
                            last_error: None,
                            last_failure_at: None,
                            runs: 0,
                            failed_runs: 0,
                        })
                        .collect(),
                })
                .collect(),
        };
        Self { services, snapshot }
    }

    /// Carries the health of real servers `old` also had (same virtual
    /// server, same real server) into this tracker, before it starts: a
    /// reload must not forget a failed server (keepalived's #1228). A
    /// server found down stays down until each of its checks passes again.
    pub fn carry_over(&mut self, old: &HealthSnapshot) {
        for (service, snap_service) in self.services.iter_mut().zip(&mut self.snapshot.services) {
            let Some(old_service) = old
                .services
                .iter()
                .find(|s| s.virtual_server == service.label)
            else {
                continue;
            };
            for (server, snap) in service.servers.iter_mut().zip(&mut snap_service.servers) {
                let Some(was) = old_service
                    .servers
                    .iter()
                    .find(|s| s.real_server == server.label)
                else {
                    continue;
                };
                if server.checks_up.is_empty() {
                    continue;
                }
                if was.up {
                    // Kept up across the reload, `alpha` or not.
                    server.checks_up.iter_mut().for_each(|up| *up = true);
                    snap.up = true;
                    continue;
                }
                server.checks_up.iter_mut().for_each(|up| *up = false);
                snap.up = false;
                snap.effective_weight = server.inhibit.then_some(0);
                snap.consecutive_failures = was.consecutive_failures;
                snap.last_error.clone_from(&was.last_error);
                snap.last_failure_at = was.last_failure_at;
            }
        }
    }

    /// The initial quorum states (keepalived's set_quorum_states and
    /// init_service_vs): a virtual server whose configured weights fall
    /// short starts with its sorry server.
    pub fn start(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        for i in 0..self.services.len() {
            let service = &mut self.services[i];
            service.quorum_up =
                service.live_weight() >= u64::from(service.quorum + service.hysteresis);
            self.update_quorum(i, true, &mut events);
        }
        events
    }

    /// One check run.
    pub fn record(&mut self, report: &Report) -> Vec<Event> {
        let mut events = Vec::new();
        let ServerIndex { service, server } = report.check.server;
        let Some(state) = self
            .services
            .get_mut(service)
            .and_then(|s| s.servers.get_mut(server))
        else {
            return events;
        };
        if report.check.check >= state.checks_up.len() {
            return events;
        }
        let was_alive = state.alive();
        let check_up = &mut state.checks_up[report.check.check];
        // A retry of a check that is already down (alpha, or carried down
        // over a reload) does not bring it up: only a pass does.
        *check_up = report.ok || (report.up && *check_up);
        let old_weight = state.effective_weight();
        if report.ok && report.weight.is_some() {
            state.dynamic_weight = report.weight;
        }
        let alive = state.alive();
        let vs = self.services[service].label.clone();
        let state = &self.services[service].servers[server];
        if state.effective_weight() != old_weight {
            events.push(Event::WeightChanged {
                id: report.check.server,
                rs: state.label.clone(),
                vs: vs.clone(),
                from: old_weight,
                to: state.effective_weight(),
                alive,
            });
        }
        if alive != was_alive {
            let (rs, inhibit) = (state.label.clone(), state.inhibit);
            events.push(if alive {
                Event::ServerUp {
                    id: report.check.server,
                    rs,
                    vs,
                    inhibit,
                }
            } else {
                Event::ServerDown {
                    id: report.check.server,
                    rs,
                    vs,
                    inhibit,
                }
            });
        }
        if !events.is_empty() {
            self.update_quorum(service, false, &mut events);
        }
        self.update_snapshot(report);
        events
    }

    /// keepalived's update_quorum_state.
    fn update_quorum(&mut self, index: ServiceIndex, init: bool, events: &mut Vec<Event>) {
        let service = &mut self.services[index];
        let weight_sum = service.live_weight();
        let hysteresis = i64::from(service.hysteresis);
        let threshold = i64::from(service.quorum)
            + if service.quorum_up {
                -hysteresis
            } else {
                hysteresis
            };
        let sum = i64::try_from(weight_sum).unwrap_or(i64::MAX);
        if !service.quorum_up && sum >= threshold {
            service.quorum_up = true;
            events.push(Event::QuorumGained {
                service: index,
                vs: service.label.clone(),
                quorum: service.quorum,
                hysteresis: service.hysteresis,
                threshold,
                weight_sum,
                sorry: service.sorry.clone(),
            });
        } else if (service.quorum_up && (weight_sum == 0 || sum < threshold))
            // At start, only to bring in the sorry server (keepalived).
            || (init && !service.quorum_up && service.sorry.is_some())
        {
            service.quorum_up = false;
            events.push(Event::QuorumLost {
                service: index,
                vs: service.label.clone(),
                quorum: service.quorum,
                hysteresis: service.hysteresis,
                threshold,
                weight_sum,
                init,
                sorry: service.sorry.clone(),
            });
        }
        self.refresh_memberships(index);
    }

    fn refresh_memberships(&mut self, index: ServiceIndex) {
        let service = &self.services[index];
        let health = &mut self.snapshot.services[index];
        health.quorum_up = service.quorum_up;
        for (state, server) in service.servers.iter().zip(&mut health.servers) {
            server.up = state.alive();
            server.effective_weight = match service.membership(state) {
                Membership::Weight(w) => Some(w),
                Membership::Removed => None,
            };
        }
    }

    fn update_snapshot(&mut self, report: &Report) {
        let ServerIndex { service, server } = report.check.server;
        let Some(health) = self
            .snapshot
            .services
            .get_mut(service)
            .and_then(|s| s.servers.get_mut(server))
        else {
            return;
        };
        health.runs += 1;
        if report.ok {
            health.consecutive_successes = health.consecutive_successes.saturating_add(1);
            health.consecutive_failures = 0;
        } else {
            health.failed_runs += 1;
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            health.consecutive_successes = 0;
            health.last_error.clone_from(&report.error);
            health.last_failure_at = Some(report.at);
        }
        let state = &self.services[service];
        health.up = state.servers[server].alive();
        health.effective_weight = match state.membership(&state.servers[server]) {
            Membership::Weight(w) => Some(w),
            Membership::Removed => None,
        };
    }

    /// The health of every server now.
    pub fn snapshot(&self) -> &HealthSnapshot {
        &self.snapshot
    }

    /// Which real servers take new flows, and at what weight.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            reals: self
                .services
                .iter()
                .flat_map(|s| {
                    s.servers
                        .iter()
                        .filter_map(move |rs| Some((rs.id?, s.membership(rs))))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RealServer, SorryServer, VirtualServer};

    fn config(yaml: &str) -> Config {
        crate::config::load_str(yaml, "test.yaml")
            .expect("valid config")
            .config
    }

    /// Service `service`'s memberships in the verdict, in server order.
    fn members(t: &Tracker, service: usize) -> Vec<Membership> {
        let verdict = t.verdict();
        t.services[service]
            .servers
            .iter()
            .map(|rs| verdict.reals[&rs.id.expect("TCP or UDP")])
            .collect()
    }

    fn report(server: usize, ok: bool, up: bool) -> Report {
        Report {
            check: CheckId {
                server: ServerIndex { service: 0, server },
                check: 0,
            },
            ok,
            up,
            weight: None,
            error: (!ok).then(|| "connection refused".to_owned()),
            at: SystemTime::UNIX_EPOCH,
        }
    }

    const TWO: &str = "
virtual_servers:
  - address: 10.0.0.100
    port: 80
    real_servers:
      - { address: 10.0.0.2, checks: [tcp_check] }
      - { address: 10.0.0.3, weight: 2, inhibit_on_failure: true, checks: [tcp_check] }
";

    #[test]
    fn a_reload_keeps_a_failed_server_out_until_it_passes_again() {
        let mut before = Tracker::from_config(&config(TWO));
        before.start();
        before.record(&report(0, false, false));
        // The reloaded file adds a server; 10.0.0.2 is unchanged.
        let reloaded = format!("{TWO}      - {{ address: 10.0.0.4, checks: [tcp_check] }}\n");
        let mut after = Tracker::from_config(&config(&reloaded));
        after.carry_over(before.snapshot());
        after.start();
        assert_eq!(
            members(&after, 0),
            [
                Membership::Removed,
                Membership::Weight(2),
                Membership::Weight(1)
            ],
            "the failed server stays out, the others are in"
        );
        let events = after.record(&report(0, true, true));
        assert_eq!(
            events.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["Adding service [10.0.0.2]:tcp:80 to VS [10.0.0.100]:tcp:80"]
        );
    }

    #[test]
    fn a_failed_server_leaves_and_an_inhibited_one_keeps_weight_zero() {
        let mut t = Tracker::from_config(&config(TWO));
        assert!(t.start().is_empty());
        let events = t.record(&report(0, false, false));
        assert_eq!(
            events.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["Removing service [10.0.0.2]:tcp:80 from VS [10.0.0.100]:tcp:80"]
        );
        let events = t.record(&report(1, false, false));
        assert_eq!(
            events[0].to_string(),
            "Disabling service [10.0.0.3]:tcp:80 of VS [10.0.0.100]:tcp:80"
        );
        assert!(
            events[1]
                .to_string()
                .starts_with("Lost quorum 1-0=1 > 0 for VS [10.0.0.100]:tcp:80"),
            "{events:?}"
        );
        assert_eq!(members(&t, 0), [Membership::Removed, Membership::Weight(0)]);
        let snap = &t.snapshot().services[0];
        assert!(!snap.quorum_up);
        assert_eq!(snap.servers[1].effective_weight, Some(0));
        assert_eq!(snap.servers[1].consecutive_failures, 1);
        assert_eq!(
            snap.servers[1].last_error.as_deref(),
            Some("connection refused")
        );

        let events = t.record(&report(1, true, true));
        assert_eq!(
            events[0].to_string(),
            "Enabling service [10.0.0.3]:tcp:80 of VS [10.0.0.100]:tcp:80"
        );
        assert_eq!(
            events[1].to_string(),
            "Gained quorum 1+0=1 <= 2 for VS [10.0.0.100]:tcp:80"
        );
        assert_eq!(
            members(&t, 0),
            [Membership::Removed, Membership::Weight(2)],
            "recovery restores the configured weight"
        );
        let events = t.record(&report(0, true, true));
        assert_eq!(
            events[0].to_string(),
            "Adding service [10.0.0.2]:tcp:80 to VS [10.0.0.100]:tcp:80"
        );
    }

    #[test]
    fn a_server_is_alive_only_while_every_check_is_up() {
        let yaml = "
virtual_servers:
  - address: 10.0.0.100
    port: 80
    real_servers:
      - { address: 10.0.0.2, checks: [tcp_check, tcp_check] }
      - { address: 10.0.0.3 }
";
        let mut t = Tracker::from_config(&config(yaml));
        t.start();
        let second = |ok| Report {
            check: CheckId {
                server: ServerIndex {
                    service: 0,
                    server: 0,
                },
                check: 1,
            },
            ..report(0, ok, ok)
        };
        assert_eq!(t.record(&report(0, false, false)).len(), 1);
        assert!(t.record(&second(false)).is_empty(), "already down");
        assert!(
            t.record(&report(0, true, true)).is_empty(),
            "one check still fails"
        );
        assert_eq!(t.record(&second(true)).len(), 1, "up once both pass");
        assert_eq!(
            members(&t, 0),
            [Membership::Weight(1), Membership::Weight(1)],
            "a server without checks is always up"
        );
    }

    fn quorum_config(quorum: u32, hysteresis: u32) -> Config {
        let mut vs: VirtualServer = config(
            "
virtual_servers:
  - address: 10.0.0.100
    port: 80
    real_servers: []
",
        )
        .virtual_servers
        .remove(0);
        vs.quorum = quorum;
        vs.hysteresis = hysteresis;
        vs.sorry_server = Some(SorryServer {
            address: "10.0.0.9".parse().unwrap(),
            port: None,
        });
        for i in 0..4 {
            let mut rs: RealServer = config(&format!(
                "virtual_servers: [{{ address: 10.0.0.100, port: 80, real_servers: [{{ address: 10.0.0.{}, checks: [tcp_check] }}] }}]",
                i + 2
            ))
            .virtual_servers
            .remove(0)
            .real_servers
            .remove(0);
            rs.inhibit_on_failure = i == 0;
            vs.real_servers.push(rs);
        }
        let mut c = config("virtual_servers: []");
        c.virtual_servers.push(vs);
        c
    }

    #[test]
    fn quorum_with_hysteresis_switches_to_the_sorry_server_and_back() {
        // 4 servers of weight 1, quorum 3, hysteresis 1: lost below 2,
        // gained again at 4.
        let mut t = Tracker::from_config(&quorum_config(3, 1));
        assert!(t.start().is_empty(), "4 >= 3+1: starts with quorum");
        assert!(t.record(&report(3, false, false)).len() == 1, "3 >= 3-1");
        assert!(t.record(&report(2, false, false)).len() == 1, "2 >= 3-1");
        let events = t.record(&report(1, false, false));
        assert_eq!(
            events[1].to_string(),
            "Lost quorum 3-1=2 > 1 for VS [10.0.0.100]:tcp:80; \
             Adding sorry server [10.0.0.9]:tcp:80 to VS [10.0.0.100]:tcp:80; \
             Removing alive servers from the pool for VS [10.0.0.100]:tcp:80"
        );
        assert_eq!(
            members(&t, 0),
            [
                Membership::Weight(0),
                Membership::Removed,
                Membership::Removed,
                Membership::Removed
            ],
            "the alive server leaves too, keeping its flows (inhibit)"
        );
        assert_eq!(
            t.record(&report(1, true, true)).len(),
            1,
            "2 < 3+1: still down"
        );
        assert_eq!(
            t.record(&report(2, true, true)).len(),
            1,
            "3 < 3+1: still down"
        );
        assert!(!t.snapshot().services[0].quorum_up);
        let events = t.record(&report(3, true, true));
        assert_eq!(
            events[1].to_string(),
            "Gained quorum 3+1=4 <= 4 for VS [10.0.0.100]:tcp:80; \
             Removing sorry server [10.0.0.9]:tcp:80 from VS [10.0.0.100]:tcp:80; \
             Adding alive servers to the pool for VS [10.0.0.100]:tcp:80"
        );
        assert_eq!(members(&t, 0), [Membership::Weight(1); 4]);
    }

    #[test]
    fn too_little_configured_weight_starts_with_quorum_down() {
        let mut t = Tracker::from_config(&quorum_config(5, 0));
        let events = t.start();
        assert!(
            events[0]
                .to_string()
                .starts_with("Starting with quorum down 5-0=5 > 4"),
            "{events:?}"
        );
        assert_eq!(members(&t, 0)[1], Membership::Removed);
    }

    #[test]
    fn without_a_sorry_server_a_short_quorum_changes_nothing_at_start() {
        let mut config = quorum_config(5, 0);
        config.virtual_servers[0].sorry_server = None;
        let mut t = Tracker::from_config(&config);
        assert!(t.start().is_empty(), "keepalived says nothing then");
        assert_eq!(members(&t, 0), [Membership::Weight(1); 4]);
        let events = t.record(&report(0, false, false));
        assert_eq!(
            events.len(),
            1,
            "a failure only removes the server: {events:?}"
        );
    }

    #[test]
    fn misc_dynamic_weights_change_the_weight_and_the_quorum() {
        let mut t = Tracker::from_config(&config(TWO));
        t.start();
        let events = t.record(&Report {
            weight: Some(7),
            ..report(0, true, true)
        });
        assert_eq!(
            events[0].to_string(),
            "Changing weight from 1 to 7 for active service [10.0.0.2]:tcp:80 of VS [10.0.0.100]:tcp:80"
        );
        assert_eq!(members(&t, 0)[0], Membership::Weight(7));
    }

    const ALPHA: &str = "
virtual_servers:
  - address: 10.0.0.100
    port: 80
    alpha: true
    real_servers:
      - { address: 10.0.0.2, checks: [tcp_check] }
      - { address: 10.0.0.3 }
";

    #[test]
    fn with_alpha_a_checked_server_starts_down_and_joins_on_its_first_pass() {
        let mut t = Tracker::from_config(&config(ALPHA));
        t.start();
        assert_eq!(
            members(&t, 0),
            [Membership::Removed, Membership::Weight(1)],
            "the checked server waits for its check; the unchecked one serves"
        );
        assert!(!t.snapshot().services[0].servers[0].up);
        // A failed run being retried (the checker still says up) is no pass.
        assert!(t.record(&report(0, false, true)).is_empty());
        assert_eq!(members(&t, 0)[0], Membership::Removed);
        let events = t.record(&report(0, true, true));
        assert!(
            matches!(events.as_slice(), [Event::ServerUp { .. }]),
            "{events:?}"
        );
        assert_eq!(members(&t, 0)[0], Membership::Weight(1));
    }

    #[test]
    fn with_alpha_a_reload_keeps_up_servers_up_and_starts_added_ones_down() {
        let mut before = Tracker::from_config(&config(ALPHA));
        before.start();
        before.record(&report(0, true, true));
        let reloaded = format!("{ALPHA}      - {{ address: 10.0.0.4, checks: [tcp_check] }}\n");
        let mut after = Tracker::from_config(&config(&reloaded));
        after.carry_over(before.snapshot());
        after.start();
        assert_eq!(
            members(&after, 0),
            [
                Membership::Weight(1),
                Membership::Weight(1),
                Membership::Removed
            ],
            "10.0.0.2 stays in, 10.0.0.4 waits for its first pass"
        );
    }
}
