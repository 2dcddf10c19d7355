//! The XDP data plane: the embedded object, loading and attaching it, and
//! reading what it counted.

mod counters;
mod dataplane;
mod error;
mod ids;
mod loader;
mod object;
mod veth;

pub use counters::CounterSnapshot;
pub use dataplane::XdpDataplane;
pub use error::XdpError;
pub use loader::{AttachMode, AttachedMode, XdpProgram};
pub use object::object_bytes;
