//! The IPVS generic netlink family's messages, as `include/uapi/linux/ip_vs.h`
//! defines them, on top of netlink-packet-generic's `GenlFamily`.
//!
//! Attributes are kept as kind + bytes (nested ones parsed on demand): the
//! family has three levels of a dozen attributes each, and typed structs
//! (`service.rs`) build and read them, so one small generic NLA type here is
//! all the framing needs.

use netlink_packet_core::{
    DecodeError, Emitable, Nla, NlaBuffer, NlasIterator, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

/// `IPVS_GENL_NAME`, `IPVS_GENL_VERSION`.
pub(crate) const FAMILY: &str = "IPVS";
const VERSION: u8 = 1;

/// `IPVS_CMD_*`.
pub(crate) mod cmd {
    pub(crate) const NEW_SERVICE: u8 = 1;
    pub(crate) const SET_SERVICE: u8 = 2;
    pub(crate) const DEL_SERVICE: u8 = 3;
    pub(crate) const GET_SERVICE: u8 = 4;
    pub(crate) const NEW_DEST: u8 = 5;
    pub(crate) const SET_DEST: u8 = 6;
    pub(crate) const DEL_DEST: u8 = 7;
    pub(crate) const GET_DEST: u8 = 8;
    pub(crate) const SET_CONFIG: u8 = 12;
}

/// `IPVS_CMD_ATTR_*`: the top level of every message.
pub(crate) mod attr {
    pub(crate) const SERVICE: u16 = 1;
    pub(crate) const DEST: u16 = 2;
    pub(crate) const TIMEOUT_TCP: u16 = 4;
    pub(crate) const TIMEOUT_TCP_FIN: u16 = 5;
    pub(crate) const TIMEOUT_UDP: u16 = 6;
}

/// `IPVS_SVC_ATTR_*`, nested in `attr::SERVICE`.
pub(crate) mod svc {
    pub(crate) const AF: u16 = 1;
    pub(crate) const PROTOCOL: u16 = 2;
    pub(crate) const ADDR: u16 = 3;
    pub(crate) const PORT: u16 = 4;
    pub(crate) const FWMARK: u16 = 5;
    pub(crate) const SCHED_NAME: u16 = 6;
    pub(crate) const FLAGS: u16 = 7;
    pub(crate) const TIMEOUT: u16 = 8;
    pub(crate) const NETMASK: u16 = 9;
    pub(crate) const STATS64: u16 = 12;
}

/// `IPVS_DEST_ATTR_*`, nested in `attr::DEST`.
pub(crate) mod dest {
    pub(crate) const ADDR: u16 = 1;
    pub(crate) const PORT: u16 = 2;
    pub(crate) const FWD_METHOD: u16 = 3;
    pub(crate) const WEIGHT: u16 = 4;
    pub(crate) const U_THRESH: u16 = 5;
    pub(crate) const L_THRESH: u16 = 6;
    pub(crate) const ACTIVE_CONNS: u16 = 7;
    pub(crate) const INACT_CONNS: u16 = 8;
    pub(crate) const ADDR_FAMILY: u16 = 11;
    pub(crate) const STATS64: u16 = 12;
}

/// `IPVS_STATS_ATTR_*`, nested in the `STATS64` attributes (all u64).
pub(crate) mod stats {
    pub(crate) const CONNS: u16 = 1;
    pub(crate) const INPKTS: u16 = 2;
    pub(crate) const OUTPKTS: u16 = 3;
    pub(crate) const INBYTES: u16 = 4;
    pub(crate) const OUTBYTES: u16 = 5;
}

/// One attribute: a kind and its value, or a list of nested attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attr {
    pub(crate) kind: u16,
    value: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Bytes(Vec<u8>),
    Nested(Vec<Attr>),
}

impl Attr {
    pub(crate) fn bytes(kind: u16, value: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            value: Value::Bytes(value.into()),
        }
    }

    pub(crate) fn u16(kind: u16, v: u16) -> Self {
        Self::bytes(kind, v.to_ne_bytes())
    }

    pub(crate) fn u32(kind: u16, v: u32) -> Self {
        Self::bytes(kind, v.to_ne_bytes())
    }

    /// Ports travel in network byte order (`__be16`).
    pub(crate) fn be16(kind: u16, v: u16) -> Self {
        Self::bytes(kind, v.to_be_bytes())
    }

    /// A NUL-terminated string, as the kernel's `NLA_NUL_STRING` wants.
    pub(crate) fn string(kind: u16, s: &str) -> Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        Self::bytes(kind, v)
    }

    pub(crate) fn nested(kind: u16, attrs: Vec<Attr>) -> Self {
        Self {
            kind,
            value: Value::Nested(attrs),
        }
    }

    /// The raw value (for a parsed attribute, nested ones included).
    pub(crate) fn value(&self) -> &[u8] {
        match &self.value {
            Value::Bytes(b) => b,
            Value::Nested(_) => &[],
        }
    }

    /// Parses the value as a list of attributes.
    pub(crate) fn children(&self) -> Result<Vec<Attr>, DecodeError> {
        match &self.value {
            Value::Nested(list) => Ok(list.clone()),
            Value::Bytes(b) => parse_attrs(b),
        }
    }
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match &self.value {
            Value::Bytes(b) => b.len(),
            Value::Nested(list) => list.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        self.kind
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match &self.value {
            Value::Bytes(b) => buffer.copy_from_slice(b),
            Value::Nested(list) => list.as_slice().emit(buffer),
        }
    }
}

/// Splits a buffer into attributes (flags bits masked off the kinds).
pub(crate) fn parse_attrs(buf: &[u8]) -> Result<Vec<Attr>, DecodeError> {
    NlasIterator::new(buf)
        .map(|nla| {
            nla.map(|nla: NlaBuffer<&[u8]>| {
                // NLA_F_NESTED and NLA_F_NET_BYTEORDER are the top two bits.
                Attr::bytes(nla.kind() & 0x3fff, nla.value().to_vec())
            })
        })
        .collect()
}

/// Finds an attribute by kind.
pub(crate) fn find(attrs: &[Attr], kind: u16) -> Option<&Attr> {
    attrs.iter().find(|a| a.kind == kind)
}

pub(crate) fn get_u16(attrs: &[Attr], kind: u16) -> Option<u16> {
    let v = find(attrs, kind)?.value();
    Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?))
}

pub(crate) fn get_be16(attrs: &[Attr], kind: u16) -> Option<u16> {
    let v = find(attrs, kind)?.value();
    Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?))
}

pub(crate) fn get_u32(attrs: &[Attr], kind: u16) -> Option<u32> {
    let v = find(attrs, kind)?.value();
    Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))
}

pub(crate) fn get_u64(attrs: &[Attr], kind: u16) -> Option<u64> {
    let v = find(attrs, kind)?.value();
    Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?))
}

pub(crate) fn get_string(attrs: &[Attr], kind: u16) -> Option<String> {
    let v = find(attrs, kind)?.value();
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    Some(String::from_utf8_lossy(&v[..end]).into_owned())
}

/// One IPVS message: a command and its top-level attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IpvsMessage {
    pub(crate) cmd: u8,
    pub(crate) attrs: Vec<Attr>,
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(Self {
            cmd: header.cmd,
            attrs: parse_attrs(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_round_trip() {
        let msg = IpvsMessage {
            cmd: cmd::NEW_SERVICE,
            attrs: vec![Attr::nested(
                attr::SERVICE,
                vec![
                    Attr::u16(svc::AF, 2),
                    Attr::be16(svc::PORT, 80),
                    Attr::string(svc::SCHED_NAME, "wrr"),
                ],
            )],
        };
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        // 4 (outer header) + 8 (af, padded) + 8 (port, padded) + 8 ("wrr\0").
        assert_eq!(buf.len(), 28);
        let parsed = parse_attrs(&buf).unwrap();
        let inner = parsed[0].children().unwrap();
        assert_eq!(get_u16(&inner, svc::AF), Some(2));
        assert_eq!(get_be16(&inner, svc::PORT), Some(80));
        assert_eq!(get_string(&inner, svc::SCHED_NAME).as_deref(), Some("wrr"));
        // The port is big-endian on the wire.
        assert_eq!(&buf[16..18], &[0, 80]);
    }
}
