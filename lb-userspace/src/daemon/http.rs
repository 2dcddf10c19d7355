//! A minimal HTTP/1.x listener for `GET /metrics`: Prometheus needs no
//! more, and a full server stack would be most of the daemon's code.
//! Each scrape asks the daemon's loop for a status report (as `lbd status`
//! does) and encodes it.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};

use super::{
    admission::{Admission, CLIENTS_PER_LISTENER, Waiting},
    control::{ControlRequest, ask},
    metrics::encode_report,
    process_stats::ProcessStats,
    protocol::{Request, Response},
};

const MAX_HEAD: usize = 8 * 1024;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` (errors at start, not at the first scrape).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub fn spawn(listener: TcpListener, requests: mpsc::Sender<ControlRequest>) -> JoinHandle<()> {
    let admission = Admission::new("metrics listener", CLIENTS_PER_LISTENER);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let Some(waiting) = admission.admit() else {
                        continue;
                    };
                    let requests = requests.clone();
                    tokio::spawn(async move {
                        let served =
                            tokio::time::timeout(CLIENT_TIMEOUT, serve(stream, waiting, &requests))
                                .await;
                        if let Ok(Err(err)) = served {
                            tracing::debug!("metrics client: {err}");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!("metrics accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn serve(
    mut stream: TcpStream,
    waiting: Waiting,
    requests: &mpsc::Sender<ControlRequest>,
) -> std::io::Result<()> {
    let Some((head, _serving)) = waiting.read(read_head(&mut stream)).await else {
        return Ok(());
    };
    let Some(head) = head? else {
        return Ok(());
    };
    let request_line = String::from_utf8_lossy(&head);
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => match ask(requests, Request::Status).await {
            Response::Status(report) => ("200 OK", CONTENT_TYPE, {
                encode_report(&report, ProcessStats::sample().as_ref())
            }),
            Response::Error { message } | Response::Done { message } => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("{message}\n"),
            ),
            Response::Flows { .. } | Response::FlowsEnd(_) => (
                "500 Internal Server Error",
                "text/plain; charset=utf-8",
                "lbd answered a status request with flows\n".to_owned(),
            ),
        },
        ("GET", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "lbd: metrics at /metrics\n".to_owned(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The request head; `None` when the client closes or sends too much.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > MAX_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(head))
}
