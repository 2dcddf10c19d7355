//! The demo's client: `GET /` on the VIP at a steady rate, one connection
//! per request, counting which backend answered.
//!
//! Retry semantics (shown in the view's legend): when the TCP connection
//! cannot be established (refused, unreachable, no SYN-ACK within
//! [`CONNECT_TIMEOUT`]) nothing was sent, so the client tries again on a new
//! connection, as nginx's `proxy_next_upstream error` or curl's
//! `--retry-connrefused` do, for up to [`RETRY_BUDGET`]. Such requests count
//! as *retried*. An *error* is a request that failed after it was sent
//! (reset, timeout, wrong answer) or could not connect within the budget.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{netns::Netns, traffic::StopFlag};

pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
pub const RETRY_BUDGET: Duration = Duration::from_secs(2);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// A pause between answers longer than this is recorded as a gap (the
/// client asks every 20 ms by default).
pub const GAP_MIN: Duration = Duration::from_millis(50);

/// A stretch without any answer, as the client saw it.
#[derive(Clone, Copy, Debug)]
pub struct Gap {
    /// The last answer before it.
    pub from: Instant,
    /// The first answer after it.
    pub to: Instant,
}

impl Gap {
    pub fn length(&self) -> Duration {
        self.to - self.from
    }
}

/// What the client counted so far.
#[derive(Clone, Debug, Default)]
pub struct ClientCounts {
    /// Answers per backend name.
    pub answers: BTreeMap<String, u64>,
    pub ok: u64,
    /// Requests that needed more than one connection attempt.
    pub retried: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub last_answer: Option<Instant>,
    pub gaps: Vec<Gap>,
}

#[derive(Clone, Default)]
pub struct ClientStats(Arc<Mutex<ClientCounts>>);

impl ClientStats {
    pub fn snapshot(&self) -> ClientCounts {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut ClientCounts)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Starts the request loop in `ns`: one request every `interval`.
pub fn start(
    ns: &Netns,
    target: SocketAddr,
    interval: Duration,
    stats: ClientStats,
    stop: StopFlag,
) -> Result<JoinHandle<Result<()>>> {
    ns.spawn(move || {
        while !stop.stopped() {
            let started = Instant::now();
            let (outcome, attempts) = request(target);
            let now = Instant::now();
            stats.update(|c| {
                if attempts > 1 {
                    c.retried += 1;
                }
                match outcome {
                    Ok(name) => {
                        c.ok += 1;
                        *c.answers.entry(name).or_default() += 1;
                        if let Some(last) = c.last_answer
                            && now - last > GAP_MIN
                        {
                            c.gaps.push(Gap {
                                from: last,
                                to: now,
                            });
                        }
                        c.last_answer = Some(now);
                    }
                    Err(e) => {
                        c.errors += 1;
                        c.last_error = Some(e);
                    }
                }
            });
            std::thread::sleep(interval.saturating_sub(started.elapsed()));
        }
    })
}

/// One GET, retried on new connections while none can be established.
/// Returns the answering backend's name (or why not) and the attempts made.
fn request(target: SocketAddr) -> (Result<String, String>, u32) {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
            Ok(conn) => return (get(conn), attempts),
            Err(e) if started.elapsed() >= RETRY_BUDGET => {
                return (Err(format!("connect: {e}")), attempts);
            }
            Err(e) => {
                // Refusals come back at once: pace them a little.
                if e.kind() != std::io::ErrorKind::TimedOut {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

fn get(mut conn: TcpStream) -> Result<String, String> {
    let fail = |what: &str, e: std::io::Error| format!("{what}: {e}");
    conn.set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|e| fail("socket", e))?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .map_err(|e| fail("send", e))?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)
        .map_err(|e| fail("answer", e))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "answer {:?}",
            head.lines().next().unwrap_or_default()
        ));
    }
    Ok(body.trim().to_owned())
}
