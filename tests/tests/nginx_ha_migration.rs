//! The NGINX HA pair migrated from keepalived as a user would: the
//! primary's keepalived.conf (VRRPv3 unicast, two weight-50 track scripts,
//! one notify script) turned into lbd's YAML by `lbd import-keepalived`, the
//! secondary's the same file with the addresses swapped and priority 100
//! (as nginx-ha-setup writes it), both run as lbd nodes in the VRRP lab.
//!
//! The three scripts the file names (/usr/lib/keepalived/nginx-ha-*) are
//! written into each node's directory with the seed's logic; the file's
//! paths are rewritten to them and /var/run to the node's `run/`. They call
//! `systemctl` and `service` for nginx: each node has stand-ins first on
//! the PATH lbd gives its scripts (`LBD_SCRIPT_PATH`), which keep nginx's
//! state in a file (`start` makes it, `stop` removes it, `status` and
//! `is-active` test it).
//!
//! Each step asserts who holds the VIP, what `lbd status` says and what the
//! notify script wrote in its state file. The SIGTERM step prints how long
//! the MASTER took from SIGTERM to exit (a figure, not a pass/fail limit).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lb_lab::privileges::require_root;
use lb_tests::{
    binaries,
    vrrp_lab::{VIP, VrrpLab, node_ip, write_script},
};
use lb_userspace::{
    daemon::status::{InstanceView, StatusReport},
    exec::{SCRIPT_PATH, SCRIPT_PATH_VAR},
};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../lb-userspace/tests/data/samples/keepalived/nginx-ha-primary.conf"
);
/// Above advert_int 1 s's master-down time and chk_manual_failover's 10 s
/// interval.
const WAIT: Duration = Duration::from_secs(20);
const A: usize = 0;
const B: usize = 1;

/// The seed's notify script: the state file, nginx started on MASTER.
const NOTIFY: &str = r#"#!/bin/sh
umask 022
TYPE=$1
NAME=$2
STATE=$3
STATEFILE=@RUN@/nginx-ha-keepalived.state
case $STATE in
    "MASTER") systemctl start nginx || exit 1
              echo "STATE=$STATE" > $STATEFILE
              exit 0
              ;;
    *)        echo "STATE=$STATE" > $STATEFILE
              exit 0
              ;;
esac
"#;

/// The seed's health check: nginx must run, whatever the node's state.
const CHECK: &str = r#"#!/bin/sh
STATEFILE=@RUN@/nginx-ha-keepalived.state
if [ -s "$STATEFILE" ]; then
    . "$STATEFILE"
    case "$STATE" in
        "BACKUP"|"MASTER"|"FAULT"|"STOP") service nginx status >/dev/null 2>&1; exit $? ;;
        *) exit 1 ;;
    esac
fi
service nginx status >/dev/null 2>&1
"#;

/// Fails while the operator's manual-failover file exists.
const MANUAL_FAILOVER: &str = r"#!/bin/sh
[ ! -e @RUN@/nginx-ha-keepalived.manual-failover ]
";

/// Stand-in for `systemctl VERB [--quiet] nginx`.
const SYSTEMCTL: &str = r#"#!/bin/sh
verb=$1; shift
[ "$1" = --quiet ] && shift
case "$1" in nginx|nginx.service) ;; *) echo "stand-in systemctl knows only nginx" >&2; exit 2 ;; esac
case $verb in
    start) touch @RUN@/nginx.running ;;
    stop) rm -f @RUN@/nginx.running ;;
    status|is-active) [ -e @RUN@/nginx.running ] ;;
    *) echo "stand-in systemctl: $verb?" >&2; exit 2 ;;
esac
"#;

/// Stand-in for `service NAME VERB`: as Debian's, through systemctl.
const SERVICE: &str = "#!/bin/sh\nexec systemctl \"$2\" \"$1\"\n";

/// One node's files: `run/` stands for /var/run, `bin/` holds the
/// stand-ins, `scripts/` the three scripts.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn run(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn write(dir: &Path) -> Self {
        let files = Self {
            dir: dir.to_owned(),
        };
        let run = files.run();
        for sub in ["run", "bin", "scripts"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let with_run = |text: &str| text.replace("@RUN@", &run.to_string_lossy());
        for (path, text) in [
            ("scripts/nginx-ha-notify", NOTIFY),
            ("scripts/nginx-ha-check", CHECK),
            ("scripts/nginx-ha-manual-failover", MANUAL_FAILOVER),
            ("bin/systemctl", SYSTEMCTL),
            ("bin/service", SERVICE),
        ] {
            write_script(&dir.join(path), &with_run(text)).unwrap();
        }
        files
    }

    /// The node's keepalived.conf: the sample with the lab's addresses and
    /// this node's script paths; the secondary at priority 100.
    fn keepalived_conf(&self, node: usize) -> String {
        let sample = std::fs::read_to_string(SAMPLE).unwrap();
        let text = sample
            .replace("10.1.1.100", VIP)
            .replace("10.1.1.7", "@SELF@")
            .replace("10.1.1.8", "@PEER@")
            .replace("@SELF@", &node_ip(node, 0))
            .replace("@PEER@", &node_ip(1 - node, 0))
            .replace(
                "/usr/lib/keepalived",
                &self.dir.join("scripts").to_string_lossy(),
            );
        let mut conf: String = text
            .lines()
            .map(|line| {
                if node == B && line.trim_start().starts_with("priority ") {
                    "        priority 100".to_owned()
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        conf.push('\n');
        conf
    }

    /// `lbd import-keepalived` of [`Self::keepalived_conf`].
    fn import(&self, node: usize) -> String {
        let conf = self.dir.join("keepalived.conf");
        std::fs::write(&conf, self.keepalived_conf(node)).unwrap();
        let out = std::process::Command::new(binaries::lbd())
            .arg("import-keepalived")
            .arg(&conf)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "lbd import-keepalived failed:\n{stderr}"
        );
        assert!(
            stderr.contains("imported 1 vrrp instance(s), 0 virtual server(s)"),
            "{stderr}"
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn state(&self) -> String {
        std::fs::read_to_string(self.run().join("nginx-ha-keepalived.state")).unwrap_or_default()
    }

    fn nginx(&self, running: bool) {
        let path = self.run().join("nginx.running");
        if running {
            std::fs::write(path, "").unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }

    fn manual_failover(&self, on: bool) {
        let path = self.run().join("nginx-ha-keepalived.manual-failover");
        if on {
            std::fs::write(path, "").unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
}

struct Pair {
    lab: VrrpLab,
    files: [Files; 2],
    configs: [String; 2],
}

impl Pair {
    fn new() -> Self {
        require_root("the VRRP lab");
        let lab = VrrpLab::new().expect("lab");
        let files = [
            Files::write(&lab.nodes[A].dir),
            Files::write(&lab.nodes[B].dir),
        ];
        let configs = [files[A].import(A), files[B].import(B)];
        // nginx runs on both nodes, as in the NGINX HA setup.
        files[A].nginx(true);
        files[B].nginx(true);
        Self {
            lab,
            files,
            configs,
        }
    }

    /// Starts node `i`'s lbd with the stand-ins first on its PATH.
    fn start(&mut self, i: usize) {
        let node = &mut self.lab.nodes[i];
        // lbd gives scripts a fixed PATH; this variable replaces it.
        let path = format!(
            "{SCRIPT_PATH_VAR}={}:{SCRIPT_PATH}",
            node.dir.join("bin").display()
        );
        node.start_wrapped(&["env", &path], &self.configs[i])
            .unwrap();
    }

    fn instance(&self, i: usize) -> InstanceView {
        let daemon = self.lab.nodes[i].daemon.as_ref().expect("running");
        let out = daemon.ctl(&["status", "--json"]).unwrap();
        assert!(out.status.success(), "{out:?}");
        let report: StatusReport = serde_json::from_slice(&out.stdout).unwrap();
        report.vrrp_instances.into_iter().next().expect("VI_1")
    }

    fn table(&self, i: usize) -> String {
        let daemon = self.lab.nodes[i].daemon.as_ref().expect("running");
        String::from_utf8_lossy(&daemon.ctl(&["status"]).unwrap().stdout).into_owned()
    }

    /// Waits until `holder` alone holds the VIP, `lbd status` on both says
    /// so (with these effective priorities) and both notify state files
    /// agree.
    fn settled(&self, holder: usize, priorities: [u8; 2]) {
        self.lab
            .wait_sole_holder(VIP, self.lab.nodes[holder].name, WAIT)
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            let states: Vec<(String, u8, String)> = [A, B]
                .iter()
                .map(|&i| {
                    let v = self.instance(i);
                    (v.state, v.priority, self.files[i].state())
                })
                .collect();
            let expected: Vec<(String, u8, String)> = [A, B]
                .iter()
                .map(|&i| {
                    let state = if i == holder { "MASTER" } else { "BACKUP" };
                    (state.into(), priorities[i], format!("STATE={state}\n"))
                })
                .collect();
            if states == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "(state, priority, notify state file) of a and b: {states:?}, expected \
                 {expected:?}\n{}",
                self.lab.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn nginx_ha_pair_imported_from_keepalived_fails_over_and_back_at_each_step() {
    let mut pair = Pair::new();
    // Both files import to what keepalived runs: v3 unicast to the peer,
    // the two weight-50 scripts, notify, and nothing to attach XDP to.
    for (i, config) in pair.configs.iter().enumerate() {
        for expected in [
            "version: 3".to_owned(),
            format!("unicast_peers:\n  - \"{}\"", node_ip(1 - i, 0)),
            "- chk_nginx_service\n  - chk_manual_failover".to_owned(),
            "weight: 50".to_owned(),
            "notify: ".to_owned(),
        ] {
            assert!(config.contains(&expected), "{expected:?} in:\n{config}");
        }
        assert!(!config.contains("interfaces:"), "{config}");
    }

    // Election: a (101 + 50 + 50) over b (100 + 50 + 50).
    pair.start(A);
    pair.start(B);
    pair.settled(A, [201, 200]);
    pair.lab.reached_through(VIP, "a", WAIT).unwrap();

    // A health-script failure: nginx stops on a; chk_nginx_service's 50
    // goes, a (151) yields to b (200). nginx back: a preempts.
    pair.files[A].nginx(false);
    pair.settled(B, [151, 200]);
    pair.lab.reached_through(VIP, "b", WAIT).unwrap();
    pair.files[A].nginx(true);
    pair.settled(A, [201, 200]);

    // The manual-failover file: chk_manual_failover fails on a, same move;
    // removed, a takes the VIP back.
    pair.files[A].manual_failover(true);
    pair.settled(B, [151, 200]);
    pair.files[A].manual_failover(false);
    pair.settled(A, [201, 200]);

    // `lbd failover VI_1` on a: b takes over; a stays BACKUP at 201 and its
    // status says why; b hands back with the same command.
    let out = pair.lab.nodes[A]
        .daemon
        .as_ref()
        .unwrap()
        .ctl(&["failover", "VI_1"])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    pair.settled(B, [201, 200]);
    assert!(pair.instance(A).handed_over);
    let table = pair.table(A);
    assert!(table.contains("BACKUP (handed over) 201"), "{table}");
    let out = pair.lab.nodes[B]
        .daemon
        .as_ref()
        .unwrap()
        .ctl(&["failover", "VI_1"])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    pair.settled(A, [201, 200]);
    assert!(!pair.instance(A).handed_over);

    // SIGTERM on the MASTER: it hands over and exits; b takes the VIP; a's
    // notify STOP ran before the exit.
    let daemon = pair.lab.nodes[A].daemon.as_mut().unwrap();
    let sent = Instant::now();
    let status = daemon.signal_and_wait(libc::SIGTERM, WAIT).unwrap();
    let to_exit = sent.elapsed();
    assert!(status.success(), "lbd exits 0 on SIGTERM: {status}");
    let took_over = pair.lab.wait_sole_holder(VIP, "b", WAIT).unwrap();
    eprintln!(
        "SIGTERM to exit: {:.3} s; b held the VIP {:.3} s after a exited",
        to_exit.as_secs_f64(),
        took_over.as_secs_f64()
    );
    assert_eq!(pair.files[A].state(), "STATE=STOP\n");
    assert_eq!(
        pair.lab.nodes[A].state_file("VI_1").unwrap(),
        "STATE=STOP\n"
    );
    let b = pair.instance(B);
    assert_eq!((b.state.as_str(), b.priority), ("MASTER", 200));
    assert_eq!(pair.files[B].state(), "STATE=MASTER\n");
    pair.lab.reached_through(VIP, "b", WAIT).unwrap();

    // Restart and failback: a comes back as BACKUP, its scripts raise it to
    // 201 and it preempts; at no moment do both hold the VIP.
    pair.start(A);
    let deadline = Instant::now() + WAIT;
    loop {
        let holders = pair.lab.holders(VIP).unwrap();
        assert!(
            holders.len() < 2,
            "two holders: {holders:?}\n{}",
            pair.lab.logs()
        );
        if holders == ["a"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a never took the VIP back\n{}",
            pair.lab.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    pair.settled(A, [201, 200]);
    pair.lab.reached_through(VIP, "a", WAIT).unwrap();
}
