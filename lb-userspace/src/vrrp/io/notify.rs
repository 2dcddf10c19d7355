//! What the outside world hears of a state change: the `notify*` scripts
//! (started and left to run, so a slow script never holds the election
//! back, and killed after [`NOTIFY_TIMEOUT`]) and a state file per instance.
//!
//! State files live in a directory given to `lbd run --state-dir`
//! (default [`DEFAULT_STATE_DIR`]): `<instance>.state` holds one line,
//! `STATE=MASTER` (or BACKUP, FAULT, STOP). It is written to a temporary
//! file and renamed over the old one, so a reader sees the old state or the
//! new one, never half a line.

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::task::JoinSet;

use super::exec::{Command, ExecError, RunAs};
use crate::{
    config::{SyncGroup, VrrpInstance},
    vrrp::State,
};

pub use crate::defaults::{NOTIFY_TIMEOUT, STATE_DIR as DEFAULT_STATE_DIR};

/// The state names scripts and files use (keepalived's).
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Master => "MASTER",
        State::Backup => "BACKUP",
        State::Fault => "FAULT",
        State::Init => "STOP",
    }
}

/// The scripts of one instance or sync group.
#[derive(Clone, Debug, Default)]
pub struct NotifyScripts {
    master: Option<Command>,
    backup: Option<Command>,
    fault: Option<Command>,
    stop: Option<Command>,
    /// `notify`: called with `INSTANCE|GROUP NAME STATE PRIORITY`.
    any: Option<Command>,
}

impl NotifyScripts {
    pub fn for_instance(config: &VrrpInstance, run_as: &RunAs) -> Result<Self, ExecError> {
        let what = |kind: &str| format!("vrrp instance {}: {kind}", config.name);
        let prepare = |kind: &str, command: &Option<String>| {
            command
                .as_deref()
                .map(|c| Command::prepare(&what(kind), c, run_as.clone()))
                .transpose()
        };
        Ok(Self {
            master: prepare("notify_master", &config.notify_master)?,
            backup: prepare("notify_backup", &config.notify_backup)?,
            fault: prepare("notify_fault", &config.notify_fault)?,
            stop: prepare("notify_stop", &config.notify_stop)?,
            any: prepare("notify", &config.notify)?,
        })
    }

    pub fn for_group(config: &SyncGroup, run_as: &RunAs) -> Result<Self, ExecError> {
        let what = |kind: &str| format!("sync group {}: {kind}", config.name);
        let prepare = |kind: &str, command: &Option<String>| {
            command
                .as_deref()
                .map(|c| Command::prepare(&what(kind), c, run_as.clone()))
                .transpose()
        };
        Ok(Self {
            master: prepare("notify_master", &config.notify_master)?,
            backup: prepare("notify_backup", &config.notify_backup)?,
            fault: prepare("notify_fault", &config.notify_fault)?,
            stop: None,
            any: prepare("notify", &config.notify)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.any.is_none()
    }
}

/// Whether the notified thing is an instance or a group (the first
/// argument of `notify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    Instance,
    Group,
}

/// Starts notify scripts and writes state files.
#[derive(Debug)]
pub struct Notifier {
    state_dir: PathBuf,
    timeout: Duration,
    running: JoinSet<()>,
}

impl Notifier {
    pub fn new(state_dir: PathBuf, timeout: Duration) -> Self {
        Self {
            state_dir,
            timeout,
            running: JoinSet::new(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `name` is now in `state`: rewrites the state file (instances only)
    /// and starts the scripts that apply.
    pub fn changed(
        &mut self,
        subject: Subject,
        name: &str,
        state: State,
        priority: u8,
        scripts: &NotifyScripts,
    ) {
        if subject == Subject::Instance
            && let Err(err) = write_state_file(&self.state_dir, name, state)
        {
            tracing::warn!(instance = name, dir = %self.state_dir.display(), "cannot write the state file: {err}");
        }
        let specific = match state {
            State::Master => &scripts.master,
            State::Backup => &scripts.backup,
            State::Fault => &scripts.fault,
            State::Init => &scripts.stop,
        };
        if let Some(command) = specific {
            self.start(command.clone(), Vec::new());
        }
        if let Some(command) = &scripts.any {
            let kind = match subject {
                Subject::Instance => "INSTANCE",
                Subject::Group => "GROUP",
            };
            let args = vec![
                kind.to_owned(),
                name.to_owned(),
                state_name(state).to_owned(),
                priority.to_string(),
            ];
            self.start(command.clone(), args);
        }
        // Forget the finished ones.
        while self.running.try_join_next().is_some() {}
    }

    /// Waits up to `limit` for scripts still running (at shutdown, so the
    /// STOP notifications get their chance).
    pub async fn finish(&mut self, limit: Duration) {
        let all = async { while self.running.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(limit, all).await;
    }

    fn start(&mut self, command: Command, args: Vec<String>) {
        let timeout = self.timeout;
        self.running.spawn(async move {
            let outcome = command.run(&args, timeout).await;
            if outcome.ok() {
                tracing::debug!(what = %command.what, "notify script {outcome}");
            } else {
                tracing::warn!(what = %command.what, "notify script {outcome}");
            }
        });
    }
}

/// The state file of `instance` in `dir`.
pub fn state_file(dir: &Path, instance: &str) -> PathBuf {
    // An instance name is free text; keep it one path component.
    let safe: String = instance
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    dir.join(format!("{safe}.state"))
}

/// Writes `STATE=...` atomically: a temporary file renamed over the old.
pub fn write_state_file(dir: &Path, instance: &str, state: State) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = state_file(dir, instance);
    crate::atomic_file::replace(&path, format!("STATE={}\n", state_name(state)).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_are_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("lbd-notify-{}", std::process::id()));
        write_state_file(&dir, "VI_1", State::Backup).unwrap();
        write_state_file(&dir, "VI_1", State::Master).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("VI_1.state")).unwrap(),
            "STATE=MASTER\n"
        );
        write_state_file(&dir, "a/b", State::Init).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a_b.state")).unwrap(),
            "STATE=STOP\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn notify_gets_type_name_state_priority() {
        let dir = std::env::temp_dir().join(format!("lbd-notify-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("args");
        let script = dir.join("notify.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > {}.tmp\nmv {0}.tmp {0}\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &script,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
        )
        .unwrap();
        let me = RunAs {
            user: "me".into(),
            // SAFETY: getuid/getgid have no preconditions.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
        };
        let scripts = NotifyScripts {
            any: Some(Command::prepare("notify", script.to_str().unwrap(), me).unwrap()),
            ..NotifyScripts::default()
        };
        let mut notifier = Notifier::new(dir.clone(), Duration::from_secs(5));
        notifier.changed(Subject::Instance, "VI_1", State::Master, 150, &scripts);
        notifier.finish(Duration::from_secs(5)).await;
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "INSTANCE VI_1 MASTER 150\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("VI_1.state")).unwrap(),
            "STATE=MASTER\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
