//! `IpPrefix`: an address with an optional prefix length, as keepalived writes
//! virtual addresses (`10.0.0.1` or `10.0.0.1/24`).

use std::{fmt, net::IpAddr, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IP address with a prefix length, e.g. `192.168.1.10/24`.
///
/// Written without `/LEN` it is a host address (`/32` or `/128`), which is what
/// keepalived assumes for a `virtual_ipaddress` without a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

/// Why a string is not an `IpPrefix`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpPrefixError {
    #[error("`{0}` is not an IP address")]
    Address(String),
    #[error("prefix length `{0}` is not a number")]
    Length(String),
    #[error("prefix length /{len} is too long for {addr} (at most /{max})")]
    TooLong { addr: IpAddr, len: u8, max: u8 },
}

impl IpPrefix {
    /// A prefix; fails when `len` is longer than the address family allows.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, IpPrefixError> {
        let max = max_len(addr);
        if len > max {
            return Err(IpPrefixError::TooLong { addr, len, max });
        }
        Ok(Self { addr, len })
    }

    /// A host prefix (`/32` for IPv4, `/128` for IPv6).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: max_len(addr),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True when this is a single address (`/32` or `/128`).
    pub fn is_host(&self) -> bool {
        self.len == max_len(self.addr)
    }
}

fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl From<IpAddr> for IpPrefix {
    fn from(addr: IpAddr) -> Self {
        Self::host(addr)
    }
}

impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| IpPrefixError::Address(addr_text.to_owned()))?;
        match len_text {
            None => Ok(Self::host(addr)),
            Some(l) => {
                let len = l
                    .parse::<u8>()
                    .map_err(|_| IpPrefixError::Length(l.to_owned()))?;
                Self::new(addr, len)
            }
        }
    }
}

impl fmt::Display for IpPrefix {
    /// Host prefixes print as the bare address, so a config round-trips as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl Serialize for IpPrefix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpPrefix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_keepalived_forms() {
        for text in ["10.0.0.1", "10.0.0.1/24", "fe80::1", "2001:db8::1/64"] {
            let prefix: IpPrefix = text.parse().expect(text);
            assert_eq!(prefix.to_string(), text);
        }
        let host: IpPrefix = "10.0.0.1/32".parse().expect("host prefix");
        assert!(host.is_host());
        assert_eq!(host.to_string(), "10.0.0.1");
    }

    #[test]
    fn rejects_bad_input_with_reason() {
        assert_eq!(
            "10.0.0.300".parse::<IpPrefix>(),
            Err(IpPrefixError::Address("10.0.0.300".into()))
        );
        assert_eq!(
            "10.0.0.1/x".parse::<IpPrefix>(),
            Err(IpPrefixError::Length("x".into()))
        );
        assert_eq!(
            "10.0.0.1/33".parse::<IpPrefix>().map_err(|e| e.to_string()),
            Err("prefix length /33 is too long for 10.0.0.1 (at most /32)".into())
        );
    }
}
