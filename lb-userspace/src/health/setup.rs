//! From the configuration to checks ready to run: every address, pattern
//! and script resolved and checked before the daemon starts, so a typo
//! fails `lbd run` with its reason instead of failing a server later.

use std::{net::SocketAddr, time::Duration};

use regex::bytes::Regex;

use super::{
    CheckId, ServerIndex, endpoint_label,
    probe::{Probe, ProbeKind, UrlExpect, tls::TlsSettings},
    schedule::RetrySchedule,
    tracker::Tracker,
};
use crate::{
    config::{
        Check, Config, HttpCheck, MiscCheck, NegotiateCheck, NegotiateService, RealServer,
        VirtualServer,
    },
    exec::{Command, ExecError, RunAs},
};

/// Why the health checks cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{server}: negotiate `receive` is not a valid regular expression")]
    Pattern {
        server: String,
        #[source]
        source: regex::Error,
    },
    #[error(
        "{server}: negotiate service `{service:?}` is not implemented (http, https and simpletcp are)"
    )]
    NegotiateService {
        server: String,
        service: NegotiateService,
    },
    #[error("{server}: tls_ca_file {path}: {reason}")]
    TlsCa {
        server: String,
        path: String,
        reason: String,
    },
    #[error("{server}: tls_ca_file is for ssl_get; http_get does not use TLS")]
    CaWithoutTls { server: String },
}

/// One check of one real server, ready to run.
#[derive(Clone, Debug)]
pub struct PreparedCheck {
    pub id: CheckId,
    /// `TCP_CHECK`, `HTTP_GET`, ...: for log lines.
    pub kind: &'static str,
    /// `[10.0.0.2]:tcp:80`.
    pub server: String,
    pub probe: Probe,
    pub schedule: RetrySchedule,
    pub interval: Duration,
    pub retry: u32,
}

/// The scripts a real server runs when it comes up or goes down.
#[derive(Clone, Debug, Default)]
pub struct ServerScripts {
    pub up: Option<Command>,
    pub down: Option<Command>,
}

/// Everything the health runtime needs, checked.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub checks: Vec<PreparedCheck>,
    pub tracker: Tracker,
    /// Per virtual server, per real server.
    pub notify: Vec<Vec<ServerScripts>>,
    /// Per virtual server: `quorum_up`, `quorum_down`.
    pub quorum: Vec<ServerScripts>,
}

/// Resolves every check, pattern and script of `config`.
pub fn prepare(config: &Config) -> Result<Prepared, HealthError> {
    let default_user = RunAs::default_for(config.global.script_user.as_deref())?;
    let script = |what: String, command: Option<&String>| {
        command
            .map(|c| Command::prepare(&what, c, default_user.clone()))
            .transpose()
    };
    let mut checks = Vec::new();
    let mut notify = Vec::new();
    let mut quorum = Vec::new();
    for (service, vs) in config.virtual_servers.iter().enumerate() {
        let vs_label = endpoint_label(vs.address, vs.protocol, vs.port);
        quorum.push(ServerScripts {
            up: script(format!("VS {vs_label}: quorum_up"), vs.quorum_up.as_ref())?,
            down: script(
                format!("VS {vs_label}: quorum_down"),
                vs.quorum_down.as_ref(),
            )?,
        });
        let mut scripts = Vec::new();
        for (server, rs) in vs.real_servers.iter().enumerate() {
            let port = rs.port.unwrap_or(vs.port);
            let rs_label = endpoint_label(rs.address, vs.protocol, port);
            scripts.push(ServerScripts {
                up: script(
                    format!("service {rs_label} of VS {vs_label}: notify_up"),
                    rs.notify_up.as_ref(),
                )?,
                down: script(
                    format!("service {rs_label} of VS {vs_label}: notify_down"),
                    rs.notify_down.as_ref(),
                )?,
            });
            for (check, spec) in rs.checks.iter().enumerate() {
                let id = CheckId {
                    server: ServerIndex { service, server },
                    check,
                };
                checks.push(prepare_check(id, vs, rs, &rs_label, spec, &default_user)?);
            }
        }
        notify.push(scripts);
    }
    Ok(Prepared {
        checks,
        tracker: Tracker::from_config(config),
        notify,
        quorum,
    })
}

fn prepare_check(
    id: CheckId,
    vs: &VirtualServer,
    rs: &RealServer,
    label: &str,
    spec: &Check,
    default_user: &RunAs,
) -> Result<PreparedCheck, HealthError> {
    let port = rs.port.unwrap_or(vs.port);
    let target = |ip: Option<std::net::IpAddr>, p: Option<u16>| {
        SocketAddr::new(ip.unwrap_or(rs.address), p.unwrap_or(port))
    };
    let (kind, probe, interval, retry, delay_before_retry) = match spec {
        Check::TcpCheck(c) => (
            "TCP_CHECK",
            Probe {
                target: target(c.connect_ip, c.connect_port),
                bind: c.bindto,
                timeout: c.connect_timeout,
                kind: ProbeKind::Tcp,
            },
            c.delay_loop,
            c.retry,
            c.delay_before_retry,
        ),
        Check::HttpGet(c) | Check::SslGet(c) => {
            let ssl = matches!(spec, Check::SslGet(_));
            let tls = match (&c.tls_ca_file, ssl) {
                (None, false) => None,
                (None, true) => Some(TlsSettings::unverified()),
                (Some(_), false) => {
                    return Err(HealthError::CaWithoutTls {
                        server: label.to_owned(),
                    });
                }
                (Some(path), true) => {
                    Some(
                        TlsSettings::verified(path).map_err(|reason| HealthError::TlsCa {
                            server: label.to_owned(),
                            path: path.display().to_string(),
                            reason,
                        })?,
                    )
                }
            };
            let kind = if ssl { "SSL_GET" } else { "HTTP_GET" };
            (
                kind,
                http_probe(vs, c, target(c.connect_ip, c.connect_port), tls),
                c.delay_loop,
                c.retry,
                c.delay_before_retry,
            )
        }
        Check::Negotiate(c) => (
            "NEGOTIATE",
            negotiate_probe(vs, c, target(c.connect_ip, c.connect_port), label)?,
            c.delay_loop,
            c.retry,
            c.delay_before_retry,
        ),
        Check::MiscCheck(c) => (
            "MISC_CHECK",
            misc_probe(vs, c, target(None, None), label, default_user)?,
            c.delay_loop,
            c.retry,
            c.delay_before_retry,
        ),
    };
    let interval = interval.unwrap_or(vs.delay_loop);
    Ok(PreparedCheck {
        id,
        kind,
        server: label.to_owned(),
        probe,
        schedule: RetrySchedule::new(interval, retry, delay_before_retry),
        interval,
        retry,
    })
}

/// keepalived's `Host:` header: the check's `virtualhost`, the virtual
/// server's, else the address checked.
fn host(check: Option<&String>, vs: &VirtualServer, target: SocketAddr) -> String {
    check
        .or(vs.virtualhost.as_ref())
        .cloned()
        .unwrap_or_else(|| target.to_string())
}

fn http_probe(
    vs: &VirtualServer,
    c: &HttpCheck,
    target: SocketAddr,
    tls: Option<TlsSettings>,
) -> Probe {
    Probe {
        target,
        bind: c.bindto,
        timeout: c.connect_timeout,
        kind: ProbeKind::Http {
            tls,
            host: host(c.virtualhost.as_ref(), vs, target),
            urls: c
                .urls
                .iter()
                .map(|u| UrlExpect {
                    path: u.path.clone(),
                    status: u.status_code,
                    digest: u.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                })
                .collect(),
        },
    }
}

fn negotiate_probe(
    vs: &VirtualServer,
    c: &NegotiateCheck,
    target: SocketAddr,
    label: &str,
) -> Result<Probe, HealthError> {
    let (http, tls) = match c.service {
        NegotiateService::Http => (true, None),
        NegotiateService::Https => (true, Some(TlsSettings::unverified())),
        NegotiateService::Simpletcp => (false, None),
        service => {
            return Err(HealthError::NegotiateService {
                server: label.to_owned(),
                service,
            });
        }
    };
    let receive = c
        .receive
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(|source| HealthError::Pattern {
            server: label.to_owned(),
            source,
        })?;
    let request = c
        .request
        .clone()
        .unwrap_or_else(|| if http { "/".to_owned() } else { String::new() });
    // ldirectord requests `http://host/request`: a path needs its slash.
    let request = if http && !request.starts_with('/') {
        format!("/{request}")
    } else {
        request
    };
    Ok(Probe {
        target,
        bind: c.bindto,
        timeout: c.connect_timeout,
        kind: ProbeKind::Negotiate {
            tls,
            http,
            host: host(c.virtualhost.as_ref(), vs, target),
            request,
            receive,
        },
    })
}

fn misc_probe(
    vs: &VirtualServer,
    c: &MiscCheck,
    target: SocketAddr,
    label: &str,
    default_user: &RunAs,
) -> Result<Probe, HealthError> {
    let run_as = match &c.user {
        Some(spec) => RunAs::parse(spec)?,
        None => default_user.clone(),
    };
    let command = Command::prepare(&format!("MISC_CHECK of {label}"), &c.misc_path, run_as)?;
    Ok(Probe {
        target,
        bind: None,
        timeout: c
            .misc_timeout
            .unwrap_or_else(|| c.delay_loop.unwrap_or(vs.delay_loop)),
        kind: ProbeKind::Misc {
            command,
            dynamic: c.misc_dynamic,
        },
    })
}
