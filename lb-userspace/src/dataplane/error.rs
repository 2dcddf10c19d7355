use thiserror::Error;

/// A configuration the data plane cannot express.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DesiredStateError {
    #[error(
        "virtual server {service}: scheduler {scheduler} is not supported; use rr, wrr, mh (XDP or IPVS) or sh, lc, wlc (IPVS only)"
    )]
    Scheduler {
        service: String,
        scheduler: &'static str,
    },
    #[error("virtual server {service}: only `method: nat` is supported")]
    Method { service: String },
    #[error("virtual server {service}: only TCP and UDP services are supported")]
    Protocol { service: String },
}

/// A failure to program or read the data plane: each implementation's
/// own error (`xdp::XdpApplyError`, `ipvs::IpvsError`), carried whole so
/// its sources stay readable.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct DataplaneError(Box<dyn std::error::Error + Send + Sync>);

impl DataplaneError {
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(err))
    }

    /// The implementation's error, for a caller that knows which it is.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }
}
