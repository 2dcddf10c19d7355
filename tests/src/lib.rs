//! Support for the project's privileged tests: packet fixtures run through
//! the real XDP program, and `lbd` started inside lab namespaces. The
//! namespaces themselves come from `lb-lab`.

pub mod advert_watch;
pub mod binaries;
pub mod daemon;
pub mod deb;
pub mod e2e;
pub mod fixture;
pub mod ha_lab;
pub mod health_lab;
pub mod hexdiff;
pub mod http_server;
pub mod keepalived;
pub mod nat_lab;
pub mod vrrp_lab;
