//! `removed_server_flows` under IPVS.
//!
//! - `drop` and `reset` are IPVS's `net.ipv4.vs.expire_nodest_conn` (0 and
//!   1), one sysctl per network namespace: lbd sets it from the services,
//!   which must agree (`lbd check` says so beforehand). With 0, IPVS keeps
//!   a deleted destination in its trash while connections use it and
//!   drops their packets; re-adding it brings it back with its
//!   connections, as the XDP data plane's held backends.
//! - `keep` is a destination at weight 0 instead of deleted: IPVS goes on
//!   forwarding its connections.
//! - A sorry server is set to weight 0, never deleted, once the real
//!   servers return, so the connections it serves go on (IPVS would
//!   otherwise drop or reset them as above).

use std::{fs, io};

use tracing::info;

use super::IpvsError;
use crate::{
    config::RemovedServerFlows,
    dataplane::{DesiredState, ServiceSpec},
};

const SYSCTL: &str = "/proc/sys/net/ipv4/vs/expire_nodest_conn";

/// What to do with a destination the desired state no longer lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leaving {
    Delete,
    /// Keep it at weight 0: its connections go on.
    Quiesce,
}

/// How a destination at `(addr, port)` that `spec` no longer lists leaves.
pub(crate) fn leaving(spec: &ServiceSpec, addr: std::net::IpAddr, port: u16) -> Leaving {
    let is_sorry = spec
        .sorry
        .as_ref()
        .is_some_and(|s| s.addr == addr && s.port == port);
    if is_sorry || spec.removed_server_flows == RemovedServerFlows::Keep {
        Leaving::Quiesce
    } else {
        Leaving::Delete
    }
}

/// The `expire_nodest_conn` the services ask for: `None` when none cares.
pub(crate) fn wanted(desired: &DesiredState) -> Result<Option<bool>, IpvsError> {
    let mut out: Option<(bool, &ServiceSpec)> = None;
    for spec in &desired.services {
        let value = match spec.removed_server_flows {
            RemovedServerFlows::Drop => false,
            RemovedServerFlows::Reset => true,
            RemovedServerFlows::Keep => continue,
        };
        match out {
            Some((v, first)) if v != value => {
                return Err(IpvsError::NodestConflict {
                    first: first.label(),
                    first_policy: first.removed_server_flows.name(),
                    second: spec.label(),
                    second_policy: spec.removed_server_flows.name(),
                });
            }
            Some(_) => {}
            None => out = Some((value, spec)),
        }
    }
    Ok(out.map(|(v, _)| v))
}

/// `expire_nodest_conn` of the network namespace it was opened in (a
/// sysctl file belongs to the namespace of the task that opened it, as
/// the IPVS socket does), so later writes land there whatever thread
/// makes them.
#[derive(Debug)]
pub(crate) struct ExpireNodestConn {
    file: fs::File,
}

impl ExpireNodestConn {
    pub(crate) fn open() -> Result<Self, IpvsError> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(SYSCTL)
            .map_err(io_err)?;
        Ok(Self { file })
    }

    /// Sets it when it differs.
    pub(crate) fn set(&mut self, expire: bool) -> Result<(), IpvsError> {
        use std::{
            io::{Read as _, Seek as _, Write as _},
            os::unix::fs::FileExt as _,
        };
        let value = if expire { "1" } else { "0" };
        let mut before = String::new();
        self.file.rewind().map_err(io_err)?;
        self.file.read_to_string(&mut before).map_err(io_err)?;
        if before.trim() != value {
            self.file.write_at(value.as_bytes(), 0).map_err(io_err)?;
            self.file.flush().map_err(io_err)?;
            info!(
                before = before.trim(),
                "net.ipv4.vs.expire_nodest_conn set to {value} (removed_server_flows: {})",
                if expire { "reset" } else { "drop" }
            );
        }
        Ok(())
    }
}

fn io_err(source: io::Error) -> IpvsError {
    IpvsError::Sysctl {
        path: SYSCTL,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn desired(policies: &[&str]) -> DesiredState {
        use std::fmt::Write as _;
        let mut yaml = String::from("virtual_servers:\n");
        for (i, p) in policies.iter().enumerate() {
            let _ = writeln!(
                yaml,
                "  - {{ address: 10.0.0.1, port: {}, removed_server_flows: {p}, sorry_server: {{ address: 10.0.9.9 }}, real_servers: [{{ address: 10.0.1.2 }}] }}",
                80 + i
            );
        }
        let config = config::load_str(&yaml, "t.yaml").unwrap().config;
        DesiredState::from_config(&config).unwrap()
    }

    #[test]
    fn drop_and_reset_are_the_sysctl_and_must_agree() {
        assert_eq!(wanted(&desired(&["drop", "keep"])).unwrap(), Some(false));
        assert_eq!(wanted(&desired(&["reset"])).unwrap(), Some(true));
        assert_eq!(wanted(&desired(&["keep"])).unwrap(), None);
        let err = wanted(&desired(&["drop", "reset"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("IPVS") && err.contains("TCP 10.0.0.1:81"),
            "{err}"
        );
    }

    #[test]
    fn keep_and_the_sorry_server_stay_at_weight_0_others_are_deleted() {
        let ip = |s: &str| s.parse().unwrap();
        let drop = &desired(&["drop"]).services[0];
        assert_eq!(leaving(drop, ip("10.0.1.2"), 80), Leaving::Delete);
        assert_eq!(leaving(drop, ip("10.0.9.9"), 80), Leaving::Quiesce, "sorry");
        let keep = &desired(&["keep"]).services[0];
        assert_eq!(leaving(keep, ip("10.0.1.2"), 80), Leaving::Quiesce);
    }
}
