//! What the rest of the daemon asks of a data plane, whichever forwards the
//! packets (XDP or IPVS, see `select`): apply a desired state, report statistics.

mod desired;
mod error;
pub mod select;
mod status;

/// `10.0.0.1:80` or `[fd00::1]:80`.
pub use desired::socket as socket_label;
pub use desired::{BackendSpec, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts};
pub use error::{DataplaneError, DesiredStateError};
pub use status::{BackendStatus, ServiceStatus, TrafficStats};

/// A data plane: something that forwards a service's packets to backends.
pub trait Dataplane {
    /// Makes the forwarding state equal to `desired`. Services and backends
    /// that did not change keep their flows; a service's backend set is
    /// replaced atomically (a packet sees the old set or the new one).
    fn apply(&mut self, desired: &DesiredState) -> Result<(), DataplaneError>;

    /// Traffic counters and connection counts per service and backend, like
    /// `ipvsadm -Ln --stats`.
    fn status(&self) -> Result<Vec<ServiceStatus>, DataplaneError>;
}
