//! Starting the XDP data plane over a pin directory: adopt what an
//! earlier lbd pinned (same layout), or start clean (another layout,
//! said in the log), then swap the program into the pinned links.

use std::path::Path;

use tracing::{info, warn};

use super::{
    PinDir,
    layout::{Decision, Layout},
    snapshot,
};
use crate::xdp::{AttachMode, XdpDataplane, XdpError, XdpProgram, object_bytes};

/// Loads the program over the maps pinned in `pin_dir` and attaches it to
/// `interfaces` through their pinned links; the data plane it returns
/// starts from the state those maps hold when their layout is this
/// build's.
pub fn open_pinned(
    pin_dir: &Path,
    interfaces: &[(&str, AttachMode)],
) -> Result<XdpDataplane, XdpError> {
    let pins = PinDir::open(pin_dir)?;
    let had_links = pins.linked_interfaces();
    let had_anything = !had_links.is_empty() || pins.has_maps();
    let result = open(&pins, interfaces);
    if result.is_err() {
        // A failed start leaves nothing it attached itself (an interface
        // it attached to before failing on the next one, say); what an
        // earlier lbd pinned stays for the next try.
        if had_anything {
            for interface in pins.linked_interfaces() {
                if !had_links.contains(&interface) {
                    let _ = pins.remove_link(&interface);
                }
            }
        } else {
            let _ = pins.remove_all();
        }
    }
    result
}

fn open(pins: &PinDir, interfaces: &[(&str, AttachMode)]) -> Result<XdpDataplane, XdpError> {
    let pin_dir = pins.path();
    let layout = Layout::of_object(object_bytes())?;
    let decision = layout.decide(pins.layout().as_deref(), pins.has_maps());
    if let Decision::StartClean { changes } = &decision {
        warn!(
            pin_dir = %pin_dir.display(),
            changes = changes.join("; "),
            "the pinned XDP maps have another layout than this build's: dropping them (their tracked flows and counters) and starting clean"
        );
        pins.remove_maps()?;
    }
    let mut program = XdpProgram::load_pinned(pins)?;
    pins.write_layout(&layout.record())?;
    for (interface, mode) in interfaces {
        program.attach_pinned(interface, *mode, pins)?;
    }
    program.release_other_links(pins)?;
    if decision == Decision::Adopt {
        let (snapshot, flows) = snapshot::read(program.ebpf())?;
        info!(
            pin_dir = %pin_dir.display(),
            services = snapshot.services.len(),
            flows,
            "adopted the XDP state an earlier lbd pinned: its tracked flows continue"
        );
        Ok(XdpDataplane::adopting(program, &snapshot, pins))
    } else {
        info!(pin_dir = %pin_dir.display(), "XDP maps and links pinned");
        Ok(XdpDataplane::pinned(
            program,
            pins,
            decision == Decision::Fresh,
        ))
    }
}
