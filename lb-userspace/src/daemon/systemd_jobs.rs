//! Whether systemd is restarting a unit, for `lbd cleanup` in
//! `ExecStopPost`: systemd runs it on every stop, the stop half of
//! `systemctl restart` included, and a restart must keep the pinned XDP
//! program and maps for the next lbd to adopt, while a plain stop must
//! remove them. During the stop half of a restart, systemd lists the unit's
//! job as `restart` (it becomes `start` once the unit is down), so
//! `systemctl list-jobs --no-legend --plain UNIT` tells the two apart.

use std::{io, process::Command};

/// Job types that start the unit again after this stop.
const RESTARTING: &[&str] = &["restart", "try-restart"];

/// Whether `list_jobs` (the output of `systemctl list-jobs --no-legend
/// --plain`: `JOB UNIT TYPE STATE` per line) holds a restart job of `unit`.
pub fn restart_listed(list_jobs: &str, unit: &str) -> bool {
    list_jobs.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (_job, name, kind) = (fields.next(), fields.next(), fields.next());
        name == Some(unit) && kind.is_some_and(|k| RESTARTING.contains(&k))
    })
}

/// Asks systemd whether it is restarting `unit` now.
pub fn restarting(unit: &str) -> io::Result<bool> {
    let out = Command::new("systemctl")
        .args(["list-jobs", "--no-legend", "--plain", unit])
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "systemctl list-jobs failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(restart_listed(&String::from_utf8_lossy(&out.stdout), unit))
}

#[cfg(test)]
mod tests {
    use super::restart_listed;

    #[test]
    fn a_restart_job_of_the_unit_is_a_restart() {
        let jobs = "4711 lbd.service restart running\n";
        assert!(restart_listed(jobs, "lbd.service"));
    }

    #[test]
    fn a_stop_job_is_not_a_restart() {
        let jobs = "4711 lbd.service stop running\n";
        assert!(!restart_listed(jobs, "lbd.service"));
    }

    #[test]
    fn no_job_is_not_a_restart() {
        assert!(!restart_listed("", "lbd.service"));
    }

    #[test]
    fn another_units_restart_is_not_ours() {
        let jobs = "12 lbd-backup.service restart running\n13 lbd.service stop running\n";
        assert!(!restart_listed(jobs, "lbd.service"));
        assert!(restart_listed(jobs, "lbd-backup.service"));
    }

    #[test]
    fn try_restart_and_padding_count() {
        let jobs = "  99  lbd.service   try-restart   waiting  \n";
        assert!(restart_listed(jobs, "lbd.service"));
    }
}
