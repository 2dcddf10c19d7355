//! Carrying out what the instances ask: adverts, addresses, gratuitous
//! ARPs, notifications, and the orderly stop.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::vrrp::io::{
    garp,
    notify::Subject,
    unit::Unit,
    vip::{self, Added},
};
use crate::vrrp::{Action, State};

/// How long a stopping runtime waits for its STOP notify scripts.
const STOP_NOTIFY_WAIT: Duration = Duration::from_secs(2);
/// At most one log line per instance this often for failing sends.
const SEND_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

use super::Runtime;

impl Runtime {
    /// Carries out every pending action, in order.
    pub(super) async fn run_actions(&mut self) {
        loop {
            let mut pending = Vec::new();
            for (u, unit) in self.units.iter_mut().enumerate() {
                while let Some((member, action)) = unit.poll_action() {
                    pending.push((self.unit_slots[u][member], action));
                }
            }
            if pending.is_empty() {
                break;
            }
            for (slot, action) in pending {
                self.execute(slot, action).await;
            }
        }
        self.notify_groups();
    }

    pub(super) async fn execute(&mut self, slot_index: usize, action: Action) {
        let slot = &self.slots[slot_index];
        match action {
            Action::SendAdvert {
                src, dst, message, ..
            } => {
                let socket = &self.sockets[slot.socket];
                if let Err(err) = socket.send(src, dst, &message).await {
                    let now = Instant::now();
                    let slot = &mut self.slots[slot_index];
                    if slot
                        .last_send_error
                        .is_none_or(|t| now.duration_since(t) >= SEND_ERROR_LOG_INTERVAL)
                    {
                        slot.last_send_error = Some(now);
                        tracing::warn!(vrrp_instance = %slot.name, "cannot send an advert: {err}");
                    }
                }
            }
            Action::AddVips { addresses, accept } => {
                if !accept {
                    // Refused at configuration time (unsupported.rs); an
                    // owner-less `no_accept` would need packet filtering.
                    tracing::debug!(vrrp_instance = %slot.name, "accept mode off is not enforced");
                }
                for address in &addresses {
                    let address = slot.placed(address);
                    let device = vip::device(address, &slot.interface);
                    match self.vips.add(address, device).await {
                        Ok(Added::Added | Added::AlreadyOurs) => {
                            tracing::info!(vrrp_instance = %slot.name, address = %address.address, %device, "virtual address added");
                        }
                        Ok(Added::Foreign) => tracing::warn!(
                            vrrp_instance = %slot.name, address = %address.address, %device,
                            "virtual address already present without lbd's mark: left alone, and it will not be removed"
                        ),
                        Err(err) => tracing::error!(vrrp_instance = %slot.name, "{err}"),
                    }
                }
            }
            Action::RemoveVips { addresses } => {
                for address in &addresses {
                    let address = slot.placed(address);
                    let device = vip::device(address, &slot.interface);
                    match self.vips.remove(address, device).await {
                        Ok(true) => {
                            tracing::info!(vrrp_instance = %slot.name, address = %address.address, %device, "virtual address removed");
                        }
                        Ok(false) => {}
                        Err(err) => tracing::error!(vrrp_instance = %slot.name, "{err}"),
                    }
                }
            }
            Action::SendGratuitous { addresses, count } => {
                self.gratuitous(slot_index, &addresses, count);
            }
            Action::StateChanged { to, .. } => {
                let (unit, member) = (slot.unit, slot.member);
                let priority = self.units[unit].members()[member].priority();
                let name = slot.name.clone();
                self.notifier.changed(
                    Subject::Instance,
                    &name,
                    to,
                    priority,
                    &self.slots[slot_index].notify,
                );
            }
        }
    }

    /// Gratuitous messages for `addresses`, each on the interface its VIP
    /// lives on.
    pub(super) fn gratuitous(&self, slot_index: usize, addresses: &[IpAddr], count: u32) {
        let slot = &self.slots[slot_index];
        let mut by_device: HashMap<&str, Vec<IpAddr>> = HashMap::new();
        for address in addresses {
            let device = slot
                .vips
                .iter()
                .find(|v| v.address.addr() == *address)
                .map_or(slot.interface.as_str(), |v| vip::device(v, &slot.interface));
            // A holder has no link layer: its VIPs are announced on the
            // instance's interface, where the kernel answers for them.
            let device = if self.holders.holds(device) {
                slot.interface.as_str()
            } else {
                device
            };
            by_device.entry(device).or_default().push(*address);
        }
        for (device, addresses) in by_device {
            let Some(info) = self.links.get(device) else {
                continue;
            };
            let Some(mac) = info.mac else {
                continue;
            };
            if let Err(err) = garp::announce(device, info.index, mac, &addresses, count) {
                tracing::warn!(vrrp_instance = %slot.name, "{err}");
            }
        }
    }

    pub(super) fn notify_groups(&mut self) {
        for (u, unit) in self.units.iter().enumerate() {
            let Some(scripts) = &self.group_notify[u] else {
                continue;
            };
            let state = unit.group_state();
            if self.group_states[u] != state {
                self.group_states[u] = state;
                if let Unit::Group(group) = unit
                    && (state != State::Init || !scripts.is_empty())
                {
                    tracing::info!(group = group.name(), ?state, "sync group state");
                    self.notifier
                        .changed(Subject::Group, group.name(), state, 0, scripts);
                }
            }
        }
    }

    /// Stops every instance and removes whatever lbd still holds.
    pub(super) async fn shutdown(&mut self) {
        let now = Instant::now();
        for unit in &mut self.units {
            unit.stop(now);
        }
        self.run_actions().await;
        for interface in &self.vip_interfaces {
            match self.vips.remove_marked(interface).await {
                Ok(removed) => {
                    for address in removed {
                        tracing::warn!(%interface, %address, "removed a virtual address left at stop");
                    }
                }
                Err(err) => tracing::error!("{err}"),
            }
        }
        self.notifier.finish(STOP_NOTIFY_WAIT).await;
    }
}
