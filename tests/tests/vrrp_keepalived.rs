//! Interop with a real keepalived (Debian's package) as the other node:
//! VRRPv2 and v3, multicast and unicast, PASS authentication. In each mixed
//! pair the higher priority becomes MASTER, and the VIP fails over both
//! ways. tshark decodes every advert lbd sent and finds its checksum good.

use std::{fmt::Write as _, time::Duration};

use lb_lab::privileges::require_root;
use lb_tests::{
    keepalived::{Keepalived, Tshark},
    vrrp_lab::{InstanceSpec, VIP, VrrpLab, node_config, node_ip},
};

#[derive(Clone, Copy, Debug)]
struct Mode {
    version: u8,
    unicast: bool,
    pass: bool,
}

const PASSWORD: &str = "lbdpass1";

impl Mode {
    fn advert_int(self) -> &'static str {
        if self.version == 2 { "1" } else { "0.2" }
    }

    fn advert_secs(self) -> f64 {
        self.advert_int().parse().expect("a number")
    }

    /// lbd on node a. The peer list names a itself too, as a shared
    /// config would: lbd must ignore its own address.
    fn lbd(self, priority: u8) -> String {
        let mut spec = InstanceSpec {
            version: self.version,
            advert_int: self.advert_int(),
            ..InstanceSpec::vi1(priority)
        };
        if self.unicast {
            spec = spec
                .with(&format!("unicast_src_ip: {}", node_ip(0, 0)))
                .with(&format!(
                    "unicast_peers: [{}, {}]",
                    node_ip(1, 0),
                    node_ip(0, 0)
                ));
        }
        if self.pass {
            spec = spec.with(&format!(
                "authentication: {{ auth_type: pass, auth_pass: {PASSWORD} }}"
            ));
        }
        node_config(&[spec], "")
    }

    /// keepalived on node b.
    fn keepalived(self, priority: u8) -> String {
        let mut instance = format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
             priority {priority}\n  advert_int {}\n  version {}\n  garp_master_delay 1\n  \
             virtual_ipaddress {{\n    {VIP}/24\n  }}\n",
            self.advert_int(),
            self.version
        );
        if self.unicast {
            let _ = write!(
                instance,
                "  unicast_src_ip {}\n  unicast_peer {{\n    {}\n  }}\n",
                node_ip(1, 0),
                node_ip(0, 0)
            );
        }
        if self.pass {
            let _ = write!(
                instance,
                "  authentication {{\n    auth_type PASS\n    auth_pass {PASSWORD}\n  }}\n"
            );
        }
        instance.push_str("}\n");
        format!("global_defs {{\n  router_id lbd_interop\n  script_user root\n}}\n{instance}")
    }
}

fn interop(mode: Mode) {
    require_root("the keepalived interop lab");
    let mut lab = VrrpLab::new().expect("lab");
    // Master_Down_Interval is about 3.6 advert intervals; give slack.
    let wait = Duration::from_secs_f64(mode.advert_secs() * 6.0 + 5.0);
    let a_dir = lab.nodes[0].dir.clone();
    let b_dir = lab.nodes[1].dir.clone();

    // lbd 150 against keepalived 100: lbd is elected.
    let tshark = Tshark::start(&lab.nodes[0].ns, "eth0", &node_ip(0, 0), &a_dir).unwrap();
    let mut keepalived =
        Keepalived::start(&lab.nodes[1].ns, &b_dir, &mode.keepalived(100)).unwrap();
    let fail = |lab: &VrrpLab, ka: &Keepalived, e: anyhow::Error| -> ! {
        panic!(
            "{mode:?}: {e:#}\n--- keepalived log ---\n{}\n{}",
            ka.log(),
            lab.logs()
        )
    };
    lab.a().start(&mode.lbd(150)).unwrap();
    if let Err(e) = lab.wait_sole_holder(VIP, "a", wait) {
        fail(&lab, &keepalived, e);
    }
    // A few adverts at priority 150 for tshark.
    std::thread::sleep(Duration::from_secs_f64(mode.advert_secs() * 3.0));
    // lbd leaves: keepalived takes over on the priority-0 advert.
    assert!(lab.a().stop(libc::SIGTERM).unwrap().success());
    let took = lab
        .wait_sole_holder(VIP, "b", wait)
        .unwrap_or_else(|e| fail(&lab, &keepalived, e));
    eprintln!("{mode:?}: lbd -> keepalived in {took:?}");
    lab.reached_through(VIP, "b", wait)
        .unwrap_or_else(|e| fail(&lab, &keepalived, e));

    tshark.wait_for(Duration::from_secs(5), |p| p.priority == "0");
    let packets = tshark.finish().unwrap();
    check_adverts(mode, &packets);

    // lbd 50 against keepalived 100: keepalived stays MASTER...
    lab.a().start(&mode.lbd(50)).unwrap();
    lab.a()
        .wait_log("to=Backup", wait)
        .unwrap_or_else(|e| fail(&lab, &keepalived, e));
    std::thread::sleep(Duration::from_secs_f64(mode.advert_secs() * 5.0));
    assert_eq!(
        lab.holders(VIP).unwrap(),
        ["b"],
        "{mode:?}: keepalived at 100 stays master over lbd at 50\n{}",
        keepalived.log()
    );
    // ...until it stops: lbd takes over on keepalived's priority 0.
    keepalived.stop().unwrap();
    let took = lab
        .wait_sole_holder(VIP, "a", wait)
        .unwrap_or_else(|e| fail(&lab, &keepalived, e));
    eprintln!("{mode:?}: keepalived -> lbd in {took:?}");
    lab.reached_through(VIP, "a", wait)
        .unwrap_or_else(|e| fail(&lab, &keepalived, e));
}

/// Every advert lbd sent decodes as VRRP with a good checksum, TTL 255,
/// the right version, destination and authentication.
fn check_adverts(mode: Mode, packets: &[lb_tests::keepalived::Decoded]) {
    assert!(
        packets.iter().filter(|p| p.priority == "150").count() >= 2,
        "{mode:?}: tshark saw lbd's adverts: {packets:?}"
    );
    assert!(
        packets.iter().any(|p| p.priority == "0"),
        "{mode:?}: tshark saw lbd's priority-0 advert at SIGTERM: {packets:?}"
    );
    let dst = if mode.unicast {
        node_ip(1, 0)
    } else {
        "224.0.0.18".into()
    };
    for p in packets {
        assert_eq!(p.version, mode.version.to_string(), "{mode:?}: {p:?}");
        assert_eq!(p.checksum_status, "1", "{mode:?}: checksum not good: {p:?}");
        assert_eq!(p.ttl, "255", "{mode:?}: {p:?}");
        assert_eq!(
            p.dst, dst,
            "{mode:?}: lbd never advertises to itself: {p:?}"
        );
        if mode.version == 2 {
            let auth = if mode.pass { "1" } else { "0" };
            assert_eq!(p.auth_type, auth, "{mode:?}: {p:?}");
        }
    }
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn keepalived_v2_multicast() {
    interop(Mode {
        version: 2,
        unicast: false,
        pass: false,
    });
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn keepalived_v2_pass_authentication() {
    interop(Mode {
        version: 2,
        unicast: false,
        pass: true,
    });
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn keepalived_v2_unicast() {
    interop(Mode {
        version: 2,
        unicast: true,
        pass: false,
    });
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn keepalived_v3_multicast() {
    interop(Mode {
        version: 3,
        unicast: false,
        pass: false,
    });
}

#[test]
#[cfg_attr(not(feature = "privileged"), ignore = "needs root: cargo xtask test")]
fn keepalived_v3_unicast() {
    interop(Mode {
        version: 3,
        unicast: true,
        pass: false,
    });
}
