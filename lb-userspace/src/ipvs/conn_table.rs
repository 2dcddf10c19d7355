//! IPVS's flows, from `/proc/net/ip_vs_conn` (what `ipvsadm -Lnc` reads:
//! IPVS's netlink family has no dump of connections). One line per flow:
//!
//! ```text
//! Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//! TCP 0A000002 9C40 0A000001 0050 0A010102 1F90 ESTABLISHED     899
//! ```
//!
//! IPv4 addresses and all ports are hexadecimal in host order; IPv6
//! addresses are written out in full (`fd00:0000:...:0001`). Expires is
//! in seconds. A persistence engine adds two trailing fields, ignored here.

use std::{
    io::BufRead,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    ops::ControlFlow,
    path::PathBuf,
};

use super::IpvsError;
use crate::dataplane::{DataplaneError, FlowEntry, FlowLister, FlowQuery, FlowScan};

/// Where the kernel lists the flows of the reader's network namespace.
pub const CONN_TABLE: &str = "/proc/net/ip_vs_conn";

fn parse_address(text: &str) -> Option<IpAddr> {
    if text.contains(':') {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else if text.len() == 8 {
        u32::from_str_radix(text, 16)
            .ok()
            .map(|n| IpAddr::V4(Ipv4Addr::from(n)))
    } else {
        None
    }
}

fn parse_port(text: &str) -> Option<u16> {
    u16::from_str_radix(text, 16).ok()
}

/// One line of the table; `None` for the header or a line not understood.
pub fn parse_line(line: &str) -> Option<FlowEntry> {
    let mut fields = line.split_whitespace();
    let mut next = || fields.next();
    let protocol = next()?;
    if protocol == "Pro" {
        return None;
    }
    let client = SocketAddr::new(parse_address(next()?)?, parse_port(next()?)?);
    let virtual_address = SocketAddr::new(parse_address(next()?)?, parse_port(next()?)?);
    let real_server = SocketAddr::new(parse_address(next()?)?, parse_port(next()?)?);
    let state = next()?;
    let expires_in_s = next()?.parse().ok()?;
    Some(FlowEntry {
        protocol: protocol.to_owned(),
        state: state.to_owned(),
        client,
        virtual_address,
        real_server: Some(real_server),
        expires_in_s,
    })
}

/// Walks the table at `path` line by line; see [`FlowLister`].
pub struct IpvsFlowLister {
    path: PathBuf,
}

impl IpvsFlowLister {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl FlowLister for IpvsFlowLister {
    fn list(
        &mut self,
        query: &FlowQuery,
        each: &mut dyn FnMut(FlowEntry) -> ControlFlow<()>,
    ) -> Result<FlowScan, DataplaneError> {
        let read = |source| {
            DataplaneError::from(IpvsError::FlowTable {
                path: self.path.clone(),
                source,
            })
        };
        let file = std::fs::File::open(&self.path).map_err(read)?;
        let mut scan = FlowScan::default();
        // A proc sequence file always ends, however many flows it lists.
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(read)?;
            let Some(entry) = parse_line(&line) else {
                if !line.starts_with("Pro ") {
                    tracing::debug!(%line, "a line of the IPVS flow table is not understood");
                }
                continue;
            };
            scan.scanned += 1;
            if query.matches(&entry) {
                scan.listed += 1;
                if each(entry).is_break() {
                    break;
                }
            }
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a 6.x kernel prints it (`ipvsadm -Lnc` reads the same).
    const SAMPLE: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A6F0102 9C40 0A6F0164 0050 0A700202 1F90 ESTABLISHED     899
TCP 0A6F0102 9C41 0A6F0164 0050 0A700203 1F90 FIN_WAIT        117
UDP 0A6F0103 D431 0A6F0164 0035 0A700202 0035 UDP             299
TCP fd00:0000:0000:0000:0000:0000:0000:0002 C350 fd00:0000:0000:0000:0000:0000:0000:0064 01BB fd00:0000:0000:0001:0000:0000:0000:0002 1F90 SYN_RECV         59
TCP 0A6F0104 A000 0A6F0164 0050 0A700202 1F90 ESTABLISHED     600 sip 4f2e1a
garbage line
";

    fn parsed() -> Vec<FlowEntry> {
        SAMPLE.lines().filter_map(parse_line).collect()
    }

    #[test]
    fn parses_ipv4_ipv6_and_persistence_lines_and_skips_the_rest() {
        let flows = parsed();
        assert_eq!(flows.len(), 5, "{flows:#?}");
        assert_eq!(
            flows[0],
            FlowEntry {
                protocol: "TCP".into(),
                state: "ESTABLISHED".into(),
                client: "10.111.1.2:40000".parse().unwrap(),
                virtual_address: "10.111.1.100:80".parse().unwrap(),
                real_server: Some("10.112.2.2:8080".parse().unwrap()),
                expires_in_s: 899,
            }
        );
        assert_eq!(flows[1].state, "FIN_WAIT");
        assert_eq!(
            (flows[2].protocol.as_str(), flows[2].virtual_address.port()),
            ("UDP", 53)
        );
        assert_eq!(
            (flows[3].client, flows[3].real_server, flows[3].expires_in_s),
            (
                "[fd00::2]:50000".parse().unwrap(),
                Some("[fd00:0:0:1::2]:8080".parse().unwrap()),
                59
            )
        );
        assert_eq!(flows[4].expires_in_s, 600, "PE fields are ignored");
    }

    #[test]
    fn the_lister_reads_the_file_and_applies_the_filters() {
        let path = std::env::temp_dir().join(format!("lbd-ip_vs_conn-{}", std::process::id()));
        std::fs::write(&path, SAMPLE).unwrap();
        let mut lister = IpvsFlowLister::new(&path);
        let mut seen = Vec::new();
        let query = FlowQuery {
            real_server: Some("10.112.2.2".parse().unwrap()),
            ..FlowQuery::default()
        };
        let scan = lister
            .list(&query, &mut |f| {
                seen.push(f);
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!((scan.scanned, scan.listed, scan.truncated), (5, 3, false));
        assert!(
            seen.iter()
                .all(|f| f.real_server.unwrap().ip().to_string() == "10.112.2.2")
        );

        let missing = IpvsFlowLister::new(path.with_extension("missing"))
            .list(&FlowQuery::default(), &mut |_| ControlFlow::Continue(()));
        let err = missing.expect_err("a missing table is an error");
        assert!(matches!(
            err.downcast_ref::<IpvsError>(),
            Some(IpvsError::FlowTable { .. })
        ));
        let _ = std::fs::remove_file(path);
    }
}
