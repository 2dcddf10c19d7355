//! Golden tests of config loading: each `tests/data/config/{good,bad}/X.yaml`
//! has a sibling `X.expected` with the exact diagnostics `lbd check` prints
//! (good files: their warnings, usually none). `LBD_BLESS=1` rewrites the
//! expectations; review every change to them by hand.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use lb_userspace::config::{self, ConfigError, Diagnostic, load_file, load_str, to_yaml};
use pretty_assertions::assert_eq;

/// The YAML files of one directory, sorted, as paths relative to the crate
/// (cargo runs tests there), so diagnostics name them the same everywhere.
fn cases(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(Path::new("tests/data/config").join(dir))
        .expect("test data directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {dir}");
    files
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

/// Compares with the `.expected` file, or rewrites it under `LBD_BLESS=1`.
fn check_expected(case: &Path, actual: &str) {
    let expected_path = case.with_extension("expected");
    if std::env::var_os("LBD_BLESS").is_some() {
        fs::write(&expected_path, actual).expect("write .expected");
        return;
    }
    let expected = fs::read_to_string(&expected_path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with LBD_BLESS=1 and review it",
            expected_path.display()
        )
    });
    assert_eq!(
        expected,
        actual,
        "diagnostics of {} changed",
        case.display()
    );
}

#[test]
fn good_files_load_with_exactly_the_expected_warnings() {
    for case in cases("good") {
        let loaded = load_file(&case)
            .unwrap_or_else(|e| panic!("{} should load, but:\n{e}", case.display()));
        check_expected(&case, &render(&loaded.warnings));
    }
}

#[test]
fn bad_files_fail_with_exactly_the_expected_diagnostics() {
    for case in cases("bad") {
        match load_file(&case) {
            Ok(_) => panic!("{} should not load", case.display()),
            Err(ConfigError::Invalid { diagnostics }) => {
                check_expected(&case, &render(&diagnostics));
            }
            Err(e) => panic!("{}: {e}", case.display()),
        }
    }
}

/// Good files and the examples: YAML -> model -> YAML -> model gives the
/// same model, and writing it again gives the same YAML.
#[test]
fn yaml_round_trip_is_stable() {
    let mut files = cases("good");
    files.extend(examples());
    for case in files {
        let loaded = load_file(&case).expect("loads");
        let yaml = to_yaml(&loaded.config);
        let again = load_str(&yaml, "round-trip").unwrap_or_else(|e| {
            panic!("to_yaml of {} does not load:\n{e}\n{yaml}", case.display())
        });
        assert_eq!(
            loaded.config,
            again.config,
            "round trip of {} changed the model",
            case.display()
        );
        assert_eq!(
            yaml,
            to_yaml(&again.config),
            "to_yaml of {} is not stable",
            case.display()
        );
    }
}

fn examples() -> [PathBuf; 2] {
    ["../examples/lbd.yaml", "../examples/minimal.yaml"].map(PathBuf::from)
}

#[test]
fn examples_load_without_errors_or_warnings() {
    for example in examples() {
        let loaded = load_file(&example)
            .unwrap_or_else(|e| panic!("{} should load, but:\n{e}", example.display()));
        assert_eq!(
            render(&loaded.warnings),
            "",
            "warnings in {}",
            example.display()
        );
    }
}

#[test]
fn the_annotated_example_uses_every_section() {
    let config = load_file(Path::new("../examples/lbd.yaml"))
        .expect("loads")
        .config;
    assert!(config.global.router_id.is_some());
    assert!(!config.interfaces.is_empty());
    assert!(!config.vrrp_instances.is_empty());
    assert!(!config.sync_groups.is_empty());
    assert!(!config.track_scripts.is_empty());
    assert!(!config.virtual_servers.is_empty());
    let checks: Vec<_> = config
        .virtual_servers
        .iter()
        .flat_map(|vs| &vs.real_servers)
        .flat_map(|rs| &rs.checks)
        .map(std::mem::discriminant)
        .collect();
    for kind in [
        config::Check::TcpCheck(config::TcpCheck::default()),
        config::Check::MiscCheck(config::MiscCheck {
            misc_path: String::new(),
            misc_timeout: None,
            misc_dynamic: false,
            user: None,
            retry: 1,
            delay_before_retry: std::time::Duration::ZERO,
            delay_loop: None,
        }),
    ] {
        assert!(
            checks.contains(&std::mem::discriminant(&kind)),
            "example lacks {kind:?}"
        );
    }
}

#[test]
fn unsupported_keys_are_listed_with_their_lines() {
    let loaded = load_file(Path::new("../examples/minimal.yaml")).expect("loads");
    let listed: Vec<String> = loaded
        .unsupported()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        listed.is_empty(),
        "the minimal example (health checks included) runs as is: {listed:?}"
    );
    // Health checks are supported, except negotiate dialogues other than
    // HTTP(S) and simpletcp.
    let ftp = load_str(
        "virtual_servers:\n  - address: 10.0.0.1\n    port: 21\n    real_servers:\n      - address: 10.0.0.2\n        checks:\n          - tcp_check\n          - negotiate: { service: ftp }\n",
        "x.yaml",
    )
    .expect("loads");
    let listed: Vec<String> = ftp.unsupported().iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        [
            "x.yaml:8:35: error: not supported yet: virtual_servers[10.0.0.1:21].real_servers[0].checks[1].negotiate.service"
        ]
    );
    // VRRP is supported, except accept mode off (no packet filtering).
    let no_accept = load_str(
        "vrrp_instances:\n  - name: VI_1\n    interface: eth0\n    virtual_router_id: 51\n    accept: false\n",
        "x.yaml",
    )
    .expect("loads");
    let listed: Vec<String> = no_accept
        .unsupported()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        listed,
        ["x.yaml:5:13: error: not supported yet: vrrp_instances[VI_1].accept"]
    );
    let interfaces_only =
        load_str("interfaces: [{ name: eth0 }]\ndataplane: xdp\n", "x.yaml").expect("loads");
    assert!(interfaces_only.config.unsupported().is_empty());
    // What the XDP data plane does: NAT by rr / wrr / mh, timeouts, sorry server.
    let forwarding = load_str(
        "global: { conntrack: { tcp: 600 } }\nvirtual_servers:\n  - address: 10.0.0.1\n    port: 80\n    scheduler: mh\n    sorry_server: { address: 10.0.1.9 }\n    real_servers: [{ address: 10.0.1.1, weight: 2 }]\n",
        "x.yaml",
    )
    .expect("loads");
    assert!(
        forwarding.config.unsupported().is_empty(),
        "{:?}",
        forwarding.config.unsupported()
    );
    // IPVS adds sh, lc and wlc; `dataplane: ipvs` is supported.
    let ipvs = load_str(
        "dataplane: ipvs\nvirtual_servers:\n  - address: 10.0.0.1\n    port: 80\n    scheduler: wlc\n    real_servers: [{ address: 10.0.1.1 }]\n",
        "x.yaml",
    )
    .expect("loads");
    assert!(
        ipvs.config.unsupported().is_empty(),
        "{:?}",
        ipvs.config.unsupported()
    );
    let lblc = load_str(
        "virtual_servers:\n  - address: 10.0.0.1\n    port: 80\n    scheduler: lblc\n    method: dr\n",
        "x.yaml",
    )
    .expect("loads");
    let listed: Vec<String> = lblc.unsupported().iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        [
            "x.yaml:4:16: error: not supported yet: virtual_servers[10.0.0.1:80].scheduler",
            "x.yaml:5:13: error: not supported yet: virtual_servers[10.0.0.1:80].method",
        ]
    );
}

fn lbd_check(file: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(["check", "-c", file])
        .output()
        .expect("run lbd");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lbd_check_exits_0_on_a_good_file_and_summarises() {
    let (code, stdout, stderr) = lbd_check("../examples/minimal.yaml");
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(
        stdout,
        "config OK: 1 vrrp instance, 1 virtual server, 2 real servers\n"
    );
    assert_eq!(stderr, "");
}

#[test]
fn lbd_check_passes_warnings_and_prints_them() {
    let file = "tests/data/config/good/warnings-only.yaml";
    let (code, stdout, stderr) = lbd_check(file);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout,
        "config OK: 1 vrrp instance, 1 virtual server, 2 real servers\n"
    );
    let expected =
        fs::read_to_string("tests/data/config/good/warnings-only.expected").expect("expected file");
    assert_eq!(stderr, expected);
}

#[test]
fn lbd_check_lists_every_problem_and_exits_1() {
    let file = "tests/data/config/bad/many-errors.yaml";
    let (code, stdout, stderr) = lbd_check(file);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    let expected =
        fs::read_to_string("tests/data/config/bad/many-errors.expected").expect("expected file");
    let Some((listed, summary)) = stderr.trim_end().rsplit_once('\n') else {
        panic!("no summary line in {stderr:?}");
    };
    assert_eq!(format!("{listed}\n"), expected);
    let errors = expected.lines().filter(|l| l.contains(": error: ")).count();
    let warnings = expected
        .lines()
        .filter(|l| l.contains(": warning: "))
        .count();
    assert_eq!(summary, format!("{errors} errors, {warnings} warnings"));
}

#[test]
fn lbd_check_fails_on_a_missing_file() {
    let (code, _, stderr) = lbd_check("tests/data/config/no-such-file.yaml");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot read tests/data/config/no-such-file.yaml"),
        "{stderr}"
    );
}
