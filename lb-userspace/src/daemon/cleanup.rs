//! `lbd cleanup`: what systemd's `ExecStopPost` runs after lbd stopped,
//! however it stopped. A clean stop already removed everything; after a
//! crash or `kill -9` this removes exactly what lbd marked as its own: the
//! virtual addresses carrying lbd's mark on the interfaces the
//! configuration's instances use, and the IPVS services lbd recorded in
//! its state directory. The pinned XDP program and maps are removed by
//! `lbd cleanup` itself (`xdp::pins::PinDir::remove_all`), unless systemd
//! is restarting the unit (`daemon::systemd_jobs`).

use std::path::Path;

use crate::{
    config::{Config, IpPrefix},
    ipvs::{IpvsDataplane, IpvsError, IpvsOptions},
    vrrp::io::{
        RuntimeError,
        vip::{self, Vips},
    },
};

/// Removes lbd's marked addresses; returns (interface, address) removed.
pub async fn remove_vips(config: &Config) -> Result<Vec<(String, IpPrefix)>, RuntimeError> {
    let interfaces = vip::managed_interfaces(config);
    if interfaces.is_empty() {
        return Ok(Vec::new());
    }
    let (connection, handle, _) = rtnetlink::new_connection().map_err(RuntimeError::Netlink)?;
    let connection = tokio::spawn(connection);
    let vips = Vips::new(handle);
    let mut removed = Vec::new();
    let mut result = Ok(());
    for interface in interfaces {
        match vips.remove_marked(&interface).await {
            Ok(addresses) => removed.extend(addresses.into_iter().map(|a| (interface.clone(), a))),
            Err(err) => result = Err(err.into()),
        }
    }
    connection.abort();
    result.map(|()| removed)
}

/// Removes the IPVS services an lbd recorded in `state_dir` and left
/// behind. Does nothing (and loads no module) when no record exists.
pub fn remove_ipvs(state_dir: &Path) -> Result<bool, IpvsError> {
    let recorded = std::fs::read_dir(state_dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("ipvs-services."))
        })
    });
    if !recorded {
        return Ok(false);
    }
    // Opening removes what the record lists; dropping removes the rest of
    // what it owns (nothing) and leaves foreign services alone.
    let dataplane = IpvsDataplane::open(&IpvsOptions {
        run_dir: state_dir.to_owned(),
    })?;
    drop(dataplane);
    Ok(true)
}
