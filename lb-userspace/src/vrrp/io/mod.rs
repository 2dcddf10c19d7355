//! The VRRP I/O layer around the sans-IO state machines: raw sockets,
//! virtual addresses through rtnetlink, gratuitous ARP / unsolicited NA,
//! track scripts, notify scripts and state files, link watching, and the
//! tokio task that ties them to the instances.
//!
//! - [`setup`]: from the configuration to a checked, cleaned-up runtime.
//! - [`runtime`]: the event loop and [`VrrpHandle`].
//! - [`socket`], [`vip`], [`garp`], [`link`]: the kernel interfaces.
//! - [`exec`], [`scripts`], [`notify`]: the commands the daemon runs.

pub mod garp;
pub mod handover;
pub mod holder;
pub mod link;
pub mod notify;
pub mod own_thread;
pub mod runtime;
pub mod scripts;
pub mod setup;
pub mod socket;
mod unit;
pub mod vip;
pub mod vip_record;

/// Shared with the health checks' scripts; kept here under its old path.
pub use crate::exec;

pub use own_thread::{PreparedThread, prepare_on_own_thread};
pub use runtime::{CommandError, InstanceStatus, RuntimeCounters, VrrpHandle};
pub use setup::{Prepared, RuntimeOptions, prepare};

use crate::vrrp::ParamsError;

/// Why the VRRP runtime cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
    #[error(transparent)]
    Vip(#[from] vip::VipError),
    #[error(transparent)]
    Link(#[from] link::LinkError),
    #[error(transparent)]
    Holder(#[from] holder::HolderError),
    #[error("opening an rtnetlink socket: {0}")]
    Netlink(#[source] std::io::Error),
    #[error("running the VRRP thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("sync group {group}: {problem}")]
    SyncGroup { group: String, problem: String },
    #[error(
        "vrrp instances {first} and {second} both use VRID {vrid} on {interface}; \
         each virtual router on a link needs its own virtual_router_id"
    )]
    DuplicateVrid {
        interface: String,
        vrid: u8,
        first: String,
        second: String,
    },
}
