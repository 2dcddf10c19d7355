//! A small HTTP server for the health-check tests and benchmark: it serves
//! one page whose body the test can change, can be told to accept
//! connections and never answer, and stops listening when stopped (so
//! connects are refused), all inside a namespace.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, Result};
use lb_lab::netns::Netns;

/// How the server treats a request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// `200 OK` with this body.
    Serve(String),
    /// Accept, read the request, never answer.
    Hang,
}

/// One listening HTTP server; stops on [`HttpServer::stop`] or drop.
pub struct HttpServer {
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<Result<()>>>>,
    pub addr: SocketAddr,
}

impl HttpServer {
    /// Listens on `addr` in `ns` and serves `body` to every GET.
    pub fn start(ns: &Netns, addr: SocketAddr, body: &str) -> Result<Self> {
        let mode = Arc::new(Mutex::new(Mode::Serve(body.to_owned())));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (mode, stop) = (mode.clone(), stop.clone());
            ns.spawn(move || -> Result<()> {
                let listener = match TcpListener::bind(addr) {
                    Ok(l) => {
                        let _ = ready_tx.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Err(e).with_context(|| format!("binding HTTP {addr}"));
                    }
                };
                listener.set_nonblocking(true)?;
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let (mode, stop) = (mode.clone(), stop.clone());
                            std::thread::spawn(move || serve(conn, &mode, &stop));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                Ok(())
            })?
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => anyhow::bail!("HTTP server on {addr} did not start: {e}"),
            Err(_) => anyhow::bail!("HTTP server on {addr} did not start within 5 s"),
        }
        Ok(Self {
            mode,
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// Serves `body` from now on.
    pub fn set_body(&self, body: &str) {
        *self.mode.lock().expect("mode lock") = Mode::Serve(body.to_owned());
    }

    /// Accepts connections but never answers from now on.
    pub fn hang(&self) {
        *self.mode.lock().expect("mode lock") = Mode::Hang;
    }

    /// Closes the listening socket: connects are refused from now on.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(mut conn: TcpStream, mode: &Mutex<Mode>, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 64 * 1024 {
            return;
        }
    }
    let mode = mode.lock().expect("mode lock").clone();
    match mode {
        Mode::Serve(body) => {
            let reply = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
        }
        Mode::Hang => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
