//! A blocking generic netlink socket speaking the IPVS family: resolves the
//! family id, sends one request, collects the replies up to the ACK or DONE.
//!
//! Blocking on purpose: the `Dataplane` trait is synchronous and every IPVS
//! request is answered by the kernel at once, without I/O behind it.

use std::{io, process::Command};

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::{
    GenlMessage,
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
use tracing::debug;

use super::{
    IpvsError,
    message::{FAMILY, IpvsMessage},
};

pub(crate) struct IpvsSocket {
    socket: Socket,
    family: u16,
    seq: u32,
}

impl IpvsSocket {
    /// Opens a socket and finds the IPVS family, loading `ip_vs` when the
    /// family is not registered yet (as ipvsadm and keepalived do).
    pub(crate) fn open() -> Result<Self, IpvsError> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(IpvsError::Socket)?;
        socket.bind_auto().map_err(IpvsError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(IpvsError::Socket)?;
        let mut this = Self {
            socket,
            family: 0,
            seq: 0,
        };
        this.family = if let Some(id) = this.resolve()? {
            id
        } else {
            load_module();
            this.resolve()?.ok_or(IpvsError::NoIpvs)?
        };
        debug!(family = this.family, "IPVS generic netlink family resolved");
        Ok(this)
    }

    fn resolve(&mut self) -> Result<Option<u16>, IpvsError> {
        let mut msg = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY.to_owned())],
        });
        msg.finalize();
        match self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK) {
            Ok(replies) => Ok(replies.iter().find_map(|r| {
                r.payload.nlas.iter().find_map(|a| match a {
                    GenlCtrlAttrs::FamilyId(id) => Some(*id),
                    _ => None,
                })
            })),
            Err(IpvsError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends `msg` and waits for the kernel's acknowledgement.
    pub(crate) fn request(&mut self, msg: IpvsMessage) -> Result<Vec<IpvsMessage>, IpvsError> {
        self.ipvs(msg, NLM_F_REQUEST | NLM_F_ACK)
    }

    /// Sends a dump request (`IPVS_CMD_GET_*`) and collects every reply.
    pub(crate) fn dump(&mut self, msg: IpvsMessage) -> Result<Vec<IpvsMessage>, IpvsError> {
        self.ipvs(msg, NLM_F_REQUEST | NLM_F_DUMP)
    }

    fn ipvs(&mut self, msg: IpvsMessage, flags: u16) -> Result<Vec<IpvsMessage>, IpvsError> {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family);
        genl.finalize();
        Ok(self
            .exchange(genl, flags)?
            .into_iter()
            .map(|g| g.payload)
            .collect())
    }

    fn exchange<F>(
        &mut self,
        msg: GenlMessage<F>,
        flags: u16,
    ) -> Result<Vec<GenlMessage<F>>, IpvsError>
    where
        F: netlink_packet_generic::GenlFamily
            + netlink_packet_core::Emitable
            + for<'a> netlink_packet_core::ParseableParametrized<
                [u8],
                netlink_packet_generic::GenlHeader,
            > + std::fmt::Debug,
    {
        let command = msg.header.cmd;
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(IpvsError::Socket)?;

        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(IpvsError::Socket)?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<GenlMessage<F>>::deserialize(&data[offset..])
                    .map_err(|e| IpvsError::Decode(e.to_string()))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == seq {
                    match reply.payload {
                        NetlinkPayload::InnerMessage(m) => replies.push(m),
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(err) => match err.code {
                            None => return Ok(replies),
                            Some(_) => {
                                return Err(IpvsError::Kernel {
                                    command,
                                    source: err.to_io(),
                                });
                            }
                        },
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

/// `modprobe ip_vs`, best effort: when it fails the family stays missing
/// and the caller reports that this kernel has no IPVS.
fn load_module() {
    match Command::new("modprobe").arg("ip_vs").output() {
        Ok(out) if out.status.success() => debug!("loaded the ip_vs module"),
        Ok(out) => debug!(
            stderr = %String::from_utf8_lossy(&out.stderr).trim(),
            "modprobe ip_vs failed"
        ),
        Err(e) => debug!(error = %e, "could not run modprobe"),
    }
}

/// Whether an error is the kernel saying "no such entry".
pub(crate) fn is_not_found(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH))
}
