//! The XDP data plane's flows: a walk of the `CONNTRACK` map through a
//! second descriptor on it (and one on `BACKENDS`, to name the real
//! servers), so the walk can run on its own thread while the daemon keeps
//! the program.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    ops::ControlFlow,
    os::fd::AsFd as _,
};

use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData};
use lb_common::maps::{
    self as m, BACKEND_LIVE, Backend, CONNTRACK_ENTRIES, FAMILY_IPV4, Flow, FlowKey, Settings,
};

use super::XdpApplyError;
use crate::dataplane::{
    DataplaneError, FlowEntry, FlowLister, FlowQuery, FlowScan, flows::protocol_name,
};

/// IPVS's name for an XDP flow state.
fn state_name(state: u32) -> &'static str {
    match state {
        m::FLOW_ESTABLISHED => "ESTABLISHED",
        m::FLOW_FIN => "FIN_WAIT",
        m::FLOW_CLOSE => "CLOSE",
        m::FLOW_UDP => "UDP",
        _ => "SYN_RECV",
    }
}

fn address(bytes: &[u8; 16], family: u8) -> IpAddr {
    if family == FAMILY_IPV4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

/// A second handle on one of the program's maps.
pub(super) fn duplicate(map: &Map, name: &'static str) -> Result<MapData, XdpApplyError> {
    let (Map::HashMap(data) | Map::LruHashMap(data) | Map::Array(data) | Map::RingBuf(data)) = map
    else {
        return Err(XdpApplyError::MissingMap(name));
    };
    let fd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|source| XdpApplyError::Duplicate { map: name, source })?;
    MapData::from_fd(fd).map_err(|source| XdpApplyError::Map {
        map: name,
        operation: "reopen",
        source: Box::new(source),
    })
}

/// Walks `CONNTRACK`; see [`FlowLister`].
pub struct XdpFlowLister {
    conntrack: BpfHashMap<MapData, FlowKey, Flow>,
    backends: Array<MapData, Backend>,
    settings: Settings,
    /// The clock the program stamps flows with, read once per walk.
    now_ns: u64,
}

impl XdpFlowLister {
    pub(super) fn new(
        conntrack: MapData,
        backends: MapData,
        settings: Settings,
        now_ns: u64,
    ) -> Result<Self, XdpApplyError> {
        let open = |map, source| XdpApplyError::Map {
            map,
            operation: "open",
            source: Box::new(source),
        };
        Ok(Self {
            conntrack: BpfHashMap::try_from(
                Map::from_map_data(conntrack).map_err(|e| open(m::CONNTRACK, e))?,
            )
            .map_err(|e| open(m::CONNTRACK, e))?,
            backends: Array::try_from(
                Map::from_map_data(backends).map_err(|e| open(m::BACKENDS, e))?,
            )
            .map_err(|e| open(m::BACKENDS, e))?,
            settings,
            now_ns,
        })
    }

    /// The real server a flow is pinned to, if that backend still is the
    /// one it was pinned to (ids are reused with a new generation).
    fn real_server(
        &self,
        cache: &mut HashMap<u32, Option<Backend>>,
        flow: &Flow,
    ) -> Option<SocketAddr> {
        let backend = *cache
            .entry(flow.backend)
            .or_insert_with(|| self.backends.get(&flow.backend, 0).ok())
            .as_ref()?;
        (backend.flags & BACKEND_LIVE != 0 && backend.generation == flow.generation).then(|| {
            SocketAddr::new(
                address(&backend.addr, backend.family),
                u16::from_be_bytes(backend.port),
            )
        })
    }

    /// The entry for `key`, or `None` once it is past its idle timeout
    /// (the LRU evicts it only when room is needed).
    fn entry(
        &self,
        cache: &mut HashMap<u32, Option<Backend>>,
        key: &FlowKey,
        flow: &Flow,
    ) -> Option<FlowEntry> {
        // The program's rule, shared through lb-common.
        let timeout_ns = lb_common::conntrack::timeout_ns(flow.state, &self.settings);
        let idle_ns = self.now_ns.saturating_sub(flow.last_seen_ns);
        let left_ns = timeout_ns.checked_sub(idle_ns)?;
        Some(FlowEntry {
            protocol: protocol_name(key.proto),
            state: state_name(flow.state).to_owned(),
            client: SocketAddr::new(address(&key.src, key.family), u16::from_be_bytes(key.sport)),
            virtual_address: SocketAddr::new(
                address(&key.dst, key.family),
                u16::from_be_bytes(key.dport),
            ),
            real_server: self.real_server(cache, flow),
            expires_in_s: left_ns.div_ceil(1_000_000_000),
        })
    }
}

impl FlowLister for XdpFlowLister {
    fn list(
        &mut self,
        query: &FlowQuery,
        each: &mut dyn FnMut(FlowEntry) -> ControlFlow<()>,
    ) -> Result<FlowScan, DataplaneError> {
        let mut scan = FlowScan::default();
        let mut cache = HashMap::new();
        for item in &self.conntrack {
            if scan.scanned >= u64::from(CONNTRACK_ENTRIES) {
                scan.truncated = true;
                break;
            }
            let (key, flow) = item.map_err(|source| XdpApplyError::Map {
                map: m::CONNTRACK,
                operation: "walk",
                source: Box::new(source),
            })?;
            scan.scanned += 1;
            let Some(entry) = self.entry(&mut cache, &key, &flow) else {
                continue;
            };
            if query.matches(&entry) {
                scan.listed += 1;
                if each(entry).is_break() {
                    break;
                }
            }
        }
        Ok(scan)
    }
}
