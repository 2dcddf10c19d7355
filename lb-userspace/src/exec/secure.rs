//! Finding a command's program and keepalived's "unsafe permissions" rule
//! (`enable_script_security`), always applied.

use std::{
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use super::{ExecError, RunAs};

/// The PATH scripts get (and programs named without a slash are found
/// on): fixed, so a daemon started from an operator's shell and one started
/// by systemd run the same programs.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Replaces [`SCRIPT_PATH`] when set in the daemon's environment (a unit's
/// `Environment=`, or a lab whose stand-in programs live elsewhere).
pub const SCRIPT_PATH_VAR: &str = "LBD_SCRIPT_PATH";

/// Interpreters whose first operand is the code that runs: that file is
/// checked like a program (`/bin/sh /etc/lbd/chk.sh`).
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "python", "perl", "ruby", "php",
    "node", "lua", "tclsh", "awk", "gawk", "mawk",
];

/// The PATH given to scripts.
pub(super) fn script_path() -> std::ffi::OsString {
    std::env::var_os(SCRIPT_PATH_VAR).unwrap_or_else(|| SCRIPT_PATH.into())
}

/// `name` itself when it has a slash, else the first match on the scripts'
/// PATH.
pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.exists().then_some(path);
    }
    std::env::split_paths(&script_path())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The index of the script an interpreter runs: its first operand, when
/// `program` (resolved) is an interpreter and that operand is a file.
pub(super) fn interpreted_script(program: &Path, args: &[String]) -> Option<usize> {
    let name = program.file_name()?.to_str()?;
    // python3.11, perl5.36, lua5.4: the family is the name without its version.
    let family = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !INTERPRETERS.contains(&family) {
        return None;
    }
    let operand = args.iter().position(|a| !a.starts_with('-'))?;
    Path::new(&args[operand]).is_file().then_some(operand)
}

/// keepalived's check_script_secure: the file (after symlinks) and every
/// directory above it must be changeable only by root or the user the
/// script runs as. Returns the resolved path: that is what runs, so a
/// symlink swapped after the check cannot point elsewhere.
pub(super) fn check_secure(
    what: &str,
    program: &Path,
    run_as: &RunAs,
    executable: bool,
) -> Result<PathBuf, ExecError> {
    let shown = program.display().to_string();
    let real = program.canonicalize().map_err(|_| ExecError::NotFound {
        what: what.to_owned(),
        path: shown.clone(),
    })?;
    let meta = std::fs::metadata(&real).map_err(|_| ExecError::NotFound {
        what: what.to_owned(),
        path: shown.clone(),
    })?;
    if !meta.is_file() || (executable && meta.permissions().mode() & 0o111 == 0) {
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
    Ok(real)
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
