//! Thousands of idle clients on the metrics listener and the control
//! socket (a scanner, a stuck scraper, a script looping over `nc`) must not
//! cost lbd its health checks: every client is a file descriptor, and a
//! service starts with a soft limit of 1024. lbd raises its limit and holds
//! at most a few hundred clients per listener, closing the oldest idle one
//! to make room, so an operator's `lbd status` and a real scrape still get
//! in during the flood.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::unix::net::UnixStream,
    path::PathBuf,
    time::{Duration, Instant},
};

use lb_lab::{
    lab::{BALANCER_BACKEND_IF, Lab, VIP, backend_addrs},
    netns::Netns,
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server},
};
use lb_tests::{
    daemon::{Daemon, temp_config, wait_for_xdp},
    http_server::HttpServer,
};

const METRICS: &str = "127.0.0.1:9187";
const IDLE_METRICS_CLIENTS: usize = 4_000;
const IDLE_CONTROL_CLIENTS: usize = 1_000;
/// Health checks every second: the flood lasts several of them.
const FLOOD: Duration = Duration::from_secs(5);

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn five_thousand_idle_clients_cost_no_health_check_status_or_scrape() {
    require_root("the namespace lab");
    raise_own_open_files(IDLE_METRICS_CLIENTS + IDLE_CONTROL_CLIENTS + 1_000);
    let lab = Lab::with_backends(1).expect("lab");
    lab.add_vips().unwrap();
    let identity = StopFlag::default();
    let (backend, _) = backend_addrs(0);
    let ns = &lab.backends[0];
    tcp_identity_server(
        ns,
        format!("{backend}:7000").parse().unwrap(),
        "backend1",
        identity.clone(),
    )
    .unwrap();
    let _page = HttpServer::start(ns, format!("{backend}:8080").parse().unwrap(), "ok").unwrap();
    let yaml = format!(
        "dataplane: xdp\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\nvirtual_servers:\n  - address: {VIP}\n    port: 80\n    real_servers:\n      - address: {backend}\n        port: 7000\n        checks:\n          - http_get: {{ urls: [{{ path: / }}], connect_port: 8080, connect_timeout: 1, retry: 0, delay_loop: 1 }}\n"
    );
    let config = temp_config("listeners", &yaml).unwrap();
    let _remove = RemoveOnDrop(config.clone());
    // The limit a service starts with (systemd's and the kernel's default
    // soft limit), with the hard limit this machine allows.
    let hard = open_files_limit().1;
    let nofile = format!("--nofile=1024:{hard}");
    let mut lbd = Daemon::start_wrapped(
        &lab.balancer,
        &["prlimit", &nofile, "--"],
        &config,
        &["--metrics", METRICS],
    )
    .unwrap();
    wait_for_xdp(&lab.balancer, BALANCER_BACKEND_IF, &mut lbd).unwrap();
    lbd.wait_status("backend1 in the pool", Duration::from_secs(10), in_pool);

    let socket = lbd.socket().to_owned();
    let metrics: SocketAddr = METRICS.parse().unwrap();
    let idle = lab
        .balancer
        .run(move || {
            let tcp: Vec<TcpStream> = (0..IDLE_METRICS_CLIENTS)
                .map(|i| {
                    TcpStream::connect(metrics)
                        .unwrap_or_else(|e| panic!("idle metrics client {i}: {e}"))
                })
                .collect();
            let unix: Vec<UnixStream> = (0..IDLE_CONTROL_CLIENTS)
                .map(|i| {
                    UnixStream::connect(&socket)
                        .unwrap_or_else(|e| panic!("idle control client {i}: {e}"))
                })
                .collect();
            (tcp, unix)
        })
        .unwrap();

    // While they sit there: the operator's status, a scrape, the health
    // checks (every second) and new connections through the VIP all work.
    let until = Instant::now() + FLOOD;
    while Instant::now() < until {
        let report = lbd.status().expect("lbd status answers during the flood");
        assert!(in_pool(&report), "backend1 left the pool: {report:?}");
        let body = scrape(&lab.balancer, metrics);
        assert!(body.contains("lbd_"), "a scrape during the flood: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let answer = lab
        .client
        .run(|| {
            IdentityConnection::open(format!("{VIP}:80").parse().unwrap()).and_then(|mut c| c.ask())
        })
        .unwrap()
        .expect("a new connection through the VIP during the flood");
    assert_eq!(answer, "backend1");
    drop(idle);
    let log = lbd.log();
    // What lbd logs when a check fails (keepalived's wording) or a socket
    // cannot be opened.
    for sign in ["Too many open files", "Disabling service"] {
        assert!(!log.contains(sign), "lbd logged {sign:?}:\n{log}");
    }
    assert!(
        log.contains("closing the oldest idle one"),
        "lbd says it made room:\n{log}"
    );
}

fn in_pool(report: &lb_userspace::daemon::status::StatusReport) -> bool {
    report
        .services
        .iter()
        .flat_map(|s| &s.real_servers)
        .any(|r| r.weight > 0)
}

/// `GET /metrics` from inside `ns`: the body.
fn scrape(ns: &Netns, addr: SocketAddr) -> String {
    ns.run(move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connects");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: lbd\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).expect("an answer");
        text
    })
    .unwrap()
}

fn open_files_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit` only.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) },
        0
    );
    (limit.rlim_cur, limit.rlim_max)
}

/// The test itself holds every idle client.
fn raise_own_open_files(needed: usize) {
    let (_, hard) = open_files_limit();
    assert!(
        hard >= needed as u64,
        "this machine's hard open-files limit {hard} is below the {needed} the test holds"
    );
    let limit = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads `limit` only.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) },
        0
    );
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
