//! Restarting lbd keeps established flows: the XDP program's maps and
//! links are pinned, so the next `lbd run` adopts the conntrack table,
//! swaps its program into the links without detaching, and keeps every
//! real server that stays on the id its flows point to, with the same
//! configuration or a changed one. wrr, so only the conntrack table keeps
//! a flow on its backend (mh would pick the same one again anyway).

use std::{net::SocketAddr, path::Path, time::Duration};

use lb_lab::{
    lab::{BALANCER_BACKEND_IF, BALANCER_CLIENT_IF, Lab, VIP, backend_addrs},
    long_flows::{FlowPlan, FlowReport, LongFlows},
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server, udp_identity_server},
};
use lb_tests::daemon::{Daemon, has_xdp, temp_config};

const CONNECTIONS: usize = 300;
const INTERVAL: Duration = Duration::from_millis(50);
const BACKEND_PORT: u16 = 8080;
const WAIT: Duration = Duration::from_secs(20);

/// A TCP and a UDP service on VIP:80, wrr over backends `0..weights.len()`.
fn config(weights: &[u32]) -> String {
    let reals: Vec<(usize, u32)> = weights.iter().copied().enumerate().collect();
    config_of(&reals)
}

/// A TCP and a UDP service on VIP:80, wrr over `(backend index, weight)`.
fn config_of(reals_at: &[(usize, u32)]) -> String {
    use std::fmt::Write as _;
    let mut reals = String::new();
    for (i, w) in reals_at {
        let i = *i;
        let addr = backend_addrs(i).0;
        let _ = writeln!(
            reals,
            "      - {{ address: {addr}, port: {BACKEND_PORT}, weight: {w} }}"
        );
    }
    let mut yaml = format!(
        "dataplane: xdp\ninterfaces:\n  - name: {BALANCER_CLIENT_IF}\n  - name: {BALANCER_BACKEND_IF}\nvirtual_servers:\n"
    );
    for protocol in ["tcp", "udp"] {
        let _ = write!(
            yaml,
            "  - address: {VIP}\n    port: 80\n    protocol: {protocol}\n    scheduler: wrr\n    real_servers:\n{reals}"
        );
    }
    yaml
}

/// The lab with TCP and UDP identity servers on `backends` backends.
fn lab(backends: usize) -> (Lab, StopFlag) {
    require_root("the namespace lab");
    let lab = Lab::with_backends(backends).expect("lab");
    lab.add_vips().expect("VIPs on the balancer");
    let stop = StopFlag::default();
    for (i, ns) in lab.backends.iter().enumerate() {
        let at = SocketAddr::new(backend_addrs(i).0.parse().unwrap(), BACKEND_PORT);
        let name = format!("backend{}", i + 1);
        tcp_identity_server(ns, at, &name, stop.clone()).expect("TCP server");
        udp_identity_server(ns, at, &name, stop.clone()).expect("UDP server");
    }
    (lab, stop)
}

/// Starts lbd on `config` and waits until both services are installed with
/// `weights` (in status order: configured real servers, then draining
/// ones).
fn start(lab: &Lab, config: &Path, weights: &[u32]) -> Daemon {
    let mut lbd = Daemon::start(&lab.balancer, config, &[]).unwrap();
    lbd.wait_status("both services installed", WAIT, |r| {
        r.services.len() == 2
            && r.services.iter().all(|s| {
                s.real_servers
                    .iter()
                    .map(|rs| rs.weight)
                    .collect::<Vec<_>>()
                    == weights
            })
    });
    lbd
}

/// Restarts lbd (SIGTERM, then `lbd run` again on `config`), returning the
/// new daemon.
fn restart(lab: &Lab, lbd: Daemon, config: &Path, weights: &[u32]) -> Daemon {
    let log = lbd.log();
    let status = lbd.stop_for_restart(libc::SIGTERM).unwrap();
    assert!(status.success(), "lbd exits 0 on SIGTERM; log:\n{log}");
    for interface in [BALANCER_CLIENT_IF, BALANCER_BACKEND_IF] {
        assert!(
            has_xdp(&lab.balancer, interface).unwrap(),
            "XDP detached from {interface} between the two lbd"
        );
    }
    let lbd = start(lab, config, weights);
    let log = lbd.log();
    assert!(
        log.contains("adopted the XDP state an earlier lbd pinned"),
        "the restarted lbd did not adopt the pinned state; log:\n{log}"
    );
    assert!(
        log.contains("XDP program swapped into the pinned link"),
        "the restarted lbd attached anew instead of swapping; log:\n{log}"
    );
    lbd
}

/// Prints each connection's longest wait for an answer, summed up.
fn print_stalls(what: &str, report: &FlowReport) {
    let mut stalls = report.stalls.clone();
    stalls.sort();
    let at = |p: usize| stalls.get((stalls.len().max(1) - 1) * p / 100).copied();
    eprintln!(
        "{what}: longest stall per TCP connection (asking every {INTERVAL:?}): p50 {:?}, p99 {:?}, max {:?}; {}",
        at(50).unwrap_or_default(),
        at(99).unwrap_or_default(),
        at(100).unwrap_or_default(),
        report.summary()
    );
}

/// No connection was reset or moved to another backend, and the UDP
/// stream stayed on its backend and kept being answered.
fn assert_kept(report: &FlowReport, log: &str) {
    assert_eq!(report.connections, CONNECTIONS);
    assert_eq!(
        (report.broken, report.moved),
        (0, 0),
        "every connection survives the restarts on its backend: {}\nlog:\n{log}",
        report.summary()
    );
    assert!(
        !report.udp_moved,
        "the UDP stream moved to another backend: {}",
        report.summary()
    );
    assert!(
        report.udp_answered * 10 >= report.udp_sent * 9,
        "the UDP stream keeps being answered: {}",
        report.summary()
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn restarts_keep_every_flow_on_its_backend_with_the_same_or_a_changed_config() {
    let (lab, servers) = lab(4);
    let first = [1, 1, 1];
    let config_path = temp_config("restart", &config(&first)).unwrap();
    let lbd = start(&lab, &config_path, &first);
    let target: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let plan = FlowPlan {
        tcp: target,
        connections: CONNECTIONS,
        interval: INTERVAL,
        udp: Some(target),
    };
    let flows = LongFlows::start(&lab.client, plan).unwrap();
    std::thread::sleep(Duration::from_secs(1));

    // The same configuration.
    let lbd = restart(&lab, lbd, &config_path, &first);
    std::thread::sleep(Duration::from_millis(1500));

    // A real server added, the weights changed.
    let second = [2, 1, 3, 1];
    std::fs::write(&config_path, config(&second)).unwrap();
    let lbd = restart(&lab, lbd, &config_path, &second);
    std::thread::sleep(Duration::from_millis(1500));

    // backend1 removed: it drains (weight 0, its connections go on), as
    // after a reload, instead of losing its connections.
    let third = [(1, 1), (2, 3), (3, 1)];
    std::fs::write(&config_path, config_of(&third)).unwrap();
    let lbd = restart(&lab, lbd, &config_path, &[1, 3, 1, 0]);
    let report = lbd.status().unwrap();
    let removed: std::net::IpAddr = backend_addrs(0).0.parse().unwrap();
    assert!(
        report.services.iter().all(|s| s
            .real_servers
            .iter()
            .any(|r| r.ip == removed && r.draining && r.weight == 0)),
        "the removed real server does not drain: {:?}",
        report.services
    );
    std::thread::sleep(Duration::from_millis(1500));

    let report = flows.finish().unwrap();
    print_stalls(
        "three restarts (same config; a real added and weights changed; a real removed)",
        &report,
    );
    assert_kept(&report, &lbd.log());

    // New connections see the new configuration.
    let seen = lab
        .client
        .run(move || {
            (0..40)
                .map(|_| IdentityConnection::open(target).and_then(|mut c| c.ask()))
                .collect::<anyhow::Result<Vec<String>>>()
        })
        .unwrap()
        .expect("new connections are answered after the restarts");
    assert!(
        seen.iter().any(|b| b == "backend3"),
        "wrr with weight 3 of 7 sent none of 40 new connections to backend3: {seen:?}"
    );
    drop(lbd);
    servers.stop();
    let _ = std::fs::remove_file(config_path);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_build_with_another_map_layout_starts_clean_and_says_so() {
    let (lab, servers) = lab(2);
    let weights = [1, 1];
    let config_path = temp_config("layout", &config(&weights)).unwrap();
    let lbd = start(&lab, &config_path, &weights);
    let pin_dir = lbd.pin_dir().to_owned();
    let record = std::fs::read_link(pin_dir.join("layout"))
        .expect("the layout is recorded beside the pins")
        .to_string_lossy()
        .into_owned();
    let conntrack_id = || {
        aya::maps::MapInfo::from_pin(pin_dir.join("CONNTRACK"))
            .expect("CONNTRACK is pinned")
            .id()
    };
    let before = conntrack_id();
    let log = lbd.log();
    assert!(
        lbd.stop_for_restart(libc::SIGTERM).unwrap().success(),
        "{log}"
    );

    // What an older build with a smaller conntrack value would have left.
    let (version, rest) = record.split_once(';').unwrap();
    let older = format!(
        "v{};{}",
        version[1..].parse::<u32>().unwrap() + 1,
        rest.replace("CONNTRACK:9:40:72:", "CONNTRACK:9:40:64:")
    );
    assert_ne!(older, record);
    std::fs::remove_file(pin_dir.join("layout")).unwrap();
    std::os::unix::fs::symlink(&older, pin_dir.join("layout")).unwrap();

    let lbd = start(&lab, &config_path, &weights);
    let log = lbd.log();
    assert!(
        log.contains("another layout than this build's")
            && log.contains("starting clean")
            && log.contains("CONNTRACK: value bytes 64 -> 72"),
        "the start does not say it drops the pinned maps and why; log:\n{log}"
    );
    assert!(
        !log.contains("adopted the XDP state"),
        "maps of another layout were adopted; log:\n{log}"
    );
    assert_ne!(conntrack_id(), before, "the old conntrack map was kept");
    assert_eq!(
        std::fs::read_link(pin_dir.join("layout"))
            .unwrap()
            .to_string_lossy(),
        record,
        "the new layout is recorded"
    );
    let target: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let answer = lab
        .client
        .run(move || IdentityConnection::open(target).and_then(|mut c| c.ask()))
        .unwrap()
        .expect("the clean start serves new connections");
    assert!(answer.starts_with("backend"), "{answer}");
    drop(lbd);
    servers.stop();
    let _ = std::fs::remove_file(config_path);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_pin_dir_off_bpffs_is_refused_saying_how_to_mount_one() {
    let (lab, servers) = lab(1);
    let config_path = temp_config("no-bpffs", &config(&[1])).unwrap();
    let dir = std::env::temp_dir().join(format!("lbd-not-bpffs-{}", std::process::id()));
    let pin_dir = dir.join("pins");
    let mut lbd = Daemon::start(
        &lab.balancer,
        &config_path,
        &["--pin-dir", pin_dir.to_str().unwrap()],
    )
    .unwrap();
    let status = lbd.wait(WAIT).unwrap();
    let log = lbd.log();
    assert!(!status.success(), "lbd ran without pinning; log:\n{log}");
    assert!(
        log.contains("is not on a BPF filesystem (bpffs)") && log.contains("mount -t bpf bpf"),
        "the error does not say what is wrong and how to fix it; log:\n{log}"
    );
    assert!(
        !has_xdp(&lab.balancer, BALANCER_CLIENT_IF).unwrap(),
        "a refused start attached XDP"
    );
    drop(lbd);
    servers.stop();
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(config_path);
}
