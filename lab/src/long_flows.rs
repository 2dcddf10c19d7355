//! Long-lived flows, as the clients of a balancer hold them: many TCP
//! connections that each ask an identity server for its name every few
//! tens of milliseconds, and a UDP stream beside them. What happens to them
//! while a balancer fails over, crashes or restarts is what a user feels:
//! resets, a connection that moves to another backend, and stalls (how long
//! one question waited for its answer).
//!
//! One thread drives every connection with `poll(2)`, so 300 connections
//! cost one thread, not 300.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{SocketAddr, TcpStream, UdpSocket},
    os::fd::AsRawFd,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use crate::{netns::Netns, traffic::StopFlag};

/// What the flows went through, from their opening to the stop.
#[derive(Clone, Debug, Default)]
pub struct FlowReport {
    pub connections: usize,
    /// Connections reset or closed by the other side.
    pub broken: usize,
    /// Connections whose answers came from another backend than the first.
    pub moved: usize,
    /// Questions answered over all connections.
    pub answers: u64,
    /// The longest any question waited for its answer, over all
    /// connections (for a connection still waiting at the stop, until then).
    pub longest_stall: Duration,
    /// Connections whose longest wait exceeded 1 s.
    pub stalled_over_1s: usize,
    /// Each connection's longest wait, in the order they were opened.
    pub stalls: Vec<Duration>,
    pub udp_sent: u64,
    pub udp_answered: u64,
    /// The longest time the UDP stream went without an answer.
    pub udp_longest_gap: Duration,
    /// The UDP stream's answers came from more than one backend (identity
    /// servers answer with their name).
    pub udp_moved: bool,
}

impl FlowReport {
    /// One line for logs and benchmarks.
    pub fn summary(&self) -> String {
        format!(
            "{} TCP connections: {} broken, {} moved, longest stall {:.0} ms, {} stalled > 1 s; \
             UDP {}/{} answered, longest gap {:.0} ms",
            self.connections,
            self.broken,
            self.moved,
            self.longest_stall.as_secs_f64() * 1e3,
            self.stalled_over_1s,
            self.udp_answered,
            self.udp_sent,
            self.udp_longest_gap.as_secs_f64() * 1e3,
        )
    }
}

/// Flows running on a thread in a namespace until [`LongFlows::finish`].
pub struct LongFlows {
    stop: StopFlag,
    handle: Option<JoinHandle<Result<Result<FlowReport>>>>,
}

/// How the flows are shaped.
#[derive(Clone, Copy, Debug)]
pub struct FlowPlan {
    pub tcp: SocketAddr,
    pub connections: usize,
    /// Time between a connection's answer and its next question.
    pub interval: Duration,
    /// The UDP stream's target (an identity or echo server), if any.
    pub udp: Option<SocketAddr>,
}

impl LongFlows {
    /// Opens the connections from `ns` (each asks once, to learn its
    /// backend) and returns once all are open; they then run until
    /// [`LongFlows::finish`].
    pub fn start(ns: &Netns, plan: FlowPlan) -> Result<Self> {
        let stop = StopFlag::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let flag = stop.clone();
        let handle = ns.spawn(move || {
            let flows = match Running::open(&plan) {
                Ok(f) => {
                    let _ = ready_tx.send(Ok(()));
                    f
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            Ok(flows.run(&plan, &flag))
        })?;
        match ready_rx.recv_timeout(Duration::from_mins(1)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => anyhow::bail!("opening the long-lived flows: {e}"),
            Err(_) => anyhow::bail!("the long-lived flows did not open within 60 s"),
        }
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the flows and reports what they went through.
    pub fn finish(mut self) -> Result<FlowReport> {
        self.stop.stop();
        let handle = self.handle.take().context("finished twice")?;
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the flows' thread panicked"))??
    }
}

impl Drop for LongFlows {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Connection {
    stream: TcpStream,
    backend: String,
    pending: Vec<u8>,
    /// When the outstanding question was sent.
    asked: Option<Instant>,
    next_ask: Instant,
    longest: Duration,
    moved: bool,
    broken: bool,
}

struct Running {
    connections: Vec<Connection>,
    udp: Option<UdpSocket>,
}

impl Running {
    fn open(plan: &FlowPlan) -> Result<Self> {
        let mut connections = Vec::with_capacity(plan.connections);
        for i in 0..plan.connections {
            let mut stream = TcpStream::connect_timeout(&plan.tcp, Duration::from_secs(3))
                .with_context(|| format!("connection {i} to {}", plan.tcp))?;
            stream.set_read_timeout(Some(Duration::from_secs(3)))?;
            stream.write_all(b"who?\n")?;
            let backend = read_line(&mut stream).with_context(|| format!("connection {i}"))?;
            stream.set_nonblocking(true)?;
            connections.push(Connection {
                stream,
                backend,
                pending: Vec::new(),
                asked: None,
                next_ask: Instant::now() + plan.interval,
                longest: Duration::ZERO,
                moved: false,
                broken: false,
            });
        }
        let udp = match plan.udp {
            Some(target) => {
                let socket = UdpSocket::bind(if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                })?;
                socket.connect(target)?;
                socket.set_nonblocking(true)?;
                Some(socket)
            }
            None => None,
        };
        Ok(Self { connections, udp })
    }

    fn run(mut self, plan: &FlowPlan, stop: &StopFlag) -> FlowReport {
        let mut report = FlowReport {
            connections: self.connections.len(),
            ..FlowReport::default()
        };
        let udp_every = Duration::from_millis(20);
        let mut udp_next = Instant::now();
        let mut udp_last_answer = Instant::now();
        let mut udp_first: Option<Vec<u8>> = None;
        while !stop.stopped() {
            let now = Instant::now();
            for c in self.connections.iter_mut().filter(|c| !c.broken) {
                if c.asked.is_none() && now >= c.next_ask {
                    match c.stream.write(b"who?\n") {
                        Ok(5) => c.asked = Some(now),
                        Ok(_) | Err(_) => c.broken = true,
                    }
                }
            }
            if let Some(udp) = &self.udp
                && now >= udp_next
            {
                if udp.send(b"who?").is_ok() {
                    report.udp_sent += 1;
                }
                udp_next = now + udp_every;
            }
            self.wait_readable(Duration::from_millis(5));
            let now = Instant::now();
            for c in self.connections.iter_mut().filter(|c| !c.broken) {
                c.receive(now, plan.interval, &mut report.answers);
            }
            if let Some(udp) = &self.udp {
                let mut buf = [0u8; 64];
                while let Ok(n) = udp.recv(&mut buf) {
                    let first = udp_first.get_or_insert_with(|| buf[..n].to_vec());
                    report.udp_moved |= *first != buf[..n];
                    report.udp_answered += 1;
                    report.udp_longest_gap = report.udp_longest_gap.max(now - udp_last_answer);
                    udp_last_answer = now;
                }
            }
        }
        let now = Instant::now();
        if self.udp.is_some() {
            report.udp_longest_gap = report.udp_longest_gap.max(now - udp_last_answer);
        }
        for c in &mut self.connections {
            if let Some(asked) = c.asked {
                c.longest = c.longest.max(now - asked);
            }
            report.broken += usize::from(c.broken);
            report.moved += usize::from(c.moved);
            report.longest_stall = report.longest_stall.max(c.longest);
            report.stalled_over_1s += usize::from(c.longest > Duration::from_secs(1));
            report.stalls.push(c.longest);
        }
        report
    }

    /// Waits until a socket has something to read, or `timeout`.
    fn wait_readable(&self, timeout: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .connections
            .iter()
            .filter(|c| !c.broken)
            .map(|c| c.stream.as_raw_fd())
            .chain(self.udp.iter().map(AsRawFd::as_raw_fd))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let n = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: fds is a valid array of n pollfd structs for the call.
        unsafe { libc::poll(fds.as_mut_ptr(), n, ms) };
    }
}

impl Connection {
    /// Reads what arrived; each full line answers the outstanding question.
    fn receive(&mut self, now: Instant, interval: Duration, answers: &mut u64) {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.broken = true;
                    return;
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.broken = true;
                    return;
                }
            }
        }
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let name = String::from_utf8_lossy(&line[..line.len() - 1]);
            if name != self.backend {
                self.moved = true;
            }
            if let Some(asked) = self.asked.take() {
                self.longest = self.longest.max(now - asked);
                *answers += 1;
            }
            self.next_ask = now + interval;
        }
    }
}

fn read_line(stream: &mut TcpStream) -> Result<String> {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while answer.last() != Some(&b'\n') {
        let n = stream.read(&mut byte)?;
        anyhow::ensure!(n == 1, "closed before the first answer");
        answer.push(byte[0]);
    }
    answer.pop();
    Ok(String::from_utf8(answer)?)
}
