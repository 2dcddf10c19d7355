//! The demo `cargo xtask run --scenario` plays, shortened, asserting what
//! its view shows: while a backend is down the client never sees an error
//! (refused connections are retried, see `lb_lab::demo::client`), the
//! backend serves again when it is back, the BACKUP takes over when the
//! MASTER stops and the client's outage across that is reported, the
//! restarted balancer comes back as BACKUP, and nothing is left behind.

use std::{sync::atomic::AtomicBool, time::Duration};

use lb_lab::{
    demo::{self, Action, Options, Scenario},
    privileges::require_root,
};
use lb_tests::binaries;

/// Nothing interrupts the scripted run.
static NEVER: AtomicBool = AtomicBool::new(false);

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn the_demo_scenario_serves_the_client_through_backend_and_balancer_failures() {
    require_root("the demo scenario");
    let config = std::env::temp_dir().join(format!("lbd-demo-test-{}.yaml", std::process::id()));
    std::fs::write(&config, demo::DEFAULT_CONFIG).expect("the config is written");
    let report = demo::run(&Options {
        lbd: binaries::lbd(),
        config: config.clone(),
        duration: None,
        scenario: Some(Scenario::short()),
        live: false,
        interrupted: &NEVER,
        request_interval: Duration::from_millis(20),
    });
    let _ = std::fs::remove_file(&config);
    let report = report.expect("the demo runs");
    println!("{report}");

    assert!(report.leftovers.is_empty(), "{report}");
    assert!(report.unexpected_exits.is_empty(), "{report}");
    for backend in ["backend-1", "backend-2", "backend-3"] {
        assert!(
            report.answers.get(backend).copied().unwrap_or(0) > 0,
            "{backend} never answered\n{report}"
        );
    }

    let down = report
        .phase(Action::StopBackend(1))
        .expect("backend-2 stopped");
    assert_eq!(down.errors, 0, "errors while backend-2 was down\n{report}");
    assert!(down.answered > 0, "{report}");
    // At most the request it had accepted when it stopped.
    assert!(
        down.answers.get("backend-2").copied().unwrap_or(0) <= 1,
        "{report}"
    );
    let back = report
        .phase(Action::StartBackend(1))
        .expect("backend-2 started");
    assert_eq!(back.errors, 0, "{report}");
    assert!(
        back.answers.get("backend-2").copied().unwrap_or(0) > 0,
        "{report}"
    );

    // The MASTER stops cleanly: the BACKUP takes over, and stays MASTER
    // when the other comes back (equal priorities, no preemption).
    assert_eq!(report.masters, ["balancer-a", "balancer-b"], "{report}");
    let failover = report
        .phase(Action::StopMaster)
        .expect("the MASTER stopped");
    assert!(
        failover.answered > 0,
        "nothing answered after the failover\n{report}"
    );
    let takeover = report.failover.as_ref().expect("the failover is reported");
    assert!(takeover.taken_over_at.is_some(), "{report}");
    if let Some(outage) = takeover.outage {
        assert!(outage < Duration::from_secs(3), "{report}");
    }
    assert!(
        report.to_string().contains("the client's outage"),
        "{report}"
    );
    let after = report
        .phase(Action::StartBalancers)
        .expect("the balancer restarted");
    assert_eq!(after.errors, 0, "{report}");
    assert!(after.answered > 0, "{report}");
}
