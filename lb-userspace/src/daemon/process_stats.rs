//! The Prometheus client libraries' standard process metrics
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_open_fds`, ...), read from /proc for lbd itself, so the usual
//! dashboards and alerts (memory growth, fd exhaustion, restarts) work.

use std::path::Path;

/// One sample of this process's resources.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessStats {
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Unix time the process started.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// This process now; `None` without a readable /proc.
    pub fn sample() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        // SAFETY: sysconf has no memory preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let mut stats = from_stat(
            &stat,
            u64::try_from(ticks).ok()?,
            u64::try_from(page).ok()?,
            boot,
        )?;
        stats.open_fds = count_entries(Path::new("/proc/self/fd"));
        stats.max_fds = max_fds();
        Some(stats)
    }
}

/// The fields of /proc/self/stat (proc(5)) that matter here; `ticks` per
/// second and the page size convert them, `boot` (Unix seconds) dates the
/// start. File descriptors are left at zero.
fn from_stat(stat: &str, ticks: u64, page: u64, boot: u64) -> Option<ProcessStats> {
    // The command name, in parentheses, may hold spaces: fields start after
    // the last ')'. Field 3 (state) is then index 0.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let (utime, stime) = (field(14)?, field(15)?);
    let start_ticks = field(22)?;
    let ticks_f = ticks as f64;
    Some(ProcessStats {
        resident_memory_bytes: field(24)? * page,
        virtual_memory_bytes: field(23)?,
        cpu_seconds: (utime + stime) as f64 / ticks_f,
        open_fds: 0,
        max_fds: 0,
        start_time_seconds: boot as f64 + start_ticks as f64 / ticks_f,
    })
}

/// `btime` of /proc/stat: the boot time in Unix seconds.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn count_entries(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.count() as u64)
}

fn max_fds() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: limit is a valid rlimit to write into.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
    if rc == 0 { limit.rlim_cur } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_proc_fields_by_position_past_a_name_with_spaces() {
        // proc(5): pid (comm) state ppid ... utime(14) stime(15) ...
        // starttime(22) vsize(23) rss(24).
        let stat = "42 (lbd run (x)) S 1 42 42 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 3 0 1000 104857600 2560 18446744073709551615";
        let s = from_stat(stat, 100, 4096, 1_700_000_000).unwrap();
        assert_eq!(s.resident_memory_bytes, 2560 * 4096);
        assert_eq!(s.virtual_memory_bytes, 104_857_600);
        assert!((s.cpu_seconds - 3.0).abs() < 1e-9);
        assert!((s.start_time_seconds - 1_700_000_010.0).abs() < 1e-9);
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_has_memory_and_open_files() {
        let s = ProcessStats::sample().expect("/proc is mounted");
        assert!(s.resident_memory_bytes > 0);
        assert!(s.open_fds >= 3, "stdin, stdout, stderr at least");
        assert!(s.max_fds >= s.open_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0);
    }
}
