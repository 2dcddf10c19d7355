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

use thiserror::Error;

use crate::config::{Config, Global};

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
