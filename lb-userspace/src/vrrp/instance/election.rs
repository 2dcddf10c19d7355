//! The protocol itself (RFC 5798 6.4): what a backup and a master do with an
//! advert or an expired timer, the transitions between states, and the adverts
//! and gratuitous ARPs those transitions send.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{Action, FaultCause, Hold, Instance, Reason, State};
use crate::vrrp::{
    packet::{Advert, Version},
    timers,
};

impl Instance {
    /// RFC 5798 6.4.2, Backup receiving an advert.
    pub(super) fn backup_received(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        if advert.priority == 0 {
            // RFC 5798 6.4.2: priority 0: set the Master_Down_Timer to Skew_Time.
            self.master = None;
            self.down_reason = Reason::MasterStopped;
            self.arm_down_timer(now, self.skew_time());
            return;
        }
        let not_lower = advert.priority >= self.priority;
        if not_lower {
            // keepalived: a master at least as good cancels a preempt delay.
            self.preempt_deadline = None;
        }
        let accept = !self.params.preempt
            || self.hold != Hold::None
            || not_lower
            || self.preempt_deferred(now);
        if !accept {
            // RFC 5798 6.4.2: Preempt_Mode and a lower priority: discard the
            // advert; the Master_Down_Timer runs out and we take over.
            return;
        }
        // RFC 5798 6.4.2: set Master_Adver_Interval to the advert's (v3;
        // v2 intervals are equal by 7.1), recompute Master_Down_Interval,
        // reset the Master_Down_Timer.
        if self.params.version == Version::V3 {
            self.master_adver_interval = Version::V3.interval_from_wire(advert.interval);
        }
        self.master = Some((src, advert.priority));
        self.down_reason = Reason::MasterDown;
        self.set_wants_master(false);
        self.arm_down_timer(now, self.master_down_interval());
    }

    /// keepalived's `preempt_delay`: true while a lower-priority master is
    /// still to be tolerated.
    pub(super) fn preempt_deferred(&mut self, now: Instant) -> bool {
        if self.params.preempt_delay.is_zero() {
            return false;
        }
        let deadline = *self
            .preempt_deadline
            .get_or_insert(now + self.params.preempt_delay);
        now < deadline
    }

    /// RFC 5798 6.4.3, Master receiving an advert.
    pub(super) fn master_received(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        if advert.priority == 0 {
            // RFC 5798 6.4.3: priority 0: send an ADVERTISEMENT, reset the
            // Adver_Timer (so the leaving master's backups hear us at once).
            self.send_advert(self.priority);
            self.adver_timer = Some(now + self.params.advert_interval);
            return;
        }
        // RFC 5798 6.4.3: a higher priority, or an equal one from a greater
        // primary address, wins. Addresses compare as unsigned integers.
        // RFC 5798 7.1 has the owner drop every advert: it keeps its own
        // addresses whatever another router claims.
        let better = !self.params.is_owner()
            && (advert.priority > self.priority
                || (advert.priority == self.priority && self.source.is_none_or(|own| src > own)));
        if better {
            // RFC 5798 6.4.3: cancel Adver_Timer, set Master_Adver_Interval
            // to the advert's, recompute Skew_Time and Master_Down_Interval,
            // go to Backup.
            if self.params.version == Version::V3 {
                self.master_adver_interval = Version::V3.interval_from_wire(advert.interval);
            }
            self.leave_master(false);
            let reason = Reason::HigherPriority {
                from: src,
                priority: advert.priority,
            };
            self.enter_backup(now, reason, self.master_down_interval());
            self.master = Some((src, advert.priority));
        } else {
            // RFC 5798 6.4.3 says discard. Two masters is a split brain
            // though: keepalived answers with an advert so the other yields
            // now, and gratuitous ARPs so the switches relearn our MAC. Once
            // per interval per sender: the other master sends no faster.
            if !self.replies.allow(src, now, self.params.advert_interval) {
                self.counters.split_brain_replies_limited += 1;
                return;
            }
            if advert.priority == u8::MAX {
                tracing::warn!(
                    vrrp_instance = %self.params.name,
                    other = %src,
                    "({}) another router claims to own the addresses (priority 255); \
                     keeping them: configure one owner per VRID",
                    self.params.name
                );
            }
            self.counters.split_brain_replies += 1;
            self.send_advert(self.priority);
            self.gratuitous(self.params.garp.master_repeat);
        }
    }

    pub(super) fn master_down_expired(&mut self, now: Instant) {
        if self.group.is_some() {
            // In a sync group the members go master together, when all of
            // them want to (keepalived vrrp_sync_can_goto_master); until
            // then keep listening.
            self.set_wants_master(true);
            self.arm_down_timer(now, self.master_down_interval());
        } else {
            let reason = self.down_reason.clone();
            self.become_master(now, reason);
        }
    }

    /// RFC 5798 6.4.2 (Master_Down_Timer fires) and 6.4.1 (owner): send an
    /// advert, broadcast gratuitous ARPs, start the Adver_Timer, go Master.
    pub(super) fn become_master(&mut self, now: Instant, reason: Reason) {
        self.transition(now, State::Master, reason);
        self.master_down_timer = None;
        self.preempt_deadline = None;
        self.set_wants_master(false);
        if self.hold == Hold::Yielded {
            self.hold = Hold::None;
        }
        self.send_advert(self.priority);
        self.actions.push_back(Action::AddVips {
            addresses: self.params.vips.clone(),
            accept: self.params.accept || self.params.is_owner(),
        });
        self.gratuitous(self.params.garp.master_repeat);
        self.adver_timer = Some(now + self.params.advert_interval);
        let garp = self.params.garp;
        self.garp_delay_timer = (!garp.master_delay.is_zero()).then(|| now + garp.master_delay);
        self.garp_refresh_timer = garp.master_refresh.map(|r| now + r);
        self.master = self.source.map(|s| (s, self.priority));
        self.counters.became_master += 1;
    }

    /// The part of leaving MASTER common to every destination state.
    pub(super) fn leave_master(&mut self, send_priority_zero: bool) {
        if send_priority_zero {
            self.send_advert(0);
        }
        self.actions.push_back(Action::RemoveVips {
            addresses: self.params.vips.clone(),
        });
        self.adver_timer = None;
        self.garp_delay_timer = None;
        self.garp_refresh_timer = None;
        self.master = None;
        self.replies.clear();
        self.counters.released_master += 1;
    }

    pub(super) fn enter_backup(&mut self, now: Instant, reason: Reason, wait: Duration) {
        self.transition(now, State::Backup, reason);
        self.master = None;
        self.preempt_deadline = None;
        self.down_reason = Reason::MasterDown;
        self.arm_down_timer(now, wait);
    }

    pub(super) fn enter_fault(&mut self, now: Instant, cause: FaultCause) {
        if self.state == State::Master {
            // keepalived: a master going to FAULT says goodbye first.
            self.leave_master(true);
        }
        self.clear_election();
        self.transition(now, State::Fault, Reason::Fault(cause));
    }

    /// Out of FAULT: as at start, but without the `state MASTER` shortcut
    /// (keepalived's try_up_instance).
    pub(super) fn recover(&mut self, now: Instant) {
        self.master_adver_interval = self.params.advert_interval;
        if self.params.is_owner() {
            self.become_master(now, Reason::Recovered);
        } else {
            self.enter_backup(now, Reason::Recovered, self.master_down_interval());
        }
    }

    /// Recomputes the effective priority and the fault state after a
    /// tracking, address or group change.
    pub(super) fn reevaluate(&mut self, now: Instant) {
        self.priority = self.compute_priority();
        if self.state == State::Init {
            return;
        }
        match (self.fault_cause(), self.state) {
            (Some(_), State::Fault) | (None, State::Backup | State::Master | State::Init) => {}
            (Some(cause), _) => self.enter_fault(now, cause),
            (None, State::Fault) => self.recover(now),
        }
    }

    /// keepalived (vrrp_track.c): weights apply to a non-owner's priority,
    /// clamped to 1-254; the owner stays at 255.
    pub(super) fn compute_priority(&self) -> u8 {
        if self.params.is_owner() {
            return u8::MAX;
        }
        let mut priority = i32::from(self.params.priority);
        for (script, result) in self.params.track_scripts.iter().zip(&self.scripts) {
            match (script.weight, result) {
                (w, Some(true)) if w > 0 => priority += w,
                (w, Some(false)) if w < 0 => priority += w,
                _ => {}
            }
        }
        for (interface, up) in self.params.track_interfaces.iter().zip(&self.links) {
            match interface.weight {
                Some(w) if w > 0 && *up => priority += w,
                Some(w) if w < 0 && !*up => priority += w,
                _ => {}
            }
        }
        priority.clamp(1, 254) as u8
    }

    pub(super) fn own_fault_cause(&self) -> Option<FaultCause> {
        if self.source.is_none() {
            return Some(FaultCause::NoSourceAddress);
        }
        let down = self
            .params
            .track_interfaces
            .iter()
            .zip(&self.links)
            .find(|(t, up)| !**up && t.weight.unwrap_or(0) == 0);
        if let Some((interface, _)) = down {
            return Some(FaultCause::Interface(interface.name.clone()));
        }
        let failing = self
            .params
            .track_scripts
            .iter()
            .zip(&self.scripts)
            .find(|(s, result)| s.weight == 0 && **result != Some(true));
        failing.map(|(script, _)| FaultCause::Script(script.name.clone()))
    }

    pub(super) fn fault_cause(&self) -> Option<FaultCause> {
        self.own_fault_cause()
            .or_else(|| self.group_fault().then_some(FaultCause::SyncGroup))
    }

    pub(super) fn skew_time(&self) -> Duration {
        timers::skew_time(
            self.params.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    pub(super) fn master_down_interval(&self) -> Duration {
        timers::master_down_interval(
            self.params.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    /// Sets the Master_Down_Timer, except in maintenance, which never takes
    /// over.
    pub(super) fn arm_down_timer(&mut self, now: Instant, wait: Duration) {
        self.master_down_timer = (self.hold != Hold::Maintenance).then(|| now + wait);
    }

    pub(super) fn set_wants_master(&mut self, wants: bool) {
        if let Some(group) = &mut self.group {
            group.wants_master = wants;
        }
    }

    pub(super) fn clear_election(&mut self) {
        self.adver_timer = None;
        self.master_down_timer = None;
        self.garp_delay_timer = None;
        self.garp_refresh_timer = None;
        self.preempt_deadline = None;
        self.master = None;
        self.set_wants_master(false);
    }

    pub(super) fn transition(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        // keepalived's wording, which alert rules grep for, with the
        // details as fields. FAULT is a warning: `journalctl -p warning`.
        let name = &self.params.name;
        let (state, detail) = match (to, &reason) {
            (State::Backup, Reason::Startup) => ("BACKUP", " (init)"),
            (State::Master, _) => ("MASTER", ""),
            (State::Backup, _) => ("BACKUP", ""),
            (State::Fault, _) => ("FAULT", ""),
            (State::Init, _) => ("INIT", ""),
        };
        if to == State::Fault {
            tracing::warn!(
                vrrp_instance = %name, ?from, ?to, ?reason, priority = self.priority,
                "({name}) Entering {state} STATE{detail}"
            );
        } else {
            tracing::info!(
                vrrp_instance = %name, ?from, ?to, ?reason, priority = self.priority,
                "({name}) Entering {state} STATE{detail}"
            );
        }
        self.state = to;
        self.since = now;
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }

    /// RFC 5798 7.2: one advert per destination, the multicast group or
    /// each unicast peer (the v3 checksum differs per destination).
    pub(super) fn send_advert(&mut self, priority: u8) {
        let Some(src) = self.source else {
            return;
        };
        let advert = Advert {
            version: self.params.version,
            vrid: self.params.vrid,
            priority,
            interval: self.params.advert_interval_wire(),
            auth: self.params.auth,
            addresses: self.params.addresses.clone(),
            checksum: 0,
        };
        let group = [self.params.family.multicast_group()];
        let destinations: &[IpAddr] = if self.params.unicast_peers.is_empty() {
            &group
        } else {
            &self.params.unicast_peers
        };
        // Users often list every node, themselves included, as peers (one
        // config file for all): never advertise to ourselves.
        for dst in destinations.iter().filter(|d| **d != src) {
            match advert.encode(src, *dst) {
                Ok(message) => {
                    self.counters.adverts_sent += 1;
                    if priority == 0 {
                        self.counters.priority_zero_sent += 1;
                    }
                    self.actions.push_back(Action::SendAdvert {
                        src,
                        dst: *dst,
                        priority,
                        message,
                    });
                }
                Err(err) => {
                    self.counters.encode_errors += 1;
                    tracing::error!(vrrp_instance = %self.params.name, %dst, "cannot encode advert: {err}");
                }
            }
        }
    }

    pub(super) fn gratuitous(&mut self, count: u32) {
        if count == 0 || self.params.vips.is_empty() {
            return;
        }
        self.actions.push_back(Action::SendGratuitous {
            addresses: self.params.vips.iter().map(|v| v.address.addr()).collect(),
            count,
        });
    }
}
