//! Health checks for real, in a lab of network namespaces: `lbd` checks
//! real servers on their own namespaces and the client sees which of them
//! new connections reach (identity servers on port 7000 answer with their
//! name; the health pages are small HTTP servers on port 8080).

use std::{
    collections::HashMap,
    net::SocketAddr,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lb_lab::{
    lab::{BALANCER_BACKEND_IF, Lab, VIP, backend_addrs},
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server},
};
use lb_tests::{
    daemon::{Daemon, temp_config, wait_for_xdp},
    http_server::HttpServer,
};

/// The checks' timing in every test: 1 s apart, 1 s to answer, one retry.
const TIMING: &str =
    "connect_port: 8080, connect_timeout: 1, retry: 1, delay_before_retry: 1, delay_loop: 1";

/// The bound for a failure to take effect, fall x interval +
/// timeout, where a fall is `retry + 1` runs each up to interval +
/// timeout apart; plus 2 s for the daemon and the data plane to act.
const DETECTION: Duration = Duration::from_secs(2 * (1 + 1) + 2);

struct Setup {
    lab: Lab,
    lbd: Daemon,
    http: Vec<HttpServer>,
    _identity: StopFlag,
    config: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

fn vip() -> SocketAddr {
    format!("{VIP}:80").parse().unwrap()
}

fn ip(i: usize) -> String {
    backend_addrs(i).0
}

/// `n` backends with identity servers on 7000 and health pages serving
/// `page` on 8080, and lbd with `virtual_server` (YAML of one list item).
fn setup(n: usize, page: &str, virtual_server: &str) -> Setup {
    let lab = Lab::with_backends(n).expect("lab");
    lab.add_vips().unwrap();
    let identity = StopFlag::default();
    let mut http = Vec::new();
    for (i, ns) in lab.backends.iter().enumerate() {
        let at: SocketAddr = format!("{}:7000", ip(i)).parse().unwrap();
        tcp_identity_server(ns, at, &format!("backend{}", i + 1), identity.clone()).unwrap();
        let page_at: SocketAddr = format!("{}:8080", ip(i)).parse().unwrap();
        http.push(HttpServer::start(ns, page_at, page).unwrap());
    }
    let yaml = format!(
        "dataplane: xdp\nglobal: {{ script_user: root }}\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\nvirtual_servers:\n{virtual_server}"
    );
    let config = temp_config("health", &yaml).unwrap();
    let mut lbd = Daemon::start(&lab.balancer, &config, &[]).unwrap();
    wait_for_xdp(&lab.balancer, BALANCER_BACKEND_IF, &mut lbd).unwrap();
    Setup {
        lab,
        lbd,
        http,
        _identity: identity,
        config,
    }
}

/// Waits up to `within` for `line` in lbd's log.
fn wait_for_log(lbd: &Daemon, line: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if lbd.log().contains(line) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "lbd did not log {line:?} within {within:?}; its log:\n{}",
        lbd.log()
    );
}

/// Waits until `lbd status` shows backend `i` of the only service at
/// `weight`, i.e. until the data plane holds the health verdict.
fn wait_for_weight(lbd: &mut Daemon, i: usize, weight: u32) {
    let address = ip(i).parse::<std::net::IpAddr>().unwrap();
    lbd.wait_status(
        &format!("backend{} at weight {weight}", i + 1),
        DETECTION,
        |r| {
            r.services.iter().any(|s| {
                s.real_servers
                    .iter()
                    .any(|rs| rs.ip == address && rs.weight == weight)
            })
        },
    );
}

/// Opens `count` new connections to the VIP from the client and counts
/// which backend answered each.
fn new_connections(setup: &Setup, count: usize) -> HashMap<String, usize> {
    setup
        .lab
        .client
        .run(move || {
            let mut seen = HashMap::<String, usize>::new();
            for _ in 0..count {
                let mut c = IdentityConnection::open(vip()).expect("connects through lbd");
                *seen.entry(c.ask().expect("an answer")).or_default() += 1;
            }
            seen
        })
        .unwrap()
}

/// A script in its own root-owned directory (scripts must be safe).
fn script_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-health-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_failed_server_takes_no_new_connections_keeps_its_established_ones_and_returns() {
    require_root("the namespace lab");
    let dir = script_dir("notify");
    let notify = write_script(
        &dir,
        "notify.sh",
        &format!("echo \"$1\" >> {}/events", dir.display()),
    );
    let server = |i: usize| {
        format!(
            "      - address: {}\n        port: 7000\n        inhibit_on_failure: true\n        notify_up: \"{n} up{i}\"\n        notify_down: \"{n} down{i}\"\n        checks:\n          - http_get: {{ urls: [{{ path: /health }}], {TIMING} }}\n",
            ip(i),
            n = notify.display()
        )
    };
    let vs = format!(
        "  - address: {VIP}\n    port: 80\n    scheduler: rr\n    real_servers:\n{}{}",
        server(0),
        server(1)
    );
    let mut setup = setup(2, "ok", &vs);

    // An established connection on backend1, before it fails.
    let mut established = setup
        .lab
        .client
        .run(|| {
            (0..10)
                .map(|_| IdentityConnection::open(vip()).expect("connects"))
                .find_map(|mut c| (c.ask().unwrap() == "backend1").then_some(c))
                .expect("rr sends one of ten connections to backend1")
        })
        .unwrap();

    setup.http[0].stop();
    wait_for_log(
        &setup.lbd,
        &format!(
            "Disabling service [{}]:tcp:7000 of VS [{VIP}]:tcp:80",
            ip(0)
        ),
        DETECTION,
    );
    // The health checks log the verdict before the daemon has applied it;
    // new connections are asked for once the data plane holds it.
    wait_for_weight(&mut setup.lbd, 0, 0);
    let seen = new_connections(&setup, 20);
    assert_eq!(
        seen.get("backend2"),
        Some(&20),
        "no new connection reaches the failed backend1: {seen:?}"
    );
    assert_eq!(
        setup
            .lab
            .client
            .run(|| established.ask().expect("still open"))
            .unwrap(),
        "backend1",
        "with inhibit_on_failure, an established connection stays on its backend"
    );

    setup.http[0] = HttpServer::start(
        &setup.lab.backends[0],
        format!("{}:8080", ip(0)).parse().unwrap(),
        "ok",
    )
    .unwrap();
    wait_for_log(
        &setup.lbd,
        &format!("Enabling service [{}]:tcp:7000 of VS [{VIP}]:tcp:80", ip(0)),
        DETECTION,
    );
    wait_for_weight(&mut setup.lbd, 0, 1);
    let seen = new_connections(&setup, 20);
    assert!(
        seen.get("backend1").copied().unwrap_or(0) >= 8,
        "the recovered backend1 takes new connections again: {seen:?}"
    );
    // Scripts run in the background: give the last one a moment.
    std::thread::sleep(Duration::from_millis(500));
    let events = std::fs::read_to_string(dir.join("events")).unwrap_or_default();
    assert_eq!(
        events.lines().collect::<Vec<_>>(),
        ["down0", "up0"],
        "notify_down then notify_up ran for backend1 only"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two backends whose check is `check` (YAML flow mapping of one check).
fn two_backends(check: &str) -> String {
    let server = |i: usize| {
        format!(
            "      - address: {}\n        port: 7000\n        checks:\n          - {check}\n",
            ip(i)
        )
    };
    format!(
        "  - address: {VIP}\n    port: 80\n    scheduler: rr\n    real_servers:\n{}{}",
        server(0),
        server(1)
    )
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_page_without_the_negotiate_string_is_removed() {
    require_root("the namespace lab");
    let check = format!(
        "negotiate: {{ service: http, request: /status, receive: \"I am alive\", {TIMING} }}"
    );
    let setup = setup(2, "<p>I am alive</p>", &two_backends(&check));
    let seen = new_connections(&setup, 10);
    assert_eq!(seen.len(), 2, "both backends serve at first: {seen:?}");

    setup.http[0].set_body("<p>down for maintenance</p>");
    wait_for_log(
        &setup.lbd,
        &format!(
            "Removing service [{}]:tcp:7000 from VS [{VIP}]:tcp:80",
            ip(0)
        ),
        DETECTION,
    );
    let log = setup.lbd.log();
    assert!(
        log.contains("the reply does not match `I am alive`"),
        "the log says why; log:\n{log}"
    );
    let seen = new_connections(&setup, 20);
    assert_eq!(
        seen.get("backend2"),
        Some(&20),
        "backend1 is out of the pool: {seen:?}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_server_that_accepts_but_never_answers_http_is_marked_down() {
    require_root("the namespace lab");
    let check = format!("http_get: {{ urls: [{{ path: / }}], {TIMING} }}");
    let setup = setup(2, "ok", &two_backends(&check));
    setup.http[0].hang();
    wait_for_log(
        &setup.lbd,
        &format!(
            "Removing service [{}]:tcp:7000 from VS [{VIP}]:tcp:80",
            ip(0)
        ),
        DETECTION,
    );
    let log = setup.lbd.log();
    assert!(
        log.contains("no complete answer within 1s"),
        "the log says the server did not answer; log:\n{log}"
    );
    let seen = new_connections(&setup, 20);
    assert_eq!(seen.get("backend2"), Some(&20), "{seen:?}");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_hanging_check_script_is_killed_at_its_timeout_and_counts_as_a_failure() {
    require_root("the namespace lab");
    let dir = script_dir("misc");
    let pids = dir.join("pids");
    let hang = write_script(
        &dir,
        "hang.sh",
        &format!(
            "echo $$ >> {p}\nsleep 30 &\necho $! >> {p}\nwait",
            p = pids.display()
        ),
    );
    let check = format!(
        "misc_check: {{ misc_path: \"{}\", misc_timeout: 1, retry: 0, delay_loop: 2 }}",
        hang.display()
    );
    let vs = format!(
        "  - address: {VIP}\n    port: 80\n    real_servers:\n      - address: {}\n        port: 7000\n        checks:\n          - {check}\n      - address: {}\n        port: 7000\n",
        ip(0),
        ip(1)
    );
    let setup = setup(2, "ok", &vs);
    wait_for_log(
        &setup.lbd,
        &format!(
            "Removing service [{}]:tcp:7000 from VS [{VIP}]:tcp:80",
            ip(0)
        ),
        DETECTION,
    );
    let log = setup.lbd.log();
    assert!(
        log.contains("the script timed out and was killed"),
        "the failure names the timeout; log:\n{log}"
    );
    // The first run's script and its child: both killed, not left behind.
    let first: Vec<String> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .take(2)
        .map(str::to_owned)
        .collect();
    assert_eq!(first.len(), 2, "the script recorded its pids");
    let deadline = Instant::now() + Duration::from_secs(2);
    let alive = |pid: &String| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    while first.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !first.iter().any(alive),
        "the hung script {first:?} (and its child) outlived its timeout"
    );
    let seen = new_connections(&setup, 10);
    assert_eq!(seen.get("backend2"), Some(&10), "{seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn with_every_server_down_the_sorry_server_answers() {
    require_root("the namespace lab");
    let server = |i: usize| {
        format!(
            "      - address: {}\n        port: 7000\n        checks:\n          - tcp_check: {{ {TIMING} }}\n",
            ip(i)
        )
    };
    let vs = format!(
        "  - address: {VIP}\n    port: 80\n    scheduler: rr\n    sorry_server: {{ address: {}, port: 7000 }}\n    real_servers:\n{}{}",
        ip(2),
        server(0),
        server(1)
    );
    let mut setup = setup(3, "ok", &vs);
    let seen = new_connections(&setup, 10);
    assert!(
        !seen.contains_key("backend3"),
        "the sorry server waits while servers are up: {seen:?}"
    );
    setup.http[0].stop();
    setup.http[1].stop();
    wait_for_log(
        &setup.lbd,
        &format!(
            "Adding sorry server [{}]:tcp:7000 to VS [{VIP}]:tcp:80",
            ip(2)
        ),
        DETECTION,
    );
    let seen = new_connections(&setup, 10);
    assert_eq!(
        seen.get("backend3"),
        Some(&10),
        "the sorry server answers every new connection: {seen:?}"
    );
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn a_server_its_check_removed_stays_in_status_as_down_with_its_last_failure() {
    require_root("the namespace lab");
    // inhibit_on_failure defaults to false: ldirectord's quiescent=no, the
    // failed server leaves the data plane's pool.
    let check = format!("http_get: {{ urls: [{{ path: /health }}], {TIMING} }}");
    let mut setup = setup(2, "ok", &two_backends(&check));
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    setup.http[0].stop();
    let address = ip(0).parse::<std::net::IpAddr>().unwrap();
    let report =
        setup
            .lbd
            .wait_status("backend1 listed out of the pool and down", DETECTION, |r| {
                r.services[0]
                    .real_servers
                    .iter()
                    .any(|rs| rs.ip == address && !rs.in_pool)
            });
    let row = report.services[0]
        .real_servers
        .iter()
        .find(|rs| rs.ip == address)
        .unwrap();
    let health = row.health.as_ref().expect("a checked server has health");
    assert!(!health.up, "the removed backend1 is down: {row:?}");
    assert!(
        health
            .last_failure
            .as_deref()
            .is_some_and(|why| why.contains("refused")),
        "status says why backend1 failed: {row:?}"
    );
    assert!(
        health.last_failure_at.is_some_and(|at| at >= started),
        "status says when backend1 failed: {row:?}"
    );
    let other = report.services[0]
        .real_servers
        .iter()
        .find(|rs| rs.ip != address)
        .expect("backend2 listed");
    assert!(other.in_pool && other.health.as_ref().is_some_and(|h| h.up));
    let text = setup.lbd.ctl(&["status"]).unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("{}:7000", ip(0))))
        .unwrap_or_else(|| panic!("lbd status has no row for backend1:\n{text}"));
    assert!(
        line.contains("down (") && line.contains("out of pool"),
        "the text row says down and out of the pool: {line}"
    );
    // Forwarding agrees: the down server takes nothing.
    let seen = new_connections(&setup, 10);
    assert_eq!(seen.get("backend2"), Some(&10), "{seen:?}");
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn with_alpha_a_real_server_added_by_a_reload_takes_nothing_before_its_check_passes() {
    require_root("the namespace lab");
    let server = |i: usize| {
        format!(
            "      - address: {}\n        port: 7000\n        checks:\n          - http_get: {{ urls: [{{ path: /health }}], {TIMING} }}\n",
            ip(i)
        )
    };
    let vs = |servers: &str| {
        format!(
            "  - address: {VIP}\n    port: 80\n    scheduler: rr\n    alpha: true\n    real_servers:\n{servers}"
        )
    };
    let mut setup = setup(2, "ok", &vs(&server(0)));
    let in_pool = |r: &lb_userspace::daemon::status::StatusReport, i: usize| {
        let address = ip(i).parse::<std::net::IpAddr>().unwrap();
        r.services.iter().any(|s| {
            s.real_servers
                .iter()
                .any(|rs| rs.ip == address && rs.in_pool && rs.weight > 0)
        })
    };
    // Under alpha even the first server waits for its first pass.
    setup.lbd.wait_status(
        "backend1 in the pool after its first pass",
        DETECTION,
        |r| in_pool(r, 0),
    );

    // backend2 answers on 7000 but its health page is down; the reload
    // adds it.
    setup.http[1].stop();
    let yaml = std::fs::read_to_string(&setup.config).unwrap();
    let reloaded = format!("{yaml}{}", server(1));
    std::fs::write(&setup.config, reloaded).unwrap();
    let out = setup.lbd.ctl(&["reload"]).unwrap();
    assert!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let address = ip(1).parse::<std::net::IpAddr>().unwrap();
    let report = setup.lbd.wait_status("backend2 listed", DETECTION, |r| {
        r.services[0].real_servers.iter().any(|rs| rs.ip == address)
    });
    let row = report.services[0]
        .real_servers
        .iter()
        .find(|rs| rs.ip == address)
        .unwrap();
    assert!(
        !row.in_pool && row.health.as_ref().is_some_and(|h| !h.up),
        "the added backend2 starts down, out of the pool: {row:?}"
    );
    let seen = new_connections(&setup, 20);
    assert_eq!(
        seen.get("backend2"),
        None,
        "backend2 took connections before its check passed: {seen:?}"
    );

    // Its page comes back: it joins after a pass.
    setup.http[1] = HttpServer::start(
        &setup.lab.backends[1],
        format!("{}:8080", ip(1)).parse().unwrap(),
        "ok",
    )
    .unwrap();
    setup.lbd.wait_status(
        "backend2 in the pool after its first pass",
        DETECTION,
        |r| in_pool(r, 1),
    );
    let seen = new_connections(&setup, 20);
    assert!(
        seen.get("backend2").copied().unwrap_or(0) >= 8,
        "backend2 serves once its check passed: {seen:?}"
    );
}
