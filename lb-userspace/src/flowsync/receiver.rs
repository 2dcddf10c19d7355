//! Receives the peer's flows, holds them (`super::held`), and installs in
//! the conntrack table those of services forwarding here: at once when the
//! service already forwards, or the moment it starts to (a takeover).

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use aya::maps::{HashMap as BpfHashMap, MapData};
use lb_common::maps::{CONNTRACK_ENTRIES, Flow, FlowEvent, FlowKey, ReverseFlow, ServiceKey};
use tokio::{net::UdpSocket, sync::watch};
use tracing::{debug, warn};

use super::{
    Counters, SyncIds,
    held::{Decision, Held, decide},
    ids::{Untranslatable, service_of},
    wire,
};
use crate::xdp::monotonic_ns;

/// What the receiving task owns.
pub(super) struct Receiving {
    pub(super) socket: Arc<UdpSocket>,
    /// Only these may send; `None`: anyone in the group.
    pub(super) peers: Option<HashSet<IpAddr>>,
    pub(super) id: u8,
    pub(super) conntrack: BpfHashMap<MapData, FlowKey, Flow>,
    pub(super) reverse: BpfHashMap<MapData, FlowKey, ReverseFlow>,
    pub(super) ids: watch::Receiver<Arc<SyncIds>>,
    /// The services the configuration has (forwarding here or not).
    pub(super) configured: watch::Receiver<Arc<HashSet<ServiceKey>>>,
    pub(super) counters: Arc<Counters>,
}

struct Receiver {
    r: Receiving,
    held: Held,
    current: Arc<SyncIds>,
}

/// Runs until the task is aborted.
pub(super) async fn run(receiving: Receiving) {
    let current = receiving.ids.borrow().clone();
    let mut rx = Receiver {
        r: receiving,
        held: Held::new(CONNTRACK_ENTRIES as usize),
        current,
    };
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            got = rx.r.socket.recv_from(&mut buf) => match got {
                Ok((len, from)) => rx.datagram(&buf[..len], from),
                Err(e) => {
                    warn!("flow sync: receiving failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            changed = rx.r.ids.changed() => {
                if changed.is_err() {
                    return;
                }
                let next = rx.r.ids.borrow_and_update().clone();
                rx.took_over(next);
            }
            _ = tick.tick() => rx.expire(),
        }
    }
}

impl Receiver {
    fn datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        let c = &self.r.counters;
        if self
            .r
            .peers
            .as_ref()
            .is_some_and(|p| !p.contains(&from.ip()))
        {
            Counters::bump(&c.unknown_sender);
            return;
        }
        Counters::bump(&c.datagrams_received);
        let flows = match wire::decode(self.r.id, bytes) {
            Ok(flows) => flows,
            Err(e) => {
                debug!(%from, "flow sync: datagram refused: {e}");
                c.refused(e);
                return;
            }
        };
        Counters::add(&c.entries_received, flows.len());
        let now = Instant::now();
        for event in flows {
            let service = service_of(&event.key);
            if !self.r.configured.borrow().contains(&service) {
                Counters::bump(&self.r.counters.skipped_unknown_service);
                continue;
            }
            if !self.held.hold(event, now) {
                Counters::bump(&self.r.counters.held_full);
            }
            if self.current.services.contains_key(&service) {
                self.install(&event, now, false);
            }
        }
    }

    /// The ids changed: flows of services that just started forwarding
    /// here (or got new ids) go in now, before their own packets' mid-flow
    /// picks can stick.
    fn took_over(&mut self, next: Arc<SyncIds>) {
        let fresh: HashSet<ServiceKey> = next
            .services
            .iter()
            .filter(|(k, s)| {
                self.current
                    .services
                    .get(*k)
                    .is_none_or(|old| old.id != s.id)
            })
            .map(|(k, _)| *k)
            .collect();
        self.current = next;
        if fresh.is_empty() {
            return;
        }
        let due: Vec<(FlowEvent, Instant)> = self
            .held
            .iter()
            .filter(|h| fresh.contains(&service_of(&h.event.key)))
            .map(|h| (h.event, h.at))
            .collect();
        for (event, at) in &due {
            self.install(event, *at, true);
        }
        if !due.is_empty() {
            debug!(
                flows = due.len(),
                "flow sync: peer's flows installed on takeover"
            );
        }
    }

    fn install(&mut self, event: &FlowEvent, heard_at: Instant, takeover: bool) {
        let c = &self.r.counters;
        let now_ns = monotonic_ns();
        let age = u64::try_from(heard_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let local = match self.current.translate(event, now_ns.saturating_sub(age)) {
            Ok(local) => local,
            Err(Untranslatable::Real) => {
                Counters::bump(&c.skipped_unknown_real);
                return;
            }
            // Not forwarding here: held for a takeover.
            Err(Untranslatable::Service) => return,
        };
        let existing = self.r.conntrack.get(&event.key, 0).ok();
        match decide(
            existing.as_ref(),
            &local.flow,
            now_ns,
            &self.current.settings,
            takeover,
        ) {
            Decision::KeepLocal => Counters::bump(&c.kept_local),
            Decision::Write(flow) => {
                if self.r.conntrack.insert(event.key, flow, 0).is_err() {
                    Counters::bump(&c.install_errors);
                    return;
                }
                if let Some((reply, value)) = local.reverse
                    && self.r.reverse.insert(reply, value, 0).is_err()
                {
                    Counters::bump(&c.install_errors);
                    return;
                }
                Counters::bump(&c.installed);
            }
        }
    }

    fn expire(&mut self) {
        self.held.expire(Instant::now(), &self.current.settings);
        let waiting = self
            .held
            .iter()
            .filter(|h| {
                !self
                    .current
                    .services
                    .contains_key(&service_of(&h.event.key))
            })
            .count();
        self.r.counters.held.store(waiting as u64, Relaxed);
    }
}
