//! ldirectord's per-virtual check settings (`checktype`, `service`,
//! `request`, `receive`, ...) and the lbd check each real server gets.

use std::time::Duration;

use crate::config::{Check, MiscCheck, NegotiateCheck, NegotiateService, TcpCheck};

use super::{Setting, address, address::Real, convert::Shared, settings::Context};

/// ldirectord's `DEFAULT_CHECKTIMEOUT` and `DEFAULT_NEGOTIATETIMEOUT`.
const CHECKTIMEOUT: Duration = Duration::from_secs(5);
const NEGOTIATETIMEOUT: Duration = Duration::from_secs(30);
/// lbd's (and keepalived's) pause between retries; ldirectord has none.
const DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);

/// `checktype=`; ldirectord's default is negotiate.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckType {
    #[default]
    Negotiate,
    Connect,
    External,
    ExternalPerl,
    Ping,
    Off,
    On,
    /// `checktype=N`: N connects, then one negotiate.
    Combined,
}

/// The check settings of one `virtual=` section, as written.
#[derive(Debug, Default)]
pub(super) struct CheckSpec {
    pub(super) kind: CheckType,
    checktype: Option<Setting>,
    service: Option<Setting>,
    request: Option<String>,
    receive: Option<String>,
    checkcommand: Option<String>,
    checkport: Option<u16>,
    virtualhost: Option<String>,
}

impl CheckSpec {
    /// Takes `s` if it is a check setting.
    pub(super) fn take(&mut self, cx: &mut Context, s: &Setting) -> bool {
        match s.key.as_str() {
            "checktype" => self.checktype(cx, s),
            "service" => self.service = Some(s.clone()),
            // ldirectord makes the request a path (`index.html` -> `/index.html`).
            "request" if s.value.starts_with('/') => self.request = Some(s.value.clone()),
            "request" => self.request = Some(format!("/{}", s.value)),
            "receive" => self.receive = Some(s.value.clone()),
            "checkcommand" => self.checkcommand = Some(s.value.clone()),
            "checkport" => {
                self.checkport = cx.int(s, 1, 65535).and_then(|p| u16::try_from(p).ok());
            }
            "virtualhost" => self.virtualhost = Some(s.value.clone()),
            "httpmethod" if s.value.eq_ignore_ascii_case("GET") => {}
            "httpmethod" => cx.skip(s, "lbd's negotiate check always uses GET"),
            "login" | "passwd" | "database" | "secret" | "load" => {
                cx.skip(s, "lbd's negotiate checks do not log in");
            }
            _ => return false,
        }
        true
    }

    fn checktype(&mut self, cx: &mut Context, s: &Setting) {
        self.kind = match s.value.as_str() {
            "negotiate" => CheckType::Negotiate,
            "connect" => CheckType::Connect,
            "external" => CheckType::External,
            "external-perl" => CheckType::ExternalPerl,
            "ping" => CheckType::Ping,
            "off" => CheckType::Off,
            "on" => CheckType::On,
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => CheckType::Combined,
            _ => {
                cx.skip(
                    s,
                    "unknown checktype; ldirectord's default negotiate is used",
                );
                CheckType::Negotiate
            }
        };
        self.checktype = Some(s.clone());
    }

    /// What each real server of the section is checked with. `own` and
    /// `global` are the section's and the file's shared settings, because
    /// ldirectord's timeouts default to each other in a set order.
    pub(super) fn resolve(
        &self,
        cx: &mut Context,
        own: &Shared,
        global: &Shared,
        header: &Setting,
        port: u16,
    ) -> Plan {
        let check_timeout = own
            .checktimeout
            .or(own.negotiatetimeout)
            .or(global.checktimeout)
            .or(global.negotiatetimeout)
            .unwrap_or(CHECKTIMEOUT);
        let negotiate_timeout = own
            .negotiatetimeout
            .or(own.checktimeout)
            .or(global.negotiatetimeout)
            .or(global.checktimeout)
            .unwrap_or(NEGOTIATETIMEOUT);
        // failurecount N fails on the Nth failure in a row: N - 1 retries.
        let retry = own.failurecount.or(global.failurecount).unwrap_or(1) - 1;
        let about = self.checktype.as_ref().unwrap_or(header);
        let connect = Plan::Connect {
            port: self.checkport,
            timeout: check_timeout,
            retry,
        };
        match self.kind {
            CheckType::On => Plan::None,
            CheckType::Off => {
                cx.skip(
                    about,
                    "no real server is ever used: imported with weight 0 and no check",
                );
                Plan::None
            }
            CheckType::Connect => connect,
            CheckType::Ping => {
                cx.skip(
                    about,
                    "lbd has no ping check; no check was imported (always up)",
                );
                Plan::None
            }
            CheckType::ExternalPerl => {
                cx.skip(
                    about,
                    "lbd cannot run Perl in-process; imported as an external check",
                );
                self.external(check_timeout, retry)
            }
            CheckType::External => self.external(check_timeout, retry),
            CheckType::Combined | CheckType::Negotiate => {
                if self.kind == CheckType::Combined {
                    cx.skip(about, "lbd negotiates on every check, not every Nth");
                }
                let name = match &self.service {
                    Some(s) => s.value.as_str(),
                    None => address::service_of_port(port).unwrap_or("none"),
                };
                let Some(service) = negotiate_service(name) else {
                    let at = self.service.as_ref().unwrap_or(about);
                    cx.skip(
                        at,
                        format!("lbd cannot negotiate `{name}`; imported as a connect check"),
                    );
                    return connect;
                };
                Plan::Negotiate(NegotiateCheck {
                    service,
                    request: self.request.clone(),
                    receive: self.receive.clone(),
                    virtualhost: self.virtualhost.clone(),
                    connect_ip: None,
                    connect_port: self.checkport,
                    bindto: None,
                    connect_timeout: negotiate_timeout,
                    retry,
                    delay_before_retry: DELAY_BEFORE_RETRY,
                    delay_loop: None,
                })
            }
        }
    }

    fn external(&self, timeout: Duration, retry: u32) -> Plan {
        Plan::External(MiscCheck {
            // ldirectord's default checkcommand.
            misc_path: self
                .checkcommand
                .clone()
                .unwrap_or_else(|| "/bin/true".to_owned()),
            misc_timeout: Some(timeout),
            misc_dynamic: false,
            user: None,
            retry,
            delay_before_retry: DELAY_BEFORE_RETRY,
            delay_loop: None,
        })
    }
}

/// How every real server of one virtual service is checked.
#[derive(Debug)]
pub(super) enum Plan {
    None,
    Connect {
        port: Option<u16>,
        timeout: Duration,
        retry: u32,
    },
    Negotiate(NegotiateCheck),
    External(MiscCheck),
}

/// The checks of one real server; its own `"request", "receive"` win.
pub(super) fn build(plan: &Plan, real: &Real) -> Vec<Check> {
    let check = match plan {
        Plan::None => return Vec::new(),
        Plan::Connect {
            port,
            timeout,
            retry,
        } => Check::TcpCheck(TcpCheck {
            connect_ip: None,
            connect_port: *port,
            bindto: None,
            connect_timeout: *timeout,
            retry: *retry,
            delay_before_retry: DELAY_BEFORE_RETRY,
            delay_loop: None,
        }),
        Plan::Negotiate(n) => {
            let mut n = n.clone();
            if let (Some(request), Some(receive)) = (&real.request, &real.receive) {
                n.request = Some(if request.starts_with('/') {
                    request.clone()
                } else {
                    format!("/{request}")
                });
                n.receive = Some(receive.clone());
            }
            Check::Negotiate(n)
        }
        Plan::External(m) => Check::MiscCheck(m.clone()),
    };
    vec![check]
}

/// ldirectord's `service=` names that lbd's negotiate check speaks.
fn negotiate_service(name: &str) -> Option<NegotiateService> {
    Some(match name {
        "http" => NegotiateService::Http,
        "https" => NegotiateService::Https,
        "ftp" => NegotiateService::Ftp,
        "smtp" => NegotiateService::Smtp,
        "pop" => NegotiateService::Pop,
        "pops" => NegotiateService::Pops,
        "imap" => NegotiateService::Imap,
        "imaps" => NegotiateService::Imaps,
        "ldap" => NegotiateService::Ldap,
        "nntp" => NegotiateService::Nntp,
        "dns" => NegotiateService::Dns,
        "mysql" => NegotiateService::Mysql,
        "pgsql" => NegotiateService::Pgsql,
        "sip" => NegotiateService::Sip,
        "radius" => NegotiateService::Radius,
        "simpletcp" => NegotiateService::Simpletcp,
        _ => return None,
    })
}
