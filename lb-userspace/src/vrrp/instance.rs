//! One virtual router's state machine: RFC 5798 6.3-6.4 (and RFC 3768's
//! identical v2 rules), with keepalived's behaviour where the RFCs leave
//! room. Sans-IO: the caller passes `now`, feeds received adverts and timer
//! expiries in, and carries the resulting [`Action`]s out.
//!
//! keepalived behaviours followed here (vrrp.c / vrrp_scheduler.c, 2.x):
//! - `state MASTER` is a wish: the instance starts BACKUP and listens for
//!   one advert interval plus the smallest skew, then takes over unless it
//!   heard a better router. `state BACKUP` waits a full Master_Down_Interval.
//!   The address owner (priority 255) goes MASTER at once (RFC 5798 6.4.1).
//! - `preempt_delay` starts when a backup first hears a lower-priority
//!   master; until it has passed, those adverts still count as the master's,
//!   so the takeover comes one Master_Down_Interval after the delay.
//! - A MASTER that hears a lower-priority master (split brain) answers at
//!   once with an advert, so the other side yields, and a burst of
//!   gratuitous ARPs, so switches re-learn where the addresses live.
//! - Going to FAULT from MASTER sends a priority-0 advert first.
//! - A `track_script` with weight 0 that has not reported yet counts as
//!   failing: an instance does not take over before its checks have run.

use std::{
    collections::VecDeque,
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{
    counters::{Counters, DropLog},
    packet::{Advert, Family, Version},
    params::InstanceParams,
    receive::{self, DropReason, Received},
    timers,
};
use crate::config::{InitialState, VirtualAddress};

/// RFC 5798 6.3: the protocol states, plus keepalived's FAULT (a tracked
/// script or interface says this node must not serve the addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

/// Why a state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `start`: into BACKUP (or FAULT) to begin listening.
    Startup,
    /// `start` or recovery of the address owner: MASTER at once.
    AddressOwner,
    /// No advert for Master_Down_Interval.
    MasterDown,
    /// Skew_Time after the master's priority-0 advert.
    MasterStopped,
    /// A better master was heard.
    HigherPriority {
        from: IpAddr,
        priority: u8,
    },
    Fault(FaultCause),
    /// The fault cleared.
    Recovered,
    /// `stop`.
    Stopped,
    /// `set_maintenance(true)`.
    Maintenance,
    /// `failover()`.
    Failover,
    /// Another member of the sync group changed state.
    SyncGroup,
}

/// What keeps an instance in FAULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultCause {
    /// A weight-0 script fails (or has not reported yet).
    Script(String),
    /// A tracked interface without weight is down.
    Interface(String),
    /// No address to send adverts from (keepalived: "no IPv4 address for
    /// interface").
    NoSourceAddress,
    /// Another member of the sync group is in FAULT.
    SyncGroup,
}

/// What the I/O layer must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `message` (the VRRP payload) from `src` to `dst` with TTL / hop
    /// limit 255 (IPv4: [`super::ipv4_packet`] builds the header).
    SendAdvert {
        src: IpAddr,
        dst: IpAddr,
        priority: u8,
        message: Vec<u8>,
    },
    /// Add the addresses. `accept: false` (RFC 5798 6.1 Accept_Mode off, not
    /// the owner): also drop traffic addressed to them.
    AddVips {
        addresses: Vec<VirtualAddress>,
        accept: bool,
    },
    RemoveVips {
        addresses: Vec<VirtualAddress>,
    },
    /// Gratuitous ARP (IPv4) or unsolicited NA (IPv6) for each address,
    /// `count` times (RFC 5798 6.4.1 / 8.1.2).
    SendGratuitous {
        addresses: Vec<IpAddr>,
        count: u32,
    },
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// What keeps a backup from taking over besides the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    None,
    /// After `failover()`: accept any master, like `nopreempt`, until this
    /// instance becomes master again.
    Yielded,
    /// `set_maintenance(true)`: never take over.
    Maintenance,
}

/// Membership of a sync group, driven by [`super::SyncGroup`].
#[derive(Clone, Copy, Debug, Default)]
struct GroupLink {
    /// The Master_Down_Timer fired; the group decides.
    wants_master: bool,
    /// Another member is in FAULT.
    fault: bool,
}

/// One VRRP instance.
#[derive(Debug)]
pub struct Instance {
    params: InstanceParams,
    source: Option<IpAddr>,
    state: State,
    since: Instant,
    /// Effective priority: configured plus tracking weights.
    priority: u8,
    /// Last result per `params.track_scripts` entry; `None` before the first.
    scripts: Vec<Option<bool>>,
    /// Link state per `params.track_interfaces` entry.
    links: Vec<bool>,
    /// RFC 5798 6.1: the interval the master advertises with (v3 learns it).
    master_adver_interval: Duration,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    /// What the Master_Down_Timer expiring will mean.
    down_reason: Reason,
    preempt_deadline: Option<Instant>,
    hold: Hold,
    group: Option<GroupLink>,
    garp_delay_timer: Option<Instant>,
    garp_refresh_timer: Option<Instant>,
    /// The master as last heard (BACKUP) or ourselves (MASTER).
    master: Option<(IpAddr, u8)>,
    counters: Counters,
    drop_log: DropLog,
    actions: VecDeque<Action>,
}

impl Instance {
    /// An instance in INIT; `start` begins the protocol.
    pub fn new(params: InstanceParams, now: Instant) -> Self {
        let source = params
            .source_address
            .filter(|a| Family::of(*a) == params.family);
        Self {
            source,
            state: State::Init,
            since: now,
            priority: params.priority,
            scripts: vec![None; params.track_scripts.len()],
            links: vec![true; params.track_interfaces.len()],
            master_adver_interval: params.advert_interval,
            adver_timer: None,
            master_down_timer: None,
            down_reason: Reason::MasterDown,
            preempt_deadline: None,
            hold: Hold::None,
            group: None,
            garp_delay_timer: None,
            garp_refresh_timer: None,
            master: None,
            counters: Counters::default(),
            drop_log: DropLog::default(),
            actions: VecDeque::new(),
            params,
        }
    }

    pub fn name(&self) -> &str {
        &self.params.name
    }

    pub fn params(&self) -> &InstanceParams {
        &self.params
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state began.
    pub fn last_transition(&self) -> Instant {
        self.since
    }

    /// Effective priority (configured plus tracking weights, 1-254; 255
    /// for the owner).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The master's address and priority, as far as this instance knows.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// The advertisement interval currently expected from the master.
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    pub fn source_address(&self) -> Option<IpAddr> {
        self.source
    }

    pub fn in_maintenance(&self) -> bool {
        self.hold == Hold::Maintenance
    }

    /// Handed over by `failover()` and not elected since: it accepts any
    /// master until it becomes master again.
    pub fn handed_over(&self) -> bool {
        self.hold == Hold::Yielded
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The next action for the I/O layer, in the order they arose.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Backup => self.master_down_timer,
            State::Master => [
                self.adver_timer,
                self.garp_delay_timer,
                self.garp_refresh_timer,
            ]
            .into_iter()
            .flatten()
            .min(),
            State::Init | State::Fault => None,
        }
    }

    /// Startup event (RFC 5798 6.4.1).
    pub fn start(&mut self, now: Instant) {
        if self.state != State::Init {
            return;
        }
        self.master_adver_interval = self.params.advert_interval;
        self.priority = self.compute_priority();
        if let Some(cause) = self.fault_cause() {
            self.transition(now, State::Fault, Reason::Fault(cause));
        } else if self.params.is_owner() {
            // RFC 5798 6.4.1: priority 255 goes straight to Master.
            self.become_master(now, Reason::AddressOwner);
        } else {
            // RFC 5798 6.4.1: otherwise Backup, Master_Down_Timer =
            // Master_Down_Interval; keepalived shortens it for `state MASTER`.
            let wait = match self.params.initial_state {
                InitialState::Master => {
                    self.params.advert_interval
                        + timers::min_skew_time(self.params.version, self.master_adver_interval)
                }
                InitialState::Backup => self.master_down_interval(),
            };
            self.enter_backup(now, Reason::Startup, wait);
        }
    }

    /// Shutdown event: a master sends a priority-0 advert and removes its
    /// addresses (RFC 5798 6.4.3); every state returns to INIT (6.4.2).
    pub fn stop(&mut self, now: Instant) {
        if self.state == State::Init {
            return;
        }
        if self.state == State::Master {
            self.leave_master(true);
        }
        self.clear_election();
        if self.hold == Hold::Yielded {
            self.hold = Hold::None;
        }
        self.transition(now, State::Init, Reason::Stopped);
    }

    /// A received advert. `Err` says why it was dropped (already counted
    /// and, rate-limited, logged). Ignored in INIT.
    pub fn handle_advert(&mut self, now: Instant, rx: &Received<'_>) -> Result<(), DropReason> {
        if self.state == State::Init {
            return Ok(());
        }
        let accepted = match receive::check(&self.params, self.source, rx) {
            Ok(accepted) => accepted,
            Err(reason) => {
                self.counters.count_drop(reason);
                self.drop_log.log(&self.params.name, reason, rx.src, now);
                return Err(reason);
            }
        };
        self.counters.adverts_received += 1;
        if accepted.owner_address_mismatch {
            self.counters.owner_address_mismatch += 1;
        }
        let advert = accepted.advert;
        if advert.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        match self.state {
            State::Backup => self.backup_received(now, rx.src, &advert),
            State::Master => self.master_received(now, rx.src, &advert),
            State::Init | State::Fault => {}
        }
        Ok(())
    }

    /// Timer expiry; call at or after `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Backup => {
                if self.master_down_timer.is_some_and(|t| now >= t) {
                    self.master_down_expired(now);
                }
            }
            State::Master => {
                if let Some(due) = self.adver_timer.filter(|t| now >= *t) {
                    // RFC 5798 6.4.3: Adver_Timer fires: send an
                    // ADVERTISEMENT, reset the timer. From when it was due,
                    // not from now: timers fire up to a millisecond late,
                    // which at 10 ms adverts would stretch the interval by
                    // a tenth. After a long stall, restart from now.
                    self.send_advert(self.priority);
                    let interval = self.params.advert_interval;
                    let next = due + interval;
                    self.adver_timer = Some(if next > now { next } else { now + interval });
                }
                if self.garp_delay_timer.is_some_and(|t| now >= t) {
                    self.garp_delay_timer = None;
                    self.gratuitous(self.params.garp.master_repeat);
                }
                if self.garp_refresh_timer.is_some_and(|t| now >= t) {
                    self.garp_refresh_timer = self.params.garp.master_refresh.map(|r| now + r);
                    self.gratuitous(self.params.garp.master_refresh_repeat);
                }
            }
            State::Init | State::Fault => {}
        }
    }

    /// The address adverts come from (the interface's primary address when
    /// `unicast_src_ip` is not set). `None`, or one of the wrong family,
    /// faults the instance.
    pub fn set_source_address(&mut self, addr: Option<IpAddr>, now: Instant) {
        self.source = addr.filter(|a| Family::of(*a) == self.params.family);
        self.reevaluate(now);
    }

    /// A tracked script's result. `false` when this instance does not track it.
    pub fn track_script(&mut self, name: &str, ok: bool, now: Instant) -> bool {
        let mut found = false;
        for (script, result) in self.params.track_scripts.iter().zip(&mut self.scripts) {
            if script.name == name {
                *result = Some(ok);
                found = true;
            }
        }
        if found {
            self.reevaluate(now);
        }
        found
    }

    /// A tracked interface's link state. `false` when this instance does not
    /// track it.
    pub fn interface_state(&mut self, name: &str, up: bool, now: Instant) -> bool {
        let mut found = false;
        for (interface, link) in self.params.track_interfaces.iter().zip(&mut self.links) {
            if interface.name == name {
                *link = up;
                found = true;
            }
        }
        if found {
            self.reevaluate(now);
        }
        found
    }

    /// Maintenance switch: on, a master hands over (priority-0 advert,
    /// addresses removed) and the instance stays BACKUP, never taking over,
    /// until switched off.
    pub fn set_maintenance(&mut self, on: bool, now: Instant) {
        if on == (self.hold == Hold::Maintenance) {
            return;
        }
        if on {
            self.hold = Hold::Maintenance;
            match self.state {
                State::Master => {
                    self.leave_master(true);
                    self.master_adver_interval = self.params.advert_interval;
                    self.enter_backup(now, Reason::Maintenance, Duration::ZERO);
                }
                State::Backup => {
                    self.master_down_timer = None;
                    self.set_wants_master(false);
                }
                State::Init | State::Fault => {}
            }
        } else {
            self.hold = Hold::None;
            if self.state == State::Backup {
                self.arm_down_timer(now, self.master_down_interval());
            }
        }
    }

    /// Manual failover: a master hands over once (priority-0 advert,
    /// addresses removed) and then accepts any master, as with `nopreempt`,
    /// until it becomes master again. `false` when not master.
    pub fn failover(&mut self, now: Instant) -> bool {
        if self.state != State::Master {
            return false;
        }
        self.leave_master(true);
        self.master_adver_interval = self.params.advert_interval;
        self.hold = Hold::Yielded;
        self.enter_backup(now, Reason::Failover, self.master_down_interval());
        true
    }

    // ---- sync group hooks -------------------------------------------------

    pub(crate) fn join_group(&mut self) {
        self.group = Some(GroupLink::default());
    }

    /// BACKUP whose Master_Down_Timer fired, waiting for the group.
    pub(crate) fn wants_master(&self) -> bool {
        self.state == State::Backup && self.group.is_some_and(|g| g.wants_master)
    }

    /// This instance's own reason to be in FAULT (not the group's).
    pub(crate) fn own_fault(&self) -> Option<FaultCause> {
        self.own_fault_cause()
    }

    pub(crate) fn group_fault(&self) -> bool {
        self.group.is_some_and(|g| g.fault)
    }

    pub(crate) fn set_group_fault(&mut self, fault: bool, now: Instant) {
        if let Some(group) = &mut self.group {
            group.fault = fault;
        }
        self.reevaluate(now);
    }

    /// The group goes MASTER together.
    pub(crate) fn group_promote(&mut self, now: Instant) {
        if self.state == State::Backup && self.hold != Hold::Maintenance {
            self.become_master(now, Reason::SyncGroup);
        }
    }

    /// The group goes BACKUP together (keepalived sends no priority-0
    /// advert for this).
    pub(crate) fn group_demote(&mut self, now: Instant) {
        if self.state == State::Master {
            self.leave_master(false);
            self.master_adver_interval = self.params.advert_interval;
            self.enter_backup(now, Reason::SyncGroup, self.master_down_interval());
        }
    }

    // ---- the protocol -----------------------------------------------------

    /// RFC 5798 6.4.2, Backup receiving an advert.
    fn backup_received(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
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
    fn preempt_deferred(&mut self, now: Instant) -> bool {
        if self.params.preempt_delay.is_zero() {
            return false;
        }
        let deadline = *self
            .preempt_deadline
            .get_or_insert(now + self.params.preempt_delay);
        now < deadline
    }

    /// RFC 5798 6.4.3, Master receiving an advert.
    fn master_received(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        if advert.priority == 0 {
            // RFC 5798 6.4.3: priority 0: send an ADVERTISEMENT, reset the
            // Adver_Timer (so the leaving master's backups hear us at once).
            self.send_advert(self.priority);
            self.adver_timer = Some(now + self.params.advert_interval);
            return;
        }
        // RFC 5798 6.4.3: a higher priority, or an equal one from a greater
        // primary address, wins. Addresses compare as unsigned integers.
        let better = advert.priority > self.priority
            || (advert.priority == self.priority && self.source.is_none_or(|own| src > own));
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
            // now, and gratuitous ARPs so the switches relearn our MAC.
            self.send_advert(self.priority);
            self.gratuitous(self.params.garp.master_repeat);
        }
    }

    fn master_down_expired(&mut self, now: Instant) {
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
    fn become_master(&mut self, now: Instant, reason: Reason) {
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
    fn leave_master(&mut self, send_priority_zero: bool) {
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
        self.counters.released_master += 1;
    }

    fn enter_backup(&mut self, now: Instant, reason: Reason, wait: Duration) {
        self.transition(now, State::Backup, reason);
        self.master = None;
        self.preempt_deadline = None;
        self.down_reason = Reason::MasterDown;
        self.arm_down_timer(now, wait);
    }

    fn enter_fault(&mut self, now: Instant, cause: FaultCause) {
        if self.state == State::Master {
            // keepalived: a master going to FAULT says goodbye first.
            self.leave_master(true);
        }
        self.clear_election();
        self.transition(now, State::Fault, Reason::Fault(cause));
    }

    /// Out of FAULT: as at start, but without the `state MASTER` shortcut
    /// (keepalived's try_up_instance).
    fn recover(&mut self, now: Instant) {
        self.master_adver_interval = self.params.advert_interval;
        if self.params.is_owner() {
            self.become_master(now, Reason::Recovered);
        } else {
            self.enter_backup(now, Reason::Recovered, self.master_down_interval());
        }
    }

    /// Recomputes the effective priority and the fault state after a
    /// tracking, address or group change.
    fn reevaluate(&mut self, now: Instant) {
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
    fn compute_priority(&self) -> u8 {
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

    fn own_fault_cause(&self) -> Option<FaultCause> {
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

    fn fault_cause(&self) -> Option<FaultCause> {
        self.own_fault_cause()
            .or_else(|| self.group_fault().then_some(FaultCause::SyncGroup))
    }

    fn skew_time(&self) -> Duration {
        timers::skew_time(
            self.params.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    fn master_down_interval(&self) -> Duration {
        timers::master_down_interval(
            self.params.version,
            self.priority,
            self.master_adver_interval,
        )
    }

    /// Sets the Master_Down_Timer, except in maintenance, which never takes
    /// over.
    fn arm_down_timer(&mut self, now: Instant, wait: Duration) {
        self.master_down_timer = (self.hold != Hold::Maintenance).then(|| now + wait);
    }

    fn set_wants_master(&mut self, wants: bool) {
        if let Some(group) = &mut self.group {
            group.wants_master = wants;
        }
    }

    fn clear_election(&mut self) {
        self.adver_timer = None;
        self.master_down_timer = None;
        self.garp_delay_timer = None;
        self.garp_refresh_timer = None;
        self.preempt_deadline = None;
        self.master = None;
        self.set_wants_master(false);
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        tracing::info!(
            instance = %self.params.name,
            ?from,
            ?to,
            ?reason,
            priority = self.priority,
            "VRRP state change"
        );
        self.state = to;
        self.since = now;
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }

    /// RFC 5798 7.2: one advert per destination, the multicast group or
    /// each unicast peer (the v3 checksum differs per destination).
    fn send_advert(&mut self, priority: u8) {
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
                    tracing::error!(instance = %self.params.name, %dst, "cannot encode advert: {err}");
                }
            }
        }
    }

    fn gratuitous(&mut self, count: u32) {
        if count == 0 || self.params.vips.is_empty() {
            return;
        }
        self.actions.push_back(Action::SendGratuitous {
            addresses: self.params.vips.iter().map(|v| v.address.addr()).collect(),
            count,
        });
    }
}

#[cfg(test)]
#[path = "instance_tests.rs"]
mod tests;
