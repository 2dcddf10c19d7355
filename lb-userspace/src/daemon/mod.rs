//! The running daemon around the data plane and VRRP: the event loop
//! (`serve`), the control socket `lbd status` / `reload` / `failover` /
//! `maintenance` talk to, the status model they and the Prometheus metrics
//! share, live reload (diff, drain) and the cleanup `ExecStopPost` runs.
//!
//! - [`serve`]: the loop: signals, control requests, VRRP changes, ticks.
//! - [`control`]: the Unix socket (server and client) and its permissions.
//! - [`protocol`]: what travels over it (one JSON line each way).
//! - [`status`], [`table`]: the status model and its `ipvsadm -Ln` layout.
//! - [`health`]: the single place health-check state enters status/metrics.
//! - [`effective`]: desired -> health verdict -> drains -> VRRP filter, pure.
//! - [`reload`], [`drain`]: what a reload may change, and draining.
//! - [`metrics`], [`http`]: Prometheus text and its minimal listener.
//! - [`select`]: which data plane runs (the one place knowing both).
//! - [`cleanup`]: what `lbd cleanup` removes after a stop.
//! - [`connections`]: the streamed flow listing (`lbd status -c`).
//! - [`rates`], [`rate_table`], [`report_filter`]: per-second rates from
//!   the daemon's counter samples, their table, `-t/-u` filtering.
//! - [`lock`]: one lbd per state directory and managed interface.

pub mod admission;
pub mod apply_retry;
pub mod cleanup;
pub mod connections;
pub mod control;
pub mod drain;
pub mod effective;
pub mod fd_limit;
pub mod health;
pub mod http;
pub mod lock;
pub mod metrics;
pub mod preflight;
pub mod process_stats;
pub mod protocol;
pub mod rate_table;
pub mod rates;
pub mod reload;
pub mod report_filter;
pub mod select;
pub mod serve;
pub mod status;
pub mod systemd_jobs;
pub mod table;
mod wallclock;

pub use control::DEFAULT_SOCKET;
pub use serve::{ServeOptions, serve};
