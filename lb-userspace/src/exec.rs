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
//! the entries in it.

use std::{
    ffi::CString,
    fmt,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

/// The user keepalived runs scripts as when none is configured and it
/// exists (its `script_user` default).
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

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

/// The identity a command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    pub fn root() -> Self {
        Self {
            user: "root".into(),
            uid: 0,
            gid: 0,
        }
    }

    /// `user` or `user group`, as keepalived's `script_user` and `user`.
    pub fn parse(spec: &str) -> Result<Self, ExecError> {
        let mut words = spec.split_whitespace();
        let user = words.next().unwrap_or("root");
        let (uid, mut gid) = lookup_user(user).ok_or_else(|| ExecError::NoUser {
            user: user.to_owned(),
        })?;
        if let Some(group) = words.next() {
            gid = lookup_group(group).ok_or_else(|| ExecError::NoGroup {
                group: group.to_owned(),
            })?;
        }
        Ok(Self {
            user: user.to_owned(),
            uid,
            gid,
        })
    }

    /// The default for scripts that name no user: `script_user` when set,
    /// else keepalived's `keepalived_script` when it exists, else root.
    pub fn default_for(script_user: Option<&str>) -> Result<Self, ExecError> {
        match script_user {
            Some(spec) => Self::parse(spec),
            None => Ok(Self::parse(DEFAULT_SCRIPT_USER).unwrap_or_else(|_| Self::root())),
        }
    }
}

impl fmt::Display for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {})", self.user, self.uid)
    }
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
    pub program: PathBuf,
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
        check_secure(what, &program, &run_as)?;
        Ok(Self {
            what: what.to_owned(),
            program,
            args: words,
            run_as,
        })
    }

    /// Runs it with `extra` arguments appended; kills its process group
    /// after `timeout`.
    pub async fn run(&self, extra: &[String], timeout: Duration) -> Outcome {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .args(extra)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so a timeout kills what it started too.
            .process_group(0);
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
        match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => Outcome::Success,
            Ok(Ok(status)) => Outcome::Failed(status),
            Ok(Err(err)) => {
                tracing::warn!(what = %self.what, "waiting for it failed: {err}");
                Outcome::SpawnFailed
            }
            Err(_) => {
                if let Some(pid) = child.id() {
                    // SAFETY: kill has no memory preconditions; the group
                    // id is the child's pid (process_group(0)).
                    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
                }
                let _ = child.wait().await;
                Outcome::TimedOut
            }
        }
    }
}

/// Splits a command line into words as keepalived does: on blanks, with
/// single and double quotes grouping. `None` for an unbalanced quote.
pub fn split_words(command: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return None;
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// `name` itself when it has a slash, else the first match on PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.exists().then_some(path);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// keepalived's check_script_secure: the file (after symlinks) and every
/// directory above it must be changeable only by root or the user the
/// script runs as.
fn check_secure(what: &str, program: &Path, run_as: &RunAs) -> Result<(), ExecError> {
    let shown = program.display().to_string();
    let real = program.canonicalize().map_err(|_| ExecError::NotFound {
        what: what.to_owned(),
        path: shown.clone(),
    })?;
    let meta = std::fs::metadata(&real).map_err(|_| ExecError::NotFound {
        what: what.to_owned(),
        path: shown.clone(),
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(ExecError::NotExecutable {
            what: what.to_owned(),
            path: shown,
        });
    }
    let mut entry = Some(real.as_path());
    while let Some(path) = entry {
        let meta = std::fs::metadata(path).map_err(|_| ExecError::NotFound {
            what: what.to_owned(),
            path: path.display().to_string(),
        })?;
        if let Some((problem, fix)) = unsafe_entry(path, &meta, run_as) {
            return Err(ExecError::Unsafe {
                what: what.to_owned(),
                path: path.display().to_string(),
                problem,
                user: run_as.user.clone(),
                fix,
            });
        }
        entry = path.parent();
    }
    Ok(())
}

/// Who besides root and `run_as` could change `path`, and the fix.
fn unsafe_entry(path: &Path, meta: &std::fs::Metadata, run_as: &RunAs) -> Option<(String, String)> {
    let mode = meta.permissions().mode() & 0o7777;
    let shown = path.display();
    // A sticky directory (/tmp) lets others add entries but not replace ours.
    let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
    if mode & 0o002 != 0 && !sticky_dir {
        return Some((
            format!("{shown} is writable by others (mode {mode:04o})"),
            format!("chmod o-w {shown}"),
        ));
    }
    if mode & 0o020 != 0 && meta.gid() != 0 && meta.gid() != run_as.gid && !sticky_dir {
        return Some((
            format!(
                "{shown} is writable by its group {} (mode {mode:04o})",
                meta.gid()
            ),
            format!("chmod g-w {shown}"),
        ));
    }
    if meta.uid() != 0 && meta.uid() != run_as.uid {
        return Some((
            format!("{shown} is owned by uid {}", meta.uid()),
            format!("chown root {shown}"),
        ));
    }
    None
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain data; getpwnam_r writes into it and buf only.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c_name.as_ptr(),
            &raw mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &raw mut result,
        );
        (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
    }
}

pub(crate) fn lookup_group(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: as lookup_user, for getgrnam_r.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut result = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            c_name.as_ptr(),
            &raw mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &raw mut result,
        );
        (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn words_split_like_keepalived() {
        assert_eq!(
            split_words(" /bin/check  'a b' \"c\"d e ").unwrap(),
            ["/bin/check", "a b", "cd", "e"]
        );
        assert_eq!(split_words("").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("x ''").unwrap(), ["x", ""]);
        assert!(split_words("x 'y").is_none());
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbd-exec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn script(dir: &Path, mode: u32) -> PathBuf {
        let path = dir.join("check.sh");
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// The user running the tests, who owns the files they create.
    fn me() -> RunAs {
        RunAs {
            user: "me".into(),
            // SAFETY: getuid/getgid have no preconditions.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
        }
    }

    #[test]
    fn a_world_writable_script_is_refused_naming_file_and_fix() {
        let dir = temp_dir("unsafe");
        let path = script(&dir, 0o777);
        let err = Command::prepare("track script chk", path.to_str().unwrap(), me()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("{} is writable by others", path.display())),
            "{text}"
        );
        assert!(
            text.contains(&format!("fix: chmod o-w {}", path.display())),
            "{text}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Command::prepare("track script chk", path.to_str().unwrap(), me()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("{} is writable by others", dir.display())),
            "{err}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Command::prepare("track script chk", path.to_str().unwrap(), me()).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_programs_and_users_are_named() {
        let err = Command::prepare("notify", "/nonexistent/x.sh arg", RunAs::root()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.sh not found"));
        let err = RunAs::parse("no-such-user-lbd").unwrap_err();
        assert!(
            err.to_string()
                .contains("user `no-such-user-lbd` does not exist")
        );
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let dir = temp_dir("timeout");
        let marker = dir.join("survived");
        let path = dir.join("slow.sh");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n(sleep 1; touch {}) &\nsleep 5\n",
                marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let command = Command::prepare("track script slow", path.to_str().unwrap(), me()).unwrap();
        let started = std::time::Instant::now();
        let outcome = command.run(&[], Duration::from_millis(200)).await;
        assert_eq!(outcome, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(
            !marker.exists(),
            "the script's background child outlived the kill"
        );
        let ok = Command::prepare("t", "/bin/true", RunAs::root()).unwrap();
        assert_eq!(ok.run(&[], Duration::from_secs(5)).await, Outcome::Success);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
