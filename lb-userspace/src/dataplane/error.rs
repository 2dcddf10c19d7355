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

/// A failure to program or read the data plane.
#[derive(Debug, Error)]
pub enum DataplaneError {
    #[error("too many {what}: the XDP data plane holds at most {max}")]
    Capacity { what: &'static str, max: u32 },
    #[error("{service}: backend {backend} is {backend_family} but the service is {service_family}")]
    FamilyMismatch {
        service: String,
        backend: String,
        service_family: &'static str,
        backend_family: &'static str,
    },
    #[error(
        "virtual server {service}: scheduler {scheduler} is not implemented by the XDP data plane (it does rr, wrr and mh); use one of those, or `dataplane: ipvs`"
    )]
    XdpScheduler {
        service: String,
        scheduler: &'static str,
    },
    #[error(transparent)]
    Ipvs(#[from] crate::ipvs::IpvsError),
    #[error("opening a second handle on map {map}")]
    Duplicate {
        map: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the flow table {path}")]
    FlowTable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the XDP object has no map named {0}")]
    MissingMap(&'static str),
    #[error("{operation} on map {map} failed")]
    Map {
        map: &'static str,
        operation: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}
