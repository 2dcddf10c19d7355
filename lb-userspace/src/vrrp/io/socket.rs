//! Raw VRRP sockets (IP protocol 112), one per interface and family, as
//! keepalived opens them: bound to the interface, joined to the VRRP group
//! when an instance there uses multicast, nonblocking and driven by tokio.
//!
//! IPv4 sends with `IP_HDRINCL` and [`ipv4_packet`] (so the header is the
//! one keepalived sends: TTL 255, TOS 0xc0) and receives the IP header too.
//! IPv6 cannot include its header: the hop limit is a socket option, the
//! source goes in `IPV6_PKTINFO` (the v3 checksum covers it, so the kernel
//! must not choose another), and source, destination and hop limit of a
//! received advert come back as ancillary data.

use std::{
    io, mem,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    sync::atomic::{AtomicU16, Ordering},
};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::vrrp::{
    checksum::IPPROTO_VRRP,
    ipv4_packet,
    packet::Family,
    receive::{DropReason, Received, VRRP_TTL},
};

/// Largest advert plus headers: 255 IPv6 addresses are 4 KiB.
const RECV_BUFFER: usize = 8192;

/// Why a socket could not be opened or an advert not sent.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("interface {interface} does not exist")]
    NoInterface { interface: String },
    #[error("interface {interface}: {what}: {source}")]
    Os {
        interface: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("interface {interface}: cannot send an advert from {src} to {dst}")]
    Family {
        interface: String,
        src: IpAddr,
        dst: IpAddr,
    },
}

/// A received packet, owned; [`Incoming::received`] gives the state
/// machine's view of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// The whole IPv4 packet, header included.
    Ipv4(Vec<u8>),
    /// The VRRP message and what ancillary data said about it.
    Ipv6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        payload: Vec<u8>,
    },
}

impl Incoming {
    /// The advert with its addresses and TTL; `Err` when the IPv4 header
    /// is unusable.
    pub fn received(&self) -> Result<Received<'_>, DropReason> {
        match self {
            Self::Ipv4(packet) => Received::from_ipv4_packet(packet),
            Self::Ipv6 {
                src,
                dst,
                hop_limit,
                payload,
            } => Ok(Received {
                src: IpAddr::V6(*src),
                dst: IpAddr::V6(*dst),
                ttl_or_hop_limit: *hop_limit,
                payload,
            }),
        }
    }
}

/// The interface index of `name`.
pub fn interface_index(name: &str) -> Option<u32> {
    let c_name = std::ffi::CString::new(name).ok()?;
    // SAFETY: c_name is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    (index != 0).then_some(index)
}

/// A raw VRRP socket on one interface for one family.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    interface: String,
    ifindex: u32,
    family: Family,
    /// IPv4 identification field: keepalived counts up from 1 too.
    next_id: AtomicU16,
}

impl VrrpSocket {
    /// Opens the socket on `interface`; `multicast` joins the VRRP group.
    pub fn open(interface: &str, family: Family, multicast: bool) -> Result<Self, SocketError> {
        let ifindex = interface_index(interface).ok_or_else(|| SocketError::NoInterface {
            interface: interface.to_owned(),
        })?;
        let os = |what: &'static str| {
            let interface = interface.to_owned();
            move |source| SocketError::Os {
                interface,
                what,
                source,
            }
        };
        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let socket = Socket::new(
            domain,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .map_err(os("opening a raw socket for IP protocol 112"))?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(os("SO_BINDTODEVICE"))?;
        match family {
            Family::Ipv4 => {
                socket
                    .set_header_included_v4(true)
                    .map_err(os("IP_HDRINCL"))?;
                // Only the groups this socket joined, not every socket's.
                socket
                    .set_multicast_all_v4(false)
                    .map_err(os("IP_MULTICAST_ALL"))?;
                socket
                    .set_multicast_loop_v4(false)
                    .map_err(os("IP_MULTICAST_LOOP"))?;
                if multicast {
                    socket
                        .join_multicast_v4_n(
                            &Ipv4Addr::new(224, 0, 0, 18),
                            &InterfaceIndexOrAddress::Index(ifindex),
                        )
                        .map_err(os("joining 224.0.0.18"))?;
                }
            }
            Family::Ipv6 => {
                // RFC 5798 5.1.2.3: hop limit 255, multicast and unicast.
                socket
                    .set_multicast_hops_v6(u32::from(VRRP_TTL))
                    .map_err(os("IPV6_MULTICAST_HOPS"))?;
                socket
                    .set_unicast_hops_v6(u32::from(VRRP_TTL))
                    .map_err(os("IPV6_UNICAST_HOPS"))?;
                socket
                    .set_multicast_all_v6(false)
                    .map_err(os("IPV6_MULTICAST_ALL"))?;
                socket
                    .set_multicast_loop_v6(false)
                    .map_err(os("IPV6_MULTICAST_LOOP"))?;
                socket
                    .set_multicast_if_v6(ifindex)
                    .map_err(os("IPV6_MULTICAST_IF"))?;
                set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
                    .map_err(os("IPV6_RECVPKTINFO"))?;
                set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)
                    .map_err(os("IPV6_RECVHOPLIMIT"))?;
                if multicast {
                    socket
                        .join_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12), ifindex)
                        .map_err(os("joining ff02::12"))?;
                }
            }
        }
        socket.set_nonblocking(true).map_err(os("O_NONBLOCK"))?;
        // SAFETY: the Socket owns its fd, and nothing replaces or closes it
        // while the AsyncFd holds it.
        let fd = unsafe { AsyncFd::register(socket) }
            .map_err(|e| os("registering with tokio")(e.into_parts().1))?;
        Ok(Self {
            fd,
            interface: interface.to_owned(),
            ifindex,
            family,
            next_id: AtomicU16::new(1),
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Sends the VRRP `message` from `src` to `dst` with TTL / hop limit 255.
    pub async fn send(&self, src: IpAddr, dst: IpAddr, message: &[u8]) -> Result<(), SocketError> {
        let result = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) if self.family == Family::Ipv4 => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let Some(packet) = ipv4_packet(src, dst, id, message) else {
                    return Err(self.family_error(src.into(), dst.into()));
                };
                let to = SockAddr::from(std::net::SocketAddrV4::new(dst, 0));
                self.fd
                    .async_io(tokio::io::Interest::WRITABLE, |s| s.send_to(&packet, &to))
                    .await
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) if self.family == Family::Ipv6 => {
                self.fd
                    .async_io(tokio::io::Interest::WRITABLE, |s| {
                        send_v6(s, src, dst, self.ifindex, message)
                    })
                    .await
            }
            _ => return Err(self.family_error(src, dst)),
        };
        result.map(drop).map_err(|source| SocketError::Os {
            interface: self.interface.clone(),
            what: "sending an advert",
            source,
        })
    }

    /// The next packet. Errors are the socket's, not the packet's.
    pub async fn recv(&self) -> io::Result<Incoming> {
        match self.family {
            Family::Ipv4 => {
                let packet = self
                    .fd
                    .async_io(tokio::io::Interest::READABLE, recv_v4)
                    .await?;
                Ok(Incoming::Ipv4(packet))
            }
            Family::Ipv6 => {
                self.fd
                    .async_io(tokio::io::Interest::READABLE, recv_v6)
                    .await
            }
        }
    }

    fn family_error(&self, src: IpAddr, dst: IpAddr) -> SocketError {
        SocketError::Family {
            interface: self.interface.clone(),
            src,
            dst,
        }
    }
}

fn set_int_option(socket: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: value is a live c_int and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr_v6(addr: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data; all-zero is valid.
    let mut sa: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = addr.octets();
    sa.sin6_scope_id = scope;
    sa
}

/// `recv` of a whole IPv4 packet, header included.
fn recv_v4(socket: &Socket) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; RECV_BUFFER];
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Ancillary buffer, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct ControlBuffer([u8; 128]);

/// `sendmsg` with `IPV6_PKTINFO` naming the source and the interface.
fn send_v6(
    socket: &Socket,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ifindex: u32,
    message: &[u8],
) -> io::Result<usize> {
    let mut to = sockaddr_v6(dst, ifindex);
    let mut iov = libc::iovec {
        iov_base: message.as_ptr().cast_mut().cast(),
        iov_len: message.len(),
    };
    let mut control = ControlBuffer([0; 128]);
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.octets(),
        },
        ipi6_ifindex: ifindex,
    };
    // SAFETY: msghdr is plain data; the pointers set below outlive the call,
    // and the cmsg macros stay within `control`, sized for one in6_pktinfo.
    unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_name = (&raw mut to).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(mem::size_of::<libc::in6_pktinfo>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
        (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<libc::in6_pktinfo>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
        let n = libc::sendmsg(socket.as_raw_fd(), &raw const msg, 0);
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// `recvmsg` reading the source from the address, the destination from
/// `IPV6_PKTINFO` and the hop limit from `IPV6_HOPLIMIT`. A packet without
/// them gets `::` and hop limit 0, which the receive checks then drop.
fn recv_v6(socket: &Socket) -> io::Result<Incoming> {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut from = sockaddr_v6(Ipv6Addr::UNSPECIFIED, 0);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = ControlBuffer([0; 128]);
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut hop_limit = 0u8;
    // SAFETY: as in send_v6; the kernel writes within the lengths given,
    // and CMSG_NXTHDR stops at msg_controllen.
    let n = unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        let n = libc::recvmsg(socket.as_raw_fd(), &raw mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let hops = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    hop_limit = u8::try_from(hops).unwrap_or(0);
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
        n as usize
    };
    buf.truncate(n);
    Ok(Incoming::Ipv6 {
        src: Ipv6Addr::from(from.sin6_addr.s6_addr),
        dst,
        hop_limit,
        payload: buf,
    })
}
