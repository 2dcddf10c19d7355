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
    link,
    notify::{DEFAULT_STATE_DIR, NOTIFY_TIMEOUT, NotifyScripts},
    runtime::{Runtime, Slot},
    scripts::TrackRunner,
    socket::VrrpSocket,
    unit::Unit,
    vip::{self, Vips},
};
use crate::{
    config::Config,
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

/// Builds everything from `config`; must run inside a tokio runtime.
pub async fn prepare(config: &Config, options: &RuntimeOptions) -> Result<Prepared, RuntimeError> {
    let default_user = RunAs::default_for(config.global.script_user.as_deref())?;
    let mut params = Vec::new();
    for instance in &config.vrrp_instances {
        params.push(InstanceParams::from_config(
            instance,
            &config.track_scripts,
        )?);
    }

    // Only the scripts some instance tracks run (keepalived does the same).
    let tracked: BTreeSet<&str> = params
        .iter()
        .flat_map(|p| p.track_scripts.iter().map(|s| s.name.as_str()))
        .collect();
    let mut scripts = Vec::new();
    for script in &config.track_scripts {
        if tracked.contains(script.name.as_str()) {
            scripts.push(TrackRunner::prepare(script, &default_user)?);
        }
    }

    // Sync groups own their members; the rest run alone.
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for (g, group) in config.sync_groups.iter().enumerate() {
        for member in &group.group {
            if !params.iter().any(|p| &p.name == member) {
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

    let (connection, handle, _) = rtnetlink::new_connection().map_err(RuntimeError::Netlink)?;
    let connection = tokio::spawn(connection);
    let vips = Vips::new(handle.clone());

    // A crash leaves marked addresses behind: remove them all, and only
    // them, before any instance starts (a BACKUP never holds a VIP).
    let mut interfaces: BTreeSet<String> = BTreeSet::new();
    for p in &params {
        interfaces.insert(p.interface.clone());
        for v in &p.vips {
            interfaces.insert(vip::device(v, &p.interface).to_owned());
        }
    }
    for interface in &interfaces {
        for stale in vips.remove_marked(interface).await? {
            tracing::warn!(%interface, address = %stale, "removed a virtual address an earlier lbd left behind");
        }
    }

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
        slots.push(Slot {
            name: p.name.clone(),
            unit: 0,
            member: 0,
            socket,
            interface: p.interface.clone(),
            vips: p.vips.clone(),
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
        options,
    );
    Ok(Prepared {
        runtime,
        scripts,
        connection,
    })
}
