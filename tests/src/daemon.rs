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

/// A running `lbd run`, killed on drop if still alive.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
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
        if !extra.contains(&"--state-dir") {
            command
                .arg("--state-dir")
                .arg(config.with_extension("state"));
        }
        let child = command
            .env("LBD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("while starting lbd")?;
        Ok(Self { child, log, socket })
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
    }
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

/// Waits until `interface` in `ns` shows an XDP program.
pub fn wait_for_xdp(ns: &Netns, interface: &str, daemon: &mut Daemon) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(status) = daemon.try_wait()? {
            bail!(
                "lbd exited with {status} before attaching; its log:\n{}",
                daemon.log()
            );
        }
        if has_xdp(ns, interface)? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "lbd did not attach XDP to {interface} within 15 s; its log:\n{}",
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
