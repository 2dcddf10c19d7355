//! Long-lived flows through a VIP, for tests of what a restart (or a
//! failover) does to established connections: each TCP connection asks its
//! identity server (`lb_lab::traffic::tcp_identity_server`) every
//! `interval` and records who answered, whether it broke, and the longest
//! wait between two answers; one UDP socket does the same with datagrams.

use std::{
    io::{BufRead, BufReader, ErrorKind, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lb_lab::{netns::Netns, traffic::StopFlag};

/// How long one read waits before it checks the stop flag again.
const POLL: Duration = Duration::from_millis(100);

/// What one flow saw.
#[derive(Clone, Debug)]
pub struct FlowReport {
    /// The client's address and port.
    pub local: SocketAddr,
    /// The first backend that answered.
    pub backend: Option<String>,
    /// Answers from any other backend (the flow moved).
    pub moved_to: Vec<String>,
    /// Why the flow ended early (reset, closed), if it did.
    pub error: Option<String>,
    pub answers: u64,
    /// Requests without an answer (UDP only: TCP retransmits).
    pub lost: u64,
    /// The longest time between two answers.
    pub longest_gap: Duration,
    /// When the last answer came.
    pub last_answer: Option<Instant>,
}

impl FlowReport {
    fn new(local: SocketAddr) -> Self {
        Self {
            local,
            backend: None,
            moved_to: Vec::new(),
            error: None,
            answers: 0,
            lost: 0,
            longest_gap: Duration::ZERO,
            last_answer: None,
        }
    }

    fn answered(&mut self, who: &str, previous: &mut Instant) {
        let now = Instant::now();
        self.longest_gap = self.longest_gap.max(now - *previous);
        *previous = now;
        self.last_answer = Some(now);
        self.answers += 1;
        match &self.backend {
            None => self.backend = Some(who.to_owned()),
            Some(first) if first != who => self.moved_to.push(who.to_owned()),
            Some(_) => {}
        }
    }
}

/// Running flows; [`LongFlows::stop`] ends them and returns their reports.
pub struct LongFlows {
    stop: StopFlag,
    tcp: Vec<JoinHandle<FlowReport>>,
    udp: JoinHandle<FlowReport>,
}

impl LongFlows {
    /// Opens `connections` TCP connections and one UDP socket from `client`
    /// to `target` (its TCP and UDP identity servers) and starts asking.
    pub fn start(
        client: &Netns,
        target: SocketAddr,
        connections: usize,
        interval: Duration,
    ) -> Result<Self> {
        // Sockets belong to the namespace they are created in; the threads
        // that drive them need not run there.
        let (streams, udp) = client.run(|| -> Result<_> {
            let streams = (0..connections)
                .map(|i| {
                    TcpStream::connect_timeout(&target, Duration::from_secs(2))
                        .with_context(|| format!("connection {i} to {target}"))
                })
                .collect::<Result<Vec<_>>>()?;
            let udp = UdpSocket::bind("0.0.0.0:0").context("binding the UDP client")?;
            udp.connect(target)?;
            Ok((streams, udp))
        })??;
        let stop = StopFlag::default();
        let spawn = |name: String| std::thread::Builder::new().name(name).stack_size(128 << 10);
        let tcp = streams
            .into_iter()
            .enumerate()
            .map(|(i, stream)| {
                let stop = stop.clone();
                spawn(format!("flow{i}"))
                    .spawn(move || drive_tcp(stream, interval, &stop))
                    .context("spawning a flow thread")
            })
            .collect::<Result<Vec<_>>>()?;
        let udp = {
            let stop = stop.clone();
            spawn("udp-flow".to_owned()).spawn(move || drive_udp(&udp, interval, &stop))?
        };
        Ok(Self { stop, tcp, udp })
    }

    /// Stops asking; returns the TCP flows' reports and the UDP flow's.
    pub fn stop(self) -> (Vec<FlowReport>, FlowReport) {
        self.stop.stop();
        let tcp = self
            .tcp
            .into_iter()
            .map(|h| h.join().expect("flow thread"))
            .collect();
        (tcp, self.udp.join().expect("UDP flow thread"))
    }
}

fn drive_tcp(stream: TcpStream, interval: Duration, stop: &StopFlag) -> FlowReport {
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut report = FlowReport::new(local);
    let _ = stream.set_read_timeout(Some(POLL));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let mut reader = BufReader::new(stream);
    let mut previous = Instant::now();
    'ask: while !stop.stopped() {
        if let Err(e) = writer.write_all(b"who?\n") {
            report.error = Some(format!("write: {e}"));
            break;
        }
        let mut line = String::new();
        loop {
            match reader.read_line(&mut line) {
                Ok(0) => {
                    report.error = Some("closed by the other end".to_owned());
                    break 'ask;
                }
                Ok(_) if line.ends_with('\n') => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stop.stopped() {
                        break 'ask;
                    }
                }
                Err(e) => {
                    report.error = Some(format!("read: {e}"));
                    break 'ask;
                }
            }
        }
        report.answered(line.trim_end(), &mut previous);
        std::thread::sleep(interval);
    }
    report
}

fn drive_udp(socket: &UdpSocket, interval: Duration, stop: &StopFlag) -> FlowReport {
    let local = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut report = FlowReport::new(local);
    let _ = socket.set_read_timeout(Some(POLL));
    let mut previous = Instant::now();
    let mut buf = [0u8; 256];
    while !stop.stopped() {
        if let Err(e) = socket.send(b"who?") {
            report.error = Some(format!("send: {e}"));
            break;
        }
        // An answer to an earlier request counts for it, late as it is.
        match socket.recv(&mut buf) {
            Ok(n) => {
                let who = String::from_utf8_lossy(&buf[..n]).into_owned();
                report.answered(&who, &mut previous);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                report.lost += 1;
            }
            Err(e) => {
                report.error = Some(format!("recv: {e}"));
                break;
            }
        }
        std::thread::sleep(interval);
    }
    report
}

/// `p` (0..=100) percentile of `gaps`, for printing.
pub fn percentile(gaps: &mut [Duration], p: usize) -> Duration {
    if gaps.is_empty() {
        return Duration::ZERO;
    }
    gaps.sort();
    gaps[(gaps.len() - 1) * p / 100]
}
