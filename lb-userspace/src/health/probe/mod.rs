//! The checks themselves: one run of one check against one real server,
//! bounded in time (`connect_timeout` covers the whole exchange) and in
//! how much of a reply it reads, so a hostile or broken server costs a
//! failed check and nothing else.

pub mod http;
pub mod misc;
pub mod tls;

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use regex::bytes::Regex;
use tokio::net::{TcpSocket, TcpStream};

use crate::exec::{Command, Outcome};

/// The most of a reply a check reads (headers and body). keepalived reads
/// whole bodies for its digests; a page over this fails the check.
pub const MAX_REPLY: usize = 1024 * 1024;

/// One configured check, ready to run.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Where to connect (`connect_ip`, `connect_port` or the real server).
    pub target: SocketAddr,
    /// Source address (`bindto`).
    pub bind: Option<IpAddr>,
    /// The whole run's budget (`connect_timeout`; `misc_timeout` for scripts).
    pub timeout: Duration,
    pub kind: ProbeKind,
}

#[derive(Clone, Debug)]
pub enum ProbeKind {
    /// `tcp_check`: the connect succeeds.
    Tcp,
    /// `http_get` / `ssl_get`: every URL answers as expected.
    Http {
        tls: Option<tls::TlsSettings>,
        host: String,
        urls: Vec<UrlExpect>,
    },
    /// `negotiate`: the reply to `request` matches `receive`.
    Negotiate {
        tls: Option<tls::TlsSettings>,
        /// HTTP(S) GET of `request` with `Host: host`, or (simpletcp) the
        /// request sent as is.
        http: bool,
        host: String,
        request: String,
        receive: Option<Regex>,
    },
    /// `misc_check`: the script's exit code.
    Misc { command: Command, dynamic: bool },
}

/// One URL of an HTTP check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlExpect {
    pub path: String,
    /// `None`: any 2xx.
    pub status: Option<u16>,
    /// Lower-case hex MD5 of the body.
    pub digest: Option<String>,
}

/// A passed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Passed {
    /// `misc_dynamic`: the weight the script's exit code asked for.
    pub weight: Option<u32>,
}

/// Why a run failed. The messages name the server's side of it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connection to {target} failed: {source}")]
    Connect {
        target: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bind the check to {bind}: {source}")]
    Bind {
        bind: IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("i/o error talking to the server: {0}")]
    Io(#[source] std::io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    #[error("the reply is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed HTTP reply: {0}")]
    Malformed(&'static str),
    #[error("HTTP status code error on url({path}), status_code [{got}]")]
    Status { path: String, got: u16 },
    #[error("MD5 digest error on url[{path}], MD5SUM [{got}]")]
    Digest { path: String, got: String },
    #[error("the reply does not match `{pattern}`")]
    NoMatch { pattern: String },
    #[error("the script {0}")]
    Script(Outcome),
}

impl Probe {
    /// Runs the check once.
    pub async fn run(&self) -> Result<Passed, ProbeError> {
        if let ProbeKind::Misc { command, dynamic } = &self.kind {
            return misc::run(command, *dynamic, self.timeout).await;
        }
        match tokio::time::timeout(self.timeout, self.run_network()).await {
            Ok(result) => result.map(|()| Passed { weight: None }),
            Err(_) => Err(ProbeError::Timeout(self.timeout)),
        }
    }

    async fn run_network(&self) -> Result<(), ProbeError> {
        match &self.kind {
            ProbeKind::Tcp => self.connect().await.map(drop),
            ProbeKind::Http { tls, host, urls } => {
                for url in urls {
                    let stream = self.connect().await?;
                    let reply = match tls {
                        Some(tls) => {
                            let stream = tls.connect(host, self.target.ip(), stream).await?;
                            http::get(stream, &url.path, host, url.digest.is_some()).await?
                        }
                        None => http::get(stream, &url.path, host, url.digest.is_some()).await?,
                    };
                    http::expect(&reply, url)?;
                }
                Ok(())
            }
            ProbeKind::Negotiate {
                tls,
                http: true,
                host,
                request,
                receive,
            } => {
                let stream = self.connect().await?;
                let reply = match tls {
                    Some(tls) => {
                        let stream = tls.connect(host, self.target.ip(), stream).await?;
                        http::get(stream, request, host, true).await?
                    }
                    None => http::get(stream, request, host, true).await?,
                };
                http::expect_negotiated(&reply, request, receive.as_ref())
            }
            ProbeKind::Negotiate {
                tls,
                http: false,
                request,
                receive,
                host,
            } => {
                let stream = self.connect().await?;
                match tls {
                    Some(tls) => {
                        let stream = tls.connect(host, self.target.ip(), stream).await?;
                        http::exchange(stream, request, receive.as_ref()).await
                    }
                    None => http::exchange(stream, request, receive.as_ref()).await,
                }
            }
            ProbeKind::Misc { .. } => unreachable!("scripts do not connect"),
        }
    }

    async fn connect(&self) -> Result<TcpStream, ProbeError> {
        let socket = if self.target.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(ProbeError::Io)?;
        // Close with a reset, as HAProxy's checks do: a check's socket
        // then leaves no TIME_WAIT behind (a thousand checks a second
        // would keep 60,000 of them, and `bindto` narrows the ports), and
        // the FIN exchange is saved.
        socket.set_zero_linger().map_err(ProbeError::Io)?;
        if let Some(bind) = self.bind {
            socket
                .bind(SocketAddr::new(bind, 0))
                .map_err(|source| ProbeError::Bind { bind, source })?;
        }
        socket
            .connect(self.target)
            .await
            .map_err(|source| ProbeError::Connect {
                target: self.target,
                source,
            })
    }
}
