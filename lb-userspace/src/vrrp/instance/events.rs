//! What an instance reports: its protocol states, why they change, and the
//! actions the I/O layer carries out.

use std::net::IpAddr;

use crate::config::VirtualAddress;

/// RFC 5798 6.3: the protocol states, plus keepalived's FAULT (a tracked
/// script or interface says this node must not serve the addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
}

/// Why a state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `start`: into BACKUP (or FAULT) to begin listening.
    Startup,
    /// `start` or recovery of the address owner: MASTER at once.
    AddressOwner,
    /// No advert for Master_Down_Interval.
    MasterDown,
    /// Skew_Time after the master's priority-0 advert.
    MasterStopped,
    /// A better master was heard.
    HigherPriority {
        from: IpAddr,
        priority: u8,
    },
    Fault(FaultCause),
    /// The fault cleared.
    Recovered,
    /// `stop`.
    Stopped,
    /// `set_maintenance(true)`.
    Maintenance,
    /// `failover()`.
    Failover,
    /// Another member of the sync group changed state.
    SyncGroup,
}

/// What keeps an instance in FAULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultCause {
    /// A weight-0 script fails (or has not reported yet).
    Script(String),
    /// A tracked interface without weight is down.
    Interface(String),
    /// No address to send adverts from (keepalived: "no IPv4 address for
    /// interface").
    NoSourceAddress,
    /// Another member of the sync group is in FAULT.
    SyncGroup,
}

/// What the I/O layer must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `message` (the VRRP payload) from `src` to `dst` with TTL / hop
    /// limit 255 (IPv4: [`crate::vrrp::ipv4_packet`] builds the header).
    SendAdvert {
        src: IpAddr,
        dst: IpAddr,
        priority: u8,
        message: Vec<u8>,
    },
    /// Add the addresses. `accept: false` (RFC 5798 6.1 Accept_Mode off, not
    /// the owner): also drop traffic addressed to them.
    AddVips {
        addresses: Vec<VirtualAddress>,
        accept: bool,
    },
    RemoveVips {
        addresses: Vec<VirtualAddress>,
    },
    /// Gratuitous ARP (IPv4) or unsolicited NA (IPv6) for each address,
    /// `count` times (RFC 5798 6.4.1 / 8.1.2).
    SendGratuitous {
        addresses: Vec<IpAddr>,
        count: u32,
    },
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
}
