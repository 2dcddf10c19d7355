//! VRRP v2 (RFC 3768) and v3 (RFC 5798, IPv4 and IPv6) as sans-IO state
//! machines: the caller feeds received adverts, timer expiries, tracking
//! results and operator commands in, with the current time, and carries the
//! resulting actions (adverts to send, addresses to add or remove,
//! gratuitous ARPs) out. No sockets, netlink or clocks in here.
//!
//! - [`packet`]: the advert on the wire; [`checksum`]: its checksums.
//! - [`receive`]: the RFC receive checks and why an advert is dropped.
//! - [`timers`]: Skew_Time and Master_Down_Interval.
//! - [`params`]: an instance's parameters from the configuration.
//! - [`Instance`]: one virtual router; [`SyncGroup`]: instances that move
//!   together.
//! - [`counters`]: per-instance counters and the rate-limited drop log.
//! - [`io`]: the sockets, netlink, scripts and the tokio task around them
//!   (the only part that does I/O).
//! - `sim` (tests only): several routers on a virtual LAN in virtual time.

pub mod checksum;
pub mod counters;
mod instance;
pub mod io;
mod ipv4;
pub mod packet;
pub mod params;
pub mod receive;
#[cfg(test)]
mod sim;
mod sync_group;
#[cfg(test)]
pub(crate) mod testing;
pub mod timers;

pub use counters::{Counters, DropLog};
pub use instance::{Action, FaultCause, Instance, Reason, State};
pub use ipv4::ipv4_packet;
pub use packet::{Advert, Auth, DecodeError, EncodeError, Family, Version};
pub use params::{GarpParams, InstanceParams, ParamsError, TrackedInterface, TrackedScript};
pub use receive::{DropReason, Received};
pub use sync_group::SyncGroup;
