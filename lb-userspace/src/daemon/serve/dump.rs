//! SIGUSR1 and SIGUSR2 as keepalived users expect them: keepalived writes
//! its state to /tmp/keepalived.data on SIGUSR1 and its statistics to
//! /tmp/keepalived.stats on SIGUSR2. A monitoring habit or a muscle-memory
//! `kill -USR1` must never move addresses: manual failover is only
//! `lbd failover` on the control socket.
//!
//! lbd's status report holds state and statistics together, so both
//! signals write it, as `lbd status --json` prints it, into the state
//! directory under the name keepalived users look for.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::Daemon;
use crate::daemon::status::StatusReport;

/// Which signal asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dump {
    /// SIGUSR1: `lbd.data`.
    State,
    /// SIGUSR2: `lbd.stats`.
    Stats,
}

impl Dump {
    pub(super) fn file_name(self) -> &'static str {
        match self {
            Self::State => "lbd.data",
            Self::Stats => "lbd.stats",
        }
    }

    fn signal(self) -> &'static str {
        match self {
            Self::State => "SIGUSR1",
            Self::Stats => "SIGUSR2",
        }
    }
}

impl Daemon<'_> {
    /// Writes the status report for `dump`; logs where, or why not.
    pub(super) async fn write_dump(&mut self, dump: Dump) {
        let signal = dump.signal();
        let report = match self.report().await {
            Ok(report) => report,
            Err(err) => {
                warn!("{signal}: cannot build the status report: {err:#}");
                return;
            }
        };
        match write_report(&self.options.state_dir, dump.file_name(), &report) {
            Ok(path) => {
                info!(path = %path.display(), "{signal}: status written to {}", path.display());
            }
            Err(err) => warn!("{signal}: cannot write the status report: {err:#}"),
        }
    }
}

/// Writes `report` as pretty JSON to `dir/name`, whole or not at all (a
/// reader never sees half a file), through `atomic_file`.
pub(super) fn write_report(
    dir: &Path,
    name: &str,
    report: &StatusReport,
) -> anyhow::Result<PathBuf> {
    use anyhow::Context as _;
    let path = dir.join(name);
    let mut json = serde_json::to_vec_pretty(report).context("while encoding the report")?;
    json.push(b'\n');
    crate::atomic_file::replace(&path, &json)
        .with_context(|| format!("while writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dump_is_what_status_json_prints() {
        let dir = std::env::temp_dir().join(format!("lbd-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let report = StatusReport {
            version: "1.2.3".into(),
            config: "/etc/lbd/lbd.yaml".into(),
            reloads_ok: 4,
            ..StatusReport::default()
        };
        let path = write_report(&dir, Dump::State.file_name(), &report).unwrap();
        assert_eq!(path, dir.join("lbd.data"));
        let back: StatusReport =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, report);
        assert_eq!(Dump::Stats.file_name(), "lbd.stats");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
