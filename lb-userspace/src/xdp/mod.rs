//! The XDP data plane: the embedded object, loading and attaching it,
//! installing desired states in its maps, and reading what it counted.
//!
//! Installing goes in two steps: `plan` works out, without touching a map,
//! which map operations turn the installed state into the desired one;
//! `writer` performs them through a `MapWriter` (the kernel's maps, or an
//! in-memory fake in host tests) and undoes them if one fails.

pub mod accept_local;
mod counters;
mod dataplane;
mod error;
mod flows;
mod ids;
mod loader;
mod local_reals;
mod object;
pub mod pins;
mod plan;
pub mod rings;
mod sync_ids;
mod sync_port;
mod veth;
mod writer;

pub use counters::CounterSnapshot;
pub use dataplane::XdpDataplane;
pub(crate) use dataplane::monotonic_ns;
pub use error::{XdpApplyError, XdpError};
pub use flows::XdpFlowLister;
pub use loader::{AttachMode, AttachedMode, XdpProgram};
pub use local_reals::detach_stale_egress;
pub use object::object_bytes;
pub(crate) use plan::entries::service_key;
pub use sync_ids::{RealIds, ServiceIds, SyncIds};
pub use sync_port::FlowSyncPort;
