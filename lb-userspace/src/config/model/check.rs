//! Health checks of real servers.
//!
//! One variant per keepalived checker (ldirectord's `negotiate` too). The
//! connection settings are repeated in each variant rather than shared by
//! `#[serde(flatten)]`, because flatten cannot reject unknown keys and loses
//! source locations.

use std::{net::IpAddr, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    defaults::{self, is_default},
    shorthand::Shorthand,
};
use crate::config::lenient;

/// A health check, written as a one-key mapping (`- http_get: { urls:
/// [...] }`), or as just `- tcp_check` when it needs no settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Check {
    /// Connect succeeds. keepalived: `TCP_CHECK`; ldirectord: `checktype=connect`.
    TcpCheck(TcpCheck),
    /// HTTP GET of each URL. keepalived: `HTTP_GET`.
    HttpGet(HttpCheck),
    /// HTTPS GET of each URL. keepalived: `SSL_GET`.
    SslGet(HttpCheck),
    /// Send a request for a service, expect a reply matching a pattern.
    /// ldirectord: `checktype=negotiate`.
    Negotiate(NegotiateCheck),
    /// Run a command; exit 0 is up. keepalived: `MISC_CHECK`;
    /// ldirectord: `checktype=external`.
    MiscCheck(MiscCheck),
}

const CHECK_NAMES: &str = "tcp_check, http_get, ssl_get, negotiate, misc_check";

impl FromStr for Check {
    type Err = String;

    /// The short form: only a TCP check can do with all defaults.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp_check" => Ok(Check::TcpCheck(TcpCheck::default())),
            "http_get" | "ssl_get" | "negotiate" | "misc_check" => Err(format!(
                "`{s}` needs settings: write it as a mapping, `- {s}: {{ ... }}`"
            )),
            _ => Err(format!("unknown check `{s}`; valid checks: {CHECK_NAMES}")),
        }
    }
}

impl Shorthand for Check {
    const SHORT: &'static str = "a check name";

    fn short(&self) -> Option<String> {
        match self {
            Check::TcpCheck(tcp) if *tcp == TcpCheck::default() => Some("tcp_check".to_owned()),
            _ => None,
        }
    }
}

/// keepalived: `TCP_CHECK { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TcpCheck {
    /// Address to connect to; default: the real server's. keepalived: `connect_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    /// Port to connect to; default: the real server's. keepalived:
    /// `connect_port`; ldirectord: `checkport`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 1, 65535>"
    )]
    pub connect_port: Option<u16>,
    /// Source address of the check. keepalived: `bindto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    /// keepalived: `connect_timeout` (default 5); ldirectord: `checktimeout`.
    #[serde(
        default = "defaults::connect_timeout",
        skip_serializing_if = "defaults::is_connect_timeout",
        deserialize_with = "lenient::positive_seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub connect_timeout: Duration,
    /// Retries before the server counts as down. keepalived: `retry`
    /// (`nb_get_retry`; default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 0, 1000>"
    )]
    pub retry: u32,
    /// keepalived: `delay_before_retry` (default 1).
    #[serde(
        default = "defaults::delay_before_retry",
        skip_serializing_if = "defaults::is_delay_before_retry",
        deserialize_with = "lenient::seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub delay_before_retry: Duration,
    /// Interval for this check; default: the virtual server's `delay_loop`.
    /// keepalived: `delay_loop` inside the checker.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_positive_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub delay_loop: Option<Duration>,
}

impl Default for TcpCheck {
    /// keepalived's defaults, as serde fills them in for `tcp_check: {}`.
    fn default() -> Self {
        Self {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            connect_timeout: defaults::connect_timeout(),
            retry: defaults::one(),
            delay_before_retry: defaults::delay_before_retry(),
            delay_loop: None,
        }
    }
}

/// keepalived: `HTTP_GET { ... }` / `SSL_GET { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpCheck {
    /// URLs to fetch; all must answer as expected. keepalived: `url { ... }`.
    pub urls: Vec<UrlCheck>,
    /// `Host:` header; default: the virtual server's `virtualhost`.
    /// keepalived: `virtualhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    /// keepalived: `connect_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    /// keepalived: `connect_port`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 1, 65535>"
    )]
    pub connect_port: Option<u16>,
    /// keepalived: `bindto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    /// `ssl_get` only: verify the server's certificate (and its name:
    /// `virtualhost`, else its address) against the CA certificates in
    /// this PEM file. Unset: no verification, as keepalived's SSL_GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// keepalived: `connect_timeout` (default 5).
    #[serde(
        default = "defaults::connect_timeout",
        skip_serializing_if = "defaults::is_connect_timeout",
        deserialize_with = "lenient::positive_seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub connect_timeout: Duration,
    /// keepalived: `retry` / `nb_get_retry` (default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 0, 1000>"
    )]
    pub retry: u32,
    /// keepalived: `delay_before_retry` (default 1).
    #[serde(
        default = "defaults::delay_before_retry",
        skip_serializing_if = "defaults::is_delay_before_retry",
        deserialize_with = "lenient::seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub delay_before_retry: Duration,
    /// keepalived: `delay_loop` inside the checker.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_positive_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub delay_loop: Option<Duration>,
}

/// One URL of an HTTP check. keepalived: `url { path; status_code; digest }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct UrlCheck {
    /// keepalived: `path`.
    pub path: String,
    /// Expected status; unset: any 2xx. keepalived: `status_code`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 100, 599>"
    )]
    pub status_code: Option<u16>,
    /// MD5 of the expected body, hex. keepalived: `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// ldirectord's `checktype=negotiate`: send `request` over `service`'s
/// protocol and expect a reply containing `receive`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NegotiateCheck {
    /// Protocol spoken. ldirectord: `service`.
    pub service: NegotiateService,
    /// What to ask for (for HTTP, the path). ldirectord: `request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// A regular expression the reply must match. ldirectord: `receive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive: Option<String>,
    /// HTTP `Host:` header. ldirectord: `virtualhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    /// keepalived: `connect_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    /// ldirectord: `checkport`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_int::<_, u16, 1, 65535>"
    )]
    pub connect_port: Option<u16>,
    /// keepalived: `bindto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    /// ldirectord: `checktimeout` / `negotiatetimeout` (default 5).
    #[serde(
        default = "defaults::connect_timeout",
        skip_serializing_if = "defaults::is_connect_timeout",
        deserialize_with = "lenient::positive_seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub connect_timeout: Duration,
    /// Retries before the server counts as down (default 1). ldirectord:
    /// `failurecount` N, imported as N - 1 (N failures in a row).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 0, 1000>"
    )]
    pub retry: u32,
    /// keepalived: `delay_before_retry` (default 1).
    #[serde(
        default = "defaults::delay_before_retry",
        skip_serializing_if = "defaults::is_delay_before_retry",
        deserialize_with = "lenient::seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub delay_before_retry: Duration,
    /// ldirectord: `checkinterval` for this service.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_positive_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub delay_loop: Option<Duration>,
}

/// Protocols ldirectord's negotiate check speaks (its `service=` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegotiateService {
    Http,
    Https,
    Ftp,
    Smtp,
    Pop,
    Pops,
    Imap,
    Imaps,
    Ldap,
    Nntp,
    Dns,
    Mysql,
    Pgsql,
    Sip,
    Radius,
    /// Send `request` as is over TCP. ldirectord: `simpletcp`.
    Simpletcp,
}

/// keepalived: `MISC_CHECK { misc_path; misc_timeout; misc_dynamic; user }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MiscCheck {
    /// Command line; exit 0 is up. keepalived: `misc_path`.
    pub misc_path: String,
    /// A run taking longer fails; default: the interval. keepalived: `misc_timeout`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_positive_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub misc_timeout: Option<Duration>,
    /// Exit codes 2-255 set the weight to code-2. keepalived: `misc_dynamic`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub misc_dynamic: bool,
    /// User to run as; default `global.script_user`. keepalived: `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// keepalived: `retry` (default 1).
    #[serde(
        default = "defaults::one",
        skip_serializing_if = "defaults::is_one",
        deserialize_with = "lenient::int::<_, u32, 0, 1000>"
    )]
    pub retry: u32,
    /// keepalived: `delay_before_retry` (default 1).
    #[serde(
        default = "defaults::delay_before_retry",
        skip_serializing_if = "defaults::is_delay_before_retry",
        deserialize_with = "lenient::seconds",
        serialize_with = "lenient::ser::seconds"
    )]
    pub delay_before_retry: Duration,
    /// keepalived: `delay_loop` inside the checker.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_positive_seconds",
        serialize_with = "lenient::ser::opt_seconds"
    )]
    pub delay_loop: Option<Duration>,
}
