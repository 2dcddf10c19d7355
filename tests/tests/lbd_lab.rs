//! `lbd run` for real, in a lab of network namespaces: it attaches to the
//! configured interfaces, counts the traffic that crosses them, lets it pass,
//! and however it stops leaves the XDP program attached with its maps
//! pinned (for the next start to adopt) until `lbd cleanup` removes them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use lb_lab::{
    lab::{BACKEND_IP, BACKEND_IP6, BALANCER_BACKEND_IF, BALANCER_CLIENT_IF, Lab},
    privileges::require_root,
    traffic::{StopFlag, Tally, udp_client, udp_echo_server},
};
use lb_tests::daemon::{Daemon, cleanup, has_xdp, temp_config, wait_for_xdp};

const LAB_CONFIG: &str = "
dataplane: xdp
interfaces:
  - name: lb-client
  - name: lb-backend
";

/// Runs `count`-ish UDP requests from the client to `target` and returns
/// the tally.
fn udp_requests(lab: &Lab, target: SocketAddr, run_for: Duration) -> Arc<Tally> {
    let stop = StopFlag::default();
    let server = udp_echo_server(lab.backend(), target, stop.clone()).expect("echo server starts");
    let tally = Arc::new(Tally::default());
    let client = udp_client(
        &lab.client,
        target,
        Duration::from_millis(10),
        tally.clone(),
        stop.clone(),
    )
    .expect("client starts");
    std::thread::sleep(run_for);
    stop.stop();
    client.join().unwrap().expect("client ran");
    server.join().unwrap().expect("server ran");
    tally
}

/// After lbd stopped, however: the program is still attached to
/// `interfaces` and pinned, until `lbd cleanup` detaches it and removes
/// the pins.
fn assert_left_attached_until_cleanup(
    lab: &Lab,
    lbd: &Daemon,
    config: &std::path::Path,
    interfaces: &[&str],
) {
    let log = lbd.log();
    for interface in interfaces {
        assert!(
            has_xdp(&lab.balancer, interface).unwrap(),
            "lbd stopped and detached from {interface}: a restart would lose its flows; log:\n{log}"
        );
    }
    assert!(
        lbd.pin_dir().join("CONNTRACK").exists(),
        "the conntrack map is not pinned in {}",
        lbd.pin_dir().display()
    );
    let out = cleanup(&lab.balancer, config).unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lbd cleanup failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("removed the pinned XDP program"),
        "lbd cleanup says what it removed: {said}"
    );
    for interface in interfaces {
        assert!(
            !has_xdp(&lab.balancer, interface).unwrap(),
            "XDP left on {interface} after lbd cleanup"
        );
    }
    assert!(
        !lbd.pin_dir().exists(),
        "lbd cleanup left {}",
        lbd.pin_dir().display()
    );
}

/// The last "XDP counters:" line's value for `name`.
fn logged_counter(log: &str, name: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("XDP counters:"))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_counts_traffic_it_passes_and_stays_attached_after_sigterm_until_cleanup() {
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    let config = temp_config("count", LAB_CONFIG).unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &config, &["--stats-interval", "1"]).unwrap();
    wait_for_xdp(&lab.balancer, BALANCER_CLIENT_IF, &mut lbd).unwrap();
    assert!(
        has_xdp(&lab.balancer, BALANCER_BACKEND_IF).unwrap(),
        "XDP on the backend side too"
    );

    let v4 = udp_requests(
        &lab,
        format!("{BACKEND_IP}:7000").parse().unwrap(),
        Duration::from_secs(1),
    );
    let v6 = udp_requests(
        &lab,
        format!("[{BACKEND_IP6}]:7000").parse().unwrap(),
        Duration::from_secs(1),
    );
    assert!(
        v4.sent() > 20 && v6.sent() > 20,
        "the clients sent requests"
    );
    assert_eq!(
        v4.answered(),
        v4.sent(),
        "every IPv4 request crossed the balancer and back"
    );
    assert_eq!(
        v6.answered(),
        v6.sent(),
        "every IPv6 request crossed the balancer and back"
    );

    // Let the daemon log one more counter line covering all the traffic.
    std::thread::sleep(Duration::from_millis(1500));
    let status = lbd
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .unwrap();
    let log = lbd.log();
    assert!(
        status.success(),
        "lbd exits 0 on SIGTERM, got {status}; log:\n{log}"
    );
    // Each request enters on lb-client and its answer on lb-backend.
    let udp = logged_counter(&log, "udp").unwrap_or(0);
    let expected = 2 * (v4.answered() + v6.answered());
    assert!(
        udp >= expected,
        "XDP counted {udp} UDP datagrams, expected at least {expected}; log:\n{log}"
    );
    assert!(
        logged_counter(&log, "ipv4").unwrap_or(0) >= 2 * v4.answered(),
        "log:\n{log}"
    );
    assert!(
        logged_counter(&log, "ipv6").unwrap_or(0) >= 2 * v6.answered(),
        "log:\n{log}"
    );
    assert!(
        log.contains("XDP program left attached") && log.contains("`lbd cleanup` removes them"),
        "the log says the program stays and how to remove it; log:\n{log}"
    );
    assert_left_attached_until_cleanup(
        &lab,
        &lbd,
        &config,
        &[BALANCER_CLIENT_IF, BALANCER_BACKEND_IF],
    );
    let _ = std::fs::remove_file(config);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_stops_on_sigint_and_stays_attached_until_cleanup() {
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    let config = temp_config("sigint", LAB_CONFIG).unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &config, &[]).unwrap();
    wait_for_xdp(&lab.balancer, BALANCER_CLIENT_IF, &mut lbd).unwrap();
    let status = lbd
        .signal_and_wait(libc::SIGINT, Duration::from_secs(5))
        .unwrap();
    assert!(
        status.success(),
        "lbd exits 0 on SIGINT (Ctrl-C), got {status}"
    );
    assert_left_attached_until_cleanup(&lab, &lbd, &config, &[BALANCER_CLIENT_IF]);
    let _ = std::fs::remove_file(config);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_killed_lbd_leaves_its_pinned_program_until_cleanup() {
    // The program's link is pinned on bpffs, so it outlives the process
    // however it dies (the next start adopts it); `lbd cleanup`, which
    // systemd runs after any stop, removes it.
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    let config = temp_config("sigkill", LAB_CONFIG).unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &config, &[]).unwrap();
    wait_for_xdp(&lab.balancer, BALANCER_CLIENT_IF, &mut lbd).unwrap();
    let _ = lbd
        .signal_and_wait(libc::SIGKILL, Duration::from_secs(5))
        .unwrap();
    assert_left_attached_until_cleanup(
        &lab,
        &lbd,
        &config,
        &[BALANCER_CLIENT_IF, BALANCER_BACKEND_IF],
    );
    let _ = std::fs::remove_file(config);
}

/// Starts lbd on `yaml` in the lab's balancer, expects it to exit non-zero
/// with nothing left attached, and returns what it logged.
fn start_expecting_failure(lab: &Lab, name: &str, yaml: &str, attached_if: &str) -> String {
    let config = temp_config(name, yaml).unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &config, &[]).unwrap();
    let status = lbd.wait(Duration::from_secs(10)).unwrap();
    let log = lbd.log();
    let _ = std::fs::remove_file(config);
    assert!(!status.success(), "lbd must fail on {name}; log:\n{log}");
    assert!(
        !has_xdp(&lab.balancer, attached_if).unwrap(),
        "a failed start leaves no XDP program on {attached_if}; log:\n{log}"
    );
    assert!(
        !lbd.pin_dir().exists(),
        "a failed first start leaves no pins in {}; log:\n{log}",
        lbd.pin_dir().display()
    );
    log
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_names_the_interface_it_cannot_attach_to() {
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    // lb-client attaches first; the failure on the second must undo it.
    let yaml = "interfaces:\n  - name: lb-client\n  - name: nosuchif0\n";
    let log = start_expecting_failure(&lab, "missing-if", yaml, BALANCER_CLIENT_IF);
    assert!(
        log.contains("nosuchif0"),
        "the error names the interface; log:\n{log}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_refuses_options_it_does_not_implement_yet() {
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    // Locality-based least-connection: neither data plane does it.
    let yaml = "interfaces:\n  - name: lb-client\nvirtual_servers:\n  - address: 10.111.1.100\n    port: 80\n    scheduler: lblc\n    real_servers: [{ address: 10.111.2.2 }]\n";
    let log = start_expecting_failure(&lab, "unsupported", yaml, BALANCER_CLIENT_IF);
    assert!(
        log.contains("not supported yet"),
        "the error says so; log:\n{log}"
    );
    assert!(
        log.contains("virtual_servers[10.111.1.100:80].scheduler"),
        "and names the option; log:\n{log}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_refuses_ipvs_only_schedulers_under_dataplane_xdp_and_says_what_to_use() {
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    // Least-connection needs connection counts the XDP program does not keep.
    let yaml = "dataplane: xdp\ninterfaces:\n  - name: lb-client\nvirtual_servers:\n  - address: 10.111.1.100\n    port: 80\n    scheduler: wlc\n    real_servers: [{ address: 10.111.2.2 }]\n";
    let log = start_expecting_failure(&lab, "xdp-wlc", yaml, BALANCER_CLIENT_IF);
    assert!(
        log.contains("scheduler wlc is not implemented by the XDP data plane")
            && log.contains("rr, wrr and mh")
            && log.contains("dataplane: ipvs"),
        "the error names the alternatives; log:\n{log}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_with_dataplane_ipvs_says_when_the_kernel_has_no_ipvs() {
    require_root("the namespace lab");
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        // This test is about a kernel without IPVS (the build machine's);
        // the VM tests cover a kernel with it.
        eprintln!("this kernel has IPVS: nothing to refuse");
        return;
    }
    let lab = Lab::new().expect("lab");
    let yaml = "dataplane: ipvs\nvirtual_servers:\n  - address: 10.111.1.100\n    port: 80\n    real_servers: [{ address: 10.111.2.2 }]\n";
    let log = start_expecting_failure(&lab, "no-ipvs", yaml, BALANCER_CLIENT_IF);
    assert!(
        log.contains("this kernel has no IPVS (CONFIG_IP_VS)"),
        "the error says IPVS is missing; log:\n{log}"
    );
}

/// `ip -details link show` output for `interface` in the balancer.
fn link_details(lab: &Lab, interface: &str) -> String {
    let out = lab
        .balancer
        .command("ip")
        .args(["-details", "link", "show", "dev", interface])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_falls_back_to_generic_mode_with_a_warning() {
    // A bridge device has no native XDP support.
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    lab.balancer
        .ip(&["link", "add", "lbbridge0", "type", "bridge"])
        .unwrap();
    lab.balancer
        .ip(&["link", "set", "lbbridge0", "up"])
        .unwrap();
    let config = temp_config(
        "generic",
        "interfaces:\n  - name: lb-client\n  - name: lbbridge0\n",
    )
    .unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &config, &[]).unwrap();
    wait_for_xdp(&lab.balancer, "lbbridge0", &mut lbd).unwrap();
    assert!(
        link_details(&lab, "lbbridge0").contains("xdpgeneric"),
        "the bridge runs the program in generic mode:\n{}",
        link_details(&lab, "lbbridge0")
    );
    // Auto mode puts a veth in generic mode too, saying why: native mode
    // on a veth breaks behind peers with default offloads
    // (dataplane_offloads_e2e).
    assert!(
        link_details(&lab, BALANCER_CLIENT_IF).contains("xdpgeneric"),
        "the veth runs the program in generic mode:\n{}",
        link_details(&lab, BALANCER_CLIENT_IF)
    );
    let status = lbd
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .unwrap();
    let log = lbd.log();
    assert!(status.success(), "log:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("generic mode") && l.contains("lbbridge0")),
        "the fallback is logged as a warning naming the interface; log:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("veth")
            && l.contains("offload")
            && l.contains(BALANCER_CLIENT_IF)),
        "the veth's generic mode is logged with its reason; log:\n{log}"
    );
    assert_left_attached_until_cleanup(&lab, &lbd, &config, &["lbbridge0", BALANCER_CLIENT_IF]);
    let _ = std::fs::remove_file(config);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_fails_clearly_when_native_mode_is_required_but_unavailable() {
    require_root("the namespace lab");
    let lab = Lab::new().expect("lab");
    lab.balancer
        .ip(&["link", "add", "lbbridge0", "type", "bridge"])
        .unwrap();
    lab.balancer
        .ip(&["link", "set", "lbbridge0", "up"])
        .unwrap();
    let yaml = "interfaces:\n  - name: lbbridge0\n    xdp_mode: native\n";
    let log = start_expecting_failure(&lab, "native", yaml, "lbbridge0");
    assert!(
        log.contains("lbbridge0") && log.contains("native"),
        "the error names the interface and the mode; log:\n{log}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn lbd_balances_a_configured_virtual_server() {
    use lb_lab::{
        lab::{VIP, backend_addrs},
        traffic::{IdentityConnection, tcp_identity_server},
    };
    require_root("the namespace lab");
    let lab = Lab::with_backends(2).expect("lab");
    lab.add_vips().unwrap();
    let stop = StopFlag::default();
    for (i, ns) in lab.backends.iter().enumerate() {
        let at: SocketAddr = format!("{}:8080", backend_addrs(i).0).parse().unwrap();
        tcp_identity_server(ns, at, &format!("backend{}", i + 1), stop.clone()).unwrap();
    }
    let yaml = format!(
        "dataplane: xdp\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\nvirtual_servers:\n  - address: {VIP}\n    port: 80\n    scheduler: rr\n    real_servers:\n      - address: {}\n        port: 8080\n      - address: {}\n        port: 8080\n",
        backend_addrs(0).0,
        backend_addrs(1).0
    );
    let config = temp_config("vs", &yaml).unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &config, &["--stats-interval", "1"]).unwrap();
    wait_for_xdp(&lab.balancer, BALANCER_BACKEND_IF, &mut lbd).unwrap();
    let target: SocketAddr = format!("{VIP}:80").parse().unwrap();
    let seen = lab
        .client
        .run(move || {
            let mut seen = std::collections::HashMap::<String, usize>::new();
            for _ in 0..200 {
                let mut c = IdentityConnection::open(target).expect("connects through lbd");
                *seen.entry(c.ask().expect("answer")).or_default() += 1;
            }
            seen
        })
        .unwrap();
    stop.stop();
    std::thread::sleep(Duration::from_millis(1500));
    let status = lbd
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(5))
        .unwrap();
    let log = lbd.log();
    assert!(status.success(), "log:\n{log}");
    // Each CPU keeps its own rr position, so the halves can differ by one
    // per CPU.
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    for backend in ["backend1", "backend2"] {
        let got = seen.get(backend).copied().unwrap_or(0);
        assert!(
            got.abs_diff(100) <= cpus,
            "rr halves 200 connections (within one per CPU): {seen:?}"
        );
    }
    assert_eq!(
        seen.values().sum::<usize>(),
        200,
        "every connection answered: {seen:?}"
    );
    assert!(log.contains("virtual service installed"), "log:\n{log}");
    assert!(
        log.contains("conns=200"),
        "the service counted 200 connections; log:\n{log}"
    );
    let _ = std::fs::remove_file(config);
}
