//! Where lbd keeps its files and how long the scripts it starts may run:
//! shared by VRRP, the health checks, IPVS and the daemon, owned by none.

use std::{os::unix::fs::MetadataExt as _, time::Duration};

/// The configuration `lbd run`, `check` and `cleanup` read without
/// `--config`, as keepalived reads /etc/keepalived/keepalived.conf.
pub const CONFIG_FILE: &str = "/etc/lbd/lbd.yaml";

/// State files (`<instance>.state`), the pid file and lock, IPVS's
/// ownership record: `lbd run --state-dir`.
pub const STATE_DIR: &str = "/run/lbd";

/// Where `lbd run` listens and the other commands connect by default.
pub const CONTROL_SOCKET: &str = "/run/lbd/lbd.sock";

/// keepalived lets notify scripts run forever; a hung one here is killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// `NAME.<inode of this thread's network namespace>`: the records of
/// what lbd added (IPVS services, VIPs) are per namespace, as the kernel's
/// tables are, so daemons in different namespaces sharing a state
/// directory never read each other's.
pub fn per_netns(name: &str) -> String {
    let netns = std::fs::metadata("/proc/thread-self/ns/net")
        .map_or_else(|_| "default".to_owned(), |m| m.ino().to_string());
    format!("{name}.{netns}")
}
