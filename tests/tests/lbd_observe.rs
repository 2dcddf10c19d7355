//! What an operator looks at on a running `lbd`: `lbd status -c` (the
//! flows, like `ipvsadm -Lnc`) with its filters, and `--rate`/`--stats`
//! (like `ipvsadm -Ln --rate/--stats`), against a real daemon forwarding
//! real TCP flows through XDP in the namespace lab.

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::SocketAddr,
    time::{Duration, Instant},
};

use lb_lab::{
    lab::{Lab, VIP, backend_addrs},
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server},
};
use lb_tests::daemon::{Daemon, temp_config};
use lb_userspace::{
    daemon::{rates::RateView, status::StatusReport},
    dataplane::FlowEntry,
};

const BACKEND_PORT: u16 = 8080;
const OTHER_PORT: u16 = 8081;
const WAIT: Duration = Duration::from_secs(20);

/// The lab with `n` backends running TCP identity servers on both ports,
/// its VIP on the balancer, and lbd (XDP) with `services`.
fn start(name: &str, n: usize, services: &[String]) -> (Lab, StopFlag, Daemon) {
    require_root("the namespace lab");
    let lab = Lab::with_backends(n).expect("lab");
    lab.add_vips().unwrap();
    let stop = StopFlag::default();
    for (i, ns) in lab.backends.iter().enumerate() {
        for port in [BACKEND_PORT, OTHER_PORT] {
            let at = SocketAddr::new(backend_addrs(i).0.parse().unwrap(), port);
            tcp_identity_server(ns, at, &format!("backend{}", i + 1), stop.clone())
                .expect("identity server");
        }
    }
    let mut yaml =
        String::from("dataplane: xdp\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\n");
    yaml.push_str("virtual_servers:\n");
    for s in services {
        yaml.push_str(s);
    }
    let path = temp_config(name, &yaml).unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &path, &[]).unwrap();
    let want = services.len();
    wait_for(&mut lbd, "the services installed", |lbd| {
        status(lbd).is_some_and(|r| r.services.len() == want)
    });
    (lab, stop, lbd)
}

/// The lab VIP at `port` over backends (1-based) at `backend_port`.
fn service(port: u16, backend_port: u16, backends: &[usize]) -> String {
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

fn status(lbd: &Daemon) -> Option<StatusReport> {
    let out = lbd.ctl(&["status", "--json"]).ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())?
}

fn wait_for(lbd: &mut Daemon, what: &str, ready: impl Fn(&Daemon) -> bool) {
    let start = Instant::now();
    loop {
        if let Some(exit) = lbd.try_wait().unwrap() {
            panic!("lbd exited with {exit}; log:\n{}", lbd.log());
        }
        if ready(lbd) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "waited {WAIT:?} for {what}; log:\n{}",
            lbd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lbd status ARGS`, which must succeed; its stdout.
fn ctl(lbd: &Daemon, args: &[&str]) -> String {
    let out = lbd.ctl(args).unwrap();
    assert!(
        out.status.success(),
        "lbd {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn flows(lbd: &Daemon, filters: &[&str]) -> Vec<FlowEntry> {
    let mut args = vec!["status", "-c", "--json"];
    args.extend_from_slice(filters);
    let text = ctl(lbd, &args);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not a JSON array of flows ({e}):\n{text}"))
}

/// `n` connections to the VIP at `port`, each asked once (so established);
/// with the backend that answered.
fn open(lab: &Lab, port: u16, n: usize) -> Vec<(IdentityConnection, String)> {
    let target = SocketAddr::new(VIP.parse().unwrap(), port);
    lab.client
        .run(|| {
            (0..n)
                .map(|_| {
                    let mut c = IdentityConnection::open(target).expect("a connection");
                    let name = c.ask().expect("an answer");
                    (c, name)
                })
                .collect()
        })
        .unwrap()
}

/// The address of backend `name` ("backend2") at `port`.
fn backend_at(name: &str, port: u16) -> SocketAddr {
    let i: usize = name.trim_start_matches("backend").parse().unwrap();
    SocketAddr::new(backend_addrs(i - 1).0.parse().unwrap(), port)
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn connections_lists_every_open_flow_with_the_real_server_that_answers_it() {
    let (lab, _stop, lbd) = start(
        "flows",
        2,
        &[
            service(80, BACKEND_PORT, &[1, 2]),
            service(81, OTHER_PORT, &[2]),
        ],
    );
    let on_80 = open(&lab, 80, 6);
    let on_81 = open(&lab, 81, 2);
    let vip: std::net::IpAddr = VIP.parse().unwrap();

    let listed = flows(&lbd, &[]);
    let by_client: HashMap<SocketAddr, &FlowEntry> = listed.iter().map(|f| (f.client, f)).collect();
    for (port, backend_port, open) in [(80, BACKEND_PORT, &on_80), (81, OTHER_PORT, &on_81)] {
        for (conn, name) in open {
            let client = conn.local_addr().unwrap();
            let flow = by_client
                .get(&client)
                .unwrap_or_else(|| panic!("the flow from {client} is not listed: {listed:#?}"));
            assert_eq!(flow.protocol, "TCP");
            assert_eq!(flow.state, "ESTABLISHED", "{flow:?}");
            assert_eq!(flow.virtual_address, SocketAddr::new(vip, port));
            assert_eq!(
                flow.real_server,
                Some(backend_at(name, backend_port)),
                "the listing names another real server than the one answering {client}"
            );
            assert!(
                (1..=900).contains(&flow.expires_in_s),
                "an established flow expires within the 900 s TCP timeout: {flow:?}"
            );
        }
    }
    assert_eq!(listed.len(), 8, "only the open flows: {listed:#?}");

    // Filters: by real server, by service (-t), by client.
    let backend1 = backend_at("backend1", BACKEND_PORT);
    let on_backend1 = on_80.iter().filter(|(_, n)| n == "backend1").count();
    let only = flows(&lbd, &["--real-server", &backend1.ip().to_string()]);
    assert_eq!(only.len(), on_backend1, "{only:#?}");
    assert!(only.iter().all(|f| f.real_server == Some(backend1)));
    let only = flows(&lbd, &["-t", &format!("{VIP}:81")]);
    assert_eq!(only.len(), 2, "{only:#?}");
    assert!(only.iter().all(|f| f.virtual_address.port() == 81));
    assert!(flows(&lbd, &["-u", &format!("{VIP}:81")]).is_empty());
    let one = on_81[0].0.local_addr().unwrap();
    let only = flows(&lbd, &["--client", &one.to_string()]);
    assert_eq!(only.iter().map(|f| f.client).collect::<Vec<_>>(), [one]);

    // The table: ipvsadm -Lnc's heading and one line per flow.
    let table = ctl(&lbd, &["status", "-c"]);
    eprintln!("lbd status -c:\n{table}");
    let mut lines = table.lines();
    let heading: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        heading,
        ["pro", "expire", "state", "source", "virtual", "destination"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 8, "{table}");
    let (conn, name) = &on_80[0];
    let client = conn.local_addr().unwrap().to_string();
    let row = rows
        .iter()
        .find(|r| r[3] == client)
        .expect("the flow's row");
    let real = backend_at(name, BACKEND_PORT).to_string();
    assert_eq!(
        [row[0], row[2], row[4], row[5]],
        ["TCP", "ESTABLISHED", &format!("{VIP}:80"), real.as_str()]
    );
}

/// Opens a connection to `target` and asks it a few times, again and
/// again, until `stop`.
fn keep_busy(
    lab: &Lab,
    target: SocketAddr,
    stop: &StopFlag,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    let stop = stop.clone();
    lab.client
        .spawn(move || {
            while !stop.stopped() {
                if let Ok(mut c) = IdentityConnection::open(target) {
                    for _ in 0..5 {
                        let _ = c.ask();
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .unwrap()
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn rates_are_measured_by_the_daemon_under_traffic_and_fall_to_zero_when_idle() {
    let (lab, stop, mut lbd) = start(
        "rates",
        1,
        &[
            service(80, BACKEND_PORT, &[1]),
            service(81, OTHER_PORT, &[1]),
        ],
    );
    let target = SocketAddr::new(VIP.parse().unwrap(), 80);
    let traffic_stop = StopFlag::default();
    let busy = keep_busy(&lab, target, &traffic_stop);

    wait_for(&mut lbd, "nonzero rates on port 80", |lbd| {
        status(lbd).is_some_and(|r| {
            r.services
                .iter()
                .any(|s| s.port == 80 && s.rates.cps > 0 && s.rates.in_pps > 0)
        })
    });
    let report = status(&lbd).unwrap();
    let window = report.rate_window_ms.expect("the daemon names its window");
    assert!((500..=5000).contains(&window), "window {window} ms");
    let s80 = report.services.iter().find(|s| s.port == 80).unwrap();
    let r = &s80.real_servers[0].rates;
    assert!(
        r.cps > 0 && r.in_pps > 0 && r.out_pps > 0 && r.in_bps > 0 && r.out_bps > 0,
        "the real server's rates under traffic: {r:?}"
    );
    let s81 = report.services.iter().find(|s| s.port == 81).unwrap();
    assert_eq!(s81.rates.cps, 0, "no traffic to port 81: {:?}", s81.rates);

    let rate = ctl(&lbd, &["status", "--rate", "-t", &format!("{VIP}:80")]);
    eprintln!("lbd status --rate -t {VIP}:80:\n{rate}");
    let lines: Vec<&str> = rate.lines().collect();
    assert!(lines[0].contains("rates over the last"), "{rate}");
    let heading: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        heading,
        [
            "Prot",
            "LocalAddress:Port",
            "CPS",
            "InPPS",
            "OutPPS",
            "InBPS",
            "OutBPS"
        ]
    );
    assert_eq!(lines.len(), 5, "one service and its real server: {rate}");
    assert!(lines[3].starts_with(&format!("TCP  {VIP}:80 ")), "{rate}");

    let stats = ctl(&lbd, &["status", "--stats", "--exact", "--sort"]);
    eprintln!("lbd status --stats --exact --sort:\n{stats}");
    let lines: Vec<&str> = stats.lines().collect();
    let heading: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        heading,
        [
            "Prot",
            "LocalAddress:Port",
            "Conns",
            "InPkts",
            "OutPkts",
            "InBytes",
            "OutBytes"
        ]
    );
    assert!(
        lines[3].starts_with(&format!("TCP  {VIP}:80 ")),
        "--sort: {stats}"
    );
    assert!(
        lines[5].starts_with(&format!("TCP  {VIP}:81 ")),
        "--sort: {stats}"
    );
    let conns: u64 = lines[3].split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(conns > 0, "{stats}");

    traffic_stop.stop();
    busy.join().unwrap().unwrap();
    wait_for(&mut lbd, "rates back to zero when idle", |lbd| {
        status(lbd).is_some_and(|r| {
            r.services.iter().all(|s| {
                s.rates == RateView::default()
                    && s.real_servers
                        .iter()
                        .all(|r| r.rates == RateView::default())
            })
        })
    });
    stop.stop();
}
