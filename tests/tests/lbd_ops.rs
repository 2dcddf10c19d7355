//! Operating a running `lbd`: `lbd status` (table and JSON), live reload
//! (under 3,000 open connections; refused files change nothing; drains;
//! autoreload; SIGHUP), the Prometheus endpoint, and systemd readiness, all
//! against real daemons in the namespace lab.

use std::{
    collections::HashMap,
    fmt::Write as _,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lb_lab::{
    lab::{BALANCER_CLIENT_IF, Lab, VIP, backend_addrs},
    netns::Netns,
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server},
};
use lb_tests::daemon::{Daemon, temp_config};
use lb_userspace::daemon::status::StatusReport;

const BACKEND_PORT: u16 = 8080;
/// A second port every backend serves on: services that share a backend
/// use different backend ports, as NAT without source translation needs
/// (a client may reuse a source port towards two VIP ports; on one
/// backend socket the two flows would be one connection, with IPVS too).
const OTHER_PORT: u16 = 8081;
const METRICS: &str = "127.0.0.1:9100";
const WAIT: Duration = Duration::from_secs(15);
/// `global` lines: closed flows leave conntrack soon, so drains end by
/// their flows ending.
const FIN_1S: &str = "  conntrack:\n    tcp_fin: 1\n";

/// The lab with `n` backends, each running a TCP identity server.
fn lab(n: usize) -> (Lab, StopFlag) {
    require_root("the namespace lab");
    let lab = Lab::with_backends(n).expect("lab");
    let stop = StopFlag::default();
    for (i, ns) in lab.backends.iter().enumerate() {
        for port in [BACKEND_PORT, OTHER_PORT] {
            let at = SocketAddr::new(backend_addrs(i).0.parse().unwrap(), port);
            tcp_identity_server(ns, at, &format!("backend{}", i + 1), stop.clone())
                .expect("identity server");
        }
    }
    (lab, stop)
}

/// A virtual server on the lab VIP at `port` over backends (1-based) on
/// their port 8080.
fn service(port: u16, backends: &[usize]) -> String {
    service_to(port, BACKEND_PORT, backends)
}

/// The same with the backends' `backend_port`.
fn service_to(port: u16, backend_port: u16, backends: &[usize]) -> String {
    let mut yaml =
        format!("  - address: {VIP}\n    port: {port}\n    scheduler: rr\n    real_servers:\n");
    for b in backends {
        let _ = writeln!(
            yaml,
            "      - {{ address: {}, port: {backend_port} }}",
            backend_addrs(b - 1).0
        );
    }
    yaml
}

/// XDP on both lab interfaces; `vrrp`: an instance carrying the VIP on the
/// client side (so the services wait for MASTER); then `global` lines and
/// the services.
fn config(vrrp: Option<u8>, global: &str, services: &[String]) -> String {
    let mut yaml =
        String::from("dataplane: xdp\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\n");
    if !global.is_empty() {
        yaml.push_str("global:\n");
        yaml.push_str(global);
    }
    if let Some(priority) = vrrp {
        let _ = write!(
            yaml,
            "vrrp_instances:\n  - name: VI_1\n    interface: {BALANCER_CLIENT_IF}\n    \
             virtual_router_id: 51\n    priority: {priority}\n    version: 3\n    advert_int: 0.2\n    \
             virtual_ipaddresses: [\"{VIP}/32\"]\n"
        );
    }
    yaml.push_str("virtual_servers:\n");
    for s in services {
        yaml.push_str(s);
    }
    yaml
}

/// Replaces the config file at once (as editors and config management
/// do), so the daemon never reads it half-written.
fn write_config(path: &Path, text: impl AsRef<[u8]>) -> std::io::Result<()> {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// A private state directory for one daemon.
fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-ops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn master(report: &StatusReport) -> bool {
    report
        .vrrp_instances
        .first()
        .is_some_and(|i| i.state == "MASTER")
}

fn service_at(
    report: &StatusReport,
    port: u16,
) -> Option<&lb_userspace::daemon::status::ServiceView> {
    report.services.iter().find(|s| s.port == port)
}

/// Opens `n` connections to the VIP at `port` and asks each once.
fn open(lab: &Lab, port: u16, n: usize) -> Vec<(IdentityConnection, String)> {
    let target = SocketAddr::new(VIP.parse().unwrap(), port);
    lab.client
        .run(|| {
            (0..n)
                .map(|_| {
                    let mut c = IdentityConnection::open(target)
                        .expect("a connection through the balancer");
                    let name = c.ask().expect("an answer");
                    (c, name)
                })
                .collect()
        })
        .unwrap()
}

fn tally(open: &[(IdentityConnection, String)]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for (_, name) in open {
        *seen.entry(name.clone()).or_default() += 1;
    }
    seen
}

/// Asks every open connection again; each must answer from the backend
/// it started on (a reset or a moved flow fails).
fn ask_all(lab: &Lab, open: &mut [(IdentityConnection, String)]) {
    lab.client
        .run(|| {
            for (i, (conn, name)) in open.iter_mut().enumerate() {
                let answer = conn
                    .ask()
                    .unwrap_or_else(|e| panic!("connection {i} (on {name}) broke: {e:#}"));
                assert_eq!(&answer, name, "connection {i} moved to another backend");
            }
        })
        .unwrap();
}

/// `GET path` from inside `ns`; returns (status line, body).
fn http_get(ns: &Netns, addr: &str, path: &str) -> (String, String) {
    let addr: SocketAddr = addr.parse().unwrap();
    let path = path.to_owned();
    ns.run(move || {
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("metrics listener");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: lbd\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
        (
            head.lines().next().unwrap_or_default().to_owned(),
            body.to_owned(),
        )
    })
    .unwrap()
}

fn sample_value(value: &prometheus_parse::Value) -> f64 {
    match value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("unexpected sample kind {other:?}"),
    }
}

/// The samples of `metric` whose labels include `labels`.
fn samples(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| sample_value(&s.value))
        .collect()
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn status_and_metrics_show_services_real_servers_and_vrrp() {
    let (lab, _stop) = lab(2);
    let state = state_dir("status");
    let notify_path = state.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(WAIT)).unwrap();
    let path = temp_config("status", &config(Some(150), "", &[service(80, &[1, 2])])).unwrap();
    let notify_env = format!("NOTIFY_SOCKET={}", notify_path.display());
    let mut lbd = Daemon::start_wrapped(
        &lab.balancer,
        &["env", &notify_env],
        &path,
        &["--state-dir", state.to_str().unwrap(), "--metrics", METRICS],
    )
    .unwrap();

    // systemd's readiness: READY=1 once everything listens.
    let mut buf = [0u8; 256];
    let n = notify
        .recv(&mut buf)
        .expect("lbd tells systemd it is ready");
    let message = String::from_utf8_lossy(&buf[..n]);
    assert!(message.contains("READY=1"), "{message}");

    lbd.wait_status("MASTER with the service installed", WAIT, |r| {
        master(r) && service_at(r, 80).is_some()
    });
    let open = open(&lab, 80, 10);
    let seen = tally(&open);
    assert_eq!(seen.len(), 2, "rr over both backends: {seen:?}");
    // What each real server must show: the flows it got.
    let got = |backend: usize| seen[&format!("backend{backend}")] as u64;
    let expected = |address: &str| {
        let i = (0..2).find(|i| address.starts_with(&format!("{}:", backend_addrs(*i).0)));
        got(i.expect("a lab backend") + 1)
    };

    let report = lbd.status().unwrap();
    assert_eq!(report.dataplane.as_deref(), Some("XDP"));
    let s = service_at(&report, 80).unwrap();
    assert_eq!((s.protocol.as_str(), s.scheduler.as_str()), ("TCP", "rr"));
    assert_eq!(s.stats.connections, 10, "{s:?}");
    assert!(s.stats.packets_in >= 30 && s.stats.bytes_in > 0, "{s:?}");
    assert_eq!(s.real_servers.len(), 2);
    for r in &s.real_servers {
        let n = expected(&r.address);
        assert_eq!(
            (r.weight, r.active_connections, r.stats.connections),
            (1, n, n),
            "{r:?}"
        );
        assert!(!r.draining && r.health.is_none(), "{r:?}");
    }
    let vi = &report.vrrp_instances[0];
    assert_eq!(
        (vi.name.as_str(), vi.state.as_str(), vi.priority),
        ("VI_1", "MASTER", 150)
    );
    assert_eq!(vi.master, Some("10.111.1.1".parse().unwrap()));
    assert!(!vi.maintenance && vi.counters.adverts_sent > 0, "{vi:?}");
    let now = lb_userspace::daemon::status::unix_seconds(std::time::SystemTime::now());
    assert!(now.abs_diff(vi.last_transition) < 60, "{vi:?} at {now}");

    let out = lbd.ctl(&["status"]).unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    eprintln!("lbd status:\n{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[1].starts_with("Prot LocalAddress:Port Scheduler"),
        "{table}"
    );
    assert!(
        lines[2]
            .starts_with("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"),
        "{table}"
    );
    assert!(
        lines[3].starts_with(&format!("TCP  {VIP}:80 rr ")),
        "{table}"
    );
    for (line, backend) in lines[4..6].iter().zip(1..) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let address = format!("{}:{BACKEND_PORT}", backend_addrs(backend - 1).0);
        assert_eq!(
            &words[..6],
            [
                "->",
                address.as_str(),
                "Masq",
                "1",
                &got(backend).to_string(),
                "0"
            ],
            "{table}"
        );
    }
    let vrrp = lines
        .iter()
        .find(|l| l.starts_with("VI_1"))
        .expect("the instance's line");
    let words: Vec<&str> = vrrp.split_whitespace().collect();
    assert_eq!(
        &words[..5],
        ["VI_1", "MASTER", "150", "10.111.1.1", "(150)"],
        "{table}"
    );

    // The same numbers through Prometheus.
    let (status_line, body) = http_get(&lab.balancer, METRICS, "/metrics");
    assert_eq!(status_line, "HTTP/1.1 200 OK", "{body}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let service = ("service", "10.111.1.100:80");
    assert_eq!(
        samples(&scrape, "lbd_service_connections_total", &[service]),
        [10.0],
        "{body}"
    );
    for backend in 1..=2 {
        let real = format!("{}:{BACKEND_PORT}", backend_addrs(backend - 1).0);
        let labels = [service, ("real_server", real.as_str())];
        let active = samples(&scrape, "lbd_real_server_active_connections", &labels);
        assert_eq!(active, [got(backend) as f64], "{body}");
        let weight = samples(&scrape, "lbd_real_server_weight", &labels);
        assert_eq!(weight, [1.0], "{body}");
    }
    assert_eq!(
        samples(
            &scrape,
            "lbd_vrrp_state",
            &[("vrrp_instance", "VI_1"), ("state", "MASTER")]
        ),
        [1.0]
    );
    assert_eq!(
        samples(
            &scrape,
            "lbd_vrrp_state",
            &[("vrrp_instance", "VI_1"), ("state", "BACKUP")]
        ),
        [0.0]
    );
    assert_eq!(
        samples(&scrape, "lbd_vrrp_priority", &[("vrrp_instance", "VI_1")]),
        [150.0]
    );
    assert_eq!(
        samples(
            &scrape,
            "lbd_vrrp_became_master_total",
            &[("vrrp_instance", "VI_1")]
        ),
        [1.0]
    );
    assert!(
        samples(
            &scrape,
            "lbd_vrrp_adverts_sent_total",
            &[("vrrp_instance", "VI_1")]
        )[0] > 0.0
    );
    assert!(
        !samples(
            &scrape,
            "lbd_vrrp_adverts_dropped_total",
            &[("vrrp_instance", "VI_1"), ("reason", "ttl")]
        )
        .is_empty()
    );
    assert!(
        samples(&scrape, "lbd_xdp_events_total", &[])
            .iter()
            .sum::<f64>()
            > 0.0,
        "{body}"
    );
    let (not_found, _) = http_get(&lab.balancer, METRICS, "/nothing");
    assert_eq!(not_found, "HTTP/1.1 404 Not Found");

    let exit = lbd
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
        .unwrap();
    assert!(exit.success(), "{}", lbd.log());
    assert!(
        !lbd.socket().exists(),
        "the control socket is removed at stop"
    );
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    drop(open);
    let _ = std::fs::remove_dir_all(state);
    let _ = std::fs::remove_file(path);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_refused_reload_changes_nothing_and_says_why_and_autoreload_applies_a_good_file() {
    let (lab, _stop) = lab(2);
    let state = state_dir("refused");
    let global = "  autoreload: true\n";
    let good = config(Some(150), global, &[service(80, &[1, 2])]);
    let path = temp_config("refused", &good).unwrap();
    let mut lbd = Daemon::start(
        &lab.balancer,
        &path,
        &["--state-dir", state.to_str().unwrap()],
    )
    .unwrap();
    let before = lbd.wait_status("MASTER with the service", WAIT, |r| {
        master(r) && service_at(r, 80).is_some()
    });
    let mut open = open(&lab, 80, 10);

    // A file that does not validate.
    write_config(
        &path,
        good.replace("priority: 150", "priority: 150\n    virtual_router_id: 300"),
    )
    .unwrap();
    let out = lbd.ctl(&["reload"]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "lbd reload must fail; stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{} does not load", path.display())) && stderr.contains("error"),
        "the error names the file and the problem: {stderr}"
    );
    // A valid file that changes VRRP: refused, nothing applied.
    let vrrp_change = config(
        Some(200),
        global,
        &[service(80, &[1, 2]), service_to(81, OTHER_PORT, &[1])],
    );
    write_config(&path, &vrrp_change).unwrap();
    let out = lbd.ctl(&["reload"]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("vrrp_instances changed: restart lbd to apply"),
        "{stderr}"
    );

    ask_all(&lab, &mut open);
    let after = lbd.status().unwrap();
    assert_eq!(after.services.len(), 1, "nothing was added: {after:?}");
    let vi = &after.vrrp_instances[0];
    assert_eq!((vi.state.as_str(), vi.priority), ("MASTER", 150));
    assert_eq!(
        vi.last_transition, before.vrrp_instances[0].last_transition,
        "VRRP untouched"
    );
    assert_eq!(vi.counters.became_master, 1);
    assert!(after.reloads_failed >= 2, "{after:?}");
    assert!(
        lbd.log().contains("reload refused, nothing changed"),
        "{}",
        lbd.log()
    );

    // autoreload: a good file is applied without being asked.
    write_config(
        &path,
        config(
            Some(150),
            global,
            &[service(80, &[1, 2]), service_to(81, OTHER_PORT, &[1])],
        ),
    )
    .unwrap();
    let report = lbd.wait_status("autoreload adding port 81", WAIT, |r| {
        service_at(r, 81).is_some()
    });
    assert_eq!(report.reloads_ok, 1);
    let target = SocketAddr::new(VIP.parse().unwrap(), 81);
    let name = lab
        .client
        .run(move || IdentityConnection::open(target).and_then(|mut c| c.ask()))
        .unwrap()
        .unwrap();
    assert_eq!(name, "backend1");
    ask_all(&lab, &mut open);
    drop(lbd);
    let _ = std::fs::remove_dir_all(state);
    let _ = std::fs::remove_file(path);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn reload_under_3000_open_connections_resets_none_and_drains_a_removed_real_server() {
    let (lab, _stop) = lab(3);
    lab.add_vips().unwrap();
    let state = state_dir("traffic");
    let path = temp_config(
        "traffic",
        &config(
            None,
            FIN_1S,
            &[service(80, &[1, 2]), service_to(81, OTHER_PORT, &[2, 3])],
        ),
    )
    .unwrap();
    let mut lbd = Daemon::start(
        &lab.balancer,
        &path,
        &["--state-dir", state.to_str().unwrap()],
    )
    .unwrap();
    lbd.wait_status("both services", WAIT, |r| r.services.len() == 2);

    let mut flows = open(&lab, 80, 3000);
    let b_flows = open(&lab, 81, 10);
    let on_b3: Vec<_> = b_flows
        .into_iter()
        .filter(|(_, n)| n == "backend3")
        .collect();
    assert!(
        !on_b3.is_empty(),
        "rr put some of port 81's flows on backend3"
    );
    let before = lbd.status().unwrap();
    let a_before = service_at(&before, 80).unwrap().clone();
    assert_eq!(
        a_before
            .real_servers
            .iter()
            .map(|r| r.active_connections)
            .sum::<u64>(),
        3000
    );

    // Reload while the 3000 connections keep talking: port 81 loses
    // backend3 (drained), port 82 is new, port 80 is unchanged.
    write_config(
        &path,
        config(
            None,
            &format!("{FIN_1S}  drain_timeout: 120\n"),
            &[
                service(80, &[1, 2]),
                service_to(81, OTHER_PORT, &[2]),
                service_to(82, OTHER_PORT, &[1]),
            ],
        ),
    )
    .unwrap();
    let talker = lab
        .client
        .spawn(move || {
            let t0 = Instant::now();
            let mut failures = Vec::new();
            for round in 0..3 {
                for (i, (conn, name)) in flows.iter_mut().enumerate() {
                    let t = t0.elapsed();
                    match conn.ask() {
                        Ok(answer) if &answer == name => {}
                        Ok(answer) => failures.push(format!(
                            "round {round}: connection {i} moved from {name} to {answer} at {t:?}"
                        )),
                        Err(e) => failures.push(format!(
                            "round {round}: connection {i} on {name} broke at {t:?}: {e:#}"
                        )),
                    }
                }
            }
            if !failures.is_empty() {
                return Err(format!(
                    "{} failures, the first: {:#?}",
                    failures.len(),
                    &failures[..failures.len().min(20)]
                ));
            }
            Ok(flows)
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let out = lbd.ctl(&["reload"]).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reload: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("services added: 1, removed: 0, changed: 1; real servers draining: 1"),
        "{stdout}"
    );
    // Right after the reload: backend3 drains at weight 0.
    let drained = lbd.status().unwrap();
    let b3 = service_at(&drained, 81)
        .unwrap()
        .real_servers
        .iter()
        .find(|r| r.address.starts_with("10.111.2.4:"))
        .expect("backend3 stays while it drains")
        .clone();
    assert!(b3.draining && b3.weight == 0, "{b3:?}");
    let mut flows = talker
        .join()
        .unwrap()
        .unwrap()
        .expect("no connection reset or moved");

    let after = lbd.status().unwrap();
    let a_after = service_at(&after, 80).unwrap();
    assert_eq!(
        a_after
            .real_servers
            .iter()
            .map(|r| r.active_connections)
            .sum::<u64>(),
        3000,
        "port 80's flows untouched"
    );
    assert!(
        a_after.stats.packets_in >= a_before.stats.packets_in + 3 * 3000,
        "port 80's counters kept counting: {} -> {}",
        a_before.stats.packets_in,
        a_after.stats.packets_in
    );
    assert_eq!(
        a_after.stats.connections, a_before.stats.connections,
        "same flows, no new ones"
    );
    assert!(service_at(&after, 82).is_some());

    // Draining: open flows on backend3 continue, new ones avoid it.
    let mut on_b3 = on_b3;
    ask_all(&lab, &mut on_b3);
    let fresh = open(&lab, 81, 10);
    assert_eq!(tally(&fresh), HashMap::from([("backend2".to_owned(), 10)]));
    drop(fresh);
    drop(on_b3);
    // Closed, its flows leave conntrack (FIN: 1 s, CLOSE: 10 s) and the
    // drain ends with no flow left, long before drain_timeout (120 s).
    let start = Instant::now();
    while lbd
        .status()
        .unwrap()
        .services
        .iter()
        .any(|s| s.port == 81 && s.real_servers.len() > 1)
    {
        assert!(
            start.elapsed() < Duration::from_mins(1),
            "backend3 still drains a minute after its flows closed; log:\n{}",
            lbd.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        lbd.log().contains("drained real server removed"),
        "{}",
        lbd.log()
    );

    // SIGHUP reloads too; port 80's flows still answer afterwards.
    write_config(
        &path,
        config(
            None,
            FIN_1S,
            &[service(80, &[1, 2]), service_to(81, OTHER_PORT, &[2])],
        ),
    )
    .unwrap();
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(lbd.pid(), libc::SIGHUP) };
    lbd.wait_status("SIGHUP removing port 82", WAIT, |r| r.services.len() == 2);
    ask_all(&lab, &mut flows);
    drop(lbd);
    let _ = std::fs::remove_dir_all(state);
    let _ = std::fs::remove_file(path);
}

/// The values of `key=` lines in a unit file's text.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

/// What sandboxes the unit's processes, the scripts lbd starts among them.
const SANDBOX: &[&str] = &[
    "CapabilityBoundingSet",
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "RestrictNamespaces",
    "RestrictSUIDSGID",
    "MemoryDenyWriteExecute",
];

#[test]
fn the_systemd_unit_verifies_and_keeps_what_lbd_needs() {
    let unit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/lbd.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let value = |key: &str| unit_values(&unit, key);
    assert_eq!(value("Type"), ["notify"]);
    assert_eq!(value("ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    assert!(value("ExecStart")[0].starts_with("/usr/sbin/lbd run --config /etc/lbd/lbd.yaml"));
    assert!(
        value("ExecStopPost")[0].starts_with("/usr/sbin/lbd cleanup --config /etc/lbd/lbd.yaml")
    );
    // `systemctl restart` runs ExecStopPost too: cleanup must know the unit
    // to keep the pinned XDP state then.
    assert!(
        value("ExecStopPost")[0].ends_with("--systemd-unit %n"),
        "{:?}",
        value("ExecStopPost")
    );
    // Scripts run as keepalived runs them: nothing in the unit confines
    // them (docs/operations.md, "Scripts under the unit").
    for sandbox in SANDBOX {
        assert!(
            value(sandbox).is_empty(),
            "{sandbox} would confine the user's scripts too"
        );
    }
    assert_eq!(value("UMask"), ["0022"], "keepalived's umask");

    // The opt-in sandbox: what lbd needs stays, and lbd can still pin.
    let hardening_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/lbd.service.d/hardening.conf");
    let hardening = std::fs::read_to_string(&hardening_path).unwrap();
    let value = |key: &str| unit_values(&hardening, key);
    assert!(
        value("ReadWritePaths")[0]
            .split_whitespace()
            .any(|p| p.trim_start_matches('-') == "/sys/fs/bpf"),
        "the pins under /sys/fs/bpf need it writable: {:?}",
        value("ReadWritePaths")
    );
    let caps: Vec<String> = value("CapabilityBoundingSet")[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    for needed in ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF", "CAP_PERFMON"] {
        assert!(
            caps.iter().any(|c| c == needed),
            "{needed} missing: {caps:?}"
        );
    }
    assert!(
        !caps
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN" || c == "CAP_SYS_MODULE"),
        "{caps:?}"
    );
    for sandbox in SANDBOX {
        assert!(!value(sandbox).is_empty(), "{sandbox} missing");
    }
    assert!(
        value("PrivateDevices").is_empty(),
        "PrivateDevices hides /dev/net/tun, which the VIP device needs"
    );

    // systemd's own check, with the paths pointing at the built binary,
    // of the unit and of the unit with the drop-in beside it.
    let dir = state_dir("unit");
    let copy = dir.join("lbd.service");
    let lbd = lb_tests::binaries::lbd();
    std::fs::write(&copy, unit.replace("/usr/sbin/lbd", lbd.to_str().unwrap())).unwrap();
    let hardened = dir.join("hardened").join("lbd.service");
    std::fs::create_dir_all(hardened.with_extension("service.d")).unwrap();
    std::fs::copy(&copy, &hardened).unwrap();
    std::fs::write(
        hardened.with_extension("service.d").join("hardening.conf"),
        &hardening,
    )
    .unwrap();
    // Its Documentation= names man pages, which systemd asks `man` for:
    // the ones the package ships, from the built binary, on MANPATH.
    let man = dir.join("man");
    let made = std::process::Command::new(&lbd)
        .arg("man")
        .arg(man.join("pages"))
        .status()
        .unwrap();
    assert!(made.success(), "lbd man writes the pages");
    for (page, section) in [("lbd.8", "man8"), ("lbd.yaml.5", "man5")] {
        std::fs::create_dir_all(man.join(section)).unwrap();
        std::fs::copy(man.join("pages").join(page), man.join(section).join(page)).unwrap();
    }
    for unit in [&copy, &hardened] {
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(unit)
            .env("MANPATH", &man)
            .output()
            .expect("systemd-analyze (Debian: apt-get install systemd) verifies the unit");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify {}: {stderr}",
            unit.display()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn the_units_capabilities_are_enough_for_xdp_vrrp_and_the_socket() {
    // The bounding set of the opt-in sandbox
    // (dist/lbd.service.d/hardening.conf), as root: no CAP_SYS_ADMIN.
    let (lab, _stop) = lab(1);
    let state = state_dir("caps");
    let path = temp_config("caps", &config(Some(150), "", &[service(80, &[1])])).unwrap();
    let mut lbd = Daemon::start_wrapped(
        &lab.balancer,
        &[
            "setpriv",
            "--bounding-set",
            "-all,+net_admin,+net_raw,+bpf,+perfmon,+setuid,+setgid,+kill,+chown",
            "--",
        ],
        &path,
        &["--state-dir", state.to_str().unwrap()],
    )
    .unwrap();
    lbd.wait_status("MASTER with the service", WAIT, |r| {
        master(r) && r.dataplane.as_deref() == Some("XDP") && service_at(r, 80).is_some()
    });
    let flows = open(&lab, 80, 3);
    assert_eq!(tally(&flows), HashMap::from([("backend1".to_owned(), 3)]));
    let exit = lbd
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(10))
        .unwrap();
    assert!(exit.success(), "{}", lbd.log());
    let _ = std::fs::remove_dir_all(state);
    let _ = std::fs::remove_file(path);
}

#[test]
fn completions_name_every_command() {
    let out = std::process::Command::new(lb_tests::binaries::lbd())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for command in [
        "status",
        "reload",
        "failover",
        "maintenance",
        "cleanup",
        "completions",
    ] {
        assert!(
            script.contains(command),
            "{command} missing from the bash completions"
        );
    }
}
