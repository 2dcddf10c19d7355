//! Where the view's facts come from, one small function each so a better
//! source (e.g. `lbd status --json`) can replace one without touching the
//! view: VRRP state from lbd's state files, backend health from lbd's log
//! (keepalived's "Removing service [IP]:tcp:PORT from VS ..." lines, or
//! "Disabling service ..." with `inhibit_on_failure`).

use std::{
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

/// The state lbd wrote for `instance` (`MASTER`, `BACKUP`, `FAULT`,
/// `STOP`), if any.
pub fn vrrp_state(state_dir: &Path, instance: &str) -> Option<String> {
    let text = std::fs::read_to_string(state_dir.join(format!("{instance}.state"))).ok()?;
    let state = text.trim().strip_prefix("STATE=")?;
    Some(state.to_owned())
}

/// A backend's health as a balancer's checks decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    pub backend: String,
    pub up: bool,
}

/// The health changes in `log` lines, in order.
pub fn health_changes(log: &str) -> Vec<HealthChange> {
    log.lines()
        .filter_map(|line| {
            // keepalived's wording: Disabling / Enabling with
            // inhibit_on_failure, Removing / Adding without it.
            let (rest, up) = [
                ("Disabling service [", false),
                ("Removing service [", false),
                ("Enabling service [", true),
                ("Adding service [", true),
            ]
            .into_iter()
            .find_map(|(marker, up)| Some((line.split_once(marker)?.1, up)))?;
            let backend = rest.split_once(']')?.0.to_owned();
            Some(HealthChange { backend, up })
        })
        .collect()
}

/// Whether a configuration has health checks (a `checks:` key anywhere).
pub fn config_has_checks(yaml: &str) -> bool {
    yaml.lines().any(|l| {
        let l = l.trim_start();
        !l.starts_with('#') && l.starts_with("checks:")
    })
}

/// Reads what a growing file gained since the last call.
pub struct LogTail {
    path: PathBuf,
    offset: u64,
}

impl LogTail {
    pub fn new(path: PathBuf) -> Self {
        Self { path, offset: 0 }
    }

    /// Whole lines added since the last call (a partial last line waits).
    pub fn read_new(&mut self) -> String {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return String::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return String::new();
        }
        let mut text = String::new();
        if file.read_to_string(&mut text).is_err() {
            return String::new();
        }
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        text.truncate(complete);
        self.offset += complete as u64;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_lines_are_parsed_as_lbd_writes_them() {
        let log = "2026 INFO lb_userspace::health::events: Removing service [10.112.2.22]:tcp:80 from VS [10.112.1.100]:tcp:80\n\
                   2026 INFO lb_userspace::health::events: Adding service [10.112.2.22]:tcp:80 to VS [10.112.1.100]:tcp:80\n";
        let changes = health_changes(log);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].backend, "10.112.2.22");
        assert!(!changes[0].up);
        assert!(changes[1].up);
    }

    #[test]
    fn health_lines_are_parsed() {
        let log = "2025 INFO lbd: Disabling service [10.112.2.22]:80 from VS [10.112.1.100]:80\n\
                   2025 INFO lbd: other\n\
                   2025 INFO lbd: Enabling service [10.112.2.22]:80 to VS [10.112.1.100]:80\n";
        assert_eq!(
            health_changes(log),
            [
                HealthChange {
                    backend: "10.112.2.22".into(),
                    up: false
                },
                HealthChange {
                    backend: "10.112.2.22".into(),
                    up: true
                }
            ]
        );
    }

    #[test]
    fn checks_are_found_outside_comments() {
        assert!(config_has_checks(
            "x:\n      checks:\n        - tcp_check\n"
        ));
        assert!(!config_has_checks("# checks: later\nx: 1\n"));
    }
}
