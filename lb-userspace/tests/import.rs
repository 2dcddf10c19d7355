//! `lbd import-keepalived` / `import-ldirectord`: the reader's include
//! handling on real files, and every user sample (`tests/data/samples/keepalived`) converted to a config
//! that `lbd check` accepts.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use std::{net::IpAddr, time::Duration};

use lb_userspace::{
    config::{
        self, AuthType, Check, Config, ForwardingMethod, InitialState, NegotiateService, Protocol,
        Scheduler, VirtualServer, VrrpInstance,
    },
    import::{
        self, Imported,
        keepalived::{self, ParseError},
    },
};

/// A directory under the system temp dir, removed on drop so a failing test
/// leaves nothing behind.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "lbd-import-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(unique);
        fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create temp subdir");
        }
        fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn names(directives: &[keepalived::Directive]) -> Vec<String> {
    directives
        .iter()
        .map(|d| {
            std::iter::once(d.name.clone())
                .chain(d.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn include_glob_is_relative_to_the_including_file_and_sorted() {
    let dir = TempDir::new("glob");
    dir.write("conf.d/20-b.conf", "vrrp_instance B {\n}\n");
    dir.write("conf.d/10-a.conf", "vrrp_instance A {\n}\n");
    dir.write("conf.d/README", "not matched\n");
    dir.write("conf.d/sub/30-c.conf", "vrrp_instance C {\n}\n");
    let main = dir.write(
        "keepalived.conf",
        "global_defs {\n}\ninclude conf.d/*.conf\nvirtual_server 1.2.3.4 80 {\n}\n",
    );
    let parsed = keepalived::parse_file(&main).expect("configuration with includes should parse");
    assert_eq!(
        names(&parsed.directives),
        [
            "global_defs",
            "vrrp_instance A",
            "vrrp_instance B",
            "virtual_server 1.2.3.4 80"
        ]
    );
    let a = &parsed.directives[1];
    assert_eq!(
        a.at.file,
        dir.0.join("conf.d/10-a.conf"),
        "locations name the included file"
    );
    assert_eq!(a.at.line, 1);
    assert!(parsed.unmatched_includes.is_empty());
}

#[test]
fn include_inside_a_block_is_spliced_in_place() {
    let dir = TempDir::new("splice");
    dir.write("vips", "10.0.0.1\n10.0.0.2 dev eth0\n");
    let main = dir.write(
        "keepalived.conf",
        "vrrp_instance A {\n  virtual_ipaddress {\n    include vips\n  }\n}\n",
    );
    let parsed = keepalived::parse_file(&main).expect("include inside a block should parse");
    let vips = &parsed.directives[0].children[0];
    assert_eq!(names(&vips.children), ["10.0.0.1", "10.0.0.2 dev eth0"]);
}

#[test]
fn include_with_an_absolute_path() {
    let dir = TempDir::new("absolute");
    let other = dir.write("elsewhere/x.conf", "global_defs {\n}\n");
    let main = dir.write(
        "etc/keepalived.conf",
        &format!("include \"{}\"\n", other.display()),
    );
    let parsed = keepalived::parse_file(&main).expect("absolute include should parse");
    assert_eq!(names(&parsed.directives), ["global_defs"]);
}

#[test]
fn include_that_matches_nothing_is_reported_not_fatal() {
    let dir = TempDir::new("nomatch");
    let main = dir.write(
        "keepalived.conf",
        "include conf.d/*.conf\nglobal_defs {\n}\n",
    );
    let parsed = keepalived::parse_file(&main).expect("an empty include glob is not an error");
    assert_eq!(names(&parsed.directives), ["global_defs"]);
    assert_eq!(parsed.unmatched_includes.len(), 1);
    assert_eq!(parsed.unmatched_includes[0].pattern, "conf.d/*.conf");
    assert_eq!(parsed.unmatched_includes[0].at.line, 1);
}

#[test]
fn include_loop_is_an_error_naming_the_include_line() {
    let dir = TempDir::new("loop");
    dir.write("a.conf", "global_defs {\n}\ninclude b.conf\n");
    dir.write("b.conf", "\n\ninclude a.conf\n");
    let main = dir.0.join("a.conf");
    let err = keepalived::parse_file(&main).expect_err("an include loop must be refused");
    let ParseError::IncludeLoop { at, .. } = &err else {
        panic!("expected an include loop error, got: {err}");
    };
    assert_eq!(at.file, dir.0.join("b.conf"));
    assert_eq!(at.line, 3);
}

#[test]
fn self_include_is_a_loop() {
    let dir = TempDir::new("self");
    let main = dir.write("k.conf", "include k.conf\n");
    let err = keepalived::parse_file(&main).expect_err("a file including itself must be refused");
    assert!(matches!(err, ParseError::IncludeLoop { .. }), "got: {err}");
}

#[test]
fn unterminated_block_in_an_included_file_names_that_file() {
    let dir = TempDir::new("unterminated");
    dir.write("inc.conf", "\nvrrp_instance X {\n  state MASTER\n");
    let main = dir.write("keepalived.conf", "include inc.conf\n");
    let err = keepalived::parse_file(&main).expect_err("an unclosed block must be refused");
    let expected = format!(
        "{}:2: block `vrrp_instance` is never closed with `}}`",
        dir.0.join("inc.conf").display()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let err = keepalived::parse_file(Path::new("/nonexistent/keepalived.conf"))
        .expect_err("a missing file must be an error");
    assert!(
        err.to_string().contains("/nonexistent/keepalived.conf"),
        "got: {err}"
    );
}

// ---- conversion -------------------------------------------------------

/// The user samples; a missing folder fails the test instead of skipping it.
fn samples() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/samples/keepalived");
    assert!(
        dir.is_dir(),
        "the keepalived/ldirectord samples are missing: looked in {}",
        dir.display()
    );
    dir
}

fn sample(name: &str) -> PathBuf {
    let path = samples().join(name);
    assert!(path.is_file(), "sample {} is missing", path.display());
    path
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/import")
        .join(name)
}

/// The YAML the importer prints must pass `lbd check` and read back to the
/// same config.
fn assert_checks_clean(imported: &Imported, what: &str) -> Config {
    let yaml = imported.to_yaml_with_comments();
    let loaded = config::load_str(&yaml, what).unwrap_or_else(|e| {
        panic!("`lbd check` rejects the import of {what}:\n{e}\n--- YAML ---\n{yaml}")
    });
    assert_eq!(
        loaded.config, imported.config,
        "{what}: the YAML does not read back the same"
    );
    loaded.config
}

fn import_keepalived(path: &Path) -> Imported {
    import::import_keepalived(path)
        .unwrap_or_else(|e| panic!("import-keepalived {} failed: {e}", path.display()))
}

fn import_ldirectord(path: &Path) -> Imported {
    import::import_ldirectord(path)
        .unwrap_or_else(|e| panic!("import-ldirectord {} failed: {e}", path.display()))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn instance<'a>(config: &'a Config, name: &str) -> &'a VrrpInstance {
    config
        .vrrp_instances
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("vrrp instance {name} was not imported"))
}

fn virtual_server<'a>(config: &'a Config, address: &str, port: u16) -> &'a VirtualServer {
    config
        .virtual_servers
        .iter()
        .find(|vs| vs.address == ip(address) && vs.port == port)
        .unwrap_or_else(|| panic!("virtual server {address}:{port} was not imported"))
}

fn skipped_names(imported: &Imported) -> Vec<&str> {
    imported
        .skipped
        .iter()
        .map(|s| s.directive.as_str())
        .collect()
}

#[test]
fn every_sample_converts_and_checks_clean() {
    let mut seen = 0;
    let mut entries: Vec<PathBuf> = fs::read_dir(samples())
        .expect("read the samples folder")
        .map(|e| e.expect("read a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let imported = match path.extension().and_then(|e| e.to_str()) {
            Some("conf") => import_keepalived(&path),
            Some("cf") => import_ldirectord(&path),
            _ => panic!(
                "{} is neither a keepalived .conf nor an ldirectord .cf",
                path.display()
            ),
        };
        assert_checks_clean(&imported, &path.display().to_string());
        seen += 1;
    }
    assert!(seen >= 4, "expected at least 4 samples, found {seen}");
}

#[test]
fn unicast_notify_pass_sample() {
    let imported = import_keepalived(&sample("unicast-notify-pass.conf"));
    let config = assert_checks_clean(&imported, "unicast-notify-pass.conf");
    assert!(
        imported.skipped.is_empty(),
        "nothing should be skipped: {:?}",
        imported.skipped
    );
    let vi = instance(&config, "VI_1");
    assert_eq!(vi.state, InitialState::Backup);
    assert_eq!(vi.interface, "eth1");
    assert_eq!(vi.virtual_router_id, 51);
    assert_eq!(vi.priority, 100);
    assert_eq!(vi.advert_int, Duration::from_secs(1));
    let auth = vi.authentication.as_ref().expect("authentication imported");
    assert_eq!(
        (auth.auth_type, auth.auth_pass.as_str()),
        (AuthType::Pass, "1111")
    );
    let vips: Vec<String> = vi
        .virtual_ipaddresses
        .iter()
        .map(|v| v.address.to_string())
        .collect();
    assert_eq!(vips, ["192.168.33.20"]);
    assert_eq!(vi.unicast_peers, [ip("192.168.33.11"), ip("192.168.33.12")]);
    assert_eq!(vi.notify_master.as_deref(), Some("/tmp/master.sh"));
    assert_eq!(vi.notify_backup.as_deref(), Some("/tmp/backup.sh"));
    assert!(
        config.interfaces.is_empty(),
        "a VRRP-only node has nothing to forward: no XDP interface, got {:?}",
        config.interfaces
    );
}

/// The HTTP_GET real servers of both LVS samples.
fn assert_two_http_get_real_servers(vs: &VirtualServer) {
    assert_eq!(vs.scheduler, Scheduler::Rr);
    assert_eq!(vs.method, ForwardingMethod::Nat);
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(vs.delay_loop, Duration::from_secs(5));
    let addresses: Vec<IpAddr> = vs.real_servers.iter().map(|r| r.address).collect();
    assert_eq!(addresses, [ip("10.2.1.242"), ip("10.2.1.243")]);
    for rs in &vs.real_servers {
        assert_eq!(rs.port, Some(80));
        assert_eq!(rs.weight, 1);
        assert!(
            rs.inhibit_on_failure,
            "{} keeps inhibit_on_failure",
            rs.address
        );
        let [Check::HttpGet(http)] = rs.checks.as_slice() else {
            panic!(
                "{} should have one HTTP_GET check, has {:?}",
                rs.address, rs.checks
            );
        };
        assert_eq!(http.urls.len(), 1);
        assert_eq!(http.urls[0].path, "/");
        assert_eq!(http.urls[0].status_code, Some(200));
        assert_eq!(http.connect_timeout, Duration::from_secs(5));
        assert_eq!(http.delay_before_retry, Duration::from_secs(3));
    }
}

#[test]
fn lvs_nat_http_get_sample() {
    let imported = import_keepalived(&sample("lvs-nat-http-get.conf"));
    let config = assert_checks_clean(&imported, "lvs-nat-http-get.conf");
    assert!(
        imported.skipped.is_empty(),
        "nothing should be skipped: {:?}",
        imported.skipped
    );
    assert!(config.vrrp_instances.is_empty());
    assert!(
        config.interfaces.is_empty(),
        "no instance, so no interface to derive"
    );
    assert_two_http_get_real_servers(virtual_server(&config, "10.2.0.240", 80));
}

#[test]
fn sync_group_two_vips_sample() {
    let imported = import_keepalived(&sample("sync-group-two-vips-lvs.conf"));
    let config = assert_checks_clean(&imported, "sync-group-two-vips-lvs.conf");
    assert!(
        imported.skipped.is_empty(),
        "the commented-out mail settings are comments, not directives: {:?}",
        imported.skipped
    );
    assert_eq!(config.global.router_id.as_deref(), Some("LVS_DEVEL"));
    let ext = instance(&config, "VI_EXT");
    let int = instance(&config, "VI_INT");
    assert_eq!((ext.interface.as_str(), ext.virtual_router_id), ("ens3", 1));
    assert_eq!((int.interface.as_str(), int.virtual_router_id), ("ens4", 2));
    for vi in [ext, int] {
        assert_eq!(vi.state, InitialState::Master);
        assert_eq!(vi.priority, 105);
    }
    assert_eq!(config.sync_groups.len(), 1);
    assert_eq!(config.sync_groups[0].name, "VG1");
    assert_eq!(config.sync_groups[0].group, ["VI_EXT", "VI_INT"]);
    let interfaces: Vec<&str> = config.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(interfaces, ["ens3", "ens4"]);
    assert_two_http_get_real_servers(virtual_server(&config, "10.2.0.254", 80));
}

#[test]
fn ldirectord_sample() {
    let imported = import_ldirectord(&sample("ldirectord.cf"));
    let config = assert_checks_clean(&imported, "ldirectord.cf");
    let vs = virtual_server(&config, "10.2.0.240", 80);
    assert_eq!(vs.name.as_deref(), Some("Web Site"));
    assert_eq!(vs.scheduler, Scheduler::Rr);
    assert_eq!(vs.method, ForwardingMethod::Nat, "masq is NAT");
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(
        vs.delay_loop,
        Duration::from_secs(1),
        "global checkinterval"
    );
    let sorry = vs
        .sorry_server
        .as_ref()
        .expect("fallback becomes the sorry server");
    assert_eq!((sorry.address, sorry.port), (ip("127.0.0.1"), Some(80)));
    assert_eq!(vs.real_servers.len(), 2);
    for rs in &vs.real_servers {
        assert!(
            !rs.inhibit_on_failure,
            "quiescent=no removes failed servers"
        );
        let [Check::Negotiate(n)] = rs.checks.as_slice() else {
            panic!(
                "{} should have one negotiate check, has {:?}",
                rs.address, rs.checks
            );
        };
        assert_eq!(n.service, NegotiateService::Http);
        assert_eq!(n.request.as_deref(), Some("/index.html"));
        assert_eq!(n.receive.as_deref(), Some("debian11"));
        assert_eq!(n.connect_port, Some(80));
        assert_eq!(
            n.connect_timeout,
            Duration::from_secs(3),
            "global checktimeout"
        );
        assert_eq!(n.retry, 0, "failurecount 1: down on the first failure");
    }
    assert!(
        config.global.autoreload,
        "autoreload=yes is global.autoreload"
    );
    let skipped = skipped_names(&imported);
    assert!(
        !skipped.iter().any(|s| s.starts_with("autoreload")),
        "autoreload was imported, not dropped: {skipped:?}"
    );
    assert!(
        imported.changed.is_empty(),
        "the fallback's method is the reals' (masq): nothing changed: {:?}",
        imported.changed
    );
    assert!(
        skipped.iter().any(|s| s.starts_with("comment")),
        "{skipped:?}"
    );
    let yaml = imported.to_yaml_with_comments();
    assert!(
        yaml.lines().any(|l| l
            .starts_with("# not imported: comment=Test load balanced web site (")
            && l.contains("ldirectord.cf:8)")),
        "the skipped directive is a comment naming file and line:\n{yaml}"
    );
}

#[test]
fn ldirectord_fallback_on_gate_is_the_sorry_server_with_only_its_method_reported() {
    let imported = import_ldirectord(&sample("ldirectord-fallback-gate.cf"));
    let config = assert_checks_clean(&imported, "ldirectord-fallback-gate.cf");
    let vs = virtual_server(&config, "10.2.0.240", 80);
    let sorry = vs
        .sorry_server
        .as_ref()
        .expect("fallback is the sorry server");
    assert_eq!((sorry.address, sorry.port), (ip("127.0.0.1"), Some(80)));
    assert_eq!(vs.method, ForwardingMethod::Nat, "the reals' masq");
    assert!(
        config.global.autoreload,
        "autoreload=yes is global.autoreload"
    );
    assert!(
        vs.real_servers.iter().all(|rs| !rs.inhibit_on_failure),
        "quiescent=no"
    );
    assert_eq!(
        skipped_names(&imported),
        Vec::<&str>::new(),
        "every directive of this file has an lbd equivalent"
    );
    let [changed] = imported.changed.as_slice() else {
        panic!(
            "exactly the fallback's method changed: {:?}",
            imported.changed
        );
    };
    assert_eq!(changed.directive, "fallback=127.0.0.1:80 gate");
    assert!(
        changed.reason.contains("gate") && changed.reason.contains("masq"),
        "{changed}"
    );
    let yaml = imported.to_yaml_with_comments();
    assert!(
        yaml.lines()
            .any(|l| l.starts_with("# imported with a change: fallback=127.0.0.1:80 gate (")),
        "{yaml}"
    );
    assert!(!yaml.contains("# not imported"), "{yaml}");
}

#[test]
fn nginx_ha_pair_imports_its_prefixed_source_address_and_attaches_no_xdp() {
    let imported = import_keepalived(&sample("nginx-ha-primary.conf"));
    let config = assert_checks_clean(&imported, "nginx-ha-primary.conf");
    let vi = instance(&config, "VI_1");
    assert_eq!(
        vi.unicast_src_ip,
        Some(ip("10.1.1.7")),
        "unicast_src_ip 10.1.1.7/24 is accepted, as keepalived does"
    );
    assert_eq!(vi.unicast_peers, [ip("10.1.1.8")]);
    assert_eq!(vi.track_scripts.len(), 2);
    assert!(
        config.interfaces.is_empty(),
        "no virtual server: no XDP program on a VRRP-only node, got {:?}",
        config.interfaces
    );
    let changed: Vec<String> = imported.changed.iter().map(ToString::to_string).collect();
    assert!(
        changed
            .iter()
            .any(|c| c.starts_with("unicast_src_ip 10.1.1.7/24") && c.contains("/24 is dropped")),
        "the dropped prefix length is reported: {changed:?}"
    );
    assert!(
        !skipped_names(&imported)
            .iter()
            .any(|s| s.starts_with("unicast_src_ip")),
        "{:?}",
        imported.skipped
    );
}

#[test]
fn keepalived_alpha_starts_real_servers_down() {
    let dir = TempDir::new("alpha");
    let path = dir.write(
        "keepalived.conf",
        "virtual_server 10.0.0.1 80 {\n  lvs_sched rr\n  alpha\n  real_server 10.0.0.2 80 {\n    \
         TCP_CHECK {\n      connect_timeout 3\n    }\n  }\n}\n",
    );
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "alpha");
    assert!(virtual_server(&config, "10.0.0.1", 80).alpha);
    assert!(
        imported.skipped.is_empty() && imported.changed.is_empty(),
        "{:?} {:?}",
        imported.skipped,
        imported.changed
    );
}

#[test]
fn keepalived_with_includes_and_odd_directives() {
    let path = data("keepalived/keepalived.conf");
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "keepalived.conf");

    assert_eq!(config.global.router_id.as_deref(), Some("lb1"));
    assert_eq!(
        config.global.script_user.as_deref(),
        Some("keepalived_script")
    );
    assert!(config.global.enable_script_security);
    assert_eq!(config.global.conntrack.tcp, Some(Duration::from_hours(2)));
    assert_eq!(
        config.global.conntrack.tcp_fin,
        Some(Duration::from_mins(2))
    );
    assert_eq!(config.global.conntrack.udp, Some(Duration::from_mins(5)));

    let web = instance(&config, "VI_WEB");
    assert!(!web.preempt, "nopreempt");
    assert_eq!(web.preempt_delay, Duration::from_secs(30));
    assert_eq!(
        web.garp_master_refresh,
        Some(Duration::from_mins(1)),
        "from global_defs"
    );
    let vip = &web.virtual_ipaddresses[0];
    assert_eq!(vip.address.to_string(), "192.0.2.10/24");
    assert_eq!(vip.brd, Some(ip("192.0.2.255")));
    assert_eq!(vip.dev.as_deref(), Some("eth0"));
    assert_eq!(vip.label.as_deref(), Some("eth0:web"));
    assert_eq!(web.virtual_ipaddresses[1].address.to_string(), "192.0.2.11");
    assert_eq!(web.unicast_src_ip, Some(ip("10.0.0.11")));
    assert_eq!(
        web.track_scripts.len(),
        1,
        "the undefined chk_missing is dropped"
    );
    assert_eq!(web.track_scripts[0].weight, Some(-30));
    assert_eq!(web.track_interfaces[0].name, "eth1");
    assert_eq!(
        web.notify_master.as_deref(),
        Some("/etc/keepalived/notify.sh master")
    );

    let db = instance(&config, "VI_DB");
    assert_eq!(db.virtual_router_id, 52);
    assert_eq!(db.state, InitialState::Backup, "keepalived's default state");
    assert_eq!(config.sync_groups[0].group, ["VI_WEB", "VI_DB"]);
    assert_eq!(
        config.interfaces.len(),
        1,
        "eth0 once, though two instances use it"
    );

    let script = &config.track_scripts[0];
    assert_eq!(script.script, "killall -0 haproxy");
    assert_eq!(
        (script.interval, script.weight),
        (Duration::from_secs(2), -20)
    );
    assert_eq!((script.rise, script.fall), (2, 3));

    let dns = virtual_server(&config, "192.0.2.53", 53);
    assert_eq!(dns.protocol, Protocol::Udp);
    let https = virtual_server(&config, "192.0.2.10", 443);
    assert_eq!(
        (https.scheduler, https.method),
        (Scheduler::Wlc, ForwardingMethod::Dr)
    );
    assert_eq!(https.persistence_timeout, Some(Duration::from_mins(5)));
    let sorry = https.sorry_server.as_ref().expect("sorry_server");
    assert_eq!((sorry.address, sorry.port), (ip("10.0.1.99"), Some(443)));
    let [Check::SslGet(ssl)] = https.real_servers[0].checks.as_slice() else {
        panic!(
            "10.0.1.1 should have one SSL_GET: {:?}",
            https.real_servers[0].checks
        );
    };
    assert_eq!(
        ssl.urls[0].digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );
    assert_eq!(ssl.connect_timeout, Duration::from_secs(2));
    assert_eq!(ssl.retry, 3, "the virtual server's retry is inherited");
    let [Check::TcpCheck(tcp), Check::MiscCheck(misc)] = https.real_servers[1].checks.as_slice()
    else {
        panic!(
            "10.0.1.2 should have TCP_CHECK and MISC_CHECK: {:?}",
            https.real_servers[1].checks
        );
    };
    assert_eq!(tcp.connect_port, Some(8443));
    assert_eq!(
        tcp.delay_before_retry,
        Duration::from_secs(4),
        "the real server's setting"
    );
    assert_eq!(misc.misc_path, "/usr/local/bin/check_app 10.0.1.2");
    assert!(misc.misc_dynamic);

    let skipped = skipped_names(&imported);
    for expected in [
        "notification_email",
        "smtp_server 10.0.0.25",
        "vrrp_strict",
        "192.0.2.11 scope link",
        "chk_missing",
        "smtp_alert",
        "include optional.d/*.conf",
        "static_ipaddress",
        "SMTP_CHECK",
        "virtual_server fwmark 7",
        "frobnicate yes",
    ] {
        assert!(
            skipped.contains(&expected),
            "`{expected}` should be reported: {skipped:?}"
        );
    }
    // No lvs_sched: imported, with lbd's default scheduler instead of
    // keepalived's, and said so (not as dropped).
    let changed: Vec<&str> = imported
        .changed
        .iter()
        .map(|s| s.directive.as_str())
        .collect();
    assert!(
        changed.contains(&"virtual_server 192.0.2.53 53")
            && !skipped.contains(&"virtual_server 192.0.2.53 53"),
        "changed: {changed:?}, skipped: {skipped:?}"
    );
    let frob = imported
        .skipped
        .iter()
        .find(|s| s.directive == "frobnicate yes")
        .expect("frobnicate");
    assert_eq!(
        frob.at.file,
        data("keepalived/conf.d/10-dns.conf"),
        "named in its included file"
    );
    assert_eq!(frob.at.line, 4);
}

#[test]
fn ldirectord_with_global_defaults_and_odd_lines() {
    let imported = import_ldirectord(&data("ldirectord-full.cf"));
    let config = assert_checks_clean(&imported, "ldirectord-full.cf");
    assert_eq!(
        config.virtual_servers.len(),
        4,
        "the fwmark service is skipped"
    );

    let web = virtual_server(&config, "192.0.2.80", 80);
    assert_eq!(
        (web.scheduler, web.method),
        (Scheduler::Wlc, ForwardingMethod::Dr)
    );
    assert_eq!(web.persistence_timeout, Some(Duration::from_mins(10)));
    assert_eq!(web.delay_loop, Duration::from_secs(15));
    assert_eq!(web.real_servers.len(), 2, "the address range is skipped");
    let first = &web.real_servers[0];
    assert_eq!(first.weight, 5);
    assert!(
        first.inhibit_on_failure,
        "ldirectord's default quiescent=yes"
    );
    let [Check::Negotiate(n)] = first.checks.as_slice() else {
        panic!("negotiate expected: {:?}", first.checks);
    };
    assert_eq!(
        n.request.as_deref(),
        Some("/check.html"),
        "the real server's own request"
    );
    assert_eq!(n.receive.as_deref(), Some("alive"));
    assert_eq!(n.virtualhost.as_deref(), Some("www.example.com"));
    assert_eq!(
        n.connect_timeout,
        Duration::from_secs(10),
        "negotiatetimeout"
    );
    assert_eq!(n.retry, 2, "failurecount 3");
    let [Check::Negotiate(n)] = web.real_servers[1].checks.as_slice() else {
        panic!("negotiate expected: {:?}", web.real_servers[1].checks);
    };
    assert_eq!(
        (n.request.as_deref(), n.receive.as_deref()),
        (Some("/"), Some("OK"))
    );
    let sorry = web.sorry_server.as_ref().expect("global fallback");
    assert_eq!(sorry.address, ip("127.0.0.1"));

    let app = virtual_server(&config, "192.0.2.81", 8080);
    assert_eq!(app.method, ForwardingMethod::Nat);
    assert!(
        !app.real_servers[0].inhibit_on_failure,
        "quiescent=no in the section"
    );
    let [Check::TcpCheck(tcp)] = app.real_servers[0].checks.as_slice() else {
        panic!("connect check expected: {:?}", app.real_servers[0].checks);
    };
    assert_eq!(tcp.connect_port, Some(8081));
    assert_eq!(tcp.connect_timeout, Duration::from_secs(4), "checktimeout");
    assert_eq!(
        app.sorry_server.as_ref().map(|s| s.address),
        Some(ip("10.0.3.99"))
    );

    let oracle = virtual_server(&config, "192.0.2.82", 1521);
    assert!(matches!(
        oracle.real_servers[0].checks.as_slice(),
        [Check::TcpCheck(_)]
    ));

    let dns = virtual_server(&config, "2001:db8::82", 53);
    assert_eq!(
        dns.protocol,
        Protocol::Udp,
        "ldirectord's default for port 53"
    );
    assert_eq!(
        dns.sorry_server, None,
        "the IPv4 global fallback is not for IPv6"
    );
    let [Check::MiscCheck(misc)] = dns.real_servers[0].checks.as_slice() else {
        panic!("external check expected: {:?}", dns.real_servers[0].checks);
    };
    assert_eq!(misc.misc_path, "/usr/local/bin/check_dns");

    let skipped = skipped_names(&imported);
    for expected in [
        "emailalert=ops@example.com",
        "logfile=local0",
        "real=10.0.3.3->10.0.3.9:80 gate",
        "netmask=255.255.255.0",
        "virtual=192.0.2.82:1521",
        "virtual=42",
    ] {
        assert!(
            skipped.contains(&expected),
            "`{expected}` should be reported: {skipped:?}"
        );
    }
}

#[test]
fn unknown_directives_become_comments_not_errors() {
    let dir = TempDir::new("unknown");
    let path = dir.write(
        "keepalived.conf",
        "frobnicate 1\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 9\n  \
         wibble {\n    x y\n  }\n  priority 300\n}\nvirtual_server 10.0.0.1 80 {\n  \
         lvs_sched nosuch\n  real_server 10.0.0.2 80 {\n    weight 1\n  }\n}\n",
    );
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "unknown directives");
    assert_eq!(
        instance(&config, "VI_1").priority,
        100,
        "an out-of-range priority is skipped"
    );
    let skipped = skipped_names(&imported);
    assert_eq!(
        skipped,
        ["frobnicate 1", "wibble", "priority 300", "lvs_sched nosuch"]
    );
    let yaml = imported.to_yaml_with_comments();
    let comments: Vec<&str> = yaml.lines().take_while(|l| l.starts_with('#')).collect();
    assert_eq!(
        comments.len(),
        skipped.len(),
        "one comment each, at the top:\n{yaml}"
    );
    assert!(
        comments[0].starts_with("# not imported: frobnicate 1 ("),
        "{yaml}"
    );
    assert!(
        comments[0].ends_with("keepalived.conf:1): no lbd equivalent"),
        "{yaml}"
    );
}

#[test]
fn instance_without_required_settings_is_skipped_with_a_reason() {
    let dir = TempDir::new("required");
    let path = dir.write(
        "keepalived.conf",
        "vrrp_instance NO_IF {\n  virtual_router_id 1\n}\nvrrp_instance NO_VRID {\n  \
         interface eth0\n}\nvrrp_sync_group G {\n  group {\n    NO_IF\n  }\n}\n",
    );
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "required settings");
    assert!(config.vrrp_instances.is_empty());
    assert!(
        config.sync_groups.is_empty(),
        "a group of skipped instances is skipped too"
    );
    let reasons: Vec<&str> = imported.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(reasons[0].contains("no `interface`"), "{reasons:?}");
    assert!(reasons[1].contains("virtual_router_id"), "{reasons:?}");
}

#[test]
fn default_interface_from_global_defs() {
    let dir = TempDir::new("default-if");
    let path = dir.write(
        "keepalived.conf",
        "global_defs {\n  default_interface bond0\n  vrrp_version 3\n}\nvrrp_instance A {\n  \
         virtual_router_id 1\n  advert_int 0.5\n}\n",
    );
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "default_interface");
    let a = instance(&config, "A");
    assert_eq!((a.interface.as_str(), a.version), ("bond0", 3));
    assert_eq!(a.advert_int, Duration::from_millis(500));
}

#[test]
fn import_errors_name_file_and_line() {
    let dir = TempDir::new("errors");
    let path = dir.write("keepalived.conf", "vrrp_instance A {\n  state MASTER\n");
    let err = import::import_keepalived(&path).expect_err("an unclosed block is an error");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1: block `vrrp_instance` is never closed with `}}`",
            path.display()
        )
    );
    let path = dir.write(
        "ldirectord.cf",
        "virtual=1.2.3.4:80\n  real 1.2.3.5:80 gate\n",
    );
    let err = import::import_ldirectord(&path).expect_err("a line without `=` is an error");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: ", path.display())),
        "{err}"
    );
}

#[test]
fn ipv6_instance_gets_vrrp_v3_and_other_family_is_excluded() {
    let dir = TempDir::new("ipv6");
    let path = dir.write(
        "keepalived.conf",
        "vrrp_instance V6 {\n  interface eth0\n  virtual_router_id 7\n  advert_int 0.5\n  \
         virtual_ipaddress {\n    2001:db8::10/64\n    192.0.2.9\n  }\n}\n",
    );
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "ipv6 instance");
    let v6 = instance(&config, "V6");
    assert_eq!(v6.version, 3);
    assert_eq!(
        v6.advert_int,
        Duration::from_millis(500),
        "v3 keeps fractions"
    );
    assert_eq!(v6.virtual_ipaddresses.len(), 1);
    assert_eq!(
        v6.virtual_ipaddresses_excluded[0].address.to_string(),
        "192.0.2.9"
    );
    assert_eq!(
        imported.changed.len(),
        2,
        "both fix-ups are reported as changes: {:?}",
        imported.changed
    );
    assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
}

#[test]
fn vrrp_v2_advert_int_is_rounded_to_whole_seconds() {
    let dir = TempDir::new("advert");
    let path = dir.write(
        "keepalived.conf",
        "vrrp_instance A {\n  interface eth0\n  virtual_router_id 7\n  advert_int 2.4\n}\n",
    );
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "v2 advert_int");
    assert_eq!(instance(&config, "A").advert_int, Duration::from_secs(2));
    assert!(
        imported.changed[0].reason.contains("whole seconds"),
        "{:?}",
        imported.changed
    );
}

#[test]
fn duplicates_keep_the_first_and_say_so() {
    let dir = TempDir::new("duplicates");
    let path = dir.write(
        "keepalived.conf",
        "vrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n}\n\
         vrrp_instance B {\n  interface eth0\n  virtual_router_id 2\n}\n\
         vrrp_instance A {\n  interface eth1\n  virtual_router_id 3\n}\n\
         vrrp_sync_group G1 {\n  group {\n    A\n    B\n  }\n}\n\
         vrrp_sync_group G2 {\n  group {\n    B\n  }\n}\n\
         virtual_server 10.0.0.1 80 {\n  lvs_sched rr\n}\n\
         virtual_server 10.0.0.1 80 {\n  lvs_sched wrr\n}\n",
    );
    let imported = import_keepalived(&path);
    let config = assert_checks_clean(&imported, "duplicates");
    assert_eq!(instance(&config, "A").interface, "eth0");
    assert_eq!(config.sync_groups.len(), 1, "G2 has no member left");
    assert_eq!(config.virtual_servers.len(), 1);
    assert_eq!(config.virtual_servers[0].scheduler, Scheduler::Rr);
    let lines: Vec<usize> = imported.skipped.iter().map(|s| s.at.line).collect();
    assert_eq!(lines, [9, 19, 21, 27], "{:?}", imported.skipped);
}

#[test]
fn keepalived_preprocessor_lines_are_reported_with_their_own_reason() {
    let dir = TempDir::new("preprocessor");
    let path = dir.write(
        "keepalived.conf",
        "$PRIO=150\nvrrp_instance A {\n  interface eth0\n  virtual_router_id 1\n  \
         @lb2 priority 50\n}\n",
    );
    let imported = import_keepalived(&path);
    assert_checks_clean(&imported, "preprocessor lines");
    let reasons: Vec<&str> = imported.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("not expanded"), "{reasons:?}");
    assert!(reasons[1].contains("`@ID`"), "{reasons:?}");
}

#[test]
fn lbd_binary_prints_yaml_on_stdout_and_the_summary_on_stderr() {
    let path = sample("ldirectord.cf");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("import-ldirectord")
        .arg(&path)
        .output()
        .expect("run lbd import-ldirectord");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "lbd failed:\n{stderr}");
    let loaded = config::load_str(&stdout, "stdout")
        .unwrap_or_else(|e| panic!("stdout is not a config `lbd check` accepts: {e}\n{stdout}"));
    assert_eq!(loaded.config.virtual_servers.len(), 1);
    assert!(stderr.contains("not imported: comment="), "{stderr}");
    assert!(
        !stderr.contains("autoreload"),
        "autoreload is imported: {stderr}"
    );
    assert!(stderr.contains("1 virtual server(s)"), "{stderr}");
    assert!(stderr.contains("0 imported with a change"), "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lbd"))
        .arg("import-keepalived")
        .arg("/nonexistent/keepalived.conf")
        .output()
        .expect("run lbd import-keepalived");
    assert!(!output.status.success(), "a missing file must fail");
    assert!(output.stdout.is_empty(), "no YAML on failure");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/keepalived.conf"), "{stderr}");
}

#[test]
fn lvs_sync_daemon_becomes_flow_sync() {
    let dir = TempDir::new("lvs-sync");
    let conf = "\
global_defs {
    lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8850 ttl 2
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10
    }
}
";
    let imported = import_keepalived(&dir.write("keepalived.conf", conf));
    let config = assert_checks_clean(&imported, "lvs_sync_daemon");
    let sync = config
        .flow_sync
        .expect("lvs_sync_daemon imported as flow_sync");
    assert_eq!(sync.interface, "eth1");
    assert_eq!(sync.group, Some(ip("224.0.0.81")), "IPVS's default group");
    assert!(sync.peers.is_empty());
    assert_eq!(
        (sync.id, sync.maxlen, sync.port, sync.ttl),
        (Some(7), Some(1400), Some(8850), Some(2))
    );
    // What does not carry over (following VI_1) is said, not hidden.
    let note = imported
        .skipped
        .iter()
        .find(|s| s.directive.starts_with("lvs_sync_daemon"))
        .expect("a note on the instance it followed");
    assert!(note.reason.contains("VI_1"), "{}", note.reason);

    let group = import_keepalived(&dir.write(
        "group.conf",
        "global_defs {\n    lvs_sync_daemon eth1 VI_1 group 239.1.2.3 port 0\n}\n",
    ));
    let sync = group.config.flow_sync.clone().expect("imported");
    assert_eq!(sync.group, Some(ip("239.1.2.3")));
    assert_eq!(sync.port, None, "port 0 is refused, the default kept");
    assert!(
        group.skipped.iter().any(|s| s.reason.contains("port 0")),
        "the bad port is reported: {:?}",
        skipped_names(&group)
    );
}
