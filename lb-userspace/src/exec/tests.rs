//! Splitting, the permission rule, timeouts and dropped runs.

use std::{os::unix::fs::PermissionsExt as _, path::Path};

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

#[test]
fn an_interpreted_script_is_checked_like_a_program() {
    let dir = temp_dir("interpreted");
    let path = script(&dir, 0o666);
    let command = format!("/bin/sh {}", path.display());
    let err = Command::prepare("track script chk", &command, me()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{} is writable by others", path.display())),
        "{err}"
    );
    // Not executable is fine for a file an interpreter reads.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(Command::prepare("track script chk", &command, me()).is_ok());
    // An operand that is no file (inline code) has nothing to check.
    assert!(Command::prepare("t", "/bin/sh -c 'exit 0'", me()).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn what_runs_is_the_checked_file_not_a_swapped_symlink() {
    let dir = temp_dir("symlink");
    let good = script(&dir, 0o755);
    let evil = dir.join("evil.sh");
    let marker = dir.join("evil-ran");
    std::fs::write(&evil, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = dir.join("chk");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let command = Command::prepare("t", link.to_str().unwrap(), me()).unwrap();
    // Swapped after the check (keepalived checks at load, too).
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&evil, &link).unwrap();
    assert_eq!(
        command.run(&[], Duration::from_secs(5)).await,
        Outcome::Success
    );
    assert!(!marker.exists(), "the swapped-in file ran");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_script_sees_only_a_fixed_path() {
    let dir = temp_dir("env");
    let out = dir.join("env.txt");
    let path = dir.join("env.sh");
    std::fs::write(&path, format!("#!/bin/sh\nenv > {}\n", out.display())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: set before the command starts; no other test reads it.
    unsafe { std::env::set_var("LBD_TEST_SECRET", "leaked") };
    let command = Command::prepare("t", path.to_str().unwrap(), me()).unwrap();
    assert_eq!(
        command.run(&[], Duration::from_secs(5)).await,
        Outcome::Success
    );
    let env = std::fs::read_to_string(&out).unwrap();
    assert!(!env.contains("LBD_TEST_SECRET"), "{env}");
    let expected = std::env::var(SCRIPT_PATH_VAR).unwrap_or_else(|_| SCRIPT_PATH.to_owned());
    assert!(env.contains(&format!("PATH={expected}\n")), "{env}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_dropped_run_kills_the_whole_group() {
    let dir = temp_dir("dropped");
    let started = dir.join("started");
    let marker = dir.join("survived");
    let path = dir.join("slow.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n(sleep 1; touch {}) &\ntouch {}\nsleep 5\n",
            marker.display(),
            started.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let command = Command::prepare("track script slow", path.to_str().unwrap(), me()).unwrap();
    // The owner (a check dropped by a reload) goes away while it runs.
    let run = tokio::spawn(async move { command.run(&[], Duration::from_mins(1)).await });
    while !started.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort();
    let _ = run.await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        !marker.exists(),
        "the script's background child outlived its dropped owner"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
