//! ldirectord's address forms: `IP:PORT`, `[IPV6]:PORT`, ports by service
//! name, and the `real=` / `fallback=` lines built from them.

use std::net::IpAddr;

use crate::config::ForwardingMethod;

/// ldirectord's own service-name table (`ld_service_to_port`); it also asks
/// /etc/services, which an importer on another host cannot.
const SERVICE_PORTS: [(&str, u16); 18] = [
    ("ftp", 21),
    ("smtp", 25),
    ("dns", 53),
    ("http", 80),
    ("pop", 110),
    ("nntp", 119),
    ("imap", 143),
    ("ldap", 389),
    ("https", 443),
    ("submission", 587),
    ("imaps", 993),
    ("pops", 995),
    ("oracle", 1521),
    ("radius", 1812),
    ("http_proxy", 3128),
    ("mysql", 3306),
    ("sip", 5060),
    ("pgsql", 5432),
];

/// The service ldirectord assumes for a port (`ld_port_to_service`).
pub(super) fn service_of_port(port: u16) -> Option<&'static str> {
    SERVICE_PORTS
        .iter()
        .find(|(_, p)| *p == port)
        .map(|(name, _)| *name)
}

fn port(text: &str) -> Option<u16> {
    text.parse().ok().or_else(|| {
        SERVICE_PORTS
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, p)| *p)
    })
}

/// `IP[:PORT]` or `[IPV6][:PORT]`. The port is None when absent.
pub(super) fn endpoint(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let (host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}` has no closing `]`"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("`{text}`: expected `:PORT` after `]`")),
            },
        }
    } else {
        match text.rsplit_once(':') {
            // A bare IPv6 address has colons but no port.
            Some((host, p)) if !host.contains(':') => (host, Some(p)),
            _ => (text, None),
        }
    };
    let address = host
        .parse()
        .map_err(|_| format!("`{host}` is not an IP address (lbd does not resolve host names)"))?;
    let port = match port_text {
        None => None,
        Some(p) => Some(port(p).ok_or_else(|| format!("`{p}` is not a port"))?),
    };
    Ok((address, port))
}

/// `gate`, `masq`, `ipip`.
pub(super) fn method(text: &str) -> Option<ForwardingMethod> {
    match text {
        "gate" => Some(ForwardingMethod::Dr),
        "masq" => Some(ForwardingMethod::Nat),
        "ipip" => Some(ForwardingMethod::Tun),
        _ => None,
    }
}

/// One `real=ADDR[:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"]`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Real {
    pub(super) address: IpAddr,
    /// None: the virtual service's port (ldirectord writes 0).
    pub(super) port: Option<u16>,
    pub(super) method: ForwardingMethod,
    pub(super) weight: u32,
    pub(super) request: Option<String>,
    pub(super) receive: Option<String>,
}

pub(super) fn real(text: &str) -> Result<Real, String> {
    let text = text.trim();
    let (target, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    if target.contains("->") {
        return Err("address ranges are not imported; list each real server".to_owned());
    }
    let (address, port) = endpoint(target)?;
    let rest = rest.trim_start();
    let (method_text, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let method = method(method_text)
        .ok_or_else(|| format!("forwarding method `{method_text}` is not gate, masq or ipip"))?;
    let rest = rest.trim_start();
    let (weight, rest) = match rest.split_once(char::is_whitespace).unwrap_or((rest, "")) {
        (w, after) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => {
            let weight = w.parse().ok().filter(|w| *w <= 65535);
            (
                weight.ok_or_else(|| format!("weight `{w}` is more than 65535"))?,
                after.trim(),
            )
        }
        _ => (1, rest),
    };
    let (request, receive) = match request_receive(rest) {
        Some((req, recv)) => (Some(req), Some(recv)),
        None if rest.is_empty() => (None, None),
        None => {
            return Err(format!(
                "cannot read `{rest}` (expected \"request\", \"receive\")"
            ));
        }
    };
    Ok(Real {
        address,
        port: port.filter(|p| *p != 0),
        method,
        weight,
        request,
        receive,
    })
}

/// `"REQUEST", "RECEIVE"` (a comma or a space between them).
fn request_receive(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix('"')?;
    let (request, rest) = rest.split_once('"')?;
    let rest = rest
        .trim_start()
        .strip_prefix(',')
        .unwrap_or(rest)
        .trim_start();
    let rest = rest.strip_prefix('"')?;
    let (receive, rest) = rest.split_once('"')?;
    rest.trim()
        .is_empty()
        .then(|| (request.to_owned(), receive.to_owned()))
}

/// `fallback=ADDR[:PORT] [gate|masq|ipip]`; ldirectord's default method is gate.
pub(super) fn fallback(text: &str) -> Result<(IpAddr, Option<u16>, ForwardingMethod), String> {
    let mut words = text.split_whitespace();
    let target = words.next().ok_or("no address")?;
    let (address, port) = endpoint(target)?;
    let method = match words.next() {
        None => ForwardingMethod::Dr,
        Some(m) => {
            method(m).ok_or_else(|| format!("forwarding method `{m}` is not gate, masq or ipip"))?
        }
    };
    if let Some(extra) = words.next() {
        return Err(format!("unexpected `{extra}`"));
    }
    Ok((address, port.filter(|p| *p != 0), method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(endpoint("10.0.0.1:80"), Ok((v4, Some(80))));
        assert_eq!(endpoint("10.0.0.1:https"), Ok((v4, Some(443))));
        assert_eq!(endpoint("10.0.0.1"), Ok((v4, None)));
        assert_eq!(endpoint("[2001:db8::1]:53"), Ok((v6, Some(53))));
        assert_eq!(endpoint("2001:db8::1"), Ok((v6, None)));
        assert!(endpoint("www.example.com:80").is_err());
        assert!(endpoint("10.0.0.1:gopher").is_err());
    }

    #[test]
    fn real_lines() {
        let r = real("10.2.1.242:80 masq").expect("plain real");
        assert_eq!(
            (r.port, r.method, r.weight),
            (Some(80), ForwardingMethod::Nat, 1)
        );
        let r = real("10.2.1.242 gate 5 \"/health\", \"OK\"").expect("full real");
        assert_eq!(
            (r.port, r.method, r.weight),
            (None, ForwardingMethod::Dr, 5)
        );
        assert_eq!(r.request.as_deref(), Some("/health"));
        assert_eq!(r.receive.as_deref(), Some("OK"));
        assert!(real("10.2.1.1->10.2.1.9:80 gate").is_err());
        assert!(real("10.2.1.1:80 bogus").is_err());
        assert!(real("10.2.1.1:80 gate 1 junk").is_err());
    }

    #[test]
    fn fallback_lines() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            fallback("127.0.0.1:80 masq"),
            Ok((lo, Some(80), ForwardingMethod::Nat))
        );
        assert_eq!(fallback("127.0.0.1"), Ok((lo, None, ForwardingMethod::Dr)));
    }
}
