//! The IPVS data plane: the kernel's IP Virtual Server, driven over its
//! generic netlink family (what ipvsadm and keepalived use), for hosts where
//! XDP cannot run.

pub mod conn_table;
mod dataplane;
mod error;
mod message;
mod nodest;
mod owned;
mod service;
mod socket;

pub use dataplane::{IpvsDataplane, IpvsOptions};
pub use error::IpvsError;
