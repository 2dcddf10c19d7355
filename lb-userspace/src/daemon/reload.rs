//! What a reload may change while lbd runs, and what needs a restart.
//!
//! Live: `virtual_servers` (services and real servers are diffed: unchanged
//! ones and their flows are untouched, removed real servers drain),
//! `global.conntrack`, `global.drain_timeout`, `global.autoreload`.
//!
//! Restart: the VRRP sections (`vrrp_instances`, `sync_groups`,
//! `track_scripts`), `dataplane`, `interfaces` and the rest of `global`.
//! keepalived re-creates its VRRP instances on reload, which can flap
//! mastership; lbd instead refuses the whole reload, changes nothing and
//! says which sections need `systemctl restart lbd`.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::{
    config::{self, Config, ConfigError, Diagnostic, Global},
    dataplane::{Capabilities, DesiredState},
    error_text::error_chain,
    health::{self, HealthSnapshot},
};

use super::preflight;

/// Why a reload is refused. Whatever it is, nothing changed.
#[derive(Debug, Error)]
pub enum ReloadError {
    #[error("{} does not load:\n{}", path.display(), lines(diagnostics))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("cannot read the configuration")]
    Read(#[source] ConfigError),
    /// What `lbd check` (and `lbd run`) would refuse too.
    #[error("{}", preflight::render(.0))]
    Refused(Vec<Diagnostic>),
    #[error(transparent)]
    NeedsRestart(#[from] NeedsRestart),
    #[error("virtual_servers added to a node that runs no data plane: restart lbd to apply")]
    NoDataplane,
    #[error(
        "virtual server {service}: scheduler {scheduler} is not implemented by the {dataplane} \
         data plane that runs"
    )]
    Capability {
        service: String,
        scheduler: &'static str,
        dataplane: &'static str,
    },
}

fn lines(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// A new configuration checked and turned into what the daemon applies.
#[derive(Debug)]
pub struct Prepared {
    pub config: Config,
    pub desired: DesiredState,
    /// New health checks when the virtual servers changed (carrying the
    /// health of unchanged real servers over), else `None`: keep running.
    pub checks: Option<health::Prepared>,
    /// The file's warnings, for the log.
    pub warnings: Vec<Diagnostic>,
}

/// The running data plane, as a reload must respect it.
#[derive(Clone, Copy, Debug)]
pub struct Running<'a> {
    pub config: &'a Config,
    /// `None`: this lbd runs no data plane (a VRRP-only node).
    pub dataplane: Option<(&'static str, Capabilities)>,
    pub health: &'a HealthSnapshot,
}

/// Everything a reload checks before anything changes, in one place:
/// loading, what `lbd check` refuses (`preflight`), what needs a restart,
/// what the running data plane can do, and the health checks' setup.
pub fn prepare(path: &Path, running: Running<'_>) -> Result<Prepared, ReloadError> {
    let loaded = match config::load_file(path) {
        Ok(loaded) => loaded,
        Err(ConfigError::Invalid { diagnostics }) => {
            return Err(ReloadError::Invalid {
                path: path.to_owned(),
                diagnostics,
            });
        }
        Err(err) => return Err(ReloadError::Read(err)),
    };
    let refusals = preflight::refusals(&loaded);
    if !refusals.is_empty() {
        return Err(ReloadError::Refused(refusals));
    }
    let warnings = loaded.warnings;
    let new = loaded.config;
    check(running.config, &new)?;
    let desired = DesiredState::from_config(&new)
        .expect("preflight refuses a config without a forwarding state");
    match running.dataplane {
        None if !desired.services.is_empty() => return Err(ReloadError::NoDataplane),
        None => {}
        Some((name, capabilities)) => {
            if let Some(s) = desired
                .services
                .iter()
                .find(|s| !capabilities.schedules(s.scheduler))
            {
                return Err(ReloadError::Capability {
                    service: s.label(),
                    scheduler: s.scheduler.name(),
                    dataplane: name,
                });
            }
        }
    }
    // Unchanged real servers keep their health: new checks only for a
    // changed `virtual_servers`, starting from the old results.
    let checks = if new.virtual_servers == running.config.virtual_servers {
        None
    } else {
        let mut prepared = health::prepare(&new).map_err(|e| {
            ReloadError::Refused(vec![Diagnostic {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                severity: config::Severity::Error,
                message: format!("health checks: {}", error_chain(&e)),
            }])
        })?;
        prepared.tracker.carry_over(running.health);
        Some(prepared)
    };
    Ok(Prepared {
        config: new,
        desired,
        checks,
        warnings,
    })
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{} changed: restart lbd to apply (the reload changed nothing)", .sections.join(", "))]
pub struct NeedsRestart {
    pub sections: Vec<&'static str>,
}

/// Checks that `new` differs from `old` only in what a reload can apply.
pub fn check(old: &Config, new: &Config) -> Result<(), NeedsRestart> {
    // Destructured in full so a new key must be sorted into live or restart.
    let Config {
        include: _, // what they held is merged into the lists below
        global,
        dataplane,
        interfaces,
        vrrp_instances,
        sync_groups,
        track_scripts,
        virtual_servers: _, // live
        flow_sync,
    } = new;
    let Global {
        router_id,
        script_user,
        enable_script_security,
        conntrack: _, // live
        control_group,
        metrics_listen,
        drain_timeout: _, // live
        autoreload: _,    // live
        vip_device,
    } = global;
    let mut sections = Vec::new();
    let mut differs = |name: &'static str, same: bool| {
        if !same {
            sections.push(name);
        }
    };
    differs("vrrp_instances", *vrrp_instances == old.vrrp_instances);
    differs("sync_groups", *sync_groups == old.sync_groups);
    differs("track_scripts", *track_scripts == old.track_scripts);
    differs("dataplane", *dataplane == old.dataplane);
    differs("interfaces", *interfaces == old.interfaces);
    differs("flow_sync", *flow_sync == old.flow_sync);
    differs("global.router_id", *router_id == old.global.router_id);
    differs("global.script_user", *script_user == old.global.script_user);
    differs(
        "global.enable_script_security",
        *enable_script_security == old.global.enable_script_security,
    );
    differs(
        "global.control_group",
        *control_group == old.global.control_group,
    );
    differs(
        "global.metrics_listen",
        *metrics_listen == old.global.metrics_listen,
    );
    differs("global.vip_device", *vip_device == old.global.vip_device);
    if sections.is_empty() {
        Ok(())
    } else {
        Err(NeedsRestart { sections })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn load(text: &str) -> Config {
        config::load_str(text, "test.yaml").expect("valid").config
    }

    const BASE: &str = "
vrrp_instances:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    priority: 100
    virtual_ipaddresses: [10.0.0.1/24]
virtual_servers:
  - address: 10.0.0.1
    port: 80
    real_servers: [{ address: 10.0.1.2 }]
";

    #[test]
    fn virtual_server_changes_are_live() {
        let old = load(BASE);
        let new = load(&format!(
            "{BASE}  - address: 10.0.0.1\n    port: 443\n    real_servers: [{{ address: 10.0.1.3 }}]\nglobal:\n  drain_timeout: 5\n"
        ));
        assert_eq!(check(&old, &new), Ok(()));
    }

    #[test]
    fn vrrp_changes_need_a_restart() {
        let old = load(BASE);
        let new = load(&BASE.replace("priority: 100", "priority: 200"));
        let err = check(&old, &new).unwrap_err();
        assert_eq!(
            err.to_string(),
            "vrrp_instances changed: restart lbd to apply (the reload changed nothing)"
        );
        let new = load(&format!(
            "{}\ndataplane: ipvs\n",
            BASE.replace("priority: 100", "priority: 200")
        ));
        assert_eq!(
            check(&old, &new).unwrap_err().sections,
            ["vrrp_instances", "dataplane"]
        );
    }
}
