//! Loads the embedded XDP program and attaches it to interfaces.
//!
//! Native (driver) mode is tried first because it runs before the kernel
//! allocates an skb; generic mode works everywhere but costs more per packet,
//! so falling back to it is logged as a warning.

use crate::error_text::error_chain;
use std::fmt;

use aya::{
    Ebpf, EbpfLoader,
    maps::PerCpuArray,
    programs::{ProgramError, Xdp, XdpMode, xdp::XdpLinkId},
};
use lb_common::maps::{COUNTERS, XDP_PROGRAM};
use tracing::{info, warn};

use super::{CounterSnapshot, XdpError, object_bytes};

/// How to attach to an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// Native mode, falling back to generic mode with a warning; generic
    /// mode on a veth (see `veth.rs` for why).
    #[default]
    Auto,
    /// Native mode only.
    Native,
    /// Generic (skb) mode only.
    Generic,
}

/// The mode an interface ended up attached in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Generic,
}

impl AttachedMode {
    const fn xdp_mode(self) -> XdpMode {
        match self {
            AttachedMode::Native => XdpMode::Driver,
            AttachedMode::Generic => XdpMode::Skb,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        }
    }
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(super) struct Attachment {
    pub(super) interface: String,
    pub(super) mode: AttachedMode,
    /// `None` when a pin on bpffs holds the link (`super::pins`): it
    /// stays attached when this process ends.
    pub(super) link: Option<XdpLinkId>,
    /// A link this process pinned, held open too: it stays attached while
    /// this process runs even if its pin is removed.
    pub(super) _pinned: Option<aya::programs::links::PinnedLink>,
}

/// The loaded XDP program and the interfaces it is attached to. Dropping it
/// detaches from every interface it is not pinned to.
pub struct XdpProgram {
    pub(super) ebpf: Ebpf,
    pub(super) attachments: Vec<Attachment>,
}

impl XdpProgram {
    /// Loads the embedded object and its program into the kernel.
    pub fn load() -> Result<Self, XdpError> {
        Self::load_with(&mut EbpfLoader::new())
    }

    /// Loads with `loader` (set up to reuse pinned maps, say).
    pub(super) fn load_with(loader: &mut EbpfLoader<'_>) -> Result<Self, XdpError> {
        let mut ebpf = loader
            .load(object_bytes())
            .map_err(|e| XdpError::Load(Box::new(e)))?;
        let program = Self::xdp_mut(&mut ebpf)?;
        program.load().map_err(|source| XdpError::Program {
            name: XDP_PROGRAM,
            source: Box::new(source),
        })?;
        Ok(Self {
            ebpf,
            attachments: Vec::new(),
        })
    }

    pub(super) fn xdp_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
        let program = ebpf
            .program_mut(XDP_PROGRAM)
            .ok_or(XdpError::MissingProgram(XDP_PROGRAM))?;
        program.try_into().map_err(|source| XdpError::Program {
            name: XDP_PROGRAM,
            source: Box::new(source),
        })
    }

    /// The loaded program, e.g. for `BPF_PROG_TEST_RUN`.
    pub fn program(&self) -> Result<&Xdp, XdpError> {
        let program = self
            .ebpf
            .program(XDP_PROGRAM)
            .ok_or(XdpError::MissingProgram(XDP_PROGRAM))?;
        program.try_into().map_err(|source| XdpError::Program {
            name: XDP_PROGRAM,
            source: Box::new(source),
        })
    }

    /// Attaches to `interface`, returning the mode that worked.
    pub fn attach(&mut self, interface: &str, mode: AttachMode) -> Result<AttachedMode, XdpError> {
        let (attached, link) = self.attach_link(interface, mode)?;
        self.attachments.push(Attachment {
            interface: interface.to_owned(),
            mode: attached,
            link: Some(link),
            _pinned: None,
        });
        Ok(attached)
    }

    /// Attaches to `interface`, returning the mode and the link.
    pub(super) fn attach_link(
        &mut self,
        interface: &str,
        mode: AttachMode,
    ) -> Result<(AttachedMode, XdpLinkId), XdpError> {
        let program = Self::xdp_mut(&mut self.ebpf)?;
        let try_mode = |program: &mut Xdp, m: AttachedMode| {
            program
                .attach(interface, m.xdp_mode())
                .map(|link| (m, link))
        };
        let unknown = |e: &ProgramError| matches!(e, ProgramError::UnknownInterface { .. });
        // Attaching in one given mode failed: the interface is missing, or
        // that mode is not available on it.
        let in_mode = |m: AttachedMode, source: ProgramError| {
            if unknown(&source) {
                XdpError::UnknownInterface {
                    interface: interface.to_owned(),
                }
            } else {
                XdpError::AttachMode {
                    interface: interface.to_owned(),
                    mode: m.name(),
                    source: Box::new(source),
                }
            }
        };
        let (attached, link) = match mode {
            AttachMode::Native | AttachMode::Generic => {
                let m = if mode == AttachMode::Native {
                    AttachedMode::Native
                } else {
                    AttachedMode::Generic
                };
                try_mode(program, m).map_err(|source| in_mode(m, source))?
            }
            AttachMode::Auto if super::veth::is_veth(interface) => {
                warn!(
                    interface,
                    "veth: attaching in generic mode; in native mode frames redirected into a \
                     veth whose peer runs no NAPI are dropped, and frames whose sender leaves \
                     the checksum to offload (tx on, the default) leave with a wrong checksum"
                );
                let m = AttachedMode::Generic;
                try_mode(program, m).map_err(|source| in_mode(m, source))?
            }
            AttachMode::Auto => match try_mode(program, AttachedMode::Native) {
                Ok(ok) => ok,
                Err(e) if unknown(&e) => {
                    return Err(XdpError::UnknownInterface {
                        interface: interface.to_owned(),
                    });
                }
                Err(native) => {
                    let ok = try_mode(program, AttachedMode::Generic).map_err(|generic| {
                        XdpError::Attach {
                            interface: interface.to_owned(),
                            native: error_chain(&native),
                            generic: Box::new(generic),
                        }
                    })?;
                    warn!(
                        interface,
                        error = %error_chain(&native),
                        "native XDP is not available, attached in generic mode (slower)"
                    );
                    ok
                }
            },
        };
        info!(interface, mode = %attached, "XDP program attached");
        Ok((attached, link))
    }

    /// The interfaces attached so far and their modes.
    pub fn attached(&self) -> impl Iterator<Item = (&str, AttachedMode)> {
        self.attachments
            .iter()
            .map(|a| (a.interface.as_str(), a.mode))
    }

    /// Detaches from every interface it is not pinned to; also done on
    /// drop. Pinned links stay: `lbd cleanup` removes them.
    pub fn detach_all(&mut self) {
        let Ok(program) = Self::xdp_mut(&mut self.ebpf) else {
            return;
        };
        for attachment in self.attachments.drain(..) {
            let Some(link) = attachment.link else {
                continue;
            };
            match program.detach(link) {
                Ok(()) => info!(interface = attachment.interface, "XDP program detached"),
                // The interface may be gone already (its namespace deleted).
                Err(e) => warn!(
                    interface = attachment.interface,
                    error = %error_chain(&e),
                    "detaching XDP failed"
                ),
            }
        }
    }

    /// The loaded object: the data plane reaches its maps through it, and
    /// tests and benchmarks can too.
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// The counters summed over all CPUs.
    pub fn counters(&self) -> Result<CounterSnapshot, XdpError> {
        let map = self
            .ebpf
            .map(COUNTERS)
            .ok_or(XdpError::MissingMap(COUNTERS))?;
        let array = PerCpuArray::<_, u64>::try_from(map).map_err(|source| XdpError::Map {
            map: COUNTERS,
            source: Box::new(source),
        })?;
        CounterSnapshot::read(&array)
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        self.detach_all();
    }
}
