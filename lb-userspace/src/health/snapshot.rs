//! Health per real server, as `lbd status` and metrics show it. The
//! runtime keeps one in a `tokio::sync::watch`, so readers borrow the
//! current state without asking the checkers.

use std::time::SystemTime;

use crate::dataplane::RealId;

/// Every virtual server's health, in configuration order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthSnapshot {
    pub services: Vec<ServiceHealth>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceHealth {
    /// `[10.0.0.100]:tcp:80`.
    pub virtual_server: String,
    /// Enough healthy weight (keepalived's `quorum`); when false and a
    /// sorry server is configured, the sorry server serves.
    pub quorum_up: bool,
    pub servers: Vec<ServerHealth>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHealth {
    /// Which real server (`None` only in a service no data plane forwards).
    pub id: Option<RealId>,
    /// How many checks it has; 0: never checked, always up.
    pub checks: usize,
    /// `[10.0.0.2]:tcp:80`.
    pub real_server: String,
    /// Every check passes (after `retry`).
    pub up: bool,
    /// The weight new flows see: `None` when the server is out of the
    /// pool, `Some(0)` when it keeps only its flows (`inhibit_on_failure`).
    pub effective_weight: Option<u32>,
    /// Runs in a row that passed / failed, over all its checks.
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
    /// Why the last failed run failed, and when (wall clock).
    pub last_error: Option<String>,
    pub last_failure_at: Option<SystemTime>,
    pub runs: u64,
    pub failed_runs: u64,
}
