//! The peer's flows as this node last heard of them, kept whatever the
//! local maps hold: a BACKUP does not forward the VIP's services (they are
//! installed on takeover), so their flows wait here and go into the
//! conntrack table the moment the service does. Each expires by the same
//! idle timeouts as in the program, counted from when it was heard of.

use std::{collections::HashMap, time::Instant};

use lb_common::{
    conntrack,
    maps::{FLOW_CLOSE, FLOW_FIN, Flow, FlowEvent, FlowKey, Settings},
};

/// One flow heard of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heard {
    pub event: FlowEvent,
    pub at: Instant,
}

/// The held flows, at most `max` of them.
#[derive(Debug)]
pub struct Held {
    flows: HashMap<FlowKey, Heard>,
    max: usize,
}

impl Held {
    pub fn new(max: usize) -> Self {
        Self {
            flows: HashMap::new(),
            max,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.flows.len()
    }

    /// Records `event`; `false` when it is a new flow and the table is full.
    pub fn hold(&mut self, event: FlowEvent, at: Instant) -> bool {
        if self.flows.len() >= self.max && !self.flows.contains_key(&event.key) {
            return false;
        }
        self.flows.insert(event.key, Heard { event, at });
        true
    }

    /// Drops the flows idle past their timeout at `now`.
    pub fn expire(&mut self, now: Instant, settings: &Settings) {
        self.flows.retain(|_, h| {
            let idle = now.saturating_duration_since(h.at).as_nanos();
            idle <= u128::from(conntrack::timeout_ns(u32::from(h.event.state), settings))
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = &Heard> {
        self.flows.values()
    }
}

/// What to do with a synced flow given the local entry for its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write this entry.
    Write(Flow),
    /// Leave the local entry: it is live and pinned to another real.
    KeepLocal,
}

/// Decides how `synced` (already in local ids) meets `local`:
///
/// - no local entry, or one past its timeout or closing: the synced one;
/// - the same real: the synced state and time, keeping the local cached
///   next hops;
/// - another real, live: the local one wins, except on `takeover` (the
///   service just started forwarding here, so the local entry was made in
///   the moment before the synced flows went in, by a packet picked up
///   mid-flow: the peer's pin is the connection's real one).
pub fn decide(
    local: Option<&Flow>,
    synced: &Flow,
    now_ns: u64,
    s: &Settings,
    takeover: bool,
) -> Decision {
    let Some(local) = local else {
        return Decision::Write(*synced);
    };
    let same_real = local.backend == synced.backend && local.generation == synced.generation;
    if same_real {
        return Decision::Write(Flow {
            to_backend: local.to_backend,
            to_client: local.to_client,
            last_seen_ns: local.last_seen_ns.max(synced.last_seen_ns),
            ..*synced
        });
    }
    let finished = conntrack::expired(local.state, local.last_seen_ns, now_ns, s)
        || local.state == FLOW_FIN
        || local.state == FLOW_CLOSE;
    if finished || takeover {
        Decision::Write(*synced)
    } else {
        Decision::KeepLocal
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lb_common::maps::{FLOW_ESTABLISHED, FLOW_SYN, FLOW_UDP, NextHop};

    use super::*;

    const S: Settings = Settings::IPVS_DEFAULTS;
    const SEC: u64 = 1_000_000_000;

    fn flow(backend: u32, state: u32, last_seen_ns: u64) -> Flow {
        Flow {
            backend,
            generation: 1,
            service: 0,
            state,
            last_seen_ns,
            ..Flow::default()
        }
    }

    fn event(n: u8, state: u32) -> FlowEvent {
        let mut e = FlowEvent::default();
        e.key.src[0] = n;
        e.state = u8::try_from(state).unwrap();
        e
    }

    #[test]
    fn a_flow_new_here_is_written() {
        let synced = flow(1, FLOW_ESTABLISHED, 5 * SEC);
        assert_eq!(
            decide(None, &synced, 6 * SEC, &S, false),
            Decision::Write(synced)
        );
    }

    #[test]
    fn the_same_real_keeps_the_cached_next_hops() {
        let mut local = flow(1, FLOW_SYN, 5 * SEC);
        local.to_backend = NextHop {
            ifindex: 3,
            ..NextHop::default()
        };
        let synced = flow(1, FLOW_FIN, 6 * SEC);
        let Decision::Write(w) = decide(Some(&local), &synced, 6 * SEC, &S, false) else {
            panic!("not written");
        };
        assert_eq!(w.state, FLOW_FIN);
        assert_eq!(w.to_backend.ifindex, 3);
        assert_eq!(w.last_seen_ns, 6 * SEC);
    }

    #[test]
    fn a_live_local_flow_to_another_real_wins_unless_taking_over() {
        let local = flow(2, FLOW_ESTABLISHED, 5 * SEC);
        let synced = flow(1, FLOW_ESTABLISHED, 5 * SEC);
        assert_eq!(
            decide(Some(&local), &synced, 6 * SEC, &S, false),
            Decision::KeepLocal
        );
        assert_eq!(
            decide(Some(&local), &synced, 6 * SEC, &S, true),
            Decision::Write(synced),
            "on takeover the peer's pin is the connection's"
        );
    }

    #[test]
    fn an_expired_or_closing_local_flow_gives_way() {
        let synced = flow(1, FLOW_SYN, 1000 * SEC);
        let stale = flow(2, FLOW_ESTABLISHED, 10 * SEC);
        assert_eq!(
            decide(Some(&stale), &synced, 1000 * SEC, &S, false),
            Decision::Write(synced)
        );
        let closing = flow(2, FLOW_FIN, 999 * SEC);
        assert_eq!(
            decide(Some(&closing), &synced, 1000 * SEC, &S, false),
            Decision::Write(synced)
        );
    }

    #[test]
    fn held_flows_expire_by_their_states_timeout() {
        let mut held = Held::new(10);
        let t0 = Instant::now();
        assert!(held.hold(event(1, FLOW_ESTABLISHED), t0));
        assert!(held.hold(event(2, FLOW_CLOSE), t0));
        assert!(held.hold(event(3, FLOW_UDP), t0));
        held.expire(t0 + Duration::from_secs(11), &S);
        assert_eq!(held.len(), 2, "CLOSE lasts 10 s");
        held.expire(t0 + Duration::from_secs(301), &S);
        assert_eq!(held.len(), 1, "UDP lasts 300 s");
        held.expire(t0 + Duration::from_secs(901), &S);
        assert_eq!(held.len(), 0, "established lasts 900 s");
    }

    #[test]
    fn a_full_table_refuses_new_flows_but_takes_updates() {
        let mut held = Held::new(1);
        let t0 = Instant::now();
        assert!(held.hold(event(1, FLOW_SYN), t0));
        assert!(!held.hold(event(2, FLOW_SYN), t0), "no room for a second");
        assert!(held.hold(event(1, FLOW_FIN), t0), "an update of the first");
        assert_eq!(held.iter().next().unwrap().event.state, 2);
    }
}
