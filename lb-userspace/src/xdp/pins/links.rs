//! Loading the program over the pinned maps and attaching it through
//! pinned links.

use std::path::PathBuf;

use aya::{
    EbpfLoader,
    programs::{
        links::{FdLink, PinnedLink},
        xdp::{XdpLink, XdpLinkId},
    },
};
use tracing::{info, warn};

use super::{PINNED_MAPS, PinDir, read_record, write_record};
use crate::{
    error_text::error_chain,
    xdp::{AttachMode, AttachedMode, XdpError, XdpProgram, loader::Attachment},
};

fn mode_named(name: &str) -> Option<AttachedMode> {
    match name {
        "native" => Some(AttachedMode::Native),
        "generic" => Some(AttachedMode::Generic),
        _ => None,
    }
}

/// Whether a link attached in `pinned` mode serves a configured `wanted`.
fn mode_fits(wanted: AttachMode, pinned: AttachedMode) -> bool {
    matches!(
        (wanted, pinned),
        (AttachMode::Auto, _)
            | (AttachMode::Native, AttachedMode::Native)
            | (AttachMode::Generic, AttachedMode::Generic)
    )
}

impl XdpProgram {
    /// Loads the program over the maps pinned in `pins`, creating (and
    /// pinning) those that are not there.
    pub fn load_pinned(pins: &PinDir) -> Result<Self, XdpError> {
        let paths: Vec<(&str, PathBuf)> = PINNED_MAPS
            .iter()
            .map(|name| (*name, pins.map_path(name)))
            .collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in paths {
            loader.map_pin_path(name, path);
        }
        Self::load_with(&mut loader)
    }

    /// Attaches to `interface` through the link pinned for it in `pins`:
    /// swaps this program into that link (`bpf_link_update`: the interface
    /// is never without a program), or attaches and pins a new link. The
    /// link outlives this process.
    pub fn attach_pinned(
        &mut self,
        interface: &str,
        mode: AttachMode,
        pins: &PinDir,
    ) -> Result<AttachedMode, XdpError> {
        // A swapped link is held by the program's own list of links.
        let (attached, pinned) =
            if let Some(attached) = self.swap_into_pinned(interface, mode, pins)? {
                (attached, None)
            } else {
                let (attached, link) = self.attach_link(interface, mode)?;
                let pinned = self.pin_link(interface, link, pins)?;
                write_record(&pins.mode_path(interface), &attached.to_string())?;
                (attached, Some(pinned))
            };
        self.attachments.push(Attachment {
            interface: interface.to_owned(),
            mode: attached,
            link: None,
            _pinned: pinned,
        });
        Ok(attached)
    }

    fn pin_link(
        &mut self,
        interface: &str,
        link: XdpLinkId,
        pins: &PinDir,
    ) -> Result<PinnedLink, XdpError> {
        let pin_err = |source: Box<dyn std::error::Error + Send + Sync>| XdpError::PinLink {
            interface: interface.to_owned(),
            source,
        };
        let program = Self::xdp_mut(&mut self.ebpf)?;
        let link = program.take_link(link).map_err(|e| pin_err(Box::new(e)))?;
        // Fails for a netlink attachment (a kernel without bpf_link for
        // XDP): the link is then dropped, which detaches.
        let fd = FdLink::try_from(link).map_err(|e| pin_err(Box::new(e)))?;
        // The pin keeps the link (and the program, and its maps) once this
        // process closes its descriptor.
        fd.pin(pins.link_path(interface))
            .map_err(|e| pin_err(Box::new(e)))
    }

    /// Puts this program into `interface`'s pinned link, if there is one
    /// in a fitting mode; returns its mode. A link that cannot take it
    /// (its interface was deleted and created again, or the configured
    /// mode changed) is unpinned, which detaches it, for a fresh attach.
    fn swap_into_pinned(
        &mut self,
        interface: &str,
        mode: AttachMode,
        pins: &PinDir,
    ) -> Result<Option<AttachedMode>, XdpError> {
        let path = pins.link_path(interface);
        if !path.exists() {
            return Ok(None);
        }
        let pinned_mode = read_record(&pins.mode_path(interface)).and_then(|m| mode_named(&m));
        let Some(pinned_mode) = pinned_mode.filter(|m| mode_fits(mode, *m)) else {
            warn!(
                interface,
                "the pinned XDP link is not in the configured mode: detaching it to attach anew (the interface is briefly without the program)"
            );
            pins.remove_link(interface)?;
            return Ok(None);
        };
        let program = Self::xdp_mut(&mut self.ebpf)?;
        let swapped = PinnedLink::from_pin(&path)
            .map_err(|e| error_chain(&e))
            .and_then(|p| XdpLink::try_from(FdLink::from(p)).map_err(|e| error_chain(&e)))
            .and_then(|link| program.attach_to_link(link).map_err(|e| error_chain(&e)));
        match swapped {
            Ok(_) => {
                info!(
                    interface,
                    mode = %pinned_mode,
                    "XDP program swapped into the pinned link (never detached)"
                );
                Ok(Some(pinned_mode))
            }
            Err(error) => {
                warn!(
                    interface,
                    error,
                    "the pinned XDP link cannot take the new program (was the interface recreated?): attaching anew"
                );
                pins.remove_link(interface)?;
                Ok(None)
            }
        }
    }

    /// Unpins (detaching) the links of interfaces this program is not
    /// attached to: interfaces the configuration no longer lists.
    pub fn release_other_links(&self, pins: &PinDir) -> Result<(), XdpError> {
        for interface in pins.linked_interfaces() {
            if !self.attachments.iter().any(|a| a.interface == interface) {
                pins.remove_link(&interface)?;
                info!(
                    interface,
                    "XDP program detached: the interface is no longer configured"
                );
            }
        }
        Ok(())
    }
}
