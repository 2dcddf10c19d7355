//! A tiny HTTP/1.1 server for the demo's backends: `GET /` answers the
//! backend's name, `GET /health` answers `ok` (for lbd's checks), anything
//! else 404. One connection per request (`Connection: close`). The demo
//! stops and restarts it to make a backend fail and come back.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, Result};

use crate::{netns::Netns, traffic::StopFlag};

/// A running server; [`HttpServer::stop`] closes its listener, so new
/// connections are refused as by a crashed service (those the kernel had
/// already accepted are still answered).
pub(super) struct HttpServer {
    stop: StopFlag,
    thread: Option<JoinHandle<Result<Result<()>>>>,
}

impl HttpServer {
    /// Starts serving on `addr` inside `ns`; returns once it listens.
    pub(super) fn start(ns: &Netns, addr: SocketAddr, name: &str) -> Result<Self> {
        let stop = StopFlag::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let name = name.to_owned();
        let flag = stop.clone();
        let thread = ns.spawn(move || -> Result<()> {
            let listener = match TcpListener::bind(addr) {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return Err(e).with_context(|| format!("binding {addr}"));
                }
            };
            listener.set_nonblocking(true)?;
            loop {
                let stopping = flag.stopped();
                match listener.accept() {
                    // Threads inherit this thread's namespace; the socket
                    // is bound already anyway.
                    Ok((conn, _)) => {
                        let name = name.clone();
                        std::thread::spawn(move || serve(conn, &name));
                    }
                    // Stopping serves what the kernel already accepted
                    // (closing would reset it): from then on, connections
                    // are refused, nothing accepted is dropped.
                    Err(_) if stopping => return Ok(()),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        })?;
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => anyhow::bail!("the HTTP server on {addr} did not start: {e}"),
            Err(_) => anyhow::bail!("the HTTP server on {addr} did not start within 5 s"),
        }
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Closes the listener and waits for the accept loop to end.
    pub(super) fn stop(mut self) -> Result<()> {
        self.halt()
    }

    fn halt(&mut self) -> Result<()> {
        self.stop.stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result.and_then(|r| r),
            Some(Err(_)) => anyhow::bail!("the HTTP server thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Reads one request head and answers it.
fn serve(mut conn: TcpStream, name: &str) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next(), words.next());
    let (status, body) = match (method, path) {
        (Some("GET" | "HEAD"), Some("/")) => ("200 OK", format!("{name}\n")),
        (Some("GET" | "HEAD"), Some("/health")) => ("200 OK", "ok\n".to_owned()),
        _ => ("404 Not Found", "not found\n".to_owned()),
    };
    let body = if method == Some("HEAD") { "" } else { &body };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}
