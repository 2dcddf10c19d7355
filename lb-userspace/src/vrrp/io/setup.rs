//! From the configuration to a runtime ready to start: every instance's
//! parameters, scripts checked, sync groups formed, sockets opened, and the
//! addresses a crashed lbd left behind removed. Everything that can be
//! wrong with the configuration or the host fails here, before any
//! instance has said a word on the network.

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use tokio::task::JoinHandle;

use super::{
    RuntimeError,
    exec::RunAs,
    holder::Holders,
    link,
    notify::{DEFAULT_STATE_DIR, NOTIFY_TIMEOUT, NotifyScripts},
    runtime::{Runtime, Slot},
    scripts::TrackRunner,
    socket::VrrpSocket,
    unit::Unit,
    vip::{self, Vips},
    vip_record::VipRecord,
};
use crate::{
    config::{Config, KeyPath},
    vrrp::{Family, Instance, InstanceParams, SyncGroup},
};

/// Where state files go and how long notify scripts may run.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    pub state_dir: PathBuf,
    pub notify_timeout: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            notify_timeout: NOTIFY_TIMEOUT,
        }
    }
}

/// A runtime that has checked everything and cleaned up, not started yet.
#[derive(Debug)]
pub struct Prepared {
    pub(crate) runtime: Runtime,
    pub(crate) scripts: Vec<TrackRunner>,
    pub(crate) connection: JoinHandle<()>,
}

impl Prepared {
    /// Names of the instances, in configuration order.
    pub fn instance_names(&self) -> Vec<String> {
        self.runtime.slots.iter().map(|s| s.name.clone()).collect()
    }

    /// Every instance's status before start (all INIT).
    pub fn initial_states(&self) -> Vec<super::InstanceStatus> {
        self.runtime.statuses()
    }

    /// Starts the instances and the tasks around them.
    pub fn start(self) -> super::VrrpHandle {
        super::runtime::start(self)
    }
}

/// Every reason the VRRP part of `config` cannot run that is known without
/// the network: parameters (AH, intervals, ...), scripts (missing, unsafe,
/// unknown users), sync groups, VRIDs shared on a link. Each with the key
/// it is about. `lbd check` reports them all; [`prepare`] stops at the
/// first, through the same functions.
pub fn check(config: &Config) -> Vec<(KeyPath, RuntimeError)> {
    let mut problems = Vec::new();
    let root = KeyPath::root();
    let default_user = match RunAs::default_for(config.global.script_user.as_deref()) {
        Ok(user) => user,
        Err(err) => {
            problems.push((root.key("global").key("script_user"), err.into()));
            RunAs::root()
        }
    };
    let mut params = Vec::new();
    for (i, instance) in config.vrrp_instances.iter().enumerate() {
        let path = root.key("vrrp_instances").item(i, &instance.name);
        match InstanceParams::from_config(instance, &config.track_scripts) {
            Ok(p) => params.push(p),
            Err(err) => problems.push((path.clone(), err.into())),
        }
        if let Err(err) = NotifyScripts::for_instance(instance, &default_user) {
            problems.push((path, err.into()));
        }
    }
    let tracked = tracked_scripts(&params);
    for (i, script) in config.track_scripts.iter().enumerate() {
        if tracked.contains(script.name.as_str())
            && let Err(err) = TrackRunner::prepare(script, &default_user)
            && !is_missing(&err)
        {
            problems.push((root.key("track_scripts").item(i, &script.name), err.into()));
        }
    }
    for (g, group) in config.sync_groups.iter().enumerate() {
        if let Err(err) = NotifyScripts::for_group(group, &default_user) {
            problems.push((root.key("sync_groups").item(g, &group.name), err.into()));
        }
    }
    if let Err(err) = group_membership(config) {
        problems.push((root.key("sync_groups"), err));
    }
    if let Some(err) = shared_vrid(&params) {
        problems.push((root.key("vrrp_instances"), err));
    }
    problems
}

/// A track script whose program is not there is disabled, not refused:
/// keepalived logs "Disabling track script ... since not found" and runs
/// its instances without it, and a migrated pair must start the same way
/// (a script installed later is picked up by the next restart). Unsafe
/// permissions and unknown users are still refused: the script is there,
/// and running it would be wrong.
fn is_missing(err: &super::exec::ExecError) -> bool {
    matches!(err, super::exec::ExecError::NotFound { .. })
}

/// The tracked scripts [`prepare`] disables, each with its key and why,
/// for `lbd check` to warn about in the words `lbd run` logs.
pub fn disabled_track_scripts(config: &Config) -> Vec<(KeyPath, String)> {
    let Ok(default_user) = RunAs::default_for(config.global.script_user.as_deref()) else {
        return Vec::new();
    };
    let tracked: BTreeSet<&str> = config
        .vrrp_instances
        .iter()
        .flat_map(|i| i.track_scripts.iter().map(|t| t.name.as_str()))
        .collect();
    let mut out = Vec::new();
    for (i, script) in config.track_scripts.iter().enumerate() {
        if tracked.contains(script.name.as_str())
            && let Err(err) = TrackRunner::prepare(script, &default_user)
            && is_missing(&err)
        {
            out.push((
                KeyPath::root().key("track_scripts").item(i, &script.name),
                disabled_message(&script.name, &err, config),
            ));
        }
    }
    out
}

fn disabled_message(name: &str, err: &super::exec::ExecError, config: &Config) -> String {
    let users: Vec<&str> = config
        .vrrp_instances
        .iter()
        .filter(|i| i.track_scripts.iter().any(|t| t.name == name))
        .map(|i| i.name.as_str())
        .collect();
    let verb = if users.len() == 1 { "runs" } else { "run" };
    format!(
        "{err}; the script is disabled: {} {verb} without it, as keepalived does",
        users.join(", ")
    )
}

/// Only the scripts some instance tracks run (keepalived does the same).
fn tracked_scripts(params: &[InstanceParams]) -> BTreeSet<&str> {
    params
        .iter()
        .flat_map(|p| p.track_scripts.iter().map(|s| s.name.as_str()))
        .collect()
}

/// Which sync group each instance belongs to, by group index; an unknown
/// member or an instance in two groups is an error.
fn group_membership(config: &Config) -> Result<HashMap<&str, usize>, RuntimeError> {
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for (g, group) in config.sync_groups.iter().enumerate() {
        for member in &group.group {
            if !config.vrrp_instances.iter().any(|i| &i.name == member) {
                return Err(RuntimeError::SyncGroup {
                    group: group.name.clone(),
                    problem: format!("member {member} is not a vrrp instance"),
                });
            }
            if let Some(other) = group_of.insert(member, g) {
                return Err(RuntimeError::SyncGroup {
                    group: group.name.clone(),
                    problem: format!(
                        "member {member} is also in group {}",
                        config.sync_groups[other].name
                    ),
                });
            }
        }
    }
    Ok(group_of)
}

/// Two instances with one VRID on one link and family: the receiver could
/// not tell their adverts apart.
fn shared_vrid(params: &[InstanceParams]) -> Option<RuntimeError> {
    let mut seen: HashMap<(&str, Family, u8), &str> = HashMap::new();
    for p in params {
        if let Some(first) = seen.insert((&p.interface, p.family, p.vrid), &p.name) {
            return Some(RuntimeError::DuplicateVrid {
                interface: p.interface.clone(),
                vrid: p.vrid,
                first: first.to_owned(),
                second: p.name.clone(),
            });
        }
    }
    None
}

/// Builds everything from `config`; must run inside a tokio runtime. The
/// caller holds `daemon::lock`'s claims.
pub async fn prepare(config: &Config, options: &RuntimeOptions) -> Result<Prepared, RuntimeError> {
    // The same functions as `check` (which `lbd run` called already),
    // stopping at the first problem.
    let default_user = RunAs::default_for(config.global.script_user.as_deref())?;
    let mut params = Vec::new();
    for instance in &config.vrrp_instances {
        params.push(InstanceParams::from_config(
            instance,
            &config.track_scripts,
        )?);
    }
    let tracked = tracked_scripts(&params);
    let mut scripts = Vec::new();
    let mut disabled = BTreeSet::new();
    for script in &config.track_scripts {
        if tracked.contains(script.name.as_str()) {
            match TrackRunner::prepare(script, &default_user) {
                Ok(runner) => scripts.push(runner),
                Err(err) if is_missing(&err) => {
                    tracing::warn!("{}", disabled_message(&script.name, &err, config));
                    disabled.insert(script.name.clone());
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    // A disabled script never reports: an instance waiting for it would
    // lack its weight, or stay in FAULT for a weight-0 one.
    for p in &mut params {
        p.track_scripts.retain(|t| !disabled.contains(&t.name));
    }
    // Sync groups own their members; the rest run alone.
    let group_of = group_membership(config)?;

    let (connection, handle, _) = rtnetlink::new_connection().map_err(RuntimeError::Netlink)?;
    let connection = tokio::spawn(connection);
    let vips = Vips::new(handle.clone(), VipRecord::open(&options.state_dir));

    // A crash leaves marked addresses behind: remove them all, and only
    // them, before any instance starts (a BACKUP never holds a VIP).
    // The caller holds `daemon::lock`'s claims on these interfaces, so
    // whoever marked them is gone.
    let interfaces = vip::managed_interfaces(config);
    for (interface, stale) in vips.remove_stale(&interfaces).await? {
        tracing::warn!(%interface, address = %stale, "removed a virtual address an earlier lbd left behind");
    }

    let mut holders = Holders::default();
    // One socket per interface and family; the VRID picks the instance.
    let mut sockets: Vec<Arc<VrrpSocket>> = Vec::new();
    let mut socket_of: HashMap<(String, Family), usize> = HashMap::new();
    let mut dispatch: HashMap<(usize, u8), usize> = HashMap::new();
    let mut slots: Vec<Slot> = Vec::new();
    for p in &params {
        let key = (p.interface.clone(), p.family);
        if !socket_of.contains_key(&key) {
            let multicast = params.iter().any(|q| {
                q.interface == p.interface && q.family == p.family && q.unicast_peers.is_empty()
            });
            sockets.push(Arc::new(VrrpSocket::open(
                &p.interface,
                p.family,
                multicast,
            )?));
            socket_of.insert(key.clone(), sockets.len() - 1);
        }
        let socket = socket_of[&key];
        let slot = slots.len();
        if let Some(first) = dispatch.insert((socket, p.vrid), slot) {
            return Err(RuntimeError::DuplicateVrid {
                interface: p.interface.clone(),
                vrid: p.vrid,
                first: slots[first].name.clone(),
                second: p.name.clone(),
            });
        }
        let config_instance = config
            .vrrp_instances
            .iter()
            .find(|c| c.name == p.name)
            .expect("params come from these instances");
        let vips = holders.place(config.global.vip_device, &p.interface, &p.vips)?;
        slots.push(Slot {
            name: p.name.clone(),
            unit: 0,
            member: 0,
            socket,
            interface: p.interface.clone(),
            vips,
            wants_source: p.source_address.is_none(),
            family: p.family,
            notify: NotifyScripts::for_instance(config_instance, &default_user)?,
            last_send_error: None,
        });
    }

    // Units: groups first, then lone instances, in configuration order.
    let now = std::time::Instant::now();
    let mut units = Vec::new();
    let mut unit_slots: Vec<Vec<usize>> = Vec::new();
    let mut group_notify = Vec::new();
    for (g, group) in config.sync_groups.iter().enumerate() {
        let members: Vec<usize> = params
            .iter()
            .enumerate()
            .filter(|(_, p)| group_of.get(p.name.as_str()) == Some(&g))
            .map(|(i, _)| i)
            .collect();
        let instances = members
            .iter()
            .map(|i| Instance::new(params[*i].clone(), now))
            .collect();
        units.push(Unit::Group(SyncGroup::new(group.name.clone(), instances)));
        unit_slots.push(members);
        group_notify.push(Some(NotifyScripts::for_group(group, &default_user)?));
    }
    for (i, p) in params.iter().enumerate() {
        if !group_of.contains_key(p.name.as_str()) {
            units.push(Unit::Single(Box::new(Instance::new(p.clone(), now))));
            unit_slots.push(vec![i]);
            group_notify.push(None);
        }
    }
    for (u, members) in unit_slots.iter().enumerate() {
        for (m, slot) in members.iter().enumerate() {
            slots[*slot].unit = u;
            slots[*slot].member = m;
        }
    }

    let interfaces_now = link::snapshot(&handle).await?;
    let runtime = Runtime::new(
        units,
        unit_slots,
        group_notify,
        slots,
        sockets,
        dispatch,
        vips,
        handle,
        interfaces.into_iter().collect(),
        interfaces_now,
        holders,
        options,
    );
    Ok(Prepared {
        runtime,
        scripts,
        connection,
    })
}
