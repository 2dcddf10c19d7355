//! IPVS virtual services and destinations (real servers) as typed values,
//! built into and read from the family's nested attributes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dataplane::{L4Protocol, ServiceId, TrafficStats};

use super::message::{
    Attr, attr, dest, find, get_be16, get_string, get_u16, get_u32, get_u64, stats, svc,
};

const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;
/// `IP_VS_CONN_F_MASQ`: NAT, the only method lbd configures.
const FWD_MASQ: u32 = 0;

fn af(addr: IpAddr) -> u16 {
    if addr.is_ipv4() { AF_INET } else { AF_INET6 }
}

/// `union nf_inet_addr`: 16 bytes, an IPv4 address in the first four.
fn inet_addr(addr: IpAddr) -> [u8; 16] {
    let mut out = [0; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

fn parse_addr(family: u16, bytes: &[u8]) -> Option<IpAddr> {
    if family == AF_INET {
        let b: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    } else {
        let b: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    }
}

/// A virtual service as IPVS names it (`-t|-u VIP:PORT`): lbd's `ServiceId`.
impl ServiceId {
    /// The attributes naming this service, nested in `IPVS_CMD_ATTR_SERVICE`.
    pub(crate) fn attrs(&self) -> Vec<Attr> {
        vec![
            Attr::u16(svc::AF, af(self.vip)),
            Attr::u16(svc::PROTOCOL, u16::from(self.protocol.number())),
            Attr::bytes(svc::ADDR, inet_addr(self.vip)),
            Attr::be16(svc::PORT, self.port),
        ]
    }

    pub(crate) fn attr(&self) -> Attr {
        Attr::nested(attr::SERVICE, self.attrs())
    }

    /// A full service entry, as `IPVS_CMD_NEW_SERVICE` and `SET_SERVICE` need.
    pub(crate) fn full_attr(&self, scheduler: &str) -> Attr {
        let mut attrs = self.attrs();
        // struct ip_vs_flags { flags, mask }: no flags (not persistent).
        let mut flags = Vec::with_capacity(8);
        flags.extend_from_slice(&0u32.to_ne_bytes());
        flags.extend_from_slice(&u32::MAX.to_ne_bytes());
        // Unused without persistence; ipvsadm's defaults (/32, /128).
        let netmask = if self.vip.is_ipv4() { u32::MAX } else { 128 };
        attrs.extend([
            Attr::string(svc::SCHED_NAME, scheduler),
            Attr::bytes(svc::FLAGS, flags),
            Attr::u32(svc::TIMEOUT, 0),
            Attr::u32(svc::NETMASK, netmask),
        ]);
        Attr::nested(attr::SERVICE, attrs)
    }
}

/// A service as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KernelService {
    /// `None` for firewall-mark services, which lbd never creates.
    pub(crate) key: Option<ServiceId>,
    pub(crate) scheduler: String,
    pub(crate) stats: TrafficStats,
}

impl KernelService {
    /// Reads the `IPVS_SVC_ATTR_*` list of a service.
    pub(crate) fn parse(attrs: &[Attr]) -> Self {
        let family = get_u16(attrs, svc::AF).unwrap_or(AF_INET);
        let protocol = match get_u16(attrs, svc::PROTOCOL) {
            Some(6) => Some(L4Protocol::Tcp),
            Some(17) => Some(L4Protocol::Udp),
            _ => None,
        };
        let fwmark = get_u32(attrs, svc::FWMARK).unwrap_or(0);
        let addr = find(attrs, svc::ADDR).and_then(|a| parse_addr(family, a.value()));
        let key = match (protocol, addr, get_be16(attrs, svc::PORT)) {
            (Some(protocol), Some(addr), Some(port)) if fwmark == 0 => Some(ServiceId {
                protocol,
                vip: addr,
                port,
            }),
            _ => None,
        };
        Self {
            key,
            scheduler: get_string(attrs, svc::SCHED_NAME).unwrap_or_default(),
            stats: parse_stats(attrs, svc::STATS64),
        }
    }
}

/// A real server as lbd configures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Destination {
    pub(crate) addr: IpAddr,
    pub(crate) port: u16,
    pub(crate) weight: u32,
}

impl Destination {
    /// `IPVS_CMD_ATTR_DEST`; `full` adds what NEW_DEST and SET_DEST need.
    pub(crate) fn attr(&self, full: bool) -> Attr {
        let mut attrs = vec![
            Attr::bytes(dest::ADDR, inet_addr(self.addr)),
            Attr::be16(dest::PORT, self.port),
            Attr::u16(dest::ADDR_FAMILY, af(self.addr)),
        ];
        if full {
            attrs.extend([
                Attr::u32(dest::FWD_METHOD, FWD_MASQ),
                Attr::u32(dest::WEIGHT, self.weight),
                Attr::u32(dest::U_THRESH, 0),
                Attr::u32(dest::L_THRESH, 0),
            ]);
        }
        Attr::nested(attr::DEST, attrs)
    }
}

/// A real server as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KernelDest {
    pub(crate) dest: Destination,
    pub(crate) active: u64,
    pub(crate) inactive: u64,
    pub(crate) stats: TrafficStats,
}

impl KernelDest {
    /// Reads the `IPVS_DEST_ATTR_*` list; `service_family` is the default
    /// when the kernel predates `IPVS_DEST_ATTR_ADDR_FAMILY`.
    pub(crate) fn parse(attrs: &[Attr], service_family: IpAddr) -> Option<Self> {
        let family = get_u16(attrs, dest::ADDR_FAMILY).unwrap_or(af(service_family));
        let addr = parse_addr(family, find(attrs, dest::ADDR)?.value())?;
        Some(Self {
            dest: Destination {
                addr,
                port: get_be16(attrs, dest::PORT)?,
                weight: get_u32(attrs, dest::WEIGHT).unwrap_or(0),
            },
            active: u64::from(get_u32(attrs, dest::ACTIVE_CONNS).unwrap_or(0)),
            inactive: u64::from(get_u32(attrs, dest::INACT_CONNS).unwrap_or(0)),
            stats: parse_stats(attrs, dest::STATS64),
        })
    }
}

fn parse_stats(attrs: &[Attr], kind: u16) -> TrafficStats {
    let Some(list) = find(attrs, kind).and_then(|a| a.children().ok()) else {
        return TrafficStats::default();
    };
    let get = |k| get_u64(&list, k).unwrap_or(0);
    TrafficStats {
        connections: get(stats::CONNS),
        packets_in: get(stats::INPKTS),
        packets_out: get(stats::OUTPKTS),
        bytes_in: get(stats::INBYTES),
        bytes_out: get(stats::OUTBYTES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_read_back_what_they_write() {
        for text in ["TCP 10.0.0.1:80", "UDP [fd00::1]:53"] {
            let key: ServiceId = text.parse().unwrap();
            assert_eq!(key.to_string(), text);
        }
        assert!("SCTP 10.0.0.1:80".parse::<ServiceId>().is_err());
        assert!("TCP nonsense".parse::<ServiceId>().is_err());
    }

    #[test]
    fn a_service_parses_from_its_own_attributes() {
        let key: ServiceId = "UDP [fd00::1]:53".parse().unwrap();
        let attr = key.full_attr("wlc");
        let parsed = KernelService::parse(&attr.children().unwrap());
        assert_eq!(parsed.key, Some(key));
        assert_eq!(parsed.scheduler, "wlc");
    }

    #[test]
    fn a_destination_parses_from_its_own_attributes() {
        let d = Destination {
            addr: "10.1.0.2".parse().unwrap(),
            port: 8080,
            weight: 3,
        };
        let parsed = KernelDest::parse(
            &d.attr(true).children().unwrap(),
            "10.0.0.1".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(parsed.dest, d);
    }
}
