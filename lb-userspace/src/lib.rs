//! The balancer daemon's library: configuration model, data planes, VRRP and health checking. `lbd` is a thin binary over it.

pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod error_text;
pub mod exec;
pub mod health;
pub mod import;
pub mod ipvs;
pub mod top;
pub mod vrrp;
pub mod xdp;
