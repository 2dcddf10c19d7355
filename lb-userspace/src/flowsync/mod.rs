//! Flow sync between the two balancers of a pair, as IPVS's sync daemon
//! and conntrackd do it: each node streams the flows its XDP program
//! starts, sees established and starts closing, over UDP (unicast to the
//! peers or to a multicast group), in batches; each node installs its
//! peer's in its own conntrack table. A BACKUP forwards nothing and so
//! sends nothing: in effect the MASTER streams, and after a takeover the
//! new MASTER does, so a node that comes back learns the flows it missed.
//!
//! - [`wire`]: the datagram format (version, sync id, batched flows);
//! - [`ids`]: translating a flow named by addresses to this node's ids;
//! - [`held`]: the peer's flows kept until their service forwards here,
//!   and the rule for meeting a local entry;
//! - [`sender`], [`receiver`]: the two tasks; [`socket`]: their socket.
//!
//! Flows are named by (client, VIP, port, protocol, real server): the
//! program's service and backend ids are each daemon's own. A flow for a
//! service or real server this node does not have is skipped and counted.

mod counters;
pub mod held;
pub mod ids;
mod receiver;
mod sender;
mod socket;
pub mod wire;

use std::{collections::HashSet, net::IpAddr, sync::Arc};

use lb_common::maps::ServiceKey;
use tokio::{net::UdpSocket, sync::watch, task::JoinHandle};

pub use self::{
    counters::{Counters, FlowSyncView},
    socket::SocketError,
};
pub use crate::xdp::{RealIds, ServiceIds, SyncIds};
use crate::{config::FlowSync, dataplane::DesiredState, xdp::FlowSyncPort};

/// The running flow sync; dropping it stops both tasks.
pub struct FlowSyncHandle {
    counters: Arc<Counters>,
    configured: watch::Sender<Arc<HashSet<ServiceKey>>>,
    tasks: Vec<JoinHandle<()>>,
}

/// The keys of the services `desired` configures.
fn configured(desired: &DesiredState) -> Arc<HashSet<ServiceKey>> {
    Arc::new(
        desired
            .services
            .iter()
            .map(crate::xdp::service_key)
            .collect(),
    )
}

/// Starts sending and receiving; must run inside the tokio runtime.
pub fn start(
    config: &FlowSync,
    port: FlowSyncPort,
    desired: &DesiredState,
) -> Result<FlowSyncHandle, SocketError> {
    let std_socket = socket::open(config)?;
    let socket = Arc::new(
        UdpSocket::from_std(std_socket).map_err(|source| SocketError::Io {
            what: "registering with the runtime",
            source,
        })?,
    );
    let counters = Arc::new(Counters::default());
    let (configured_tx, configured_rx) = watch::channel(configured(desired));
    // Listed peers are the only senders accepted (with a group too).
    let peers: Option<HashSet<IpAddr>> =
        (!config.peers.is_empty()).then(|| config.peers.iter().copied().collect());
    let sending = sender::Sending {
        socket: Arc::clone(&socket),
        destinations: socket::destinations(config),
        id: config.id(),
        per_datagram: wire::entries_per_datagram(usize::from(config.maxlen())),
        interval: config.interval(),
        counters: Arc::clone(&counters),
    };
    let receiving = receiver::Receiving {
        socket,
        peers,
        id: config.id(),
        conntrack: port.conntrack,
        reverse: port.reverse,
        ids: port.ids,
        configured: configured_rx,
        counters: Arc::clone(&counters),
    };
    let tasks = vec![
        tokio::spawn(sender::run(port.events, sending)),
        tokio::spawn(receiver::run(receiving)),
    ];
    Ok(FlowSyncHandle {
        counters,
        configured: configured_tx,
        tasks,
    })
}

impl FlowSyncHandle {
    pub fn view(&self) -> FlowSyncView {
        self.counters.snapshot()
    }

    /// After a reload: the services whose flows are worth holding.
    pub fn configure(&self, desired: &DesiredState) {
        self.configured.send_replace(configured(desired));
    }
}

impl Drop for FlowSyncHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
