//! keepalived directives users migrate with: each one either carries into
//! the lbd config or is listed (`# not imported:` / `# imported with a
//! change:`) with a reason; none disappears silently.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    path::{Path, PathBuf},
};

use lb_userspace::import::{self, Imported, keepalived};

/// A keepalived.conf written to a private temp file, removed on drop.
struct TempConf(PathBuf);

impl TempConf {
    fn new(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lbd-import-fidelity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write the conf");
        Self(path)
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn import_text(name: &str, text: &str) -> Imported {
    let conf = TempConf::new(name, text);
    import::import_keepalived(&conf.0).unwrap_or_else(|e| panic!("importing {name}: {e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn instance(extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 51\n  priority 100\n{extra}  \
         virtual_ipaddress {{\n    10.1.1.100\n  }}\n}}\n"
    )
}

fn listed(imported: &Imported) -> Vec<String> {
    imported
        .skipped
        .iter()
        .chain(&imported.changed)
        .map(|s| format!("{}: {}", s.directive, s.reason))
        .collect()
}

#[test]
fn garp_master_refresh_repeat_is_imported() {
    let imported = import_text(
        "garp.conf",
        &instance("  garp_master_refresh 5\n  garp_master_refresh_repeat 3\n"),
    );
    let vi = &imported.config.vrrp_instances[0];
    assert_eq!(vi.garp_master_refresh_repeat, 3);
    assert!(
        imported
            .to_yaml_with_comments()
            .contains("garp_master_refresh_repeat: 3"),
        "{}",
        imported.to_yaml_with_comments()
    );
}

#[test]
fn mcast_src_ip_becomes_the_advert_source() {
    let imported = import_text("mcast.conf", &instance("  mcast_src_ip 10.1.1.7\n"));
    assert_eq!(
        imported.config.vrrp_instances[0].unicast_src_ip,
        Some(ip("10.1.1.7")),
        "not imported: {:?}",
        listed(&imported)
    );
    assert!(imported.skipped.is_empty(), "{:?}", listed(&imported));
}

#[test]
fn unicast_peer_min_ttl_becomes_unicast_min_ttl() {
    let imported = import_text(
        "ttl.conf",
        &instance(
            "  unicast_src_ip 10.1.1.7/24\n  unicast_peer {\n    10.2.2.8 min_ttl 253 max_ttl 255\n  }\n",
        ),
    );
    let vi = &imported.config.vrrp_instances[0];
    assert_eq!(vi.unicast_src_ip, Some(ip("10.1.1.7")));
    assert_eq!(vi.unicast_peers, [ip("10.2.2.8")]);
    assert_eq!(vi.unicast_min_ttl, 253);
    assert!(imported.skipped.is_empty(), "{:?}", listed(&imported));
}

#[test]
fn unicast_peers_without_min_ttl_say_lbd_wants_ttl_255() {
    let imported = import_text(
        "plain.conf",
        &instance("  unicast_peer {\n    10.1.1.8\n  }\n"),
    );
    assert_eq!(imported.config.vrrp_instances[0].unicast_min_ttl, 255);
    assert!(
        imported.changed.iter().any(
            |c| c.directive.starts_with("unicast_peer") && c.reason.contains("unicast_min_ttl")
        ),
        "{:?}",
        listed(&imported)
    );
}

/// keepalived directives the importer carries into the config (block
/// names included). Anything else in a sample must be listed.
const IMPORTED: &[&str] = &[
    "global_defs",
    "router_id",
    "vrrp_version",
    "script_user",
    "enable_script_security",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_script",
    "script",
    "interval",
    "weight",
    "rise",
    "fall",
    "timeout",
    "vrrp_instance",
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "authentication",
    "auth_type",
    "auth_pass",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_src_ip",
    "mcast_src_ip",
    "unicast_peer",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "accept",
    "no_accept",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "track_script",
    "track_interface",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "vrrp_sync_group",
    "group",
    "virtual_server",
    "delay_loop",
    "lvs_sched",
    "lb_algo",
    "lvs_method",
    "lb_kind",
    "protocol",
    "persistence_timeout",
    "sorry_server",
    "real_server",
    "inhibit_on_failure",
    "HTTP_GET",
    "SSL_GET",
    "TCP_CHECK",
    "MISC_CHECK",
    "url",
    "path",
    "status_code",
    "digest",
    "connect_timeout",
    "connect_port",
    "retry",
    "delay_before_retry",
    "misc_path",
    "misc_timeout",
    "misc_dynamic",
    "include",
    "lvs_timeouts",
    "alpha",
    "quorum",
];

/// Blocks whose children are values (addresses, names), not directives.
const VALUE_BLOCKS: &[&str] = &[
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_peer",
    "track_script",
    "track_interface",
    "group",
    "static_ipaddress",
    "notification_email",
];

/// Every directive, without the values of value blocks and without the
/// inside of blocks in `skipped` (listed whole).
fn walk<'a>(
    directives: &'a [keepalived::Directive],
    skipped: &BTreeSet<String>,
    out: &mut Vec<&'a keepalived::Directive>,
) {
    for d in directives {
        out.push(d);
        if !VALUE_BLOCKS.contains(&d.name.as_str()) && !skipped.contains(&d.name) {
            walk(&d.children, skipped, out);
        }
    }
}

fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("samples/keepalived"))
        .expect("the keepalived samples are in tests/data/samples/keepalived")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    out.push(root.join("import/keepalived/keepalived.conf"));
    out.sort();
    out
}

#[test]
fn every_directive_of_the_samples_is_imported_or_listed_with_a_reason() {
    let samples = samples();
    assert!(samples.len() >= 5, "samples found: {samples:?}");
    for path in samples {
        let parsed = keepalived::parse_file(&path)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        let imported = import::import_keepalived(&path)
            .unwrap_or_else(|e| panic!("importing {}: {e}", path.display()));
        let listed_names: BTreeSet<String> = imported
            .skipped
            .iter()
            .chain(&imported.changed)
            .map(|s| {
                s.directive
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        for reason in imported.skipped.iter().chain(&imported.changed) {
            assert!(
                !reason.reason.trim().is_empty(),
                "{}: `{}` listed without a reason",
                path.display(),
                reason.directive
            );
        }
        let skipped_names: BTreeSet<String> = imported
            .skipped
            .iter()
            .map(|s| {
                s.directive
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        let mut all = Vec::new();
        walk(&parsed.directives, &skipped_names, &mut all);
        for d in all {
            assert!(
                IMPORTED.contains(&d.name.as_str()) || listed_names.contains(&d.name),
                "{}: `{} {}` is neither imported nor listed with a reason; listed: {:?}",
                path.display(),
                d.name,
                d.args.join(" "),
                listed(&imported)
            );
        }
    }
}
