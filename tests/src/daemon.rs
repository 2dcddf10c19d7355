//! Starting `lbd` inside a namespace and stopping it, for tests and labs.

use std::{
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use lb_lab::netns::Netns;
use lb_userspace::daemon::status::StatusReport;

use crate::binaries;

/// A running `lbd run`, killed on drop if still alive; its pin directory
/// (the pinned XDP program and maps) is removed on drop, unless it was
/// stopped with [`Daemon::stop_for_restart`].
pub struct Daemon {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
    pin_dir: PathBuf,
    keep_pins: bool,
}

/// Where tests pin: a bpffs mounted once on the host outside `/sys`, so
/// every daemon sees it (`ip netns exec` gives each command a fresh
/// `/sys`, without the host's `/sys/fs/bpf`) and a restarted daemon finds
/// what the one before pinned.
const TEST_BPFFS: &str = "/run/lbd-tests/bpf";

/// Mounts [`TEST_BPFFS`] unless it is mounted (under a lock: parallel test
/// processes must not stack mounts, which would hide one another's pins).
pub fn test_bpffs() -> Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = PathBuf::from(TEST_BPFFS);
    std::fs::create_dir_all(&path).with_context(|| format!("while creating {TEST_BPFFS}"))?;
    let lock = std::fs::File::create(path.with_extension("lock"))?;
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!("locking {TEST_BPFFS}: {}", std::io::Error::last_os_error());
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: statfs writes into the struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &raw mut st) } != 0 {
        bail!("statfs {TEST_BPFFS}: {}", std::io::Error::last_os_error());
    }
    if st.f_type != libc::BPF_FS_MAGIC {
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c.as_ptr(),
                c"bpf".as_ptr(),
                0,
                c"mode=0700".as_ptr().cast(),
            )
        };
        if rc != 0 {
            bail!(
                "mounting bpffs on {TEST_BPFFS}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(path)
}

/// The pin directory `Daemon::start` gives the lbd of `state_dir`: the
/// same across restarts with the same state directory, its own otherwise.
pub fn test_pin_dir(state_dir: &Path) -> Result<PathBuf> {
    Ok(test_bpffs()?.join(lb_userspace::xdp::pins::instance_name(state_dir)))
}

impl Daemon {
    /// Starts `lbd run --config CONFIG EXTRA...` in `ns`, logging to a file
    /// beside the config (so a chatty daemon never blocks on a full pipe),
    /// with its control socket and state directory beside the config too
    /// (unless EXTRA names them), so daemons of parallel tests never share
    /// one.
    pub fn start(ns: &Netns, config: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_wrapped(ns, &[], config, extra)
    }

    /// Like `start`, with `lbd` run by `wrapper` (e.g. `setpriv ...` to run
    /// it without some capabilities).
    pub fn start_wrapped(
        ns: &Netns,
        wrapper: &[&str],
        config: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        let log = config.with_extension("log");
        let file = std::fs::File::create(&log)
            .with_context(|| format!("while creating {}", log.display()))?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = ns.command(program);
                c.args(args).arg(binaries::lbd());
                c
            }
            None => ns.command(binaries::lbd()),
        };
        let named = extra.iter().position(|a| *a == "--socket");
        let socket = match named {
            Some(i) => PathBuf::from(extra.get(i + 1).context("--socket needs a path")?),
            None => config.with_extension("sock"),
        };
        command.arg("run").arg("--config").arg(config).args(extra);
        if named.is_none() {
            command.arg("--socket").arg(&socket);
        }
        // One lbd per state directory: parallel tests' daemons each get
        // their own beside the config unless EXTRA names one.
        let state_dir = if let Some(i) = extra.iter().position(|a| *a == "--state-dir") {
            PathBuf::from(extra.get(i + 1).context("--state-dir needs a path")?)
        } else {
            let dir = config.with_extension("state");
            command.arg("--state-dir").arg(&dir);
            dir
        };
        // And one pin directory per state directory, on the shared bpffs.
        let pin_dir = if let Some(i) = extra.iter().position(|a| *a == "--pin-dir") {
            PathBuf::from(extra.get(i + 1).context("--pin-dir needs a path")?)
        } else {
            let dir = test_pin_dir(&state_dir)?;
            command.arg("--pin-dir").arg(&dir);
            dir
        };
        let child = command
            .env("LBD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("while starting lbd")?;
        Ok(Self {
            child,
            log,
            socket,
            pin_dir,
            keep_pins: false,
        })
    }

    /// Where this daemon pins the XDP program and maps.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Leaves the pinned XDP program and maps, on drop, for the next daemon
    /// with the same state directory (whose own drop removes them).
    pub fn keep_pins(&mut self) {
        self.keep_pins = true;
    }

    /// Sends `signal`, waits for the exit and leaves the pinned XDP program
    /// and maps for the next daemon with the same state directory.
    pub fn stop_for_restart(mut self, signal: i32) -> Result<ExitStatus> {
        let status = self.signal_and_wait(signal, Duration::from_secs(10))?;
        self.keep_pins = true;
        Ok(status)
    }

    /// The daemon's control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs `lbd ARGS... --socket SOCKET` (e.g. `status --json`) against
    /// this daemon and returns its output, whatever the exit status.
    pub fn ctl(&self, args: &[&str]) -> Result<Output> {
        std::process::Command::new(binaries::lbd())
            .args(args)
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .with_context(|| format!("while running lbd {}", args.join(" ")))
    }

    /// `lbd status --json`: what the daemon reports it has installed.
    pub fn status(&self) -> Result<StatusReport> {
        let out = self.ctl(&["status", "--json"])?;
        anyhow::ensure!(
            out.status.success(),
            "lbd status --json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).context("while reading lbd status --json")
    }

    /// Polls `lbd status --json` until `ready` holds; panics with the log
    /// after `within`, or at once if the daemon exited.
    pub fn wait_status(
        &mut self,
        what: &str,
        within: Duration,
        ready: impl Fn(&StatusReport) -> bool,
    ) -> StatusReport {
        let start = Instant::now();
        loop {
            if let Some(exit) = self.try_wait().unwrap() {
                panic!("lbd exited with {exit}; log:\n{}", self.log());
            }
            if let Ok(report) = self.status()
                && ready(&report)
            {
                return report;
            }
            assert!(
                start.elapsed() < within,
                "waited {within:?} for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pids fit in i32")
    }

    /// The exit status if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Sends `signal` and waits up to `timeout` for the exit status.
    pub fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> Result<ExitStatus> {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(self.pid(), signal) };
        self.wait(timeout)
    }

    /// Waits up to `timeout` for the daemon to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "lbd did not exit within {timeout:?}; its log:\n{}",
            self.log()
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.socket);
        if !self.keep_pins {
            let _ = lb_userspace::xdp::pins::PinDir::at(&self.pin_dir).remove_all();
        }
    }
}

/// `lbd cleanup` for the daemon that ran with `config` in `ns` (the state
/// and pin directories `Daemon::start` gave it); returns its output.
pub fn cleanup(ns: &Netns, config: &Path) -> Result<Output> {
    let state_dir = config.with_extension("state");
    let out = ns
        .command(binaries::lbd())
        .arg("cleanup")
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(&state_dir)
        .arg("--pin-dir")
        .arg(test_pin_dir(&state_dir)?)
        .output()
        .context("while running lbd cleanup")?;
    Ok(out)
}

/// Whether `interface` in `ns` has an XDP program attached.
pub fn has_xdp(ns: &Netns, interface: &str) -> Result<bool> {
    let out = ns
        .command("ip")
        .args(["-details", "link", "show", "dev", interface])
        .output()?;
    if !out.status.success() {
        bail!(
            "ip link show {interface} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).contains("prog/xdp"))
}

/// Waits until `interface` in `ns` shows an XDP program and the daemon
/// answers on its control socket (its services are installed by then).
pub fn wait_for_xdp(ns: &Netns, interface: &str, daemon: &mut Daemon) -> Result<()> {
    // Under the lab VM's emulated CPU (`cargo xtask vm`) loading the
    // programs takes longer: LBD_TEST_XDP_WAIT_S raises the bound there.
    let secs = std::env::var("LBD_TEST_XDP_WAIT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(status) = daemon.try_wait()? {
            bail!(
                "lbd exited with {status} before attaching; its log:\n{}",
                daemon.log()
            );
        }
        if has_xdp(ns, interface)? {
            // Attached comes before the services are installed; the
            // control socket answers once they are.
            while Instant::now() < deadline {
                if daemon.try_wait()?.is_some() || daemon.status().is_ok() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "lbd did not attach XDP to {interface} and answer within {secs} s; its log:\n{}",
        daemon.log()
    )
}

/// A unique temporary file path for a test's config.
pub fn temp_config(name: &str, contents: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("lbd-test-{}-{n}-{name}.yaml", std::process::id()));
    std::fs::write(&path, contents).with_context(|| format!("while writing {}", path.display()))?;
    Ok(path)
}
