//! A virtual LAN of VRRP routers run in virtual time, the way quinn-proto's
//! tests run a pair of endpoints: every router is the real sans-IO
//! [`Instance`] (or [`SyncGroup`]), the adverts one emits are delivered to
//! the others attached to the same link after a fixed latency, and the
//! clock jumps from one event (a timer or a delivery) to the next. Links can
//! lose adverts, be partitioned and healed; routers can crash silently.
//!
//! Each router member is attached to the link named after its `interface`,
//! so two sync groups whose members sit on `eth0` and `eth1` form two LANs.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{
    instance::{Action, Instance, Reason, State},
    params::InstanceParams,
    receive::{Received, VRRP_TTL},
    sync_group::SyncGroup,
    testing::{ip, params_v3},
};
use crate::config::VirtualAddress;

mod election_tests;
mod failure_tests;
mod router;
mod sync_group_tests;

use router::Router;

struct Node {
    router: Router,
    /// Powered off: no timers, nothing sent or received (a crash, no
    /// priority-0 goodbye).
    crashed: bool,
    /// Virtual addresses this node has added and not removed.
    vips: BTreeSet<IpAddr>,
}

/// An advert on the wire.
struct InFlight {
    at: Instant,
    to: usize,
    member: usize,
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

/// What happened, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transition {
    /// Virtual time since the LAN was built.
    pub(crate) at: Duration,
    pub(crate) node: usize,
    pub(crate) member: usize,
    pub(crate) from: State,
    pub(crate) to: State,
    pub(crate) reason: Reason,
}

/// Deterministic loss: a xorshift generator, so a run is reproducible.
struct Loss {
    per_mille: u32,
    state: u64,
}

impl Loss {
    fn drops(&mut self) -> bool {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % 1000) < u64::from(self.per_mille)
    }
}

/// The LAN, its routers and the virtual clock.
pub(crate) struct Lan {
    start: Instant,
    now: Instant,
    latency: Duration,
    nodes: Vec<Node>,
    wire: VecDeque<InFlight>,
    /// Segment of (node, link); adverts cross only within one segment.
    segments: HashMap<(usize, String), u32>,
    loss: Option<Loss>,
    /// Adverts of one node still to be lost, whatever `loss` says.
    drop_next: HashMap<usize, u32>,
    /// When each node's adverts were last delivered to anyone.
    last_delivered: HashMap<usize, Instant>,
    transitions: Vec<Transition>,
}

/// Parameters of a router on `eth0`, VRRP v3, 1 s adverts, VRID 51,
/// 10.200.0.100, preempting, whose primary address is `addr`.
pub(crate) fn router(name: &str, addr: &str, priority: u8) -> InstanceParams {
    InstanceParams {
        name: name.into(),
        priority,
        source_address: Some(ip(addr)),
        ..params_v3()
    }
}

/// The same router as a member named `name` on another link, with its own
/// VRID, primary address and virtual address (a sync group member).
pub(crate) fn on_link(
    mut params: InstanceParams,
    name: &str,
    interface: &str,
    vrid: u8,
    addr: &str,
    vip: &str,
) -> InstanceParams {
    params.name = name.into();
    params.interface = interface.into();
    params.source_address = Some(ip(addr));
    params.vrid = vrid;
    params.track_interfaces[0].name = interface.into();
    params.addresses = vec![ip(vip)];
    params.vips = vec![VirtualAddress::new(
        format!("{vip}/24").parse().expect("test prefix"),
    )];
    params
}

impl Lan {
    /// An empty LAN whose adverts take 1 ms to arrive.
    pub(crate) fn new() -> Self {
        let start = Instant::now();
        Self {
            start,
            now: start,
            latency: Duration::from_millis(1),
            nodes: Vec::new(),
            wire: VecDeque::new(),
            segments: HashMap::new(),
            loss: None,
            drop_next: HashMap::new(),
            last_delivered: HashMap::new(),
            transitions: Vec::new(),
        }
    }

    /// Adds a router (not started); returns its node index.
    pub(crate) fn add(&mut self, params: InstanceParams) -> usize {
        let router = Router::Single(Box::new(Instance::new(params, self.now)));
        self.push(router)
    }

    /// Adds a sync group of instances (not started).
    pub(crate) fn add_group(&mut self, name: &str, members: Vec<InstanceParams>) -> usize {
        let members = members
            .into_iter()
            .map(|p| Instance::new(p, self.now))
            .collect();
        self.push(Router::Group(SyncGroup::new(name, members)))
    }

    fn push(&mut self, router: Router) -> usize {
        self.nodes.push(Node {
            router,
            crashed: false,
            vips: BTreeSet::new(),
        });
        self.nodes.len() - 1
    }

    /// Virtual time since the LAN was built.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub(crate) fn start(&mut self, node: usize) {
        let now = self.now;
        self.act(node, |r| r.start(now));
    }

    /// A clean shutdown (priority-0 advert from a master).
    pub(crate) fn stop(&mut self, node: usize) {
        let now = self.now;
        self.act(node, |r| r.stop(now));
    }

    /// A silent crash: the node stops, says nothing and hears nothing.
    pub(crate) fn crash(&mut self, node: usize) {
        self.nodes[node].crashed = true;
        self.wire.retain(|m| m.to != node);
    }

    /// A tracked interface going down or up on `node`.
    pub(crate) fn interface_state(&mut self, node: usize, interface: &str, up: bool) {
        let now = self.now;
        let mut tracked = false;
        self.act(node, |r| tracked = r.interface_state(interface, up, now));
        assert!(tracked, "node {node} does not track {interface}");
    }

    /// Splits `link` into the given sides; nodes not listed keep segment 0.
    pub(crate) fn partition(&mut self, link: &str, sides: &[&[usize]]) {
        for (side, nodes) in (1..).zip(sides) {
            for node in *nodes {
                self.segments.insert((*node, link.into()), side);
            }
        }
    }

    /// Joins every segment of `link` again.
    pub(crate) fn heal(&mut self, link: &str) {
        self.segments.retain(|(_, l), _| l != link);
    }

    /// Loses `per_mille` of all adverts from now on, chosen by `seed`;
    /// `0` turns loss off.
    pub(crate) fn set_loss(&mut self, per_mille: u32, seed: u64) {
        self.loss = (per_mille > 0).then(|| Loss {
            per_mille,
            state: seed.max(1),
        });
    }

    /// Loses the next `count` adverts `node` sends.
    pub(crate) fn drop_next_from(&mut self, node: usize, count: u32) {
        self.drop_next.insert(node, count);
    }

    /// Runs the LAN for `by` of virtual time.
    pub(crate) fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        let mut events = 0_u32;
        while let Some(t) = self.next_event().filter(|t| *t <= end) {
            events += 1;
            assert!(events < 1_000_000, "the LAN never settles (event storm)");
            self.now = t.max(self.now);
            self.step();
        }
        self.now = end;
    }

    /// Runs until `node` (its member 0) is MASTER, for at most `limit`;
    /// returns the virtual time it became so.
    pub(crate) fn run_until_master(&mut self, node: usize, limit: Duration) -> Option<Duration> {
        let end = self.now + limit;
        while self.state(node) != State::Master {
            let t = self.next_event().filter(|t| *t <= end)?;
            self.now = t.max(self.now);
            self.step();
        }
        Some(self.elapsed())
    }

    pub(crate) fn state(&self, node: usize) -> State {
        self.nodes[node].router.members()[0].state()
    }

    pub(crate) fn states(&self, node: usize) -> Vec<State> {
        self.nodes[node]
            .router
            .members()
            .iter()
            .map(Instance::state)
            .collect()
    }

    pub(crate) fn instance(&self, node: usize) -> &Instance {
        &self.nodes[node].router.members()[0]
    }

    /// Running nodes with at least one member MASTER.
    pub(crate) fn masters(&self) -> Vec<usize> {
        self.running()
            .filter(|(_, n)| {
                n.router
                    .members()
                    .iter()
                    .any(|m| m.state() == State::Master)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Running nodes holding any virtual address.
    pub(crate) fn vip_holders(&self) -> Vec<usize> {
        self.running()
            .filter(|(_, n)| !n.vips.is_empty())
            .map(|(i, _)| i)
            .collect()
    }

    pub(crate) fn vips(&self, node: usize) -> &BTreeSet<IpAddr> {
        &self.nodes[node].vips
    }

    /// Every state change so far, in order.
    pub(crate) fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// When `node`'s adverts last reached another router.
    pub(crate) fn last_delivered_from(&self, node: usize) -> Option<Duration> {
        self.last_delivered.get(&node).map(|t| *t - self.start)
    }

    fn running(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| !n.crashed)
    }

    fn next_event(&self) -> Option<Instant> {
        let timers = self.running().filter_map(|(_, n)| n.router.poll_timeout());
        let wire = self.wire.iter().map(|m| m.at);
        timers.chain(wire).min()
    }

    /// Delivers what is due, fires the timers that are due, then carries
    /// every action out.
    fn step(&mut self) {
        let now = self.now;
        while self.wire.front().is_some_and(|m| m.at <= now) {
            let msg = self.wire.pop_front().expect("front exists");
            let rx = Received {
                src: msg.src,
                dst: msg.dst,
                ttl_or_hop_limit: VRRP_TTL,
                payload: &msg.bytes,
            };
            self.nodes[msg.to]
                .router
                .handle_advert(msg.member, now, &rx);
            self.collect(msg.to);
        }
        for node in 0..self.nodes.len() {
            let node_ref = &self.nodes[node];
            if !node_ref.crashed && node_ref.router.poll_timeout().is_some_and(|t| t <= now) {
                self.nodes[node].router.handle_timeout(now);
                self.collect(node);
            }
        }
    }

    /// Runs `f` on a running node's router and carries its actions out.
    fn act(&mut self, node: usize, f: impl FnOnce(&mut Router)) {
        assert!(!self.nodes[node].crashed, "node {node} has crashed");
        f(&mut self.nodes[node].router);
        self.collect(node);
    }

    fn collect(&mut self, node: usize) {
        while let Some((member, action)) = self.nodes[node].router.poll_action() {
            match action {
                Action::SendAdvert {
                    src, dst, message, ..
                } => self.send(node, member, src, dst, &message),
                Action::AddVips { addresses, .. } => {
                    self.nodes[node]
                        .vips
                        .extend(addresses.iter().map(|v| v.address.addr()));
                }
                Action::RemoveVips { addresses } => {
                    for vip in addresses {
                        self.nodes[node].vips.remove(&vip.address.addr());
                    }
                }
                Action::StateChanged { from, to, reason } => self.transitions.push(Transition {
                    at: self.elapsed(),
                    node,
                    member,
                    from,
                    to,
                    reason,
                }),
                Action::SendGratuitous { .. } => {}
            }
        }
    }

    /// Puts an advert on the link of `member`, for every other running
    /// router in the same segment (multicast) or the one addressed
    /// (unicast).
    fn send(&mut self, node: usize, member: usize, src: IpAddr, dst: IpAddr, bytes: &[u8]) {
        if let Some(left) = self.drop_next.get_mut(&node).filter(|n| **n > 0) {
            *left -= 1;
            return;
        }
        if self.loss.as_mut().is_some_and(Loss::drops) {
            return;
        }
        let link = self.nodes[node].router.members()[member]
            .params()
            .interface
            .clone();
        let segment = |n: usize| self.segments.get(&(n, link.clone())).copied().unwrap_or(0);
        let ours = segment(node);
        let mut targets = Vec::new();
        for (to, other) in self.nodes.iter().enumerate() {
            if to == node || other.crashed || segment(to) != ours {
                continue;
            }
            for (i, m) in other.router.members().iter().enumerate() {
                let unicast_to_other = !dst.is_multicast() && m.source_address() != Some(dst);
                if m.params().interface == link && !unicast_to_other {
                    targets.push((to, i));
                }
            }
        }
        // A constant latency keeps the wire ordered by arrival time.
        let at = self.now + self.latency;
        if !targets.is_empty() {
            self.last_delivered.insert(node, at);
        }
        for (to, member) in targets {
            let bytes = bytes.to_vec();
            self.wire.push_back(InFlight {
                at,
                to,
                member,
                src,
                dst,
                bytes,
            });
        }
    }
}
