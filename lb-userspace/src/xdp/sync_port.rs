//! What the flow sync needs of the XDP data plane: the program's flow
//! events, the conntrack (and `REVERSE`) maps to install the peer's flows
//! in, and, after every change, which services and reals are installed
//! under which ids (`SyncIds`), to translate the peer's flows to.

use std::{os::fd::AsFd as _, sync::Arc};

use aya::maps::{HashMap as BpfHashMap, Map, MapData, RingBuf};
use lb_common::maps::{self as m, Flow, FlowKey, ReverseFlow};
use tokio::sync::watch;

use super::{
    XdpApplyError, XdpDataplane,
    plan::{
        InstalledState,
        entries::{addr_bytes, real_key},
    },
};
use crate::flowsync::{RealIds, ServiceIds, SyncIds};

/// The handles the flow-sync tasks own (second descriptors on the maps).
pub struct FlowSyncPort {
    pub events: RingBuf<MapData>,
    pub conntrack: BpfHashMap<MapData, FlowKey, Flow>,
    pub reverse: BpfHashMap<MapData, FlowKey, ReverseFlow>,
    /// The installed services' ids, replaced after every change.
    pub ids: watch::Receiver<Arc<SyncIds>>,
}

impl XdpDataplane {
    /// Turns the program's flow events on (from the next `apply`) and hands
    /// out what the flow sync needs.
    pub fn flow_sync_port(&mut self) -> Result<FlowSyncPort, XdpApplyError> {
        self.installed.flow_events = true;
        let (tx, ids) = watch::channel(Arc::new(sync_ids(&self.installed)));
        self.sync_ids = Some(tx);
        let ebpf = self.program.ebpf();
        let reopen = |name: &'static str| -> Result<Map, XdpApplyError> {
            let map = ebpf.map(name).ok_or(XdpApplyError::MissingMap(name))?;
            let (Map::RingBuf(data) | Map::HashMap(data) | Map::LruHashMap(data)) = map else {
                return Err(XdpApplyError::MissingMap(name));
            };
            let fd = data
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| XdpApplyError::Duplicate { map: name, source })?;
            let data = MapData::from_fd(fd).map_err(map_err(name, "reopen"))?;
            Map::from_map_data(data).map_err(map_err(name, "reopen"))
        };
        Ok(FlowSyncPort {
            events: RingBuf::try_from(reopen(m::FLOW_EVENTS)?)
                .map_err(map_err(m::FLOW_EVENTS, "open"))?,
            conntrack: BpfHashMap::try_from(reopen(m::CONNTRACK)?)
                .map_err(map_err(m::CONNTRACK, "open"))?,
            reverse: BpfHashMap::try_from(reopen(m::REVERSE)?)
                .map_err(map_err(m::REVERSE, "open"))?,
            ids,
        })
    }

    /// Tells the flow sync what is installed now.
    pub(super) fn publish_sync_ids(&self) {
        if let Some(tx) = &self.sync_ids {
            let ids = sync_ids(&self.installed);
            tx.send_if_modified(|old| {
                let changed = **old != ids;
                if changed {
                    *old = Arc::new(ids);
                }
                changed
            });
        }
    }
}

fn map_err(
    map: &'static str,
    operation: &'static str,
) -> impl Fn(aya::maps::MapError) -> XdpApplyError {
    move |source| XdpApplyError::Map {
        map,
        operation,
        source: Box::new(source),
    }
}

/// The ids of every forwarding service and its backends (sorry server too).
pub(super) fn sync_ids(state: &InstalledState) -> SyncIds {
    let services = state
        .services
        .iter()
        .map(|(key, installed)| {
            let reals = installed
                .backends
                .iter()
                .map(|(at, id)| (*at, *id))
                .chain(installed.sorry)
                .filter_map(|(at, backend)| {
                    let generation = state.mirror.backends.get(&backend)?.generation;
                    let ambiguous = state
                        .mirror
                        .reals
                        .get(&real_key(key, at))
                        .is_some_and(|r| r.ambiguous != 0);
                    let ids = RealIds {
                        backend,
                        generation,
                        ambiguous,
                    };
                    Some(((addr_bytes(at.0).0, at.1.to_be_bytes()), ids))
                })
                .collect();
            (
                *key,
                ServiceIds {
                    id: installed.id,
                    reals,
                },
            )
        })
        .collect();
    SyncIds {
        services,
        settings: state.settings(),
    }
}
