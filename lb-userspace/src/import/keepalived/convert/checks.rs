//! Health checkers inside `real_server`: `TCP_CHECK`, `HTTP_GET`, `SSL_GET`
//! and `MISC_CHECK`, with the connection settings they share.

use std::{net::IpAddr, time::Duration};

use crate::{
    config::{Check, HttpCheck, MiscCheck, TcpCheck, UrlCheck},
    import::keepalived::Directive,
};

use super::context::Context;

/// Settings a `virtual_server` or `real_server` gives every checker inside it
/// (keepalived 2.x), each overridden by the checker's own.
#[derive(Debug, Clone, Default)]
pub(super) struct Inherit {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    delay_loop: Option<Duration>,
}

impl Inherit {
    /// Takes `d` if it is one of the inherited settings.
    pub(super) fn take(&mut self, cx: &mut Context, d: &Directive) -> bool {
        match d.name.as_str() {
            "connect_timeout" => self.connect_timeout = cx.seconds(d),
            "retry" | "nb_get_retry" => self.retry = cx.int(d, 0, 1000),
            "delay_before_retry" => self.delay_before_retry = cx.seconds(d),
            "delay_loop" => self.delay_loop = cx.seconds(d),
            _ => return false,
        }
        true
    }

    /// `self`'s settings where `inner` has none.
    pub(super) fn under(&self, inner: &Inherit) -> Inherit {
        Inherit {
            connect_timeout: inner.connect_timeout.or(self.connect_timeout),
            retry: inner.retry.or(self.retry),
            delay_before_retry: inner.delay_before_retry.or(self.delay_before_retry),
            delay_loop: inner.delay_loop.or(self.delay_loop),
        }
    }
}

/// Where and how a checker connects.
#[derive(Debug, Default)]
struct Connection {
    connect_ip: Option<IpAddr>,
    connect_port: Option<u16>,
    bindto: Option<IpAddr>,
    timing: Inherit,
}

impl Connection {
    fn take(&mut self, cx: &mut Context, d: &Directive) -> bool {
        match d.name.as_str() {
            "connect_ip" => self.connect_ip = cx.parse(d),
            "connect_port" => self.connect_port = cx.int(d, 1, 65535),
            "bindto" => self.bindto = cx.parse(d),
            _ => return self.timing.take(cx, d),
        }
        true
    }
}

/// keepalived's checker defaults, which are also lbd's.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);

/// The checker blocks lbd imports.
pub(super) const CHECKERS: [&str; 4] = ["TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK"];

/// The checker in `d` (one of [`CHECKERS`]), or None when it cannot be used.
pub(super) fn checker(cx: &mut Context, d: &Directive, outer: &Inherit) -> Option<Check> {
    match d.name.as_str() {
        "TCP_CHECK" => Some(Check::TcpCheck(tcp(cx, d, outer))),
        "HTTP_GET" => http(cx, d, outer).map(Check::HttpGet),
        "SSL_GET" => http(cx, d, outer).map(Check::SslGet),
        "MISC_CHECK" => misc(cx, d, outer).map(Check::MiscCheck),
        _ => {
            cx.unknown(d);
            None
        }
    }
}

fn tcp(cx: &mut Context, block: &Directive, outer: &Inherit) -> TcpCheck {
    let mut c = Connection::default();
    for d in &block.children {
        if !c.take(cx, d) {
            cx.unknown(d);
        }
    }
    let t = outer.under(&c.timing);
    TcpCheck {
        connect_ip: c.connect_ip,
        connect_port: c.connect_port,
        bindto: c.bindto,
        connect_timeout: t.connect_timeout.unwrap_or(CONNECT_TIMEOUT),
        retry: t.retry.unwrap_or(1),
        delay_before_retry: t.delay_before_retry.unwrap_or(DELAY_BEFORE_RETRY),
        delay_loop: t.delay_loop,
    }
}

fn http(cx: &mut Context, block: &Directive, outer: &Inherit) -> Option<HttpCheck> {
    let mut c = Connection::default();
    let mut urls = Vec::new();
    let mut virtualhost = None;
    for d in &block.children {
        match d.name.as_str() {
            "url" => urls.extend(url(cx, d)),
            "virtualhost" => virtualhost = cx.arg(d).map(str::to_owned),
            _ if c.take(cx, d) => {}
            _ => cx.unknown(d),
        }
    }
    if urls.is_empty() {
        cx.skip(
            block,
            "no usable `url { path ... }`, so no check was imported",
        );
        return None;
    }
    let t = outer.under(&c.timing);
    Some(HttpCheck {
        urls,
        virtualhost,
        connect_ip: c.connect_ip,
        connect_port: c.connect_port,
        bindto: c.bindto,
        // keepalived's SSL_GET does not verify certificates.
        tls_ca_file: None,
        connect_timeout: t.connect_timeout.unwrap_or(CONNECT_TIMEOUT),
        retry: t.retry.unwrap_or(1),
        delay_before_retry: t.delay_before_retry.unwrap_or(DELAY_BEFORE_RETRY),
        delay_loop: t.delay_loop,
    })
}

fn url(cx: &mut Context, block: &Directive) -> Option<UrlCheck> {
    let mut path = None;
    let mut status_code = None;
    let mut digest = None;
    for d in &block.children {
        match d.name.as_str() {
            "path" => path = cx.arg(d).map(str::to_owned),
            // keepalived also takes ranges and lists (`200-299`); lbd one code.
            "status_code" => status_code = cx.int(d, 100, 599),
            "digest" => digest = cx.arg(d).map(str::to_owned),
            _ => cx.unknown(d),
        }
    }
    let Some(path) = path else {
        cx.skip(block, "no `path`");
        return None;
    };
    Some(UrlCheck {
        path,
        status_code,
        digest,
    })
}

fn misc(cx: &mut Context, block: &Directive, outer: &Inherit) -> Option<MiscCheck> {
    let mut timing = Inherit::default();
    let mut m = MiscCheck {
        misc_path: String::new(),
        misc_timeout: None,
        misc_dynamic: false,
        user: None,
        retry: 1,
        delay_before_retry: DELAY_BEFORE_RETRY,
        delay_loop: None,
    };
    let mut path = None;
    for d in &block.children {
        match d.name.as_str() {
            "misc_path" if d.args.is_empty() => cx.skip(d, "no command given"),
            "misc_path" => path = Some(d.args.join(" ")),
            "misc_timeout" => m.misc_timeout = cx.seconds(d),
            "misc_dynamic" => m.misc_dynamic = cx.flag(d),
            "user" if d.args.is_empty() => cx.skip(d, "no user given"),
            "user" => m.user = Some(d.args.join(" ")),
            "connect_timeout" => cx.skip(d, "a MISC_CHECK has `misc_timeout` instead"),
            _ if timing.take(cx, d) => {}
            _ => cx.unknown(d),
        }
    }
    let Some(path) = path else {
        cx.skip(block, "no `misc_path`, so no check was imported");
        return None;
    };
    let t = outer.under(&timing);
    m.misc_path = path;
    m.retry = t.retry.unwrap_or(m.retry);
    m.delay_before_retry = t.delay_before_retry.unwrap_or(m.delay_before_retry);
    m.delay_loop = t.delay_loop;
    Some(m)
}
