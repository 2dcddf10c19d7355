//! Choosing the data plane from `dataplane:` in the configuration: the one
//! place that knows both implementations (`dataplane/` knows neither).
//!
//! - `xdp`: load and attach the XDP program (native, then generic mode per
//!   interface's `xdp_mode`) over the maps and links pinned in the pin
//!   directory (`xdp::pins`: a restart adopts them), or fail saying why.
//! - `ipvs`: drive IPVS, or fail saying why (e.g. no `CONFIG_IP_VS`).
//! - `auto`: XDP when it can run this configuration, IPVS otherwise. IPVS
//!   is picked, with the reason logged, when a virtual server uses a
//!   scheduler only IPVS has (sh, lc, wlc), when no interface is listed for
//!   XDP, or when the XDP program cannot be loaded or attached (no BPF
//!   permission, a kernel or driver without XDP). A misspelt interface is
//!   not a reason to fall back: it is reported as the configuration error
//!   it is.
//!
//! `flow_sync:` runs with XDP only: its handles on the program's maps are
//! taken here. With IPVS it is ignored with a warning (IPVS has its own
//! sync daemon, `ipvsadm --start-daemon`, which lbd does not start).

use std::path::Path;

use crate::error_text::error_chain;
use thiserror::Error;
use tracing::{info, warn};

use crate::{
    config::{Config, DataplaneKind, XdpMode},
    dataplane::{Dataplane, DesiredState},
    ipvs::{IpvsDataplane, IpvsError, IpvsOptions},
    xdp::{AttachMode, FlowSyncPort, XdpApplyError, XdpDataplane, XdpError, pins},
};

/// Why the configured data plane cannot run.
#[derive(Debug, Error)]
pub enum SelectError {
    #[error(
        "virtual server {service}: scheduler {scheduler} is not implemented by the XDP data plane (it does rr, wrr and mh); use one of those, or `dataplane: ipvs` (or `auto`)"
    )]
    XdpScheduler {
        service: String,
        scheduler: &'static str,
    },
    #[error("`dataplane: xdp` needs interfaces to attach to: list them under `interfaces:`")]
    NoInterfaces,
    #[error("the XDP data plane cannot run (`dataplane: xdp`)")]
    Xdp(#[source] XdpError),
    #[error("the IPVS data plane cannot run (`dataplane: ipvs`)")]
    Ipvs(#[source] IpvsError),
    #[error("no data plane can run (`dataplane: auto`): XDP: {xdp}; IPVS: {ipvs}")]
    Neither { xdp: String, ipvs: String },
    #[error("flow_sync cannot reach the XDP program's maps")]
    FlowSync(#[source] XdpApplyError),
}

/// What [`open`] opened: the data plane, and the flow sync's handles on it
/// when `flow_sync:` is configured and the data plane is XDP.
pub struct Opened {
    pub dataplane: ActiveDataplane,
    pub flow_sync: Option<FlowSyncPort>,
}

/// Takes the flow sync's handles when it is configured.
fn with_flow_sync(config: &Config, mut xdp: XdpDataplane) -> Result<Opened, SelectError> {
    let flow_sync = match &config.flow_sync {
        Some(_) => Some(xdp.flow_sync_port().map_err(SelectError::FlowSync)?),
        None => None,
    };
    Ok(Opened {
        dataplane: Box::new(xdp),
        flow_sync,
    })
}

/// IPVS runs: no flow sync (said once, when configured).
fn without_flow_sync(config: &Config, dataplane: ActiveDataplane) -> Opened {
    if config.flow_sync.is_some() {
        warn!(
            "flow_sync is ignored: it needs the XDP data plane (IPVS has its own sync daemon, \
             `ipvsadm --start-daemon`, which lbd does not start)"
        );
    }
    Opened {
        dataplane,
        flow_sync: None,
    }
}

/// The data plane that runs, known to the daemon only by its trait.
pub type ActiveDataplane = Box<dyn Dataplane>;

/// What the configured data plane needs that can be known without the
/// kernel (`lbd check` reports it; [`open`] checks it first).
pub fn check(config: &Config, desired: &DesiredState) -> Result<(), SelectError> {
    if config.dataplane != DataplaneKind::Xdp {
        return Ok(());
    }
    if let Some(s) = desired.services.iter().find(|s| !s.scheduler.xdp_capable()) {
        return Err(SelectError::XdpScheduler {
            service: s.label(),
            scheduler: s.scheduler.name(),
        });
    }
    if config.interfaces.is_empty() {
        return Err(SelectError::NoInterfaces);
    }
    Ok(())
}

/// Opens the data plane `config.dataplane` asks for, logging which one runs
/// and why.
pub fn open(
    config: &Config,
    desired: &DesiredState,
    ipvs: &IpvsOptions,
    pin_dir: &Path,
) -> Result<Opened, SelectError> {
    check(config, desired)?;
    let ipvs_only = desired.services.iter().find(|s| !s.scheduler.xdp_capable());
    match config.dataplane {
        DataplaneKind::Xdp => {
            let xdp = attach_xdp(config, pin_dir).map_err(SelectError::Xdp)?;
            info!(
                dataplane = "XDP",
                reason = "`dataplane: xdp`",
                "data plane chosen"
            );
            with_flow_sync(config, xdp)
        }
        DataplaneKind::Ipvs => {
            let dp = IpvsDataplane::open(ipvs).map_err(SelectError::Ipvs)?;
            info!(
                dataplane = "IPVS",
                reason = "`dataplane: ipvs`",
                "data plane chosen"
            );
            Ok(without_flow_sync(config, Box::new(dp)))
        }
        DataplaneKind::Auto => auto(
            config,
            ipvs_only.map(|s| (s.label(), s.scheduler.name())),
            ipvs,
            pin_dir,
        ),
    }
}

fn auto(
    config: &Config,
    ipvs_only: Option<(String, &'static str)>,
    ipvs: &IpvsOptions,
    pin_dir: &Path,
) -> Result<Opened, SelectError> {
    let why_not_xdp = if let Some((service, scheduler)) = ipvs_only {
        format!("virtual server {service} uses scheduler {scheduler}, which only IPVS implements")
    } else if config.interfaces.is_empty() {
        "no interfaces are listed for XDP".to_owned()
    } else {
        match attach_xdp(config, pin_dir) {
            Ok(xdp) => {
                info!(
                    dataplane = "XDP",
                    reason = "`dataplane: auto` and the XDP program attached",
                    "data plane chosen"
                );
                return with_flow_sync(config, xdp);
            }
            // A misspelt interface is a configuration error, not a reason.
            Err(e @ XdpError::UnknownInterface { .. }) => return Err(SelectError::Xdp(e)),
            Err(e) => format!("XDP cannot run: {}", error_chain(&e)),
        }
    };
    match IpvsDataplane::open(ipvs) {
        Ok(dp) => {
            warn!(
                dataplane = "IPVS",
                reason = %why_not_xdp,
                "data plane chosen: IPVS instead of XDP (`dataplane: auto`)"
            );
            Ok(without_flow_sync(config, Box::new(dp)))
        }
        Err(e) => Err(SelectError::Neither {
            xdp: why_not_xdp,
            ipvs: error_chain(&e),
        }),
    }
}

/// Loads the XDP program over what `pin_dir` holds and attaches it to
/// every configured interface.
pub fn attach_xdp(config: &Config, pin_dir: &Path) -> Result<XdpDataplane, XdpError> {
    let interfaces: Vec<(&str, AttachMode)> = config
        .interfaces
        .iter()
        .map(|interface| {
            let mode = match interface.xdp_mode {
                XdpMode::Auto => AttachMode::Auto,
                XdpMode::Native => AttachMode::Native,
                XdpMode::Generic => AttachMode::Generic,
            };
            (interface.name.as_str(), mode)
        })
        .collect();
    let mut dataplane = pins::open_pinned(pin_dir, &interfaces)?;
    for interface in &config.interfaces {
        dataplane.program_mut().attach_egress(&interface.name)?;
        crate::xdp::accept_local::enable(&interface.name).map_err(|source| {
            XdpError::AcceptLocal {
                interface: interface.name.clone(),
                source,
            }
        })?;
    }
    Ok(dataplane)
}
