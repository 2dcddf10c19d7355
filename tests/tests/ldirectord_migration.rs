//! An ldirectord setup migrated with `lbd import-ldirectord` and nothing
//! else, run in the namespace lab: the repository's sample
//! `ldirectord-fallback-gate.cf` (NAT, rr, a negotiate check, a sorry page
//! on 127.0.0.1:80, `quiescent=no`, `autoreload=yes`) with the lab's
//! addresses. Each step asserts what a user of the old setup would check:
//! round robin; a real server failing its check and returning (its
//! connections held, then resumed: lbd's default, IPVS's); both failing,
//! and the sorry page on 127.0.0.1 answering; its connections surviving
//! the real servers' return; a reload by editing the file.

use std::{net::SocketAddr, path::Path, process::Command, time::Duration};

use lb_lab::{
    lab::{Lab, VIP},
    long_flows::{FlowReport, LongFlows},
    privileges::require_root,
    traffic::{StopFlag, tcp_identity_server},
};
use lb_tests::{
    binaries,
    health_lab::{HealthLab, flow_plan, ip, name},
    http_server::HttpServer,
};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../lb-userspace/tests/data/samples/keepalived/ldirectord-fallback-gate.cf"
);
const SORRY: &str = "sorry";
const PAGE: &str = "<html><body>Test Page</body></html>";

/// The sample with the lab's addresses. The lab's real servers answer the
/// long-lived flows' line protocol on port 80, so their health page (the
/// negotiate check's `Test Page`) is on 8080.
fn sample_for_the_lab() -> String {
    std::fs::read_to_string(SAMPLE)
        .expect("the ldirectord sample")
        .replace("10.2.0.240", VIP)
        .replace("10.2.1.242", &ip(0))
        .replace("10.2.1.243", &ip(1))
        .replace("checkport=80", "checkport=8080")
}

/// `lbd import-ldirectord` of `cf`, plus what the lab's balancer needs
/// that an ldirectord.cf does not say: the interfaces to attach XDP to.
fn import(cf: &str, dir: &Path) -> String {
    let path = dir.join("ldirectord.cf");
    std::fs::write(&path, cf).unwrap();
    let out = Command::new(binaries::lbd())
        .arg("import-ldirectord")
        .arg(&path)
        .output()
        .expect("lbd import-ldirectord runs");
    assert!(
        out.status.success(),
        "the import succeeds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.contains("address: \"127.0.0.1\""),
        "fallback is the sorry server:\n{yaml}"
    );
    format!("{yaml}dataplane: xdp\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\n")
}

fn assert_kept(step: &str, report: &FlowReport, lab: &HealthLab) {
    eprintln!("{step}: {}", report.summary());
    assert_eq!(
        (report.broken, report.moved),
        (0, 0),
        "{step}: no connection reset or moved: {}\n{}",
        report.summary(),
        lab.lbd.log()
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn the_imported_ldirectord_fallback_setup_balances_fails_over_to_its_sorry_page_and_reloads() {
    require_root("the namespace lab");
    let dir = std::env::temp_dir().join(format!("lbd-ldirectord-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cf = sample_for_the_lab();
    let yaml = import(&cf, &dir);

    let lab = Lab::with_backends(2).expect("lab");
    lab.add_vips().unwrap();
    let identity = StopFlag::default();
    let mut pages = Vec::new();
    for (i, ns) in lab.backends.iter().enumerate() {
        let at: SocketAddr = format!("{}:80", ip(i)).parse().unwrap();
        tcp_identity_server(ns, at, &name(i), identity.clone()).unwrap();
        pages.push(HttpServer::start(ns, HealthLab::page_at(i), PAGE).unwrap());
    }
    // ldirectord's documented fallback: a page on the balancer, 127.0.0.1 only.
    let sorry_at: SocketAddr = "127.0.0.1:80".parse().unwrap();
    tcp_identity_server(&lab.balancer, sorry_at, SORRY, identity.clone()).unwrap();
    let mut lab = HealthLab::start_with(lab, pages, identity, "ldirectord", &yaml)
        .unwrap_or_else(|e| panic!("{e:#}"));
    lab.page_body = PAGE.to_owned();
    lab.wait_in_pool(0, true);
    lab.wait_in_pool(1, true);

    // 1. Round robin over both real servers.
    let seen = lab.new_connections(10);
    for i in 0..2 {
        assert!(
            seen.iter().any(|n| *n == name(i)),
            "rr reaches {}: {seen:?}",
            name(i)
        );
    }
    assert!(
        seen.iter().all(|n| *n == name(0) || *n == name(1)),
        "{seen:?}"
    );

    // 2. backend2 fails its check and returns: new connections avoid it
    // meanwhile, its established ones wait and resume (no reset).
    let flows = LongFlows::start(&lab.lab.client, flow_plan(20)).unwrap();
    lab.fail_check(1);
    let seen = lab.new_connections(6);
    assert!(seen.iter().all(|n| *n == name(0)), "{seen:?}");
    lab.pass_check(1);
    std::thread::sleep(Duration::from_secs(1));
    let report = flows.finish().unwrap();
    assert_kept("backend2 fails and returns", &report, &lab);
    assert!(
        report.stalled_over_1s > 0,
        "backend2's connections were held while it was out: {}",
        report.summary()
    );

    // 3. Both fail: the sorry page on 127.0.0.1 answers, and its
    // connections stay with it when the real servers return.
    lab.fail_check(0);
    lab.fail_check(1);
    let seen = lab.new_connections(6);
    assert!(
        seen.iter().all(|n| n == SORRY),
        "the fallback on 127.0.0.1 answers: {seen:?}\n{}",
        lab.lbd.log()
    );
    let flows = LongFlows::start(&lab.lab.client, flow_plan(10)).unwrap();
    lab.pass_check(0);
    lab.pass_check(1);
    let seen = lab.new_connections(6);
    assert!(
        seen.iter().all(|n| *n == name(0) || *n == name(1)),
        "new connections go to the real servers again: {seen:?}"
    );
    let report = flows.finish().unwrap();
    assert_kept("sorry flows across the real servers' return", &report, &lab);

    // 4. Reload, as an ldirectord user does it: edit the file (drop
    // backend2), import it again; autoreload=yes picks it up. backend2
    // drains: no new connections, its established ones continue.
    let flows = LongFlows::start(&lab.lab.client, flow_plan(10)).unwrap();
    let edited = cf.replace(&format!("        real={}:80 masq\n", ip(1)), "");
    assert_ne!(edited, cf, "the edit removes backend2");
    let new_yaml = import(&edited, &dir);
    let staged = lab.config.with_extension("new");
    std::fs::write(&staged, new_yaml).unwrap();
    std::fs::rename(&staged, &lab.config).unwrap();
    let address: std::net::IpAddr = ip(1).parse().unwrap();
    lab.lbd
        .wait_status("autoreload drains backend2", Duration::from_secs(10), |r| {
            r.reloads_ok >= 1
                && r.services[0]
                    .real_servers
                    .iter()
                    .all(|rs| rs.ip != address || rs.draining)
        });
    let seen = lab.new_connections(6);
    assert!(
        seen.iter().all(|n| *n == name(0)),
        "after the reload only backend1 takes new connections: {seen:?}"
    );
    let report = flows.finish().unwrap();
    assert_kept("reload removing backend2", &report, &lab);
    let _ = std::fs::remove_dir_all(&dir);
}
