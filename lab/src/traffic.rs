//! Real sockets for labs and tests: echo servers and request loops, each on a
//! thread inside a namespace, each bounded in time and stopped by a flag.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use crate::netns::Netns;

const POLL: Duration = Duration::from_millis(50);
/// How long a UDP request waits for its echo before it counts as lost.
const UDP_ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

/// Stops the threads it was handed to when set or dropped.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Request counters a client loop updates as it goes.
#[derive(Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
}

impl Tally {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

/// A UDP server in `ns` that echoes every datagram until `stop`.
pub fn udp_echo_server(
    ns: &Netns,
    addr: SocketAddr,
    stop: StopFlag,
) -> Result<JoinHandle<Result<()>>> {
    udp_server(ns, addr, stop, "UDP echo server", |request| {
        request.to_vec()
    })
}

/// A UDP server in `ns` that answers each datagram with `answer(datagram)`
/// until `stop`.
fn udp_server(
    ns: &Netns,
    addr: SocketAddr,
    stop: StopFlag,
    what: &'static str,
    answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static,
) -> Result<JoinHandle<Result<()>>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = ns.spawn(move || -> Result<()> {
        let socket = bind_and_report(
            || UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}")),
            &ready_tx,
        )?;
        socket.set_read_timeout(Some(POLL))?;
        let mut buf = [0u8; 2048];
        while !stop.stopped() {
            if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&answer(&buf[..n]), peer);
            }
        }
        Ok(())
    })?;
    wait_ready(&ready_rx, what)?;
    Ok(flatten(handle))
}

/// A TCP server in `ns` that echoes one line per connection and closes it.
pub fn tcp_echo_server(
    ns: &Netns,
    addr: SocketAddr,
    stop: StopFlag,
) -> Result<JoinHandle<Result<()>>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = ns.spawn(move || -> Result<()> {
        let listener = bind_and_report(
            || TcpListener::bind(addr).with_context(|| format!("binding TCP {addr}")),
            &ready_tx,
        )?;
        listener.set_nonblocking(true)?;
        while !stop.stopped() {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false)?;
                    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
                    let mut buf = [0u8; 1024];
                    if let Ok(n) = conn.read(&mut buf) {
                        let _ = conn.write_all(&buf[..n]);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        Ok(())
    })?;
    wait_ready(&ready_rx, "TCP echo server")?;
    Ok(flatten(handle))
}

/// Sends a UDP request to `target` every `interval` from `ns` until `stop`,
/// counting the echoed answers.
pub fn udp_client(
    ns: &Netns,
    target: SocketAddr,
    interval: Duration,
    tally: Arc<Tally>,
    stop: StopFlag,
) -> Result<JoinHandle<Result<()>>> {
    let handle = ns.spawn(move || -> Result<()> {
        let local: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0".parse()?
        } else {
            "[::]:0".parse()?
        };
        let socket = UdpSocket::bind(local)?;
        let mut seq = 0u64;
        while !stop.stopped() {
            let started = Instant::now();
            seq += 1;
            let request = seq.to_be_bytes();
            if socket.send_to(&request, target).is_ok() {
                tally.sent.fetch_add(1, Ordering::Relaxed);
                if await_echo(&socket, &request, started + UDP_ANSWER_TIMEOUT) {
                    tally.answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            std::thread::sleep(interval.saturating_sub(started.elapsed()));
        }
        Ok(())
    })?;
    Ok(flatten(handle))
}

/// Opens a TCP connection to `target` every `interval` from `ns` until
/// `stop`, counting those that got their line echoed back.
pub fn tcp_client(
    ns: &Netns,
    target: SocketAddr,
    interval: Duration,
    tally: Arc<Tally>,
    stop: StopFlag,
) -> Result<JoinHandle<Result<()>>> {
    let handle = ns.spawn(move || -> Result<()> {
        while !stop.stopped() {
            let started = Instant::now();
            tally.sent.fetch_add(1, Ordering::Relaxed);
            if tcp_request(target).is_ok() {
                tally.answered.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(interval.saturating_sub(started.elapsed()));
        }
        Ok(())
    })?;
    Ok(flatten(handle))
}

/// Waits until `deadline` for the echo of `request`, discarding late echoes
/// of earlier requests (the first ones wait for neighbour discovery).
fn await_echo(socket: &UdpSocket, request: &[u8], deadline: Instant) -> bool {
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match socket.recv_from(&mut buf) {
            Ok((n, _)) if buf[..n] == *request => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

fn tcp_request(target: SocketAddr) -> Result<()> {
    let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(1))?;
    conn.set_read_timeout(Some(Duration::from_secs(1)))?;
    conn.write_all(b"ping\n")?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    anyhow::ensure!(answer == b"ping\n", "unexpected answer {answer:?}");
    Ok(())
}

/// Binds with `bind` and tells the spawning thread whether that worked, so
/// it never starts clients before the server listens.
fn bind_and_report<T>(
    bind: impl FnOnce() -> Result<T>,
    ready: &std::sync::mpsc::Sender<Result<(), String>>,
) -> Result<T> {
    match bind() {
        Ok(socket) => {
            let _ = ready.send(Ok(()));
            Ok(socket)
        }
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            Err(e)
        }
    }
}

fn wait_ready(rx: &std::sync::mpsc::Receiver<Result<(), String>>, what: &str) -> Result<()> {
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => anyhow::bail!("{what} did not start: {e}"),
        Err(_) => anyhow::bail!("{what} did not start within 5 s"),
    }
}

/// Turns the namespace thread's `Result<Result<()>>` into one `Result`.
fn flatten(handle: JoinHandle<Result<Result<()>>>) -> JoinHandle<Result<()>> {
    std::thread::spawn(move || match handle.join() {
        Ok(result) => result.and_then(|r| r),
        Err(_) => anyhow::bail!("a traffic thread panicked"),
    })
}

/// A TCP server in `ns` that answers every line a client sends with
/// `name`, on as many connections at once as clients open, until `stop`.
/// Tests tell which backend served a connection from the answer.
pub fn tcp_identity_server(
    ns: &Netns,
    addr: SocketAddr,
    name: &str,
    stop: StopFlag,
) -> Result<JoinHandle<Result<()>>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let answer = format!("{name}\n").into_bytes();
    let handle = ns.spawn(move || -> Result<()> {
        let listener = bind_and_report(
            || TcpListener::bind(addr).with_context(|| format!("binding TCP {addr}")),
            &ready_tx,
        )?;
        listener.set_nonblocking(true)?;
        while !stop.stopped() {
            match listener.accept() {
                Ok((conn, _)) => {
                    let answer = answer.clone();
                    let stop = stop.clone();
                    std::thread::spawn(move || serve_lines(conn, &answer, &stop));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        Ok(())
    })?;
    wait_ready(&ready_rx, "TCP identity server")?;
    Ok(flatten(handle))
}

fn serve_lines(mut conn: TcpStream, answer: &[u8], stop: &StopFlag) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(POLL));
    let mut buf = [0u8; 256];
    while !stop.stopped() {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if conn.write_all(answer).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A UDP server in `ns` that answers every datagram with `name`.
pub fn udp_identity_server(
    ns: &Netns,
    addr: SocketAddr,
    name: &str,
    stop: StopFlag,
) -> Result<JoinHandle<Result<()>>> {
    let answer = name.as_bytes().to_vec();
    udp_server(ns, addr, stop, "UDP identity server", move |_| {
        answer.clone()
    })
}

/// A client connection to an identity server: each `ask` sends a line and
/// returns the server's name.
pub struct IdentityConnection {
    stream: TcpStream,
}

impl IdentityConnection {
    pub fn open(target: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))
            .with_context(|| format!("connecting to {target}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Self { stream })
    }

    /// The client's own address and port: the flow's source.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.stream.local_addr()?)
    }

    pub fn ask(&mut self) -> Result<String> {
        self.stream.write_all(b"who?\n")?;
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while answer.last() != Some(&b'\n') {
            let n = self.stream.read(&mut byte)?;
            anyhow::ensure!(n == 1, "connection closed before the answer");
            answer.push(byte[0]);
        }
        answer.pop();
        Ok(String::from_utf8(answer)?)
    }
}
