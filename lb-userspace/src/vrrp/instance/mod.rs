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
    packet::Family,
    params::InstanceParams,
    receive::{self, DropReason, Received},
    timers,
};
use crate::config::InitialState;

mod election;
mod events;
mod group;
mod reply_limit;
#[cfg(test)]
mod tests;

pub use events::{Action, FaultCause, Reason, State};
use group::GroupLink;
use reply_limit::ReplyLimit;

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
    /// Split-brain answers sent while MASTER, per sender.
    replies: ReplyLimit,
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
            replies: ReplyLimit::default(),
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
}
