//! The IPVS data plane end to end. These need a kernel with IPVS, which the
//! build machine's is not: `cargo xtask test` runs them in the lab VM
//! (Debian's kernel under qemu) with `--ignored`, and fails if the VM
//! cannot boot. The host's runner lists them as ignored, saying why.
//!
//! The same lab as the XDP tests (client, balancer, three backends) with
//! fewer connections (the VM emulates its CPU), IPVS driven through the
//! `Dataplane` trait or by the real `lbd`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use lb_lab::{
    lab::{Lab, VIP, VIP6, backend_addrs},
    netns::Netns,
    traffic::{IdentityConnection, StopFlag},
};
use lb_tests::{
    daemon::{Daemon, temp_config},
    e2e::{
        BACKEND_PORT, PORT, assert_share, lab_with_servers, open_connections, spec, tcp_identities,
        udp_identities,
    },
};
use lb_userspace::{
    dataplane::{Dataplane, DesiredState, L4Protocol, SchedulerKind, ServiceSpec, Timeouts},
    ipvs::{IpvsDataplane, IpvsOptions},
};

struct Setup {
    dp: IpvsDataplane,
    stop: StopFlag,
    lab: Lab,
    run_dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.stop();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn run_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lbd-ipvs-{name}-{}", std::process::id()))
}

fn setup(name: &str) -> Setup {
    let (lab, stop) = lab_with_servers();
    let run_dir = run_dir(name);
    let options = IpvsOptions {
        run_dir: run_dir.clone(),
    };
    // The socket belongs to the namespace it was opened in.
    let dp = lab
        .balancer
        .run(|| IpvsDataplane::open(&options))
        .unwrap()
        .expect("IPVS is available");
    Setup {
        dp,
        stop,
        lab,
        run_dir,
    }
}

/// `ipvsadm -Ln` (plus `extra`) in `ns`.
fn ipvsadm(ns: &Netns, extra: &[&str]) -> String {
    let out = ns
        .command("ipvsadm")
        .arg("-Ln")
        .args(extra)
        .output()
        .expect("ipvsadm runs");
    assert!(out.status.success(), "ipvsadm -Ln failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Setup {
    fn apply(&mut self, services: Vec<ServiceSpec>) {
        self.dp
            .apply(&DesiredState {
                services,
                timeouts: Timeouts::default(),
            })
            .expect("IPVS accepts the services");
    }

    /// `count` connections to `vip`, one request each; how many each
    /// backend answered.
    fn connections(&self, vip: &str, count: usize) -> HashMap<String, usize> {
        tcp_identities(&self.lab.client, vip, count, 2)
    }

    /// `n` connections to `target`, asked once each; they stay open.
    fn open_connections(&self, target: SocketAddr, n: usize) -> Vec<(IdentityConnection, String)> {
        open_connections(&self.lab.client, target, n)
    }
}

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn ipvs_rr_spreads_tcp_connections_equally_over_ipv4_and_ipv6() {
    let mut s = setup("rr");
    s.apply(vec![
        spec(
            false,
            L4Protocol::Tcp,
            SchedulerKind::RoundRobin,
            &[1, 1, 1],
        ),
        spec(true, L4Protocol::Tcp, SchedulerKind::RoundRobin, &[1, 1, 1]),
    ]);
    for vip in [VIP, VIP6] {
        let seen = s.connections(vip, 300);
        assert_share(&seen, 300, &[1.0 / 3.0; 3], 0.05);
    }
}

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn ipvs_wrr_3_2_1_spreads_tcp_connections_by_weight() {
    let mut s = setup("wrr");
    s.apply(vec![spec(
        false,
        L4Protocol::Tcp,
        SchedulerKind::WeightedRoundRobin,
        &[3, 2, 1],
    )]);
    let seen = s.connections(VIP, 300);
    assert_share(&seen, 300, &[0.5, 1.0 / 3.0, 1.0 / 6.0], 0.05);
    // What `lbd status` shows: per-backend scheduled connections.
    let status = s.dp.status().unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].scheduler, SchedulerKind::WeightedRoundRobin);
    // Each connection IPVS scheduled is still in its table: InActConn once
    // closed (TIME_WAIT), ActiveConn if its last FIN is still on its way.
    // The traffic counters follow IPVS's 2-second estimator, so they are
    // not exact here.
    let tracked: Vec<u64> = status[0]
        .backends
        .iter()
        .map(|b| b.active_connections + b.inactive_connections)
        .collect();
    assert_eq!(tracked, [150, 100, 50], "{status:?}");
    let weights: Vec<u32> = status[0].backends.iter().map(|b| b.weight).collect();
    assert_eq!(weights, [3, 2, 1]);
}

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn ipvs_weight_zero_mid_run_takes_no_new_connections_and_keeps_open_ones() {
    for v6 in [false, true] {
        let mut s = setup(if v6 { "w0-6" } else { "w0-4" });
        let vip = if v6 { VIP6 } else { VIP };
        s.apply(vec![spec(
            v6,
            L4Protocol::Tcp,
            SchedulerKind::RoundRobin,
            &[1, 1, 1],
        )]);
        let target = SocketAddr::new(vip.parse().unwrap(), PORT);
        let mut open = s.open_connections(target, 12);
        assert!(open.iter().any(|(_, n)| n == "backend1"));
        // Open connections are IPVS's ActiveConn.
        let status = s.dp.status().unwrap();
        let active: u64 = status[0]
            .backends
            .iter()
            .map(|b| b.active_connections)
            .sum();
        assert_eq!(active, 12, "12 open connections are ActiveConn: {status:?}");

        // A failed health check with inhibit_on_failure: weight 0.
        s.apply(vec![spec(
            v6,
            L4Protocol::Tcp,
            SchedulerKind::RoundRobin,
            &[0, 1, 1],
        )]);
        let listing = ipvsadm(&s.lab.balancer, &[]);
        let first = backend_addrs(0);
        let first = if v6 {
            format!("[{}]", first.1)
        } else {
            first.0
        };
        assert!(
            listing
                .lines()
                .any(|l| l.contains(&format!("{first}:{BACKEND_PORT}"))
                    && l.contains("Masq")
                    && l.split_whitespace().nth(3) == Some("0")),
            "ipvsadm shows backend1 at weight 0:\n{listing}"
        );
        let seen = s.connections(vip, 90);
        assert_eq!(
            seen.get("backend1"),
            None,
            "no new connection on weight 0: {seen:?}"
        );
        assert_eq!(seen.values().sum::<usize>(), 90);
        s.lab
            .client
            .run(|| {
                for (conn, name) in &mut open {
                    assert_eq!(&conn.ask().expect("open connection still works"), name);
                }
            })
            .unwrap();

        // A failed check without inhibit_on_failure: the real server goes.
        let mut without = spec(v6, L4Protocol::Tcp, SchedulerKind::RoundRobin, &[1, 1, 1]);
        without.backends.remove(0);
        s.apply(vec![without]);
        let listing = ipvsadm(&s.lab.balancer, &[]);
        assert!(
            !listing.contains(&format!("{first}:{BACKEND_PORT}")),
            "backend1 is no longer a real server:\n{listing}"
        );
        let seen = s.connections(vip, 30);
        assert_eq!(seen.get("backend1"), None, "{seen:?}");
    }
}

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn ipvs_udp_requests_get_answers_from_every_backend() {
    let mut s = setup("udp");
    s.apply(vec![
        spec(
            false,
            L4Protocol::Udp,
            SchedulerKind::RoundRobin,
            &[1, 1, 1],
        ),
        spec(true, L4Protocol::Udp, SchedulerKind::RoundRobin, &[1, 1, 1]),
    ]);
    for vip in [VIP, VIP6] {
        let target = SocketAddr::new(vip.parse().unwrap(), PORT);
        let seen = udp_identities(&s.lab.client, target, 90, Duration::from_secs(3));
        assert_share(&seen, 90, &[1.0 / 3.0; 3], 0.05);
    }
}

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn ipvs_schedulers_and_timeouts_are_programmed_as_configured() {
    let mut s = setup("sched");
    let mut services = Vec::new();
    for (i, kind) in SchedulerKind::ALL.into_iter().enumerate() {
        let mut sp = spec(false, L4Protocol::Tcp, kind, &[1, 1, 1]);
        sp.port = 1000 + i as u16;
        services.push(sp);
    }
    s.dp.apply(&DesiredState {
        services,
        timeouts: Timeouts {
            tcp: Duration::from_mins(10),
            tcp_fin: Duration::from_mins(1),
            udp: Duration::from_secs(30),
        },
    })
    .expect("every scheduler is accepted");
    let listing = ipvsadm(&s.lab.balancer, &[]);
    for (i, kind) in SchedulerKind::ALL.into_iter().enumerate() {
        let line = format!("TCP  {VIP}:{} {}", 1000 + i, kind.name());
        assert!(listing.contains(&line), "{line:?} in:\n{listing}");
    }
    let timeouts = ipvsadm(&s.lab.balancer, &["--timeout"]);
    assert!(
        timeouts.contains("Timeout (tcp tcpfin udp): 600 60 30"),
        "{timeouts}"
    );
    // Connections counted for lc/wlc: a connection through the lc service.
    let seen = s.connections_to(1003, 4);
    assert_eq!(seen, 4);
}

impl Setup {
    fn connections_to(&self, port: u16, n: usize) -> usize {
        let target = SocketAddr::new(VIP.parse().unwrap(), port);
        self.lab
            .client
            .run(|| {
                (0..n)
                    .filter(|_| IdentityConnection::open(target).is_ok_and(|mut c| c.ask().is_ok()))
                    .count()
            })
            .unwrap()
    }
}

// --- The real daemon: ownership, crash cleanup, `dataplane: auto` ---

const LBD_CONFIG: &str = "dataplane: ipvs\nvirtual_servers:\n  - address: 10.111.1.100\n    port: 80\n    scheduler: rr\n    real_servers:\n      - { address: 10.111.2.2, port: 8080 }\n      - { address: 10.111.2.3, port: 8080 }\n";

fn wait_for(what: &str, daemon: &Daemon, mut done: impl FnMut() -> bool) {
    // Generous: loading the XDP program runs the verifier on an emulated CPU.
    let deadline = Instant::now() + Duration::from_mins(3);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; lbd's log:\n{}", daemon.log());
}

fn hand_made_service(ns: &Netns) {
    let out = ns
        .command("ipvsadm")
        .args(["-A", "-t", "10.111.1.100:443", "-s", "wlc"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = ns
        .command("ipvsadm")
        .args([
            "-a",
            "-t",
            "10.111.1.100:443",
            "-r",
            "10.111.2.4:8443",
            "-m",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn lbd_cleans_up_only_its_own_ipvs_services_after_a_crash_and_on_stop() {
    let (lab, _stop) = lab_with_servers();
    hand_made_service(&lab.balancer);
    let state = run_dir("crash");
    let state_arg = state.to_string_lossy().into_owned();
    let config = temp_config("ipvs-crash", LBD_CONFIG).unwrap();
    let ours = "TCP  10.111.1.100:80 rr";
    let theirs = "TCP  10.111.1.100:443 wlc";

    let mut lbd = Daemon::start(&lab.balancer, &config, &["--state-dir", &state_arg]).unwrap();
    wait_for("lbd's IPVS service", &lbd, || {
        ipvsadm(&lab.balancer, &[]).contains(ours)
    });
    // kill -9: nothing cleaned up, the service stays behind.
    lbd.signal_and_wait(libc::SIGKILL, Duration::from_secs(10))
        .unwrap();
    let listing = ipvsadm(&lab.balancer, &[]);
    assert!(
        listing.contains(ours) && listing.contains(theirs),
        "{listing}"
    );

    // Left behind, and changed by hand meanwhile: the restart removes it
    // (so it is rebuilt from the configuration) and not the other one.
    let out = lab
        .balancer
        .command("ipvsadm")
        .args(["-a", "-t", "10.111.1.100:80", "-r", "10.111.2.4:8080", "-m"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut lbd = Daemon::start(&lab.balancer, &config, &["--state-dir", &state_arg]).unwrap();
    wait_for("the crash's leftover removed", &lbd, || {
        lbd.log()
            .contains("removed an IPVS service an earlier lbd left behind")
    });
    wait_for("lbd's service rebuilt", &lbd, || {
        let l = ipvsadm(&lab.balancer, &[]);
        l.contains(ours) && !l.contains("10.111.2.4:8080")
    });
    let listing = ipvsadm(&lab.balancer, &[]);
    assert!(
        listing.contains(theirs) && listing.contains("10.111.2.4:8443"),
        "the hand-made service is untouched:\n{listing}"
    );

    // A clean stop removes ours only.
    let status = lbd
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
        .unwrap();
    assert!(status.success(), "lbd stops cleanly; log:\n{}", lbd.log());
    let listing = ipvsadm(&lab.balancer, &[]);
    assert!(
        !listing.contains(ours),
        "stop removes lbd's service:\n{listing}"
    );
    assert!(listing.contains(theirs), "and leaves the other:\n{listing}");
    let _ = std::fs::remove_dir_all(&state);
}

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn lbd_refuses_to_take_over_a_hand_made_service_with_the_same_address() {
    let (lab, _stop) = lab_with_servers();
    let out = lab
        .balancer
        .command("ipvsadm")
        .args(["-A", "-t", "10.111.1.100:80", "-s", "sh"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let state = run_dir("foreign");
    let config = temp_config("ipvs-foreign", LBD_CONFIG).unwrap();
    let mut lbd = Daemon::start(
        &lab.balancer,
        &config,
        &["--state-dir", &state.to_string_lossy()],
    )
    .unwrap();
    let status = lbd.wait(Duration::from_secs(30)).unwrap();
    let log = lbd.log();
    assert!(!status.success(), "lbd must refuse; log:\n{log}");
    assert!(
        log.contains("IPVS service TCP 10.111.1.100:80 exists but was not created by lbd"),
        "the error says whose it is; log:\n{log}"
    );
    let listing = ipvsadm(&lab.balancer, &[]);
    assert!(
        listing.contains("TCP  10.111.1.100:80 sh"),
        "unchanged:\n{listing}"
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// `dataplane: auto` with an interface to attach to.
const AUTO_CONFIG: &str = "interfaces:\n  - name: lb-client\n  - name: lb-backend\nvirtual_servers:\n  - address: 10.111.1.100\n    port: 80\n    scheduler: rr\n    real_servers:\n      - { address: 10.111.2.2, port: 8080 }\n";

#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn dataplane_auto_picks_xdp_when_it_can_and_ipvs_when_bpf_is_not_permitted() {
    let (lab, _stop) = lab_with_servers();
    let state = run_dir("auto");
    let state_arg = state.to_string_lossy().into_owned();
    let config = temp_config("ipvs-auto", AUTO_CONFIG).unwrap();
    let target = SocketAddr::new(VIP.parse().unwrap(), PORT);
    let ask = |lab: &Lab| {
        lab.client
            .run(move || {
                IdentityConnection::open(target)
                    .and_then(|mut c| c.ask())
                    .ok()
            })
            .unwrap()
    };

    // XDP can run: XDP it is, and IPVS is not touched.
    let mut lbd = Daemon::start(&lab.balancer, &config, &["--state-dir", &state_arg]).unwrap();
    wait_for("XDP chosen", &lbd, || lbd.log().contains("lbd running"));
    let log = lbd.log();
    assert!(
        log.contains("data plane chosen") && log.contains("dataplane=\"XDP\""),
        "auto picks XDP; log:\n{log}"
    );
    assert_eq!(
        ask(&lab).as_deref(),
        Some("backend1"),
        "XDP forwards; log:\n{log}"
    );
    assert!(!ipvsadm(&lab.balancer, &[]).contains("10.111.1.100:80"));
    lbd.signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
        .unwrap();

    // Without CAP_BPF and CAP_SYS_ADMIN the program cannot load: IPVS,
    // and the log says why.
    let mut lbd = Daemon::start_wrapped(
        &lab.balancer,
        &[
            "setpriv",
            "--bounding-set",
            "-bpf,-sys_admin,-perfmon",
            "--",
        ],
        &config,
        &["--state-dir", &state_arg],
    )
    .unwrap();
    wait_for("IPVS chosen", &lbd, || lbd.log().contains("lbd running"));
    let log = lbd.log();
    assert!(
        log.contains("IPVS instead of XDP") && log.contains("XDP cannot run"),
        "auto falls back to IPVS and says why; log:\n{log}"
    );
    assert!(ipvsadm(&lab.balancer, &[]).contains("TCP  10.111.1.100:80 rr"));
    assert_eq!(
        ask(&lab).as_deref(),
        Some("backend1"),
        "IPVS forwards; log:\n{log}"
    );
    let status = lbd
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
        .unwrap();
    assert!(status.success(), "log:\n{}", lbd.log());
    assert!(!ipvsadm(&lab.balancer, &[]).contains("10.111.1.100:80"));
    let _ = std::fs::remove_dir_all(&state);
}

/// Connections open on backend1 when it leaves, per `removed_server_flows`
/// under IPVS: `drop` is `expire_nodest_conn=0` (its connections get no
/// answer, and resume when it is added back), `reset` is 1 (their next
/// packet is not IPVS's any more: the balancer resets them), `keep` leaves
/// it at weight 0 (they go on).
#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn ipvs_removed_server_flows_map_to_expire_nodest_conn_and_weight_0() {
    use lb_userspace::config::RemovedServerFlows;
    for policy in [
        RemovedServerFlows::Drop,
        RemovedServerFlows::Reset,
        RemovedServerFlows::Keep,
    ] {
        let mut s = setup(&format!("rsf-{}", policy.name()));
        let mut all = spec(
            false,
            L4Protocol::Tcp,
            SchedulerKind::RoundRobin,
            &[1, 1, 1],
        );
        all.removed_server_flows = policy;
        s.apply(vec![all.clone()]);
        let target = SocketAddr::new(VIP.parse().unwrap(), PORT);
        let mut open = s.open_connections(target, 6);
        let mut without = all.clone();
        without.backends.remove(0);
        s.apply(vec![without]);
        let sysctl = s
            .lab
            .balancer
            .run(|| std::fs::read_to_string("/proc/sys/net/ipv4/vs/expire_nodest_conn"))
            .unwrap()
            .unwrap();
        let outcomes: Vec<(String, Result<String, String>)> = s
            .lab
            .client
            .run(|| {
                open.iter_mut()
                    .map(|(c, n)| (n.clone(), c.ask().map_err(|e| format!("{e:#}"))))
                    .collect()
            })
            .unwrap();
        let label = policy.name();
        for (name, got) in &outcomes {
            if name != "backend1" {
                assert_eq!(got.as_deref(), Ok(name.as_str()), "{label}: others go on");
                continue;
            }
            match policy {
                RemovedServerFlows::Drop => {
                    assert_eq!(sysctl.trim(), "0", "{label}");
                    let err = got.as_ref().expect_err("no answer while it is out");
                    assert!(!err.contains("reset"), "{label}: held, not reset: {err}");
                }
                RemovedServerFlows::Reset => {
                    assert_eq!(sysctl.trim(), "1", "{label}");
                    assert!(got.is_err(), "{label}: the connection ends: {got:?}");
                }
                RemovedServerFlows::Keep => {
                    assert_eq!(got.as_deref(), Ok("backend1"), "{label}: goes on");
                    let listing = ipvsadm(&s.lab.balancer, &[]);
                    assert!(
                        listing.lines().any(|l| l
                            .contains(&format!("{}:{BACKEND_PORT}", backend_addrs(0).0))
                            && l.split_whitespace().nth(3) == Some("0")),
                        "{label}: backend1 stays at weight 0:\n{listing}"
                    );
                }
            }
        }
        if policy == RemovedServerFlows::Drop {
            // Back: IPVS takes the destination out of its trash, with its
            // connections (the unanswered question is retransmitted).
            s.apply(vec![all]);
            let answers: Vec<String> = s
                .lab
                .client
                .run(|| {
                    open.iter_mut()
                        .filter(|(_, n)| n == "backend1")
                        .map(|(c, _)| (0..3).find_map(|_| c.ask().ok()).unwrap_or_default())
                        .collect()
                })
                .unwrap();
            assert!(
                !answers.is_empty() && answers.iter().all(|a| a == "backend1"),
                "drop: backend1's connections resume when it returns: {answers:?}"
            );
        }
    }
}

/// A sorry server IPVS added while no real server took connections stays
/// at weight 0 when they return, so the connections it serves go on.
#[test]
#[ignore = "needs a kernel with IPVS: `cargo xtask test` runs it in the lab VM"]
fn ipvs_a_sorry_server_keeps_its_connections_when_the_real_servers_return() {
    let mut s = setup("sorry");
    let with_weights = |w: &[u32]| {
        let mut sp = spec(false, L4Protocol::Tcp, SchedulerKind::RoundRobin, w);
        sp.sorry = Some(lb_userspace::dataplane::BackendSpec {
            addr: backend_addrs(2).0.parse().unwrap(),
            port: BACKEND_PORT,
            weight: 1,
        });
        sp
    };
    s.apply(vec![with_weights(&[0, 0])]);
    let target = SocketAddr::new(VIP.parse().unwrap(), PORT);
    let mut open = s.open_connections(target, 4);
    assert!(
        open.iter().all(|(_, n)| n == "backend3"),
        "the sorry server answers"
    );
    s.apply(vec![with_weights(&[1, 1])]);
    let seen = s.connections(VIP, 20);
    assert_eq!(
        seen.get("backend3"),
        None,
        "new connections avoid it: {seen:?}"
    );
    s.lab
        .client
        .run(|| {
            for (conn, name) in &mut open {
                assert_eq!(&conn.ask().expect("the sorry connection goes on"), name);
            }
        })
        .unwrap();
}
