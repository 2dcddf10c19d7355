//! Real servers on this host under XDP (a sorry page on 127.0.0.1:80, a
//! service on one of the node's addresses).
//!
//! The XDP program translates a client's packet to the local real server
//! and hands it to the kernel, tracked like any other flow. Two things
//! make that work:
//!
//! - the TC egress program (`lb_tc_egress`) on every XDP interface turns
//!   the server's replies (source: its own address and port) back into
//!   VIP:port replies, from the same maps, without kernel conntrack;
//! - for 127.0.0.0/8, `net.ipv4.conf.<interface>.route_localnet=1`: the
//!   kernel otherwise drops a packet for a loopback address arriving on
//!   an interface as a martian, and refuses to send one from it. lbd sets
//!   it only when a service has such a server (as kube-proxy does for its
//!   localhost node ports), and the XDP program drops every packet that
//!   arrives already addressed to 127.0.0.0/8 (counter
//!   `loopback_destination`), so the setting opens nothing but lbd's own
//!   translations. Like `accept_local`, it is left set at exit.
//!
//! The TC links are not pinned: while lbd restarts (its XDP program stays
//! attached) replies of local real servers leave untranslated. Before
//! Linux 6.6 they are netlink filters, which outlive a killed lbd: the
//! next start replaces them and `lbd cleanup` removes them.

use std::{io, net::IpAddr};

use aya::{
    programs::{SchedClassifier, TcAttachType, tc},
    util::KernelVersion,
};
use lb_common::maps::EGRESS_PROGRAM;
use tracing::info;

use super::{XdpError, XdpProgram};
use crate::dataplane::DesiredState;

impl XdpProgram {
    /// Loads the TC egress program (once) and attaches it to the egress
    /// of `interface`.
    pub fn attach_egress(&mut self, interface: &str) -> Result<(), XdpError> {
        let program_error = |source| XdpError::Program {
            name: EGRESS_PROGRAM,
            source: Box::new(source),
        };
        let program: &mut SchedClassifier = self
            .ebpf_mut()
            .program_mut(EGRESS_PROGRAM)
            .ok_or(XdpError::MissingProgram(EGRESS_PROGRAM))?
            .try_into()
            .map_err(program_error)?;
        if program.fd().is_err() {
            program.load().map_err(program_error)?;
        }
        // Before TCX (Linux 6.6) a TC program hangs off a clsact qdisc, as
        // a netlink filter that outlives the process: one an earlier lbd
        // left (killed) is replaced, not doubled.
        let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
        if !tcx {
            detach_stale_egress(interface);
            let _ = tc::qdisc_add_clsact(interface);
        }
        program
            .attach(interface, TcAttachType::Egress)
            .map_err(|source| XdpError::Egress {
                interface: interface.to_owned(),
                source: Box::new(source),
            })?;
        info!(
            interface,
            "TC egress program attached (replies of real servers on this host)"
        );
        Ok(())
    }
}

/// Removes the egress filters an earlier lbd left on `interface` (only
/// netlink filters, before Linux 6.6, outlive their process); whether
/// there were any.
pub fn detach_stale_egress(interface: &str) -> bool {
    tc::qdisc_detach_program(interface, TcAttachType::Egress, EGRESS_PROGRAM).is_ok()
}

/// Whether `desired` has a real or sorry server on IPv4 127.0.0.0/8.
pub(crate) fn wants_route_localnet(desired: &DesiredState) -> bool {
    desired.services.iter().any(|s| {
        s.backends
            .iter()
            .chain(&s.sorry)
            .any(|b| matches!(b.addr, IpAddr::V4(a) if a.is_loopback()))
    })
}

/// Sets `route_localnet` to 1 on `interface`, logging when it changes.
pub(crate) fn enable_route_localnet(interface: &str) -> io::Result<()> {
    super::accept_local::enable_flag(
        interface,
        "route_localnet",
        "a real server on 127.0.0.0/8 is reached through this interface (packets arriving for \
         127.0.0.0/8 are still dropped by the XDP program)",
    )
}
