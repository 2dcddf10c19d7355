//! What the rest of the daemon asks of a data plane, whichever forwards the
//! packets (XDP or IPVS, see `select`): apply a desired state, report statistics,
//! list the tracked flows.

mod desired;
mod error;
pub mod flows;
pub mod rings;
pub mod select;
mod status;

/// `10.0.0.1:80` or `[fd00::1]:80`.
pub use desired::socket as socket_label;
pub use desired::{BackendSpec, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts};
pub use error::{DataplaneError, DesiredStateError};
pub use flows::{FlowEntry, FlowLister, FlowQuery, FlowScan};
pub use status::{BackendStatus, ServiceStatus, ServiceTraffic, TrafficStats};

/// A data plane: something that forwards a service's packets to backends.
pub trait Dataplane {
    /// Makes the forwarding state equal to `desired`. Services and backends
    /// that did not change keep their flows; a service's backend set is
    /// replaced atomically (a packet sees the old set or the new one).
    fn apply(&mut self, desired: &DesiredState) -> Result<(), DataplaneError>;

    /// Traffic counters and connection counts per service and backend, like
    /// `ipvsadm -Ln --stats`.
    fn status(&self) -> Result<Vec<ServiceStatus>, DataplaneError>;

    /// The traffic counters alone (no connection counts), cheap enough to
    /// sample every second for rates.
    fn traffic(&self) -> Result<Vec<ServiceTraffic>, DataplaneError> {
        Ok(self.status()?.iter().map(ServiceTraffic::from).collect())
    }

    /// A walker of the tracked flows (`ipvsadm -Lnc`) that owns what it
    /// reads, so it can run on another thread.
    fn flow_lister(&self) -> Result<Box<dyn FlowLister>, DataplaneError>;
}
