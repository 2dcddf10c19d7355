//! Virtual addresses on interfaces, through rtnetlink, each marked as lbd's
//! own so that a restart after a crash removes exactly the stale ones.
//!
//! The mark is the address *protocol* (`IFA_PROTO`, Linux 6.1 and later):
//! [`ADDRESS_PROTOCOL`], 0x6c (ASCII `l`), a value the kernel never assigns
//! (it uses 1-3 for loopback, router-advertisement and link-local
//! addresses). `ip -d addr show` (iproute2 6.2+) prints it as `proto 108`.
//! Addresses without the mark (an operator's, another daemon's) are never
//! removed, even when they equal a VIP.

use std::{collections::BTreeSet, io, net::IpAddr};

use futures_util::TryStreamExt as _;
use rtnetlink::{
    Handle,
    packet_route::{
        AddressFamily,
        address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressProtocol},
    },
};

use super::socket::interface_index;
use crate::config::{Config, IpPrefix, VirtualAddress};

/// `IFA_PROTO` of every address lbd adds: ASCII `l`.
pub const ADDRESS_PROTOCOL: u8 = 0x6c;

/// Why a virtual address could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("interface {interface} does not exist (virtual address {address})")]
    NoInterface {
        interface: String,
        address: IpPrefix,
    },
    #[error("{what} {address} on {interface}: {source}")]
    Netlink {
        what: &'static str,
        address: IpPrefix,
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("listing the addresses of {interface}: {source}")]
    List {
        interface: String,
        #[source]
        source: io::Error,
    },
}

/// What adding an address found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Added now, marked.
    Added,
    /// Already there with our mark (a repeated add).
    AlreadyOurs,
    /// Already there without our mark: someone else's; left as it is, and
    /// not removed later.
    Foreign,
}

/// One address as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub ifindex: u32,
    pub address: IpPrefix,
    pub ours: bool,
    pub secondary: bool,
    pub message: AddressMessage,
}

/// Adds and removes virtual addresses.
#[derive(Clone, Debug)]
pub struct Vips {
    handle: Handle,
}

/// The interface a virtual address goes on: its `dev`, else the instance's.
pub fn device<'a>(vip: &'a VirtualAddress, instance_interface: &'a str) -> &'a str {
    vip.dev.as_deref().unwrap_or(instance_interface)
}

/// Every interface whose addresses lbd manages for `config`'s instances:
/// each instance's interface and each of its addresses' `dev`s. The crash
/// cleanup looks at these, and `daemon::lock` claims them.
pub fn managed_interfaces(config: &Config) -> BTreeSet<String> {
    let mut interfaces = BTreeSet::new();
    for instance in &config.vrrp_instances {
        interfaces.insert(instance.interface.clone());
        for v in instance
            .virtual_ipaddresses
            .iter()
            .chain(&instance.virtual_ipaddresses_excluded)
        {
            interfaces.insert(device(v, &instance.interface).to_owned());
        }
    }
    interfaces
}

impl Vips {
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// Adds `vip` to `interface` with its prefix, `brd` and `label`,
    /// marked as ours.
    pub async fn add(&self, vip: &VirtualAddress, interface: &str) -> Result<Added, VipError> {
        let ifindex = index(interface, vip)?;
        let mut message = base_message(ifindex, vip.address);
        if let (Some(IpAddr::V4(brd)), IpAddr::V4(_)) = (vip.brd, vip.address.addr()) {
            message.attributes.push(AddressAttribute::Broadcast(brd));
        }
        if let Some(label) = &vip.label {
            message
                .attributes
                .push(AddressAttribute::Label(label.clone()));
        }
        if vip.address.addr().is_ipv6() {
            // keepalived: a VIP must answer at once, not after duplicate
            // address detection (the election already made it unique).
            message.header.flags |= AddressHeaderFlags::Nodad;
        }
        message
            .attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(
                ADDRESS_PROTOCOL,
            )));
        let mut request = self.handle.address().add(ifindex, vip.address.addr(), 0);
        *request.message_mut() = message;
        match request.execute().await {
            Ok(()) => Ok(Added::Added),
            Err(err) if errno(&err) == Some(libc::EEXIST) => {
                let existing = self
                    .find(ifindex, interface, vip.address)
                    .await?
                    .into_iter()
                    .any(|a| a.ours);
                Ok(if existing {
                    Added::AlreadyOurs
                } else {
                    Added::Foreign
                })
            }
            Err(err) => Err(VipError::Netlink {
                what: "adding",
                address: vip.address,
                interface: interface.to_owned(),
                source: to_io(&err),
            }),
        }
    }

    /// Removes `vip` from `interface` if it is there with our mark.
    /// `Ok(false)`: nothing of ours to remove.
    pub async fn remove(&self, vip: &VirtualAddress, interface: &str) -> Result<bool, VipError> {
        let ifindex = index(interface, vip)?;
        let mut removed = false;
        for found in self.find(ifindex, interface, vip.address).await? {
            if found.ours {
                self.delete(found, interface).await?;
                removed = true;
            }
        }
        Ok(removed)
    }

    /// Removes every address marked as ours from `interface`: what a
    /// crashed lbd left behind. Returns what it removed.
    pub async fn remove_marked(&self, interface: &str) -> Result<Vec<IpPrefix>, VipError> {
        let Some(ifindex) = interface_index(interface) else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for found in self.list(ifindex, interface).await? {
            if found.ours {
                let address = found.address;
                self.delete(found, interface).await?;
                removed.push(address);
            }
        }
        Ok(removed)
    }

    /// Every address on interface `ifindex`.
    pub async fn list(
        &self,
        ifindex: u32,
        interface: &str,
    ) -> Result<Vec<InterfaceAddress>, VipError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|err| VipError::List {
                interface: interface.to_owned(),
                source: to_io(&err),
            })?;
        Ok(messages.into_iter().filter_map(describe).collect())
    }

    async fn find(
        &self,
        ifindex: u32,
        interface: &str,
        address: IpPrefix,
    ) -> Result<Vec<InterfaceAddress>, VipError> {
        let all = self.list(ifindex, interface).await?;
        Ok(all
            .into_iter()
            .filter(|a| a.address.addr() == address.addr())
            .collect())
    }

    async fn delete(&self, found: InterfaceAddress, interface: &str) -> Result<(), VipError> {
        match self.handle.address().del(found.message).execute().await {
            // Gone already (someone else removed it): the goal is met.
            Err(err) if errno(&err) == Some(libc::EADDRNOTAVAIL) => Ok(()),
            Err(err) => Err(VipError::Netlink {
                what: "removing",
                address: found.address,
                interface: interface.to_owned(),
                source: to_io(&err),
            }),
            Ok(()) => Ok(()),
        }
    }
}

fn index(interface: &str, vip: &VirtualAddress) -> Result<u32, VipError> {
    interface_index(interface).ok_or_else(|| VipError::NoInterface {
        interface: interface.to_owned(),
        address: vip.address,
    })
}

/// Header, IFA_LOCAL and IFA_ADDRESS, as `ip addr add` sends them.
fn base_message(ifindex: u32, address: IpPrefix) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = match address.addr() {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    message.header.prefix_len = address.prefix_len();
    message.header.index = ifindex;
    message
        .attributes
        .push(AddressAttribute::Local(address.addr()));
    message
        .attributes
        .push(AddressAttribute::Address(address.addr()));
    message
}

/// The address a kernel message describes, if it has one.
pub(super) fn describe(message: AddressMessage) -> Option<InterfaceAddress> {
    // IPv4 puts the interface's own address in IFA_LOCAL (IFA_ADDRESS is
    // the peer's on point-to-point links); IPv6 only sends IFA_ADDRESS.
    let mut local = None;
    let mut address = None;
    let mut ours = false;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Protocol(p) => ours = u8::from(*p) == ADDRESS_PROTOCOL,
            _ => {}
        }
    }
    let addr = local.or(address)?;
    let prefix = IpPrefix::new(addr, message.header.prefix_len).ok()?;
    Some(InterfaceAddress {
        ifindex: message.header.index,
        address: prefix,
        ours,
        secondary: message.header.flags.contains(AddressHeaderFlags::Secondary),
        message,
    })
}

fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}

fn to_io(err: &rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    }
}
