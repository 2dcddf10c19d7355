//! One balancer of the demo: an `lbd run` in its namespace, which the demo
//! stops (SIGTERM: a clean handover) and starts again.

use std::{
    fs::OpenOptions,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::netns::Netns;

pub(super) struct Balancer {
    pub(super) name: &'static str,
    lbd: PathBuf,
    config: PathBuf,
    /// Its log and its state files.
    dir: PathBuf,
    child: Option<Child>,
}

impl Balancer {
    /// `dir` must exist; the log and state files go there.
    pub(super) fn new(name: &'static str, lbd: &Path, config: &Path, dir: &Path) -> Self {
        Self {
            name,
            lbd: lbd.to_owned(),
            config: config.to_owned(),
            dir: dir.to_owned(),
            child: None,
        }
    }

    pub(super) fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The daemon's control socket (`lbd status --socket PATH`).
    pub(super) fn socket_path(&self) -> PathBuf {
        self.dir.join("lbd.sock")
    }

    /// lbd's log; each start appends to it.
    pub(super) fn log_path(&self) -> PathBuf {
        self.dir.join("lbd.log")
    }

    /// Starts `lbd run` in `ns`.
    pub(super) fn start(&mut self, ns: &Netns) -> Result<()> {
        if self.running() {
            return Ok(());
        }
        // A stale state file (STOP, from the last run) would read as current.
        let _ = std::fs::remove_dir_all(self.state_dir());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .with_context(|| format!("while opening {}", self.log_path().display()))?;
        let child = ns
            .command(&self.lbd)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(self.state_dir())
            // Two daemons on one host: each needs its own control socket.
            .arg("--socket")
            .arg(self.socket_path())
            .env("LBD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a Ctrl-C in the terminal reaches the
            // demo, which stops the daemons in order, not the daemons.
            .process_group(0)
            .spawn()
            .with_context(|| format!("while starting lbd on {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    pub(super) fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// If lbd exited by itself since the last call: its exit status.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// SIGTERM (priority-0 adverts, VIPs removed), then SIGKILL if it has
    /// not exited within 5 s.
    pub(super) fn stop(&mut self) -> Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "lbd on {} did not stop within 5 s of SIGTERM and was killed",
            self.name
        )
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
