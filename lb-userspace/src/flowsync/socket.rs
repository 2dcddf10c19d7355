//! The sync socket: one UDP socket per node that sends to the peers (or
//! the group) and receives from them, bound to the configured interface
//! so sync traffic never takes another path.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use thiserror::Error;

use crate::config::FlowSync;

#[derive(Debug, Error)]
pub enum SocketError {
    #[error("flow_sync.interface {0} does not exist")]
    NoInterface(String),
    #[error("cannot set up the flow-sync socket ({what})")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io(what: &'static str) -> impl Fn(io::Error) -> SocketError {
    move |source| SocketError::Io { what, source }
}

/// Where datagrams go: the peers, or the group.
pub(super) fn destinations(config: &FlowSync) -> Vec<SocketAddr> {
    let port = config.port();
    match config.group {
        Some(group) => vec![SocketAddr::new(group, port)],
        None => config
            .peers
            .iter()
            .map(|p| SocketAddr::new(*p, port))
            .collect(),
    }
}

/// Opens the socket: bound to `interface`, listening on the port (on the
/// group, joined, for multicast), multicast sent with `ttl` and not looped
/// back to this node.
pub(super) fn open(config: &FlowSync) -> Result<std::net::UdpSocket, SocketError> {
    let index = interface_index(&config.interface)?;
    let v4 = config
        .group
        .or_else(|| config.peers.first().copied())
        .is_none_or(|a| a.is_ipv4());
    let (domain, any) = if v4 {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    } else {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(io("socket"))?;
    socket.set_reuse_address(true).map_err(io("SO_REUSEADDR"))?;
    socket
        .bind_device(Some(config.interface.as_bytes()))
        .map_err(io("SO_BINDTODEVICE"))?;
    match config.group {
        Some(IpAddr::V4(group)) => {
            socket
                .join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(index.get()))
                .map_err(io("joining the multicast group"))?;
            socket
                .set_multicast_loop_v4(false)
                .map_err(io("IP_MULTICAST_LOOP"))?;
            socket
                .set_multicast_ttl_v4(u32::from(config.ttl()))
                .map_err(io("IP_MULTICAST_TTL"))?;
        }
        Some(IpAddr::V6(group)) => {
            socket
                .join_multicast_v6(&group, index.get())
                .map_err(io("joining the multicast group"))?;
            socket
                .set_multicast_loop_v6(false)
                .map_err(io("IPV6_MULTICAST_LOOP"))?;
            socket
                .set_multicast_hops_v6(u32::from(config.ttl()))
                .map_err(io("IPV6_MULTICAST_HOPS"))?;
            socket
                .set_multicast_if_v6(index.get())
                .map_err(io("IPV6_MULTICAST_IF"))?;
        }
        None => {}
    }
    // Listening on the wildcard: with SO_BINDTODEVICE only this interface's
    // datagrams arrive, unicast or to the joined group.
    socket
        .bind(&SocketAddr::new(any, config.port()).into())
        .map_err(io("binding the port"))?;
    socket.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
    Ok(socket.into())
}

fn interface_index(name: &str) -> Result<NonZeroU32, SocketError> {
    let c = std::ffi::CString::new(name).map_err(|_| SocketError::NoInterface(name.to_owned()))?;
    // SAFETY: a valid C string; the call only reads it.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    NonZeroU32::new(index).ok_or_else(|| SocketError::NoInterface(name.to_owned()))
}
