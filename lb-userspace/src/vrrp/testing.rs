//! Test helpers: parameters, a fake clock, and adverts from a peer.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::{
    packet::{Advert, Auth, Family, Version},
    params::{GarpParams, InstanceParams, TrackedInterface},
    receive::Received,
};
use crate::config::{InitialState, VirtualAddress};

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Like keepalived's capture setup: VRID 51, 10.200.0.100, we are
/// 10.200.0.11, priority 100, 1 s, multicast.
pub(crate) fn params_v2() -> InstanceParams {
    InstanceParams {
        name: "VI_1".into(),
        interface: "eth0".into(),
        version: Version::V2,
        family: Family::Ipv4,
        vrid: 51,
        priority: 100,
        advert_interval: Duration::from_secs(1),
        auth: Auth::NONE,
        addresses: vec![ip("10.200.0.100")],
        vips: vec![VirtualAddress::new(
            "10.200.0.100/24".parse().expect("test prefix"),
        )],
        source_address: Some(ip("10.200.0.11")),
        unicast_peers: Vec::new(),
        unicast_min_ttl: 255,
        initial_state: InitialState::Backup,
        preempt: true,
        preempt_delay: Duration::ZERO,
        accept: true,
        garp: GarpParams {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: None,
            master_refresh_repeat: 1,
        },
        track_scripts: Vec::new(),
        track_interfaces: vec![TrackedInterface {
            name: "eth0".into(),
            weight: None,
        }],
    }
}

pub(crate) fn params_v3() -> InstanceParams {
    InstanceParams {
        version: Version::V3,
        ..params_v2()
    }
}

/// A fake clock: a fixed base and an offset.
pub(crate) struct Clock {
    pub(crate) start: Instant,
    now: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let start = Instant::now();
        Self { start, now: start }
    }

    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    pub(crate) fn at(&self, offset: Duration) -> Instant {
        self.start + offset
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    pub(crate) fn set(&mut self, t: Instant) {
        assert!(t >= self.now, "the fake clock never goes back");
        self.now = t;
    }
}

/// An encoded advert with the IP metadata it arrived with.
pub(crate) struct Msg {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) ttl: u8,
    pub(crate) bytes: Vec<u8>,
}

impl Msg {
    pub(crate) fn received(&self) -> Received<'_> {
        Received {
            src: self.src,
            dst: self.dst,
            ttl_or_hop_limit: self.ttl,
            payload: &self.bytes,
        }
    }
}

/// Another router on the link.
#[derive(Clone)]
pub(crate) struct Peer {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) version: Version,
    pub(crate) vrid: u8,
    pub(crate) interval: u16,
    pub(crate) addresses: Vec<IpAddr>,
}

impl Peer {
    /// 10.200.0.12, v2, VRID 51, 1 s, 10.200.0.100, multicast.
    pub(crate) fn v2() -> Self {
        Self {
            src: ip("10.200.0.12"),
            dst: ip("224.0.0.18"),
            version: Version::V2,
            vrid: 51,
            interval: 1,
            addresses: vec![ip("10.200.0.100")],
        }
    }

    pub(crate) fn v3(interval_cs: u16) -> Self {
        Self {
            version: Version::V3,
            interval: interval_cs,
            ..Self::v2()
        }
    }

    pub(crate) fn from(mut self, src: &str) -> Self {
        self.src = ip(src);
        self
    }

    pub(crate) fn advert(&self, priority: u8) -> Msg {
        let advert = Advert {
            version: self.version,
            vrid: self.vrid,
            priority,
            interval: self.interval,
            auth: Auth::NONE,
            addresses: self.addresses.clone(),
            checksum: 0,
        };
        Msg {
            src: self.src,
            dst: self.dst,
            ttl: 255,
            bytes: advert
                .encode(self.src, self.dst)
                .expect("test advert encodes"),
        }
    }
}

/// A v2 advert from 10.200.0.12.
pub(crate) fn advert_from(vrid: u8, priority: u8) -> Msg {
    Peer { vrid, ..Peer::v2() }.advert(priority)
}
