//! What the XDP data plane publishes after every change for the flow sync:
//! which services and backends are installed under which ids, so a peer's
//! flow (named by addresses) can be installed under this node's ids.

use std::collections::HashMap;

use lb_common::maps::{ServiceKey, Settings};

/// What this balancer's maps hold, as far as installing a synced flow
/// needs: published by the XDP data plane after every change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncIds {
    /// Services with a `SERVICES` entry (forwarding here now).
    pub services: HashMap<ServiceKey, ServiceIds>,
    /// The timeouts the program applies.
    pub settings: Settings,
}

/// One installed service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceIds {
    pub id: u32,
    /// By (address, port in network byte order), as the maps hold them.
    pub reals: HashMap<([u8; 16], [u8; 2]), RealIds>,
}

/// One of its backends (real servers or the sorry server).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealIds {
    pub backend: u32,
    pub generation: u32,
    /// The real serves several services: its replies need `REVERSE`.
    pub ambiguous: bool,
}
