//! `lbd top` in a real terminal: tmux runs it against a daemon forwarding
//! real flows in the namespace lab; the test reads the screen with
//! `capture-pane` at 80 and 200 columns and presses keys with `send-keys`.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    process::{Command, Output},
    time::{Duration, Instant},
};

use lb_lab::{
    lab::{BALANCER_CLIENT_IF, Lab, VIP, backend_addrs},
    privileges::require_root,
    traffic::{IdentityConnection, StopFlag, tcp_identity_server},
};
use lb_tests::{
    binaries,
    daemon::{Daemon, temp_config},
};

const WAIT: Duration = Duration::from_secs(20);

/// A private tmux server, killed (with what runs in it) on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Self {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test: apt-get install tmux (cargo xtask setup installs it)"
        );
        Self {
            socket: format!("lbd-top-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn ok(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn screen(&self) -> String {
        String::from_utf8(self.run(&["capture-pane", "-p", "-t", "top"]).stdout).unwrap()
    }

    /// Waits until the screen satisfies `ready`; returns it.
    fn wait(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < WAIT,
                "waited {WAIT:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The words of the screen line that shows `text`, frame characters left out.
fn row<'a>(screen: &'a str, text: &str) -> Vec<&'a str> {
    let line = screen
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line shows {text}:\n{screen}"));
    line.split_whitespace()
        .filter(|w| !w.chars().all(|c| "│┃|>".contains(c)))
        .collect()
}

fn config() -> String {
    let mut yaml = format!(
        "dataplane: xdp\ninterfaces:\n  - name: lb-client\n  - name: lb-backend\n\
         vrrp_instances:\n  - name: VI_1\n    interface: {BALANCER_CLIENT_IF}\n    \
         virtual_router_id: 51\n    priority: 150\n    version: 3\n    advert_int: 0.2\n    \
         virtual_ipaddresses: [\"{VIP}/32\"]\nvirtual_servers:\n"
    );
    for (port, backend_port, backends) in [(80, 8080, &[1, 2][..]), (81, 8081, &[2][..])] {
        let _ = write!(
            yaml,
            "  - address: {VIP}\n    port: {port}\n    scheduler: rr\n    real_servers:\n"
        );
        for b in backends {
            let _ = writeln!(
                yaml,
                "      - {{ address: {}, port: {backend_port} }}",
                backend_addrs(b - 1).0
            );
        }
    }
    yaml
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn top_shows_services_real_servers_and_vrrp_resizes_and_follows_keys() {
    require_root("the namespace lab");
    let tmux = Tmux::new();
    let lab = Lab::with_backends(2).expect("lab");
    let stop = StopFlag::default();
    for (i, ns) in lab.backends.iter().enumerate() {
        for port in [8080, 8081] {
            let at = SocketAddr::new(backend_addrs(i).0.parse().unwrap(), port);
            tcp_identity_server(ns, at, &format!("backend{}", i + 1), stop.clone()).unwrap();
        }
    }
    let path = temp_config("top", &config()).unwrap();
    let lbd = Daemon::start(&lab.balancer, &path, &[]).unwrap();

    let command = format!(
        "{} top --interval 0.3 --socket {}",
        binaries::lbd().display(),
        lbd.socket().display()
    );
    tmux.ok(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "80",
        "-y",
        "30",
        &command,
    ]);
    tmux.wait("MASTER and both services", |s| {
        s.contains("MASTER") && s.contains(&format!("TCP {VIP}:81"))
    });

    // Four established flows: rr puts two on each real server of port 80.
    let target = SocketAddr::new(VIP.parse().unwrap(), 80);
    let _open: Vec<IdentityConnection> = lab
        .client
        .run(|| {
            (0..4)
                .map(|_| {
                    let mut c = IdentityConnection::open(target).unwrap();
                    c.ask().unwrap();
                    c
                })
                .collect()
        })
        .unwrap();
    let backend1 = format!("{}:8080", backend_addrs(0).0);
    let backend2 = format!("{}:8080", backend_addrs(1).0);
    // rr keeps its position per CPU, so how the 4 flows split between
    // the two real servers depends on which CPUs took them: the rows
    // must add up to the service's 4, whatever the split.
    let active = |s: &str, rs: &str| -> Option<u32> {
        s.lines()
            .any(|l| l.contains(rs))
            .then(|| row(s, rs).get(3)?.parse().ok())?
    };
    let screen = tmux.wait("the 4 flows on the real servers", |s| {
        active(s, &backend1)
            .zip(active(s, &backend2))
            .map(|(a, b)| a + b)
            == Some(4)
    });
    eprintln!("lbd top at 80 columns:\n{screen}");
    // At 80 columns: each row whole on one line, without the widest columns.
    let service = row(&screen, &format!("TCP {VIP}:80"));
    assert_eq!(service[2], "rr", "{service:?}");
    assert_eq!(service[3], "4", "active flows of the service: {service:?}");
    let real = row(&screen, &backend1);
    assert_eq!(&real[1..3], ["-", "1"], "health, weight: {real:?}");
    assert!(row(&screen, "VI_1").contains(&"MASTER"));
    assert!(screen.contains(&format!("Real servers of TCP {VIP}:80")));
    assert!(
        !screen.contains("OutBPS"),
        "no room for OutBPS at 80:\n{screen}"
    );
    assert!(screen.lines().all(|l| l.chars().count() <= 80));

    // Wider: the same rows gain columns; nothing is left from the old layout.
    tmux.ok(&["resize-window", "-t", "top", "-x", "200", "-y", "30"]);
    let screen = tmux.wait("the wide layout", |s| s.contains("OutBPS"));
    eprintln!("lbd top at 200 columns:\n{screen}");
    assert!(row(&screen, "Sched").contains(&"Conns"), "{screen}");
    assert_eq!(
        screen.matches(&format!("TCP {VIP}:80")).count(),
        2,
        "the service row and the real servers' title, once each:\n{screen}"
    );

    // Keys: down picks the next service, s sorts by the next column, q quits.
    tmux.ok(&["send-keys", "-t", "top", "Down"]);
    tmux.wait("port 81 picked", |s| {
        s.contains(&format!("Real servers of TCP {VIP}:81"))
    });
    tmux.ok(&["send-keys", "-t", "top", "s"]);
    tmux.wait("sorted by CPS", |s| s.contains("sorted by CPS"));
    tmux.ok(&["send-keys", "-t", "top", "q"]);
    let start = Instant::now();
    while tmux.run(&["has-session", "-t", "top"]).status.success() {
        assert!(start.elapsed() < WAIT, "q did not end lbd top");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.stop();
}
