//! What established connections meet when their real server leaves its
//! service (a failed health check; the server itself keeps answering),
//! per `removed_server_flows`, through the XDP data plane: long-lived
//! connections spread by rr over two backends while backend2's health
//! page fails and comes back.

use lb_lab::{
    long_flows::{FlowReport, LongFlows},
    privileges::require_root,
};
use lb_tests::health_lab::{HealthLab, checked_real_server, flow_plan, name};

const CONNECTIONS: usize = 20;

/// Two checked backends under `policy` (`None`: the key left out).
fn lab(tag: &str, policy: Option<&str>) -> HealthLab {
    require_root("the namespace lab");
    let policy = policy.map_or(String::new(), |p| {
        format!("    removed_server_flows: {p}\n")
    });
    let body = format!(
        "virtual_servers:\n  - address: {}\n    port: 80\n    scheduler: rr\n{policy}    real_servers:\n{}{}",
        lb_lab::lab::VIP,
        checked_real_server(0),
        checked_real_server(1)
    );
    HealthLab::start(tag, 2, &body).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs the long-lived connections while backend2 fails its check and,
/// when `returns`, passes it again; returns what they went through and
/// how many of them backend2 served.
fn through_removal(lab: &mut HealthLab, returns: bool) -> (FlowReport, usize) {
    let flows = LongFlows::start(&lab.lab.client, flow_plan(CONNECTIONS)).expect("flows open");
    let on_backend2 = lab.lbd.status().unwrap().services[0]
        .real_servers
        .iter()
        .find(|rs| rs.ip.to_string() == lb_tests::health_lab::ip(1))
        .map_or(0, |rs| rs.active_connections);
    lab.fail_check(1);
    // Long enough for every connection to ask a few times while out.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let fresh = lab.new_connections(6);
    assert!(
        fresh.iter().all(|n| *n == name(0)),
        "new connections go to backend1 only while backend2 is out: {fresh:?}"
    );
    if returns {
        lab.pass_check(1);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let report = flows.finish().expect("flows report");
    eprintln!("{}", report.summary());
    (
        report,
        usize::try_from(on_backend2).expect("a connection count"),
    )
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn by_default_a_removed_servers_connections_are_held_and_resume_when_it_returns() {
    let mut lab = lab("rsf-drop", None);
    let (report, on_backend2) = through_removal(&mut lab, true);
    assert!(on_backend2 > 0, "rr gave backend2 some of the connections");
    assert_eq!(
        (report.broken, report.moved),
        (0, 0),
        "no connection is reset or moved: they wait for backend2 ({})\n{}",
        report.summary(),
        lab.lbd.log()
    );
    assert_eq!(
        report.stalled_over_1s,
        on_backend2,
        "exactly backend2's connections waited while it was out: {}",
        report.summary()
    );
    assert!(
        lab.counter("held_flow") > 0,
        "their packets were dropped and counted"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn with_reset_a_removed_servers_connections_are_reset_at_their_next_packet() {
    let mut lab = lab("rsf-reset", Some("reset"));
    let (report, on_backend2) = through_removal(&mut lab, false);
    assert!(on_backend2 > 0, "rr gave backend2 some of the connections");
    assert_eq!(
        report.broken,
        on_backend2,
        "backend2's connections, and only they, are reset: {}\n{}",
        report.summary(),
        lab.lbd.log()
    );
    assert_eq!(report.moved, 0, "{}", report.summary());
    assert_eq!(lab.counter("held_flow"), 0);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn with_keep_a_removed_servers_connections_go_on_while_it_answers() {
    let mut lab = lab("rsf-keep", Some("keep"));
    let (report, on_backend2) = through_removal(&mut lab, false);
    assert!(on_backend2 > 0, "rr gave backend2 some of the connections");
    assert_eq!(
        (report.broken, report.moved, report.stalled_over_1s),
        (0, 0, 0),
        "every connection goes on, backend2's too: {}\n{}",
        report.summary(),
        lab.lbd.log()
    );
}
