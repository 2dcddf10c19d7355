//! The task that owns every instance and sync group: it feeds them received
//! adverts, timer expiries, script results and link changes, carries out
//! what they ask (adverts, addresses, gratuitous ARPs, notifications), and
//! publishes each instance's state for the rest of the daemon.
//!
//! - [`handle`]: what the rest of the daemon holds: statuses and commands.
//! - [`actions`]: carrying out what the instances ask.
//! - [`event_loop`]: the task and its helpers.

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Instant};

use rtnetlink::Handle;

use super::{
    holder::Holders,
    link::{self, InterfaceInfo},
    notify::{Notifier, NotifyScripts},
    setup::RuntimeOptions,
    socket::{Incoming, VrrpSocket},
    unit::Unit,
    vip::Vips,
};
use crate::{
    config::VirtualAddress,
    vrrp::{Counters, DropLog, DropReason, Family, State},
};

mod actions;
mod event_loop;
mod handle;

pub use event_loop::start;
use handle::Command;
pub use handle::{CommandError, InstanceStatus, RuntimeCounters, VrrpHandle};

/// Per-instance I/O facts.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) unit: usize,
    pub(crate) member: usize,
    pub(crate) socket: usize,
    pub(crate) interface: String,
    pub(crate) vips: Vec<VirtualAddress>,
    /// No `unicast_src_ip`: the interface's address is the source.
    pub(crate) wants_source: bool,
    pub(crate) family: Family,
    pub(crate) notify: NotifyScripts,
    pub(crate) last_send_error: Option<Instant>,
}

impl Slot {
    /// `vip` as this node places it (on a holder device, or as written).
    fn placed<'a>(&'a self, vip: &'a VirtualAddress) -> &'a VirtualAddress {
        self.vips
            .iter()
            .find(|v| v.address.addr() == vip.address.addr())
            .unwrap_or(vip)
    }
}

/// What the event loop owns.
#[derive(Debug)]
pub(crate) struct Runtime {
    units: Vec<Unit>,
    /// `unit_slots[unit][member]`: the slot of a unit's member.
    unit_slots: Vec<Vec<usize>>,
    group_notify: Vec<Option<NotifyScripts>>,
    group_states: Vec<State>,
    pub(crate) slots: Vec<Slot>,
    sockets: Vec<Arc<VrrpSocket>>,
    /// (socket, VRID) -> slot.
    dispatch: HashMap<(usize, u8), usize>,
    vips: Vips,
    handle: Handle,
    /// Interfaces that carry VIPs, cleaned on stop.
    vip_interfaces: Vec<String>,
    links: HashMap<String, InterfaceInfo>,
    /// The devices that hold VIPs; they vanish with the process.
    holders: Holders,
    /// Last link state handed to the instances, per tracked interface.
    tracked: HashMap<String, bool>,
    notifier: Notifier,
    /// Socket-level drops (bad IPv4 header, unknown VRID).
    unmatched: u64,
    drop_log: DropLog,
}

impl Runtime {
    #[expect(
        clippy::too_many_arguments,
        reason = "setup hands over everything it built once"
    )]
    pub(crate) fn new(
        units: Vec<Unit>,
        unit_slots: Vec<Vec<usize>>,
        group_notify: Vec<Option<NotifyScripts>>,
        slots: Vec<Slot>,
        sockets: Vec<Arc<VrrpSocket>>,
        dispatch: HashMap<(usize, u8), usize>,
        vips: Vips,
        handle: Handle,
        vip_interfaces: Vec<String>,
        links: HashMap<String, InterfaceInfo>,
        holders: Holders,
        options: &RuntimeOptions,
    ) -> Self {
        let group_states = vec![State::Init; units.len()];
        Self {
            units,
            unit_slots,
            group_notify,
            group_states,
            slots,
            sockets,
            dispatch,
            vips,
            handle,
            vip_interfaces,
            links,
            holders,
            tracked: HashMap::new(),
            notifier: Notifier::new(options.state_dir.clone(), options.notify_timeout),
            unmatched: 0,
            drop_log: DropLog::default(),
        }
    }

    pub(crate) fn statuses(&self) -> Vec<InstanceStatus> {
        let mut out: Vec<Option<InstanceStatus>> = vec![None; self.slots.len()];
        for (u, unit) in self.units.iter().enumerate() {
            for (m, instance) in unit.members().iter().enumerate() {
                let slot = self.unit_slots[u][m];
                out[slot] = Some(InstanceStatus {
                    name: instance.name().to_owned(),
                    state: instance.state(),
                    priority: instance.priority(),
                    vips: instance
                        .params()
                        .vips
                        .iter()
                        .map(|v| v.address.addr())
                        .collect(),
                    master: instance.master(),
                    since: instance.last_transition(),
                    maintenance: instance.in_maintenance(),
                    handed_over: instance.handed_over(),
                });
            }
        }
        out.into_iter().flatten().collect()
    }

    /// Switches maintenance for one instance's unit, or for all.
    fn maintenance(
        &mut self,
        instance: Option<&str>,
        on: bool,
        now: Instant,
    ) -> Result<Vec<String>, CommandError> {
        let units: Vec<usize> = match instance {
            Some(name) => {
                let slot = self
                    .slots
                    .iter()
                    .find(|s| s.name == name)
                    .ok_or_else(|| CommandError::UnknownInstance(name.to_owned()))?;
                vec![slot.unit]
            }
            None => (0..self.units.len()).collect(),
        };
        let mut names = Vec::new();
        for u in units {
            self.units[u].set_maintenance(on, now);
            names.extend(self.units[u].members().iter().map(|m| m.name().to_owned()));
        }
        Ok(names)
    }

    fn counters(&self) -> RuntimeCounters {
        let mut instances: Vec<Option<(String, Counters)>> = vec![None; self.slots.len()];
        for (u, unit) in self.units.iter().enumerate() {
            for (m, instance) in unit.members().iter().enumerate() {
                instances[self.unit_slots[u][m]] =
                    Some((instance.name().to_owned(), instance.counters().clone()));
            }
        }
        RuntimeCounters {
            instances: instances.into_iter().flatten().collect(),
            unmatched: self.unmatched,
        }
    }

    /// Hands link states and source addresses to the instances.
    fn apply_links(&mut self, now: Instant) {
        let mut changes = Vec::new();
        for unit in &self.units {
            for instance in unit.members() {
                for tracked in &instance.params().track_interfaces {
                    let up = self.links.get(&tracked.name).is_some_and(|l| l.up);
                    if self.tracked.get(&tracked.name) != Some(&up) {
                        changes.push((tracked.name.clone(), up));
                    }
                }
            }
        }
        changes.dedup();
        for (name, up) in changes {
            if self.tracked.insert(name.clone(), up) != Some(up) {
                tracing::info!(interface = %name, up, "tracked interface changed");
                for unit in &mut self.units {
                    unit.interface_state(&name, up, now);
                }
            }
        }
        for slot in &self.slots {
            if !slot.wants_source {
                continue;
            }
            let source = self
                .links
                .get(&slot.interface)
                .and_then(|l| l.source(slot.family == Family::Ipv6));
            let unit = &mut self.units[slot.unit];
            if unit.members()[slot.member].source_address() != source {
                tracing::info!(instance = %slot.name, ?source, "advert source address");
                unit.set_source_address(slot.member, source, now);
            }
        }
    }

    async fn poll_links(&mut self) {
        match link::snapshot(&self.handle).await {
            Ok(links) => {
                self.links = links;
                self.apply_links(Instant::now());
            }
            Err(err) => tracing::warn!("cannot read interface states: {err}"),
        }
    }

    fn handle_packet(&mut self, socket: usize, incoming: &Incoming, now: Instant) {
        let rx = match incoming.received() {
            Ok(rx) => rx,
            Err(reason) => return self.drop_unmatched(socket, reason, None, now),
        };
        let Some(vrid) = rx.payload.get(1) else {
            return self.drop_unmatched(socket, DropReason::Malformed, Some(rx.src), now);
        };
        let Some(slot) = self.dispatch.get(&(socket, *vrid)) else {
            // Other virtual routers on the same link are normal: count only.
            self.unmatched += 1;
            return;
        };
        let slot = &self.slots[*slot];
        // Errors are counted and logged by the instance.
        let _ = self.units[slot.unit].handle_advert(slot.member, now, &rx);
    }

    fn drop_unmatched(
        &mut self,
        socket: usize,
        reason: DropReason,
        src: Option<IpAddr>,
        now: Instant,
    ) {
        self.unmatched += 1;
        let interface = self.sockets[socket].interface().to_owned();
        let src = src.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.drop_log.log(&interface, reason, src, now);
    }
}
