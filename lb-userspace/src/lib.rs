//! The balancer daemon's library: configuration model, data planes, and (in
//! later modules) VRRP and health checking. `lbd` is a thin binary over it.

pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod import;
pub mod ipvs;
pub mod vrrp;
pub mod xdp;
