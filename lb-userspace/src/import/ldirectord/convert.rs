//! ldirectord.cf to the lbd model: each `virtual=` becomes a virtual server,
//! with ldirectord's global settings as the defaults ldirectord itself
//! applies.

use std::time::Duration;

use crate::{
    config::{
        Config, ForwardingMethod, Protocol, RealServer, Scheduler, SorryServer, VirtualServer,
    },
    import::Imported,
};

use super::{
    LdConfig, Setting, Virtual, address,
    check::{self, CheckSpec, CheckType, Plan},
    settings::Context,
};

/// ldirectord's `checkinterval` default (`set_defaults`).
const CHECKINTERVAL: Duration = Duration::from_secs(10);

pub(crate) fn convert(cf: &LdConfig) -> Imported {
    let mut cx = Context::default();
    let globals = Globals::read(&mut cx, &cf.globals);
    let virtual_servers = cf
        .virtuals
        .iter()
        .filter_map(|v| virtual_server(&mut cx, v, &globals))
        .collect();
    let mut config = Config {
        virtual_servers,
        ..Config::default()
    };
    config.global.autoreload = globals.autoreload;
    let mut skipped = cx.skipped;
    skipped.sort_by_key(|s| s.at.line);
    let mut changed = cx.changed;
    changed.sort_by_key(|s| s.at.line);
    Imported {
        config,
        skipped,
        changed,
    }
}

/// Settings that may be global or per virtual service; a virtual's own
/// value wins.
/// A `fallback=` line, kept for notes about it.
type Fallback = (SorryServer, ForwardingMethod, Setting);

#[derive(Debug, Default, Clone)]
pub(super) struct Shared {
    pub(super) checktimeout: Option<Duration>,
    pub(super) negotiatetimeout: Option<Duration>,
    pub(super) failurecount: Option<u32>,
    quiescent: Option<bool>,
    /// ldirectord keeps one fallback per address family.
    fallback: Option<Fallback>,
    fallback6: Option<Fallback>,
    fallbackcommand: Option<String>,
}

impl Shared {
    /// Takes `s` if it is one of the shared settings.
    fn take(&mut self, cx: &mut Context, s: &Setting) -> bool {
        match s.key.as_str() {
            "checktimeout" => self.checktimeout = cx.seconds(s),
            "negotiatetimeout" => self.negotiatetimeout = cx.seconds(s),
            "failurecount" => self.failurecount = cx.int(s, 1, 1001),
            "quiescent" => self.quiescent = cx.yes_no(s),
            "fallback" | "fallback6" => match address::fallback(&s.value) {
                Ok((address, port, method)) => {
                    let fallback = Some((SorryServer { address, port }, method, s.clone()));
                    if s.key == "fallback" {
                        self.fallback = fallback;
                    } else {
                        self.fallback6 = fallback;
                    }
                }
                Err(e) => cx.skip(s, e),
            },
            "fallbackcommand" if s.value.is_empty() => cx.skip(s, "no command given"),
            "fallbackcommand" => self.fallbackcommand = Some(s.value.clone()),
            "connecttimeout" | "timeout" => {
                cx.skip(
                    s,
                    "deprecated (an error in ldirectord); use negotiatetimeout",
                );
            }
            "checkcount" => cx.skip(s, "deprecated in ldirectord; use failurecount"),
            "emailalert" | "emailalertfreq" | "emailalertstatus" | "emailalertfrom" | "smtp" => {
                cx.skip(s, "lbd sends no mail");
            }
            "cleanstop" => cx.skip(s, "lbd always removes what it added when it stops"),
            _ => return false,
        }
        true
    }
}

#[derive(Debug, Default)]
struct Globals {
    shared: Shared,
    checkinterval: Option<Duration>,
    /// ldirectord honours a virtual's own `checkinterval` only with `fork=yes`.
    fork: bool,
    /// `global.autoreload`: lbd also reloads when the file changes.
    autoreload: bool,
}

impl Globals {
    fn read(cx: &mut Context, settings: &[Setting]) -> Self {
        let mut g = Globals::default();
        for s in settings {
            match s.key.as_str() {
                _ if g.shared.take(cx, s) => {}
                "checkinterval" => g.checkinterval = cx.seconds(s),
                "fork" => g.fork = cx.yes_no(s).unwrap_or(false),
                "autoreload" => g.autoreload = cx.yes_no(s).unwrap_or(false),
                "callback" => {
                    cx.skip(
                        s,
                        "lbd runs no command on a config change; global.autoreload reloads it",
                    );
                }
                "logfile" => cx.skip(s, "lbd logs to standard error (the journal under systemd)"),
                "supervised" => cx.skip(s, "lbd always runs in the foreground"),
                "execute" => cx.skip(s, "lbd runs one configuration; import that file separately"),
                "maintenancedir" => cx.skip(s, "lbd has no maintenance directory; set weight 0"),
                "readdquiescent" => cx.skip(s, "no lbd equivalent"),
                _ => cx.skip(s, "not an ldirectord global setting lbd knows"),
            }
        }
        g
    }
}

/// One `virtual=` section's own settings, before defaults are applied.
#[derive(Default)]
struct Section<'a> {
    shared: Shared,
    reals: Vec<&'a Setting>,
    name: Option<String>,
    scheduler: Option<Scheduler>,
    protocol: Option<Protocol>,
    persistent: Option<Duration>,
    checkinterval: Option<&'a Setting>,
    check: CheckSpec,
}

fn virtual_server(cx: &mut Context, v: &Virtual, globals: &Globals) -> Option<VirtualServer> {
    let header = Setting {
        key: "virtual".to_owned(),
        value: v.address.clone(),
        at: v.at.clone(),
    };
    if v.address.bytes().all(|b| b.is_ascii_digit()) {
        cx.skip(
            &header,
            "lbd balances by address and port, not by firewall mark",
        );
        return None;
    }
    let (address, port) = match address::endpoint(&v.address) {
        Ok((address, Some(port))) if port != 0 => (address, port),
        Ok(_) => {
            cx.skip(&header, "no port");
            return None;
        }
        Err(e) => {
            cx.skip(&header, e);
            return None;
        }
    };
    let mut section = Section::default();
    for s in &v.settings {
        if !read_setting(cx, s, &mut section) {
            return None;
        }
    }
    let shared = merge(&section.shared, &globals.shared);
    let delay_loop = match section.checkinterval {
        Some(s) if globals.fork => cx.seconds(s),
        Some(s) => {
            cx.skip(
                s,
                "ldirectord ignores a virtual's checkinterval unless fork=yes",
            );
            None
        }
        None => None,
    };
    let mut vs = VirtualServer {
        name: section.name,
        address,
        port,
        // ldirectord: UDP for port 53, TCP otherwise.
        protocol: section.protocol.unwrap_or(if port == 53 {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }),
        scheduler: section.scheduler.unwrap_or(Scheduler::Wrr),
        method: ForwardingMethod::Dr,
        persistence_timeout: section.persistent,
        delay_loop: delay_loop
            .or(globals.checkinterval)
            .unwrap_or(CHECKINTERVAL),
        alpha: false,
        sorry_server: None,
        sorry_server_inhibit: false,
        // IPVS's default expire_nodest_conn=0, which lbd's default keeps.
        removed_server_flows: crate::config::RemovedServerFlows::Drop,
        quorum: 1,
        hysteresis: 0,
        // ldirectord runs the command with `start` when the last real server
        // goes down and `stop` when one comes back: losing and regaining quorum.
        quorum_up: shared.fallbackcommand.as_ref().map(|c| format!("{c} stop")),
        quorum_down: shared
            .fallbackcommand
            .as_ref()
            .map(|c| format!("{c} start")),
        virtualhost: None,
        real_servers: Vec::new(),
    };
    let spec = section
        .check
        .resolve(cx, &section.shared, &globals.shared, &header, port);
    let off = section.check.kind == CheckType::Off;
    let inhibit = shared.quiescent.unwrap_or(true);
    let (real_servers, mut method) = real_servers(cx, &section.reals, &spec, inhibit, off);
    vs.real_servers = real_servers;
    let fallback = if address.is_ipv4() {
        shared.fallback
    } else {
        shared.fallback6
    };
    if let Some((sorry, fallback_method, line)) = fallback {
        if let Some(m) = method.filter(|m| *m != fallback_method) {
            cx.change(
                &line,
                format!(
                    "the sorry server; its forwarding method {} became the real servers' {}, \
                     lbd has one per virtual server",
                    method_word(fallback_method),
                    method_word(m)
                ),
            );
        }
        method = method.or(Some(fallback_method));
        vs.sorry_server = Some(sorry);
    }
    // ldirectord has no default method (each real names one); gate is its
    // fallback's default.
    vs.method = method.unwrap_or(ForwardingMethod::Dr);
    Some(vs)
}

/// The section's `real=` lines, and the forwarding method of the first.
fn real_servers(
    cx: &mut Context,
    reals: &[&Setting],
    plan: &Plan,
    inhibit: bool,
    off: bool,
) -> (Vec<RealServer>, Option<ForwardingMethod>) {
    let mut method = None;
    let mut out = Vec::new();
    for s in reals {
        let real = match address::real(&s.value) {
            Ok(real) => real,
            Err(e) => {
                cx.skip(s, e);
                continue;
            }
        };
        match method {
            None => method = Some(real.method),
            Some(m) if m != real.method => cx.change(
                s,
                "lbd has one forwarding method per virtual server; this one uses the first's",
            ),
            Some(_) => {}
        }
        out.push(RealServer {
            address: real.address,
            port: real.port,
            // checktype=off: ldirectord never activates a real server.
            weight: if off { 0 } else { real.weight },
            inhibit_on_failure: inhibit,
            notify_up: None,
            notify_down: None,
            checks: check::build(plan, &real),
        });
    }
    (out, method)
}

/// Reads one line of a section; false when the whole section cannot be
/// imported.
fn read_setting<'a>(cx: &mut Context, s: &'a Setting, section: &mut Section<'a>) -> bool {
    match s.key.as_str() {
        _ if section.shared.take(cx, s) => {}
        _ if section.check.take(cx, s) => {}
        "real" | "real6" => section.reals.push(s),
        "servicename" => section.name = Some(s.value.clone()),
        "scheduler" => match s.value.parse() {
            Ok(sched) => section.scheduler = Some(sched),
            Err(e) => cx.skip(s, format!("{e}; lbd's default wrr is used")),
        },
        "protocol" => match s.value.as_str() {
            "tcp" => section.protocol = Some(Protocol::Tcp),
            "udp" => section.protocol = Some(Protocol::Udp),
            "fwm" => {
                cx.skip(s, "lbd balances by address and port, not by firewall mark");
                return false;
            }
            _ => cx.skip(s, "must be tcp or udp"),
        },
        "persistent" => section.persistent = cx.seconds(s),
        "netmask" => cx.skip(s, "lbd persists per client address"),
        "checkinterval" => section.checkinterval = Some(s),
        "ops" => cx.skip(s, "lbd schedules UDP per flow"),
        "comment" => cx.skip(s, "lbd has no comment field; this line keeps it"),
        "monitorfile" => cx.skip(s, "lbd logs check results to its own log"),
        _ => cx.skip(s, "not an ldirectord virtual setting lbd knows"),
    }
    true
}

/// The section's settings over the global ones. The two timeouts are left
/// as the section's: they default to each other before the global ones.
fn merge(own: &Shared, global: &Shared) -> Shared {
    Shared {
        checktimeout: own.checktimeout,
        negotiatetimeout: own.negotiatetimeout,
        failurecount: own.failurecount.or(global.failurecount),
        quiescent: own.quiescent.or(global.quiescent),
        fallback: own.fallback.clone().or_else(|| global.fallback.clone()),
        fallback6: own.fallback6.clone().or_else(|| global.fallback6.clone()),
        fallbackcommand: own
            .fallbackcommand
            .clone()
            .or_else(|| global.fallbackcommand.clone()),
    }
}

/// ldirectord's word for a forwarding method.
const fn method_word(method: ForwardingMethod) -> &'static str {
    match method {
        ForwardingMethod::Nat => "masq",
        ForwardingMethod::Dr => "gate",
        ForwardingMethod::Tun => "ipip",
    }
}
