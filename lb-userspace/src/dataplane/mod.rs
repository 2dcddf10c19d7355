//! What the rest of the daemon asks of a data plane, whichever forwards the
//! packets (XDP in `xdp/`, IPVS in `ipvs/`; the daemon picks one in
//! `daemon::select`): apply a desired state, report statistics and
//! counters, say what it can do. A leaf: it imports neither
//! implementation.

use std::collections::BTreeMap;

pub mod caveats;
mod desired;
mod error;
pub mod flows;
mod identity;
mod status;

/// `10.0.0.1:80` or `[fd00::1]:80`.
pub use desired::socket as socket_label;
pub use desired::{BackendSpec, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts};
pub use error::{DataplaneError, DesiredStateError};
pub use flows::{FlowEntry, FlowLister, FlowQuery, FlowScan};
pub use identity::{RealId, ServiceId};
pub use status::{BackendStatus, ServiceStatus, ServiceTraffic, TrafficStats};

/// What a data plane can do, for checks made before asking it (a reload
/// naming a scheduler the running data plane lacks is refused up front).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub schedulers: &'static [SchedulerKind],
}

impl Capabilities {
    pub fn schedules(&self, kind: SchedulerKind) -> bool {
        self.schedulers.contains(&kind)
    }
}

/// A data plane: something that forwards a service's packets to backends.
/// The daemon knows data planes only through this trait (it picks one in
/// `daemon::select`); each implementation owns its errors and converts
/// them into [`DataplaneError`].
pub trait Dataplane {
    /// "XDP" or "IPVS", as status shows it.
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

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

    /// The data plane's own event counters by name (the XDP program's
    /// drops and passes by reason); empty where the kernel keeps none.
    fn counters(&self) -> Result<BTreeMap<String, u64>, DataplaneError>;

    /// What `lbd run` does last: IPVS removes lbd's services; XDP detaches,
    /// unless its program and maps are pinned (then they stay, forwarding,
    /// for the next `lbd run` to adopt).
    fn shutdown(&mut self);

    /// The services an earlier lbd left installed and this one adopted at
    /// start (XDP's pinned maps), so the daemon can drain the real servers
    /// the configuration no longer lists as a reload would.
    fn adopted(&self) -> Option<DesiredState> {
        None
    }
}
