//! The balancer daemon's library: configuration model, data planes, VRRP
//! and health checking. `lbd` is a thin binary over it.
//!
//! # The pipeline
//!
//! ```text
//! YAML --config--> Config --preflight--> DesiredState --+
//!                                         (ServiceId,   |
//!                                          RealId)      v
//!   health::Verdict (keyed by RealId) ----> daemon::effective --> dyn Dataplane
//!   daemon::drain::Drains (weight 0)  ---->   (pure)               |-- xdp: plan (pure)
//!   vrrp InstanceStatus (MASTER?)     ---->                        |        + writer (maps)
//!                                                                  '-- ipvs: netlink
//! ```
//!
//! - [`config`]: the YAML model, loading with line/column diagnostics.
//! - [`dataplane`]: the desired state, the typed identities every module
//!   uses (`ServiceId`, `RealId`) and the `Dataplane` trait. A leaf: it
//!   knows neither implementation.
//! - [`xdp`], [`ipvs`]: the two implementations; the daemon picks one in
//!   `daemon::select`.
//! - [`flowsync`]: the optional flow sync between the pair (XDP only):
//!   the program's flow events out to the peer, the peer's into conntrack.
//! - [`health`]: checks and keepalived's bookkeeping (sans-IO tracker),
//!   publishing a `Verdict`.
//! - [`vrrp`]: the protocol as sans-IO state machines and its I/O layer;
//!   it knows nothing of virtual servers.
//! - [`daemon`]: the loop that joins them through one pure function,
//!   `daemon::effective` (desired -> verdict -> drains -> VRRP filter), at
//!   start and on every change; `daemon::preflight` (everything `lbd run`
//!   refuses from the configuration alone, shared by `lbd check`, `lbd run`
//!   and reloads), the data plane's selection (`daemon::select`), control
//!   socket, reload, status, metrics, the start-up claims (`daemon::lock`).
//! - [`defaults`], [`exec`], [`error_text`], [`atomic_file`]: shared paths
//!   and timeouts, running scripts, errors as one line, replacing a file.

pub mod atomic_file;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod defaults;
pub mod error_text;
pub mod exec;
pub mod flowsync;
pub mod health;
pub mod import;
pub mod ipvs;
pub mod log_format;
pub mod top;
pub mod vrrp;
pub mod xdp;
