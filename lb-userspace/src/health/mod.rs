//! Real-server health checks (keepalived's checkers, ldirectord's
//! `negotiate`) and what they decide: which real servers take new flows,
//! at which weight, and when the sorry server takes over.
//!
//! - [`schedule`]: per check, keepalived's `retry` / `delay_before_retry`
//!   and the spreading of first runs (sans-IO).
//! - [`tracker`]: per real server and virtual server, up/down, dynamic
//!   weights, quorum with hysteresis, and the events users see (sans-IO).
//! - [`verdict`]: the tracker's decision applied to a [`DesiredState`].
//! - [`snapshot`]: per-server health for `lbd status` and metrics.
//! - [`probe`]: the checks themselves (TCP, HTTP, HTTPS, negotiate, script).
//! - [`setup`] and [`runtime`]: from the configuration to running tasks.
//!
//! [`DesiredState`]: crate::dataplane::DesiredState

pub mod events;
pub mod probe;
pub mod runtime;
pub mod schedule;
pub mod setup;
pub mod snapshot;
pub mod tracker;
pub mod verdict;

pub use runtime::HealthHandle;
pub use setup::{HealthError, Prepared, prepare};
pub use snapshot::{HealthSnapshot, ServerHealth, ServiceHealth};
pub use verdict::{Membership, Verdict};

use std::net::IpAddr;

use crate::config::Protocol;

/// keepalived's `FMT_RS` / `FMT_VS`: `[10.0.0.2]:tcp:80`, the form its
/// log lines (which users grep for) name servers in.
pub fn endpoint_label(addr: IpAddr, protocol: Protocol, port: u16) -> String {
    let proto = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    format!("[{addr}]:{proto}:{port}")
}

/// Which real server: indexes into `virtual_servers` and its `real_servers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerIndex {
    pub service: usize,
    pub server: usize,
}

/// Which virtual server: an index into `virtual_servers` (the checks' own
/// bookkeeping; what leaves this module is keyed by `dataplane::RealId`).
pub type ServiceIndex = usize;

/// Which check of which real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CheckId {
    pub server: ServerIndex,
    pub check: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_keepalived_s() {
        assert_eq!(
            endpoint_label("10.0.0.2".parse().unwrap(), Protocol::Tcp, 80),
            "[10.0.0.2]:tcp:80"
        );
        assert_eq!(
            endpoint_label("fd00::2".parse().unwrap(), Protocol::Udp, 53),
            "[fd00::2]:udp:53"
        );
    }
}
