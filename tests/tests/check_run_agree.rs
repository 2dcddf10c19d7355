//! What `lbd check` accepts, `lbd run` starts; what `lbd run` refuses
//! from the configuration, `lbd check` reports, in the same words. The
//! shipped unit runs `ExecStartPre=lbd check`, so a disagreement is a start
//! that passes the check and then fails.
//!
//! Each case is a configuration `lbd run` refuses. Both commands run on it
//! (`lbd run` in an empty namespace of its own, with a private state
//! directory, so a refusal it failed to make could not touch this host);
//! both must fail, every error line `check` prints must be in `run`'s
//! output, and `run` must have claimed nothing (no pid file): it refused
//! before touching anything. A tracked script that does not exist is the
//! one thing `run` starts without (as keepalived does): `check` warns, in
//! the words `run` logs.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use lb_lab::{netns::Netns, privileges::require_root};
use lb_tests::{binaries, daemon::Daemon};

/// One refusal path: a name, the config, the words both must say.
struct Case {
    name: &'static str,
    yaml: String,
    says: &'static str,
}

const VI: &str = "vrrp_instances:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddresses: [10.9.0.100/24]
";

fn vs(extra: &str, rs_extra: &str) -> String {
    format!(
        "virtual_servers:
  - address: 10.9.0.100
    port: 80
{extra}    real_servers:
      - address: 10.9.1.1
{rs_extra}"
    )
}

fn cases(dir: &Path) -> Vec<Case> {
    let unsafe_script = dir.join("unsafe.sh");
    let ok_script = dir.join("ok.sh");
    vec![
        Case {
            name: "unsupported forwarding method",
            yaml: format!(
                "interfaces: [{{ name: eth0 }}]\n{}",
                vs("    method: dr\n", "")
            ),
            says: "not supported yet: virtual_servers[10.9.0.100:80].method",
        },
        Case {
            name: "unsupported persistence",
            yaml: format!(
                "interfaces: [{{ name: eth0 }}]\n{}",
                vs("    persistence_timeout: 300\n", "")
            ),
            says: "not supported yet: virtual_servers[10.9.0.100:80].persistence_timeout",
        },
        Case {
            name: "accept mode off",
            yaml: format!("{VI}    accept: false\n"),
            says: "not supported yet: vrrp_instances[VI_1].accept",
        },
        Case {
            name: "negotiate over ftp",
            yaml: format!(
                "interfaces: [{{ name: eth0 }}]\n{}",
                vs(
                    "",
                    "        checks:\n          - negotiate: { service: ftp, request: /, receive: x }\n"
                )
            ),
            says: "not supported yet",
        },
        Case {
            name: "nothing to run",
            yaml: "interfaces: []\n".to_owned(),
            says: "nothing to run",
        },
        Case {
            name: "xdp with an IPVS-only scheduler",
            yaml: format!(
                "dataplane: xdp\ninterfaces: [{{ name: eth0 }}]\n{}",
                vs("    scheduler: wlc\n", "")
            ),
            says: "scheduler wlc is not implemented by the XDP data plane",
        },
        Case {
            name: "xdp without interfaces",
            yaml: format!("dataplane: xdp\n{}", vs("", "")),
            says: "`dataplane: xdp` needs interfaces to attach to",
        },
        Case {
            name: "a backend of the other family",
            yaml: format!("interfaces: [{{ name: eth0 }}]\n{}", vs("", ""))
                .replace("10.9.1.1", "\"2001:db8::1\""),
            says: "",
        },
        Case {
            name: "negotiate receive is not a regex",
            yaml: format!(
                "interfaces: [{{ name: eth0 }}]\n{}",
                vs(
                    "",
                    "        checks:\n          - negotiate: { service: http, request: /, receive: \"(\" }\n"
                )
            ),
            says: "is not a valid regular expression",
        },
        Case {
            name: "misc_check script missing",
            yaml: format!(
                "interfaces: [{{ name: eth0 }}]\n{}",
                vs(
                    "",
                    "        checks:\n          - misc_check: { misc_path: /nonexistent/lbd-check.sh, user: root }\n"
                )
            ),
            says: "/nonexistent/lbd-check.sh not found",
        },
        Case {
            name: "ssl_get CA file unreadable",
            yaml: format!(
                "interfaces: [{{ name: eth0 }}]\n{}",
                vs(
                    "",
                    "        checks:\n          - ssl_get: { urls: [{ path: / }], tls_ca_file: /nonexistent/ca.pem }\n"
                )
            ),
            says: "tls_ca_file /nonexistent/ca.pem",
        },
        Case {
            name: "IPsec AH",
            yaml: format!("{VI}    authentication: {{ auth_type: ah, auth_pass: secret }}\n"),
            says: "auth_type ah is not supported",
        },
        Case {
            name: "track script others may write",
            yaml: format!(
                "{VI}    track_scripts: [chk]\ntrack_scripts:\n  - name: chk\n    script: {}\n    user: root\n",
                unsafe_script.display()
            ),
            says: "unsafe permissions",
        },
        Case {
            name: "notify script missing",
            yaml: format!("{VI}    notify_master: /nonexistent/notify.sh master\n"),
            says: "/nonexistent/notify.sh not found",
        },
        Case {
            name: "script user missing",
            yaml: format!(
                "global: {{ script_user: lbd-no-such-user }}\n{VI}    notify_master: {} master\n",
                ok_script.display()
            ),
            says: "user `lbd-no-such-user` does not exist",
        },
        Case {
            name: "VRID shared on a link",
            yaml: format!(
                "{VI}  - name: VI_2\n    interface: eth0\n    virtual_router_id: 51\n    virtual_ipaddresses: [10.9.0.101/24]\n"
            ),
            says: "virtual_router_id 51 is already used on interface eth0",
        },
        Case {
            name: "sync group with an unknown member",
            yaml: format!("{VI}sync_groups:\n  - name: G\n    group: [VI_1, VI_9]\n"),
            says: "VI_9",
        },
        Case {
            name: "an instance in two sync groups",
            yaml: format!(
                "{VI}sync_groups:\n  - name: G1\n    group: [VI_1]\n  - name: G2\n    group: [VI_1]\n"
            ),
            says: "VI_1",
        },
    ]
}

/// Runs `command` to its end (at most 10 s): (exit code, stdout + stderr).
fn output(command: &mut Command) -> (Option<i32>, String) {
    let mut child = command
        .env("LBD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lbd starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "lbd did not exit within 10 s (it started?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-agree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Scripts must live where only root may write for the safe one.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ok = dir.join("ok.sh");
    std::fs::write(&ok, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bad = dir.join("unsafe.sh");
    std::fs::write(&bad, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn check_reports_every_refusal_of_run_in_the_same_words() {
    require_root("lbd run in a namespace of its own");
    let dir = scratch();
    let ns = Netns::new("agree").expect("namespace");
    let mut failures = Vec::new();
    for (i, case) in cases(&dir).into_iter().enumerate() {
        let config = dir.join(format!("case{i}.yaml"));
        std::fs::write(&config, &case.yaml).unwrap();
        let (check_code, check_out) = output(
            Command::new(binaries::lbd())
                .arg("check")
                .arg("-c")
                .arg(&config),
        );
        let state = dir.join(format!("state{i}"));
        let (run_code, run_out) = output(
            ns.command(binaries::lbd())
                .arg("run")
                .arg("-c")
                .arg(&config)
                .arg("--state-dir")
                .arg(&state)
                .arg("--socket")
                .arg(dir.join(format!("case{i}.sock"))),
        );
        let errors: Vec<&str> = check_out
            .lines()
            .filter(|l| l.contains(": error: "))
            .collect();
        eprintln!("== {}\n{check_out}", case.name);
        let mut problems = Vec::new();
        if check_code != Some(1) {
            problems.push(format!("check exited {check_code:?}, not 1"));
        }
        if run_code == Some(0) {
            problems.push("run exited 0".to_owned());
        }
        if errors.is_empty() {
            problems.push("check printed no error line".to_owned());
        }
        if !case.says.is_empty() && !errors.iter().any(|l| l.contains(case.says)) {
            problems.push(format!("check does not say `{}`", case.says));
        }
        for line in &errors {
            if !run_out.contains(line) {
                problems.push(format!("run does not say check's `{line}`"));
            }
        }
        if state.join("lbd.pid").exists() {
            problems.push("run claimed its state directory before refusing".to_owned());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n--- check:\n{check_out}--- run:\n{run_out}",
                case.name,
                problems.join("; ")
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "check and run disagree:\n{}",
        failures.join("\n")
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn what_check_accepts_run_gets_past_its_checks() {
    // The converse on the smallest config: check passes, and run stops
    // only at the host (the namespace has no eth0), not at the config.
    require_root("lbd run in a namespace of its own");
    let dir = scratch();
    let ns = Netns::new("agreeok").expect("namespace");
    let config = dir.join("ok.yaml");
    std::fs::write(&config, VI).unwrap();
    let (code, out) = output(
        Command::new(binaries::lbd())
            .arg("check")
            .arg("-c")
            .arg(&config),
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = output(
        ns.command(binaries::lbd())
            .arg("run")
            .arg("-c")
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--socket")
            .arg(dir.join("ok.sock")),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_ne!(code, Some(0), "there is no eth0 here: {out}");
    assert!(
        !out.contains("the configuration cannot run") && !out.contains("invalid configuration"),
        "run refused a config check accepted: {out}"
    );
    assert!(
        out.contains("eth0"),
        "run should fail on the missing eth0: {out}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_missing_track_script_is_a_warning_of_check_and_run_starts_without_it() {
    require_root("lbd run in a namespace of its own");
    let dir = scratch();
    let ns = Netns::new("agreetrk").expect("namespace");
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])
    .unwrap();
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "eth0"])
        .unwrap();
    for link in ["eth0", "eth0p", "lo"] {
        ns.ip(&["link", "set", link, "up"]).unwrap();
    }
    // Weight 0: were the script kept, its missing result would hold VI_1
    // in FAULT forever.
    let config = dir.join("missing-track.yaml");
    std::fs::write(
        &config,
        format!(
            "{VI}    track_scripts: [chk]\ntrack_scripts:\n  - name: chk\n    script: /nonexistent/chk.sh\n    user: root\n"
        ),
    )
    .unwrap();
    let (code, out) = output(
        Command::new(binaries::lbd())
            .arg("check")
            .arg("-c")
            .arg(&config),
    );
    assert_eq!(code, Some(0), "check accepts it, with a warning: {out}");
    let warning = out
        .lines()
        .find_map(|l| l.split_once(": warning: ").map(|(_, m)| m.to_owned()))
        .unwrap_or_else(|| panic!("check printed no warning: {out}"));
    assert!(
        warning.contains("track script chk: /nonexistent/chk.sh not found")
            && warning.contains("disabled")
            && warning.contains("VI_1"),
        "the warning names the script, its path and what runs without it: {warning}"
    );

    let mut lbd = Daemon::start(&ns, &config, &[]).expect("lbd starts");
    lbd.wait_status(
        "VI_1 MASTER without the missing script",
        Duration::from_secs(10),
        |r| {
            r.vrrp_instances
                .iter()
                .any(|i| i.name == "VI_1" && i.state == "MASTER")
        },
    );
    let log = lbd.log();
    assert!(
        log.contains(&warning),
        "run logs check's words `{warning}`; log:\n{log}"
    );
    drop(lbd);
    let _ = std::fs::remove_dir_all(&dir);
}
