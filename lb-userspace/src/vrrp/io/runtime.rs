//! The task that owns every instance and sync group: it feeds them received
//! adverts, timer expiries, script results and link changes, carries out
//! what they ask (adverts, addresses, gratuitous ARPs, notifications), and
//! publishes each instance's state for the rest of the daemon.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use rtnetlink::Handle;
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};

use super::{
    garp,
    holder::Holders,
    link::{self, InterfaceInfo, POLL_INTERVAL},
    notify::{Notifier, NotifyScripts, Subject},
    scripts::{ScriptResult, TrackRunner},
    setup::{Prepared, RuntimeOptions},
    socket::{Incoming, VrrpSocket},
    unit::Unit,
    vip::{self, Added, Vips},
};
use crate::{
    config::VirtualAddress,
    vrrp::{Action, Counters, DropLog, DropReason, Family, State},
};

/// How long a stopping runtime waits for its STOP notify scripts.
const STOP_NOTIFY_WAIT: Duration = Duration::from_secs(2);
/// At most one log line per instance this often for failing sends.
const SEND_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One instance as the rest of the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub state: State,
    pub priority: u8,
    /// Every address the instance adds when master.
    pub vips: Vec<IpAddr>,
    /// The master as far as the instance knows (itself when master).
    pub master: Option<(IpAddr, u8)>,
    /// When the current state began.
    pub since: Instant,
    /// Held BACKUP by `VrrpHandle::maintenance` until released.
    pub maintenance: bool,
    /// Handed over by `VrrpHandle::failover`; accepts any master until
    /// elected again.
    pub handed_over: bool,
}

/// Every instance's protocol counters (they change with every advert, so
/// they are asked for rather than published with the states).
#[derive(Clone, Debug, Default)]
pub struct RuntimeCounters {
    /// Per instance, in configuration order.
    pub instances: Vec<(String, Counters)>,
    /// Packets no instance took: bad IPv4 header, unknown VRID.
    pub unmatched: u64,
}

/// Why a maintenance switch was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no VRRP instance is named {0}")]
    UnknownInstance(String),
    #[error("the VRRP runtime has stopped")]
    Stopped,
}

/// The running VRRP runtime.
#[derive(Debug)]
pub struct VrrpHandle {
    /// Every instance's status, in configuration order; changes with every
    /// state or priority change.
    pub states: watch::Receiver<Vec<InstanceStatus>>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Command {
    Failover {
        instance: String,
        done: oneshot::Sender<bool>,
    },
    Maintenance {
        /// `None`: every instance.
        instance: Option<String>,
        on: bool,
        done: oneshot::Sender<Result<Vec<String>, CommandError>>,
    },
    Counters {
        done: oneshot::Sender<RuntimeCounters>,
    },
    Stop {
        done: oneshot::Sender<()>,
    },
}

impl VrrpHandle {
    /// Manual failover of `instance` (its whole sync group, if in one):
    /// a master hands over and then accepts any master. `false` when it
    /// was not master or does not exist.
    pub async fn failover(&self, instance: &str) -> bool {
        let (done, answer) = oneshot::channel();
        let command = Command::Failover {
            instance: instance.to_owned(),
            done,
        };
        if self.commands.send(command).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    /// Maintenance on or off for `instance` (its whole sync group, if in
    /// one) or, with `None`, for every instance. On, a master hands over
    /// (priority-0 advert, addresses removed) and the instance stays
    /// BACKUP, never taking over, until switched off. Returns the names of
    /// the instances switched.
    pub async fn maintenance(
        &self,
        instance: Option<&str>,
        on: bool,
    ) -> Result<Vec<String>, CommandError> {
        let (done, answer) = oneshot::channel();
        let command = Command::Maintenance {
            instance: instance.map(str::to_owned),
            on,
            done,
        };
        if self.commands.send(command).await.is_err() {
            return Err(CommandError::Stopped);
        }
        answer.await.unwrap_or(Err(CommandError::Stopped))
    }

    /// The instances' protocol counters now.
    pub async fn counters(&self) -> RuntimeCounters {
        let (done, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Counters { done })
            .await
            .is_err()
        {
            return RuntimeCounters::default();
        }
        answer.await.unwrap_or_default()
    }

    /// Stops every instance: masters send a priority-0 advert and remove
    /// their addresses; then every address lbd marked is removed, and the
    /// STOP notifications get a moment to run.
    pub async fn stop(self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Stop { done }).await.is_ok() {
            let _ = finished.await;
        }
        let _ = self.task.await;
    }
}

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

    /// Carries out every pending action, in order.
    async fn run_actions(&mut self) {
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

    async fn execute(&mut self, slot_index: usize, action: Action) {
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
                        tracing::warn!(instance = %slot.name, "cannot send an advert: {err}");
                    }
                }
            }
            Action::AddVips { addresses, accept } => {
                if !accept {
                    // Refused at configuration time (unsupported.rs); an
                    // owner-less `no_accept` would need packet filtering.
                    tracing::debug!(instance = %slot.name, "accept mode off is not enforced");
                }
                for address in &addresses {
                    let address = slot.placed(address);
                    let device = vip::device(address, &slot.interface);
                    match self.vips.add(address, device).await {
                        Ok(Added::Added | Added::AlreadyOurs) => {
                            tracing::info!(instance = %slot.name, address = %address.address, %device, "virtual address added");
                        }
                        Ok(Added::Foreign) => tracing::warn!(
                            instance = %slot.name, address = %address.address, %device,
                            "virtual address already present without lbd's mark: left alone, and it will not be removed"
                        ),
                        Err(err) => tracing::error!(instance = %slot.name, "{err}"),
                    }
                }
            }
            Action::RemoveVips { addresses } => {
                for address in &addresses {
                    let address = slot.placed(address);
                    let device = vip::device(address, &slot.interface);
                    match self.vips.remove(address, device).await {
                        Ok(true) => {
                            tracing::info!(instance = %slot.name, address = %address.address, %device, "virtual address removed");
                        }
                        Ok(false) => {}
                        Err(err) => tracing::error!(instance = %slot.name, "{err}"),
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
    fn gratuitous(&self, slot_index: usize, addresses: &[IpAddr], count: u32) {
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
                tracing::warn!(instance = %slot.name, "{err}");
            }
        }
    }

    fn notify_groups(&mut self) {
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
    async fn shutdown(&mut self) {
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

/// Starts the runtime: instances begin, script runners and socket readers
/// run on their own tasks.
pub fn start(prepared: Prepared) -> VrrpHandle {
    let Prepared {
        mut runtime,
        scripts,
        connection,
    } = prepared;

    let (state_tx, states) = watch::channel(runtime.statuses());
    let (commands, mut command_rx) = mpsc::channel::<Command>(16);
    let (packet_tx, mut packets) = mpsc::channel::<(usize, Incoming)>(1024);
    let (script_tx, mut script_results) = mpsc::channel::<ScriptResult>(64);

    let mut helpers: Vec<JoinHandle<()>> = Vec::new();
    for (i, socket) in runtime.sockets.iter().enumerate() {
        let socket = socket.clone();
        let tx = packet_tx.clone();
        helpers.push(tokio::spawn(async move {
            loop {
                match socket.recv().await {
                    Ok(incoming) => {
                        if tx.send((i, incoming)).await.is_err() {
                            return;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(
                            interface = socket.interface(),
                            "VRRP socket receive failed: {err}"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    // The first notify and advert carry the effective priority (keepalived
    // users read it in their notify scripts' state files): the instances
    // start once every track script has run once. Each run is killed at
    // its timeout, so this wait is bounded.
    let first_wait = scripts
        .iter()
        .map(TrackRunner::timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(1);
    let mut first_runs = Vec::new();
    for script in scripts {
        let (ran_once, first_run) = oneshot::channel();
        first_runs.push(first_run);
        helpers.push(script.spawn(script_tx.clone(), ran_once));
    }

    let task = tokio::spawn(async move {
        // Waited for inside the loop, so commands (status counters, stop)
        // are answered meanwhile.
        let first_deadline = tokio::time::Instant::now() + first_wait;
        let first_runs = async move {
            for first_run in first_runs {
                let _ = tokio::time::timeout_at(first_deadline, first_run).await;
            }
        };
        tokio::pin!(first_runs);
        let mut started = false;

        let mut link_poll = tokio::time::interval(POLL_INTERVAL);
        link_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = runtime.units.iter().filter_map(Unit::poll_timeout).min();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut first_runs, if !started => {
                    started = true;
                    let now = Instant::now();
                    // A result sent just before its first-run signal.
                    while let Ok(result) = script_results.try_recv() {
                        for unit in &mut runtime.units {
                            unit.track_script(&result.name, result.ok, now);
                        }
                    }
                    runtime.apply_links(now);
                    for unit in &mut runtime.units {
                        unit.start(now);
                    }
                    runtime.run_actions().await;
                }
                command = command_rx.recv() => match command {
                    Some(Command::Failover { instance, done }) => {
                        let now = Instant::now();
                        let unit = runtime.slots.iter().find(|s| s.name == instance).map(|s| s.unit);
                        let moved = unit.is_some_and(|u| runtime.units[u].failover(now));
                        runtime.run_actions().await;
                        let _ = done.send(moved);
                    }
                    Some(Command::Maintenance { instance, on, done }) => {
                        let result = runtime.maintenance(instance.as_deref(), on, Instant::now());
                        if let Ok(names) = &result {
                            tracing::info!(instances = ?names, on, "maintenance switched");
                        }
                        runtime.run_actions().await;
                        let _ = done.send(result);
                    }
                    Some(Command::Counters { done }) => {
                        let _ = done.send(runtime.counters());
                    }
                    Some(Command::Stop { done }) => {
                        runtime.shutdown().await;
                        state_tx.send_replace(runtime.statuses());
                        let _ = done.send(());
                        break;
                    }
                    None => {
                        runtime.shutdown().await;
                        break;
                    }
                },
                () = sleep => {
                    let now = Instant::now();
                    for unit in &mut runtime.units {
                        unit.handle_timeout(now);
                    }
                    runtime.run_actions().await;
                }
                Some((socket, incoming)) = packets.recv() => {
                    runtime.handle_packet(socket, &incoming, Instant::now());
                    runtime.run_actions().await;
                }
                Some(result) = script_results.recv() => {
                    let now = Instant::now();
                    for unit in &mut runtime.units {
                        unit.track_script(&result.name, result.ok, now);
                    }
                    runtime.run_actions().await;
                }
                _ = link_poll.tick() => {
                    runtime.poll_links().await;
                    runtime.run_actions().await;
                }
            }
            state_tx.send_if_modified(|current| {
                let now = runtime.statuses();
                let changed = *current != now;
                *current = now;
                changed
            });
        }
        for helper in helpers {
            helper.abort();
        }
        connection.abort();
    });
    VrrpHandle {
        states,
        commands,
        task,
    }
}
