//! Virtual addresses on interfaces, through rtnetlink, each marked as lbd's
//! own so that a restart after a crash removes exactly the stale ones.
//!
//! The mark is the address *protocol* (`IFA_PROTO`, Linux 6.1 and later):
//! [`ADDRESS_PROTOCOL`], 0x6c (ASCII `l`), a value the kernel never assigns
//! (it uses 1-3 for loopback, router-advertisement and link-local
//! addresses). `ip -d addr show` (iproute2 6.2+) prints it as `proto 108`.
//! Addresses without the mark (an operator's, another daemon's) are never
//! removed, even when they equal a VIP.
//!
//! Every address added is also written to a record in the state directory
//! ([`super::vip_record`]): on kernels before 6.1, which drop the mark, the
//! record alone tells lbd's addresses from others', and on any kernel it
//! names the interfaces a crash cleanup must look at.

use std::{
    collections::BTreeSet,
    io,
    net::IpAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use futures_util::TryStreamExt as _;
use rtnetlink::{
    Handle,
    packet_route::{
        AddressFamily,
        address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressProtocol},
    },
};

use super::{
    socket::interface_index,
    vip_record::{VipRecord, kernel_keeps_marks},
};
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
    record: Arc<Mutex<VipRecord>>,
    /// The kernel keeps the mark; `false`: the record decides alone.
    marks: Arc<AtomicBool>,
    /// An added address was read back with its mark: no need to look again.
    marks_seen: Arc<AtomicBool>,
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
    pub fn new(handle: Handle, record: VipRecord) -> Self {
        let marks = kernel_keeps_marks();
        if !marks {
            tracing::warn!(
                "this kernel drops address marks (IFA_PROTO needs Linux 6.1): lbd tells \
                 its virtual addresses from others' by the record in its state directory"
            );
        }
        Self {
            handle,
            record: Arc::new(Mutex::new(record)),
            marks: Arc::new(AtomicBool::new(marks)),
            marks_seen: Arc::new(AtomicBool::new(false)),
        }
    }

    fn record(&self) -> std::sync::MutexGuard<'_, VipRecord> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `found` on `interface` is lbd's: marked, or (on a kernel
    /// that drops marks, where a mark read back means nothing) recorded.
    fn is_ours(&self, found: &InterfaceAddress, interface: &str) -> bool {
        if self.marks.load(Ordering::Relaxed) {
            found.ours
        } else {
            self.record().contains(interface, found.address)
        }
    }

    /// Keeps the record; a failure costs only the crash cleanup's
    /// knowledge, never the address itself.
    fn note(result: io::Result<()>, interface: &str, address: IpPrefix) {
        if let Err(err) = result {
            tracing::warn!(%interface, %address, "cannot update the record of virtual addresses: {err}");
        }
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
            Ok(()) => {
                let recorded = self.record().insert(interface, vip.address);
                Self::note(recorded, interface, vip.address);
                // Once: later takeovers add their VIPs without a dump each.
                if self.marks.load(Ordering::Relaxed) && !self.marks_seen.load(Ordering::Relaxed) {
                    self.check_mark_kept(ifindex, interface, vip.address)
                        .await?;
                }
                Ok(Added::Added)
            }
            Err(err) if errno(&err) == Some(libc::EEXIST) => {
                let existing = self
                    .find(ifindex, interface, vip.address)
                    .await?
                    .iter()
                    .any(|a| self.is_ours(a, interface));
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

    /// A kernel that accepted the mark but did not keep it (before 6.1,
    /// whatever its version says): from now on the record decides.
    async fn check_mark_kept(
        &self,
        ifindex: u32,
        interface: &str,
        address: IpPrefix,
    ) -> Result<(), VipError> {
        let found = self.find(ifindex, interface, address).await?;
        if found.iter().any(|a| a.ours) {
            self.marks_seen.store(true, Ordering::Relaxed);
        } else if !found.is_empty() {
            self.marks.store(false, Ordering::Relaxed);
            tracing::warn!(
                %interface,
                %address,
                "the kernel dropped the address mark (IFA_PROTO needs Linux 6.1): lbd tells \
                 its virtual addresses from others' by the record in its state directory"
            );
        }
        Ok(())
    }

    /// Removes `vip` from `interface` if it is there and ours.
    /// `Ok(false)`: nothing of ours to remove.
    pub async fn remove(&self, vip: &VirtualAddress, interface: &str) -> Result<bool, VipError> {
        let ifindex = index(interface, vip)?;
        let mut removed = false;
        for found in self.find(ifindex, interface, vip.address).await? {
            if self.is_ours(&found, interface) {
                self.delete(found, interface).await?;
                removed = true;
            }
        }
        let forgotten = self.record().remove(interface, vip.address);
        Self::note(forgotten, interface, vip.address);
        Ok(removed)
    }

    /// What a crashed lbd left behind, everywhere it could be: the
    /// addresses of ours on `managed` interfaces and on every interface the
    /// record names (also those the configuration no longer lists).
    pub async fn remove_stale(
        &self,
        managed: &BTreeSet<String>,
    ) -> Result<Vec<(String, IpPrefix)>, VipError> {
        let recorded = self.record().interfaces();
        let mut removed = Vec::new();
        for interface in managed.union(&recorded) {
            for address in self.remove_marked(interface).await? {
                removed.push((interface.clone(), address));
            }
        }
        Ok(removed)
    }

    /// Removes every address of ours from `interface` (on stop, or what
    /// a crashed lbd left behind). Returns what it removed.
    pub async fn remove_marked(&self, interface: &str) -> Result<Vec<IpPrefix>, VipError> {
        let mut removed = Vec::new();
        if let Some(ifindex) = interface_index(interface) {
            for found in self.list(ifindex, interface).await? {
                if self.is_ours(&found, interface) {
                    let address = found.address;
                    self.delete(found, interface).await?;
                    removed.push(address);
                }
            }
        }
        // Removed, or gone with its interface (a holder device).
        if let Err(err) = self.record().forget_interface(interface) {
            tracing::warn!(%interface, "cannot update the record of virtual addresses: {err}");
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
