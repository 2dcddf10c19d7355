//! What the health bookkeeping tells the world: each event logs as the
//! line keepalived writes for it (`ipwrapper.c`), since users grep for
//! those, and some run a script.

use std::fmt;

use super::{ServerIndex, ServiceIndex};

/// A change of a real server or a virtual server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A real server's checks all pass again: it takes new flows.
    ServerUp {
        id: ServerIndex,
        rs: String,
        vs: String,
        inhibit: bool,
    },
    /// A check failed: the server takes no new flows.
    ServerDown {
        id: ServerIndex,
        rs: String,
        vs: String,
        inhibit: bool,
    },
    /// `misc_dynamic` changed the server's weight.
    WeightChanged {
        id: ServerIndex,
        rs: String,
        vs: String,
        from: u32,
        to: u32,
        alive: bool,
    },
    QuorumGained {
        service: ServiceIndex,
        vs: String,
        quorum: u32,
        hysteresis: u32,
        threshold: i64,
        weight_sum: u64,
        /// The sorry server leaves the pool.
        sorry: Option<String>,
    },
    QuorumLost {
        service: ServiceIndex,
        vs: String,
        quorum: u32,
        hysteresis: u32,
        threshold: i64,
        weight_sum: u64,
        /// At start rather than by a change.
        init: bool,
        /// The sorry server enters the pool.
        sorry: Option<String>,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // keepalived's perform_svr_state: "%sing service %s %s VS %s".
            Event::ServerUp {
                rs, vs, inhibit, ..
            } => {
                if *inhibit {
                    write!(f, "Enabling service {rs} of VS {vs}")
                } else {
                    write!(f, "Adding service {rs} to VS {vs}")
                }
            }
            Event::ServerDown {
                rs, vs, inhibit, ..
            } => {
                if *inhibit {
                    write!(f, "Disabling service {rs} of VS {vs}")
                } else {
                    write!(f, "Removing service {rs} from VS {vs}")
                }
            }
            Event::WeightChanged {
                rs,
                vs,
                from,
                to,
                alive,
                ..
            } => write!(
                f,
                "Changing weight from {from} to {to} for {}active service {rs} of VS {vs}",
                if *alive { "" } else { "in" }
            ),
            Event::QuorumGained {
                vs,
                quorum,
                hysteresis,
                threshold,
                weight_sum,
                sorry,
                ..
            } => {
                write!(
                    f,
                    "Gained quorum {quorum}+{hysteresis}={threshold} <= {weight_sum} for VS {vs}"
                )?;
                if let Some(sorry) = sorry {
                    write!(
                        f,
                        "; Removing sorry server {sorry} from VS {vs}; \
                         Adding alive servers to the pool for VS {vs}"
                    )?;
                }
                Ok(())
            }
            Event::QuorumLost {
                vs,
                quorum,
                hysteresis,
                threshold,
                weight_sum,
                init,
                sorry,
                ..
            } => {
                let what = if *init {
                    "Starting with quorum down"
                } else {
                    "Lost quorum"
                };
                write!(
                    f,
                    "{what} {quorum}-{hysteresis}={threshold} > {weight_sum} for VS {vs}"
                )?;
                if let Some(sorry) = sorry {
                    write!(
                        f,
                        "; Adding sorry server {sorry} to VS {vs}; \
                         Removing alive servers from the pool for VS {vs}"
                    )?;
                }
                Ok(())
            }
        }
    }
}
