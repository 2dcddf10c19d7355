//! Running a configured command (a `track_script`, a `notify*` script, a
//! `misc_check` or a real server's `notify_up`/`notify_down`):
//! split into words as keepalived does, checked before it ever runs, run as
//! a configured user in its own process group, and killed with that whole
//! group when it overruns its timeout.
//!
//! keepalived's "unsafe permissions" rule (`enable_script_security`) is
//! always applied here, not only when asked for: a script that anyone but
//! root (or the user it runs as) could change would let that person run
//! code as the script's user, so such a script is refused with the file
//! and the fix named. The file and every directory above it are checked;
//! a sticky directory such as /tmp is fine, since others cannot replace
//! the entries in it. An interpreter's script (`/bin/sh /etc/lbd/chk.sh`)
//! is checked the same way, and what runs is the resolved file that was
//! checked, not a symlink that could be swapped afterwards.
//!
//! A script gets a clean environment: only `PATH` (fixed, see
//! [`SCRIPT_PATH`]), so what it runs does not depend on how the daemon was
//! started and the daemon's environment does not leak into it. Its
//! process group is killed when it overruns its timeout and also when its
//! owner goes away (a reload that drops a check, a shutdown).

mod run_as;
mod secure;
mod words;

pub(crate) use run_as::lookup_group;
pub use run_as::{DEFAULT_SCRIPT_USER, RunAs};
pub use secure::{SCRIPT_PATH, SCRIPT_PATH_VAR};
use secure::{check_secure, find_program, interpreted_script, script_path};
pub use words::split_words;

use std::{
    fmt,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::Duration,
};

/// Why a command cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("{what}: the command is empty")]
    Empty { what: String },
    #[error("{what}: unbalanced quote in `{command}`")]
    Quote { what: String, command: String },
    #[error("{what}: {path} not found (give an absolute path or put it on PATH)")]
    NotFound { what: String, path: String },
    #[error("{what}: {path} is not an executable file (fix: chmod 755 {path})")]
    NotExecutable { what: String, path: String },
    #[error(
        "{what}: refusing {path}: unsafe permissions: {problem}, so others could change \
         what runs as {user} (keepalived: enable_script_security); fix: {fix}"
    )]
    Unsafe {
        what: String,
        path: String,
        problem: String,
        user: String,
        fix: String,
    },
    #[error("user `{user}` does not exist (fix: create it, or set another user or script_user)")]
    NoUser { user: String },
    #[error("group `{group}` does not exist (fix: create it or name another group)")]
    NoGroup { group: String },
}

/// How one run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed(ExitStatus),
    /// Overran its timeout; its process group was killed.
    TimedOut,
    /// Could not start (the file vanished since the check, say).
    SpawnFailed,
}

impl Outcome {
    pub fn ok(self) -> bool {
        self == Self::Success
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("succeeded"),
            Self::Failed(status) => write!(f, "failed ({status})"),
            Self::TimedOut => f.write_str("timed out and was killed"),
            Self::SpawnFailed => f.write_str("could not be started"),
        }
    }
}

/// A checked command, ready to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// What it is, for messages: `track script chk_http`.
    pub what: String,
    /// The program as written (resolved on PATH); also its `argv[0]`.
    pub program: PathBuf,
    /// What runs: `program` with its symlinks resolved, as checked.
    pub resolved: PathBuf,
    pub args: Vec<String>,
    pub run_as: RunAs,
}

impl Command {
    /// Splits `command`, finds the program and checks its permissions.
    pub fn prepare(what: &str, command: &str, run_as: RunAs) -> Result<Self, ExecError> {
        let mut words = split_words(command).ok_or_else(|| ExecError::Quote {
            what: what.to_owned(),
            command: command.to_owned(),
        })?;
        if words.is_empty() {
            return Err(ExecError::Empty {
                what: what.to_owned(),
            });
        }
        let name = words.remove(0);
        let program = find_program(&name).ok_or_else(|| ExecError::NotFound {
            what: what.to_owned(),
            path: name.clone(),
        })?;
        let resolved = check_secure(what, &program, &run_as, true)?;
        if let Some(script) = interpreted_script(&resolved, &words) {
            let checked = check_secure(what, std::path::Path::new(&words[script]), &run_as, false)?;
            words[script] = checked.to_string_lossy().into_owned();
        }
        Ok(Self {
            what: what.to_owned(),
            program,
            resolved,
            args: words,
            run_as,
        })
    }

    /// Runs it with `extra` arguments appended; kills its process group
    /// after `timeout`, or when the returned future is dropped first.
    pub async fn run(&self, extra: &[String], timeout: Duration) -> Outcome {
        let mut command = tokio::process::Command::new(&self.resolved);
        command
            .arg0(&self.program)
            .args(&self.args)
            .args(extra)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear()
            .env("PATH", script_path())
            // Its own group, so a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true);
        if self.run_as.uid != 0 || self.run_as.gid != 0 {
            // std drops supplementary groups (setgroups) before setuid.
            command.gid(self.run_as.gid).uid(self.run_as.uid);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                tracing::warn!(what = %self.what, program = %self.program.display(), "cannot start: {err}");
                return Outcome::SpawnFailed;
            }
        };
        let mut group = GroupKill(child.id());
        let outcome = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => Outcome::Success,
            Ok(Ok(status)) => Outcome::Failed(status),
            Ok(Err(err)) => {
                tracing::warn!(what = %self.what, "waiting for it failed: {err}");
                Outcome::SpawnFailed
            }
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                Outcome::TimedOut
            }
        };
        // It ended by itself: what it left running in the background is the
        // script's business (keepalived does not chase it either).
        group.0 = None;
        outcome
    }
}

/// The process group of a running script; dropping it (the run's future
/// was dropped before the script ended) kills the group.
struct GroupKill(Option<u32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            // SAFETY: kill has no memory preconditions; the group id is the
            // child's pid (process_group(0)).
            unsafe { libc::kill(-i32::try_from(pid).unwrap_or(i32::MAX), libc::SIGKILL) };
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests;
