//! `lbd cleanup`: what systemd's `ExecStopPost` runs after lbd stopped,
//! however it stopped. A clean stop already removed everything; after a
//! crash or `kill -9` this removes exactly what lbd marked as its own: the
//! virtual addresses carrying lbd's mark (or in its record) on the
//! interfaces the configuration's instances use and those the record names, and the IPVS services lbd recorded in
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
        vip_record::VipRecord,
    },
};

/// Removes lbd's addresses (marked, or recorded in `state_dir`) from the
/// configuration's interfaces and from every interface the record names;
/// returns (interface, address) removed.
pub async fn remove_vips(
    config: &Config,
    state_dir: &Path,
) -> Result<Vec<(String, IpPrefix)>, RuntimeError> {
    let interfaces = vip::managed_interfaces(config);
    let record = VipRecord::open(state_dir);
    if interfaces.is_empty() && record.interfaces().is_empty() {
        return Ok(Vec::new());
    }
    let (connection, handle, _) = rtnetlink::new_connection().map_err(RuntimeError::Netlink)?;
    let connection = tokio::spawn(connection);
    let vips = Vips::new(handle, record);
    let result = vips.remove_stale(&interfaces).await;
    connection.abort();
    Ok(result?)
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
