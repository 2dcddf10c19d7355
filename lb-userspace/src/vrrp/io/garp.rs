//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6)
//! for the virtual addresses of a new master, so hosts and switches send
//! their traffic to it at once (RFC 5798 6.4.1, 8.1.2; keepalived's
//! `garp_master_*`).
//!
//! ARP goes out on an AF_PACKET socket with the Ethernet header built here;
//! the advertisement on an ICMPv6 raw socket with hop limit 255 (RFC 4861
//! 7.1.2 requires it; the kernel fills in the checksum).

use std::{
    io, mem,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const ETH_P_ARP: u16 = 0x0806;
/// RFC 4861 4.4: Neighbor Advertisement.
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// RFC 4861 4.4: the Override flag: replace what caches hold.
const NA_FLAG_OVERRIDE: u8 = 0x20;
/// RFC 4861 4.6.1: Target Link-Layer Address option.
const OPTION_TARGET_LINK_ADDRESS: u8 = 2;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

#[derive(Debug, thiserror::Error)]
#[error("interface {interface}: gratuitous {what}: {source}")]
pub struct GarpError {
    interface: String,
    what: &'static str,
    #[source]
    source: io::Error,
}

/// A gratuitous ARP request for `ip` from `mac` (RFC 5227 2.3's
/// announcement: sender and target address both `ip`), Ethernet header
/// included.
pub fn arp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    let mut frame = [0u8; 42];
    frame[0..6].copy_from_slice(&BROADCAST_MAC);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    // Ethernet, IPv4, 6-byte and 4-byte addresses, request.
    frame[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    frame[22..28].copy_from_slice(&mac);
    frame[28..32].copy_from_slice(&ip.octets());
    // keepalived fills the target hardware address with broadcast too.
    frame[32..38].copy_from_slice(&BROADCAST_MAC);
    frame[38..42].copy_from_slice(&ip.octets());
    frame
}

/// An unsolicited neighbour advertisement for `ip` at `mac` (RFC 4861
/// 7.2.6), checksum left to the kernel.
pub fn na_message(mac: [u8; 6], ip: Ipv6Addr) -> [u8; 32] {
    let mut message = [0u8; 32];
    message[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
    message[4] = NA_FLAG_OVERRIDE;
    message[8..24].copy_from_slice(&ip.octets());
    message[24] = OPTION_TARGET_LINK_ADDRESS;
    message[25] = 1; // in units of 8 bytes
    message[26..32].copy_from_slice(&mac);
    message
}

/// Sends `count` gratuitous messages for each of `addresses` on
/// `interface` (index `ifindex`, hardware address `mac`).
pub fn announce(
    interface: &str,
    ifindex: u32,
    mac: [u8; 6],
    addresses: &[IpAddr],
    count: u32,
) -> Result<(), GarpError> {
    let err = |what: &'static str| {
        move |source| GarpError {
            interface: interface.to_owned(),
            what,
            source,
        }
    };
    let v4: Vec<Ipv4Addr> = addresses
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<Ipv6Addr> = addresses
        .iter()
        .filter_map(|a| match a {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        })
        .collect();
    if !v4.is_empty() {
        let socket = packet_socket().map_err(err("ARP socket"))?;
        for _ in 0..count {
            for ip in &v4 {
                send_frame(&socket, ifindex, &arp_frame(mac, *ip)).map_err(err("ARP"))?;
            }
        }
    }
    if !v6.is_empty() {
        let socket = icmpv6_socket(interface, ifindex).map_err(err("NA socket"))?;
        let to = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, ifindex));
        for _ in 0..count {
            for ip in &v6 {
                socket
                    .send_to(&na_message(mac, *ip), &to)
                    .map_err(err("neighbour advertisement"))?;
            }
        }
    }
    Ok(())
}

fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(ETH_P_ARP.to_be()),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send_frame(socket: &OwnedFd, ifindex: u32, frame: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is valid.
    let mut to: libc::sockaddr_ll = unsafe { mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = ETH_P_ARP.to_be();
    to.sll_ifindex = ifindex as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&BROADCAST_MAC);
    // SAFETY: frame and `to` are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const to).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn icmpv6_socket(interface: &str, ifindex: u32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_multicast_if_v6(ifindex)?;
    socket.set_multicast_hops_v6(255)?;
    socket.set_multicast_loop_v6(false)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

    #[test]
    fn arp_announcement_layout() {
        let frame = arp_frame(MAC, Ipv4Addr::new(10, 0, 0, 100));
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0x11, 0x08, 0x06, // Ethernet
            0, 1, 0x08, 0x00, 6, 4, 0, 1, // ARP request
            2, 0, 0, 0, 0, 0x11, 10, 0, 0, 100, // sender
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 10, 0, 0, 100, // target
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn neighbour_advertisement_layout() {
        let ip: Ipv6Addr = "fd00::100".parse().unwrap();
        let message = na_message(MAC, ip);
        assert_eq!(&message[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&message[8..24], &ip.octets());
        assert_eq!(&message[24..], &[2, 1, 2, 0, 0, 0, 0, 0x11]);
    }
}
