//! Arbitrary bytes and metadata never make the VRRP code panic: not the
//! decoder, not the IPv4 split, not an instance's receive path. Half the
//! cases start from a valid advert with a few bytes changed and the
//! checksum fixed, so they get past the early checks into the state machine.

use std::{
    net::IpAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use lb_userspace::{
    config,
    vrrp::{
        Advert, Family, Instance, InstanceParams, Received, Version,
        checksum::{internet_checksum, vrrp_v3_checksum},
    },
};
use proptest::prelude::*;

fn params() -> &'static [InstanceParams; 3] {
    static PARAMS: OnceLock<[InstanceParams; 3]> = OnceLock::new();
    PARAMS.get_or_init(|| {
        let yaml = "
vrrp_instances:
  - name: V2
    interface: eth0
    virtual_router_id: 51
    priority: 100
    virtual_ipaddresses: [10.200.0.100]
    authentication: { auth_type: pass, auth_pass: secret1 }
    unicast_src_ip: 10.200.0.11
  - name: V3
    interface: eth1
    virtual_router_id: 51
    version: 3
    priority: 255
    virtual_ipaddresses: [10.200.0.100]
    unicast_src_ip: 10.200.0.11
  - name: V6
    interface: eth2
    virtual_router_id: 51
    version: 3
    virtual_ipaddresses: [fe80::100, 2001:db8::100]
    unicast_src_ip: fe80::11
";
        let loaded = config::load_str(yaml, "fuzz.yaml").expect("fuzz config loads");
        let all: Vec<InstanceParams> = loaded
            .config
            .vrrp_instances
            .iter()
            .map(|i| InstanceParams::from_config(i, &[]).expect("parameters"))
            .collect();
        all.try_into().expect("three instances")
    })
}

/// A valid message for instance `which` (0: v2, 1: v3, 2: v3 over IPv6).
fn valid_message(which: usize, priority: u8) -> Vec<u8> {
    let p = &params()[which];
    let advert = Advert {
        version: p.version,
        vrid: p.vrid,
        priority,
        interval: p.advert_interval_wire(),
        auth: p.auth,
        addresses: p.addresses.clone(),
        checksum: 0,
    };
    let (src, dst) = endpoints(which);
    advert.encode(src, dst).expect("valid advert encodes")
}

fn endpoints(which: usize) -> (IpAddr, IpAddr) {
    if which == 2 {
        ("fe80::12".parse().unwrap(), "ff02::12".parse().unwrap())
    } else {
        (
            "10.200.0.12".parse().unwrap(),
            "224.0.0.18".parse().unwrap(),
        )
    }
}

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        Just("10.200.0.12".parse().unwrap()),
        Just("10.200.0.11".parse().unwrap()),
        Just("224.0.0.18".parse().unwrap()),
        Just("fe80::12".parse().unwrap()),
        Just("ff02::12".parse().unwrap()),
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

/// A payload: random bytes, or a valid advert with some bytes changed and
/// (usually) the checksum fixed afterwards.
fn payload(which: usize) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        any::<u8>(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<bool>(),
        any::<i8>(),
    )
        .prop_map(move |(priority, edits, fix_sum, resize)| {
            let mut bytes = valid_message(which, priority);
            for (at, value) in edits {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            // Sometimes a byte more or fewer than the header says.
            match resize {
                i8::MIN..=-100 => {
                    bytes.pop();
                }
                100..=i8::MAX => bytes.push(0),
                _ => {}
            }
            if fix_sum && bytes.len() >= 8 {
                bytes[6..8].fill(0);
                let (src, dst) = endpoints(which);
                let sum = match params()[which].version {
                    Version::V2 => internet_checksum(&bytes),
                    Version::V3 => vrrp_v3_checksum(src, dst, &bytes).unwrap_or(0),
                };
                bytes[6..8].copy_from_slice(&sum.to_be_bytes());
            }
            bytes
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..72), mutated]
}

/// One case: which instance, how far it got before, the metadata, the bytes.
fn case() -> impl Strategy<Value = (usize, u8, IpAddr, IpAddr, u8, Vec<u8>)> {
    (0..3usize).prop_flat_map(|which| {
        let (src, dst) = endpoints(which);
        (
            Just(which),
            0..4u8,
            prop_oneof![3 => Just(src), 1 => address()],
            prop_oneof![3 => Just(dst), 1 => address()],
            prop_oneof![3 => Just(255u8), 1 => any::<u8>()],
            payload(which),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 100_000,
        // Integration tests have no lib.rs beside them to persist to; a
        // failure prints its minimal case anyway.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_input_never_panics(
        (which, stage, src, dst, ttl, bytes) in case()
    ) {
        // The decoder, both families; what decodes re-encodes and decodes
        // to the same fields.
        for family in [Family::Ipv4, Family::Ipv6] {
            if let Ok(advert) = Advert::decode(&bytes, family) {
                let (s, d) = endpoints(usize::from(family == Family::Ipv6) * 2);
                if let Ok(again) = advert.encode(s, d) {
                    let back = Advert::decode(&again, family).expect("re-encoded advert decodes");
                    prop_assert_eq!(
                        Advert { checksum: 0, ..back },
                        Advert { checksum: 0, ..advert }
                    );
                }
            }
        }
        // The IPv4 split.
        if let Ok(rx) = Received::from_ipv4_packet(&bytes) {
            prop_assert!(rx.payload.len() <= bytes.len());
        }
        // An instance's receive path in some state: BACKUP, MASTER (after
        // its timer), FAULT, or stopped.
        let t0 = Instant::now();
        let mut instance = Instance::new(params()[which].clone(), t0);
        instance.start(t0);
        let mut now = t0;
        match stage {
            1 => {
                now += Duration::from_secs(5);
                instance.handle_timeout(now);
            }
            2 => instance.set_source_address(None, now),
            3 => instance.stop(now),
            _ => {}
        }
        let rx = Received { src, dst, ttl_or_hop_limit: ttl, payload: &bytes };
        let result = instance.handle_advert(now, &rx);
        let counters = instance.counters();
        prop_assert_eq!(
            counters.total_dropped() + counters.adverts_received,
            u64::from(stage != 3),
            "every advert is either accepted or dropped with a reason: {:?}",
            result
        );
        now += Duration::from_secs(1);
        instance.handle_timeout(now);
        while instance.poll_action().is_some() {}
    }
}
