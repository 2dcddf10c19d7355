//! Watches VRRP adverts on a LAN from a namespace (an `AF_PACKET` socket,
//! so nothing has to join the multicast group or be the destination) and
//! keeps when each came and from whom, so a test can assert that a master's
//! adverts never paused.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use lb_lab::netns::Netns;

/// IP protocol number of VRRP.
const IPPROTO_VRRP: u8 = 112;

/// One advert seen on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub at: Instant,
    pub src: Ipv4Addr,
    pub priority: u8,
}

/// A running watch; `finish` stops it and returns what it saw.
pub struct AdvertWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Result<Vec<Seen>>>>>,
}

impl AdvertWatch {
    /// Starts watching IPv4 VRRP adverts on `interface` in `ns`; returns
    /// once the socket is open, so nothing sent afterwards is missed.
    pub fn start(ns: &Netns, interface: &str) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let interface = interface.to_owned();
        let flag = stop.clone();
        let thread = ns.spawn(move || {
            let fd = match open(&interface) {
                Ok(fd) => {
                    let _ = ready_tx.send(Ok(()));
                    fd
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            watch(&fd, &flag)
        })?;
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Self {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => bail!("the advert watch cannot open its socket: {e}"),
            Err(_) => bail!("the advert watch did not start within 5 s"),
        }
    }

    /// Stops watching; every advert seen, in order.
    pub fn finish(mut self) -> Result<Vec<Seen>> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().context("finished twice")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the advert watch panicked"))??
    }
}

impl Drop for AdvertWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The longest time between two adverts from `src` within `seen`, and
/// how many there were.
pub fn longest_gap(seen: &[Seen], src: Ipv4Addr) -> (Duration, usize) {
    let times: Vec<Instant> = seen.iter().filter(|s| s.src == src).map(|s| s.at).collect();
    let gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX);
    (gap, times.len())
}

struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn open(interface: &str) -> Result<Fd> {
    let name = std::ffi::CString::new(interface)?;
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        bail!("no interface {interface}");
    }
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    let fd = Fd(fd);
    // SAFETY: sockaddr_ll is plain data; zero is a valid start.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: addr is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.0,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("bind(AF_PACKET)");
    }
    // The kernel's receive time, not when this thread got to run: on a
    // busy machine the thread can be late by tens of milliseconds, which
    // would show as gaps the sender never made.
    let on: i32 = 1;
    // SAFETY: `on` is a valid int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            size_of::<i32>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("SO_TIMESTAMPNS");
    }
    // Wake up regularly to see the stop flag.
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    // SAFETY: timeout is a valid timeval of the size passed.
    unsafe {
        libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            size_of::<libc::timeval>() as u32,
        )
    };
    Ok(fd)
}

fn watch(fd: &Fd, stop: &AtomicBool) -> Result<Vec<Seen>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let (n, kernel_time) = match recv_stamped(fd, &mut buf) {
            Ok(got) => got,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(err) => return Err(err).context("recvmsg(AF_PACKET)"),
        };
        let at = arrival(kernel_time);
        if let Some((src, priority)) = parse(&buf[..n]) {
            seen.push(Seen { at, src, priority });
        }
    }
    Ok(seen)
}

/// One packet and the kernel's receive time (`SO_TIMESTAMPNS`, wall clock).
fn recv_stamped(fd: &Fd, buf: &mut [u8]) -> std::io::Result<(usize, Option<libc::timespec>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    // SAFETY: msg points at valid buffers of the lengths it gives.
    let n = unsafe { libc::recvmsg(fd.0, &raw mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: walking the control messages the kernel wrote into msg.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                stamp = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<libc::timespec>(),
                ));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

/// The monotonic instant of a wall-clock kernel time: now, minus how long
/// ago it was.
fn arrival(kernel_time: Option<libc::timespec>) -> Instant {
    let now = Instant::now();
    let Some(ts) = kernel_time else {
        return now;
    };
    let stamped = std::time::UNIX_EPOCH
        + Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        );
    let ago = std::time::SystemTime::now()
        .duration_since(stamped)
        .unwrap_or_default();
    now.checked_sub(ago).unwrap_or(now)
}

/// Source and priority of an IPv4 VRRP advert (v2 or v3: the priority is
/// the third byte of both).
fn parse(packet: &[u8]) -> Option<(Ipv4Addr, u8)> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    if packet.get(9) != Some(&IPPROTO_VRRP) || ihl < 20 {
        return None;
    }
    let src = Ipv4Addr::new(
        *packet.get(12)?,
        *packet.get(13)?,
        *packet.get(14)?,
        *packet.get(15)?,
    );
    Some((src, *packet.get(ihl + 2)?))
}
