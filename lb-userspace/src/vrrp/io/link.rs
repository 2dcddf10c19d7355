//! What the instances need to know about interfaces: whether the link is
//! up (`track_interface`, and the instance's own interface), its primary
//! address (the advert source when `unicast_src_ip` is not set) and its MAC
//! (gratuitous ARP). Polled through rtnetlink: a dump of links and one of
//! addresses every [`POLL_INTERVAL`], which is simpler than following
//! RTM_NEWLINK events and cannot miss one.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use futures_util::TryStreamExt as _;
use rtnetlink::{
    Handle,
    packet_route::{
        address::AddressMessage,
        link::{LinkAttribute, LinkFlags, LinkMessage},
    },
};

use super::vip::describe;

/// How often link states and addresses are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// One interface as last read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub index: u32,
    /// Administratively up and the carrier present (IFF_UP and
    /// IFF_RUNNING), as keepalived judges it.
    pub up: bool,
    /// The first primary IPv4 address that lbd did not add.
    pub ipv4: Option<Ipv4Addr>,
    /// The first link-local IPv6 address (RFC 5798 5.1.2.1: the source of
    /// IPv6 adverts).
    pub ipv6_link_local: Option<Ipv6Addr>,
    pub mac: Option<[u8; 6]>,
}

impl InterfaceInfo {
    /// The address adverts of `family`'s instances come from.
    pub fn source(&self, ipv6: bool) -> Option<IpAddr> {
        if ipv6 {
            self.ipv6_link_local.map(IpAddr::V6)
        } else {
            self.ipv4.map(IpAddr::V4)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("reading {what} through rtnetlink: {source}")]
pub struct LinkError {
    what: &'static str,
    #[source]
    source: io::Error,
}

/// Every interface of the namespace by name.
pub async fn snapshot(handle: &Handle) -> Result<HashMap<String, InterfaceInfo>, LinkError> {
    let links: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| error("links", &e))?;
    let addresses: Vec<AddressMessage> = handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| error("addresses", &e))?;
    let mut by_index: HashMap<u32, (String, InterfaceInfo)> = HashMap::new();
    for link in links {
        let mut info = InterfaceInfo {
            index: link.header.index,
            up: link.header.flags.contains(LinkFlags::Up)
                && link.header.flags.contains(LinkFlags::Running),
            ..InterfaceInfo::default()
        };
        let mut name = None;
        for attribute in link.attributes {
            match attribute {
                LinkAttribute::IfName(n) => name = Some(n),
                LinkAttribute::Address(mac) => info.mac = <[u8; 6]>::try_from(mac).ok(),
                _ => {}
            }
        }
        if let Some(name) = name {
            by_index.insert(info.index, (name, info));
        }
    }
    for message in addresses {
        let Some((_, info)) = by_index.get_mut(&message.header.index) else {
            continue;
        };
        let Some(found) = describe(message) else {
            continue;
        };
        // Our own VIPs are never the source: they move between nodes.
        if found.ours {
            continue;
        }
        match found.address.addr() {
            IpAddr::V4(a) if !found.secondary && info.ipv4.is_none() => info.ipv4 = Some(a),
            IpAddr::V6(a) if a.is_unicast_link_local() && info.ipv6_link_local.is_none() => {
                info.ipv6_link_local = Some(a);
            }
            _ => {}
        }
    }
    Ok(by_index.into_values().collect())
}

fn error(what: &'static str, err: &rtnetlink::Error) -> LinkError {
    let source = match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    };
    LinkError { what, source }
}
