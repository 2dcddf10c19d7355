use std::{io, path::PathBuf};

use thiserror::Error;

/// What can go wrong driving IPVS.
#[derive(Debug, Error)]
pub enum IpvsError {
    #[error("reading the flow table {path}")]
    FlowTable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "this kernel has no IPVS (CONFIG_IP_VS): the IPVS generic netlink family is missing even after `modprobe ip_vs`"
    )]
    NoIpvs,
    #[error("the generic netlink socket failed")]
    Socket(#[source] io::Error),
    #[error("the kernel refused IPVS command {command}")]
    Kernel {
        command: u8,
        #[source]
        source: io::Error,
    },
    #[error("a reply from the kernel could not be decoded: {0}")]
    Decode(String),
    #[error(
        "IPVS service {service} exists but was not created by lbd (e.g. made with ipvsadm): lbd never changes it; remove it or change the configuration"
    )]
    Foreign { service: String },
    #[error(
        "{service}: real server {backend} is {backend_family} but the service is {service_family}"
    )]
    FamilyMismatch {
        service: String,
        backend: String,
        service_family: &'static str,
        backend_family: &'static str,
    },
    #[error(
        "the IPVS data plane cannot give {first} `removed_server_flows: {first_policy}` and {second} `{second_policy}`: IPVS's net.ipv4.vs.expire_nodest_conn is one setting for all services"
    )]
    NodestConflict {
        first: String,
        first_policy: &'static str,
        second: String,
        second_policy: &'static str,
    },
    #[error("setting {path} failed")]
    Sysctl {
        path: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the record of lbd's IPVS services {path} could not be {action}")]
    State {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

impl From<IpvsError> for crate::dataplane::DataplaneError {
    fn from(err: IpvsError) -> Self {
        Self::new(err)
    }
}
