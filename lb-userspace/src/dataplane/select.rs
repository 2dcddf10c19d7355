//! Choosing the data plane from `dataplane:` in the configuration.
//!
//! - `xdp`: load and attach the XDP program (native, then generic mode per
//!   interface's `xdp_mode`), or fail saying why.
//! - `ipvs`: drive IPVS, or fail saying why (e.g. no `CONFIG_IP_VS`).
//! - `auto`: XDP when it can run this configuration, IPVS otherwise. IPVS
//!   is picked, with the reason logged, when a virtual server uses a
//!   scheduler only IPVS has (sh, lc, wlc), when no interface is listed for
//!   XDP, or when the XDP program cannot be loaded or attached (no BPF
//!   permission, a kernel or driver without XDP). A misspelt interface is
//!   not a reason to fall back: it is reported as the configuration error
//!   it is.

use crate::error_text::error_chain;
use thiserror::Error;
use tracing::{info, warn};

use super::{Dataplane, DataplaneError, DesiredState, FlowLister, ServiceStatus, ServiceTraffic};
use crate::{
    config::{Config, DataplaneKind, XdpMode},
    ipvs::{IpvsDataplane, IpvsError, IpvsOptions},
    xdp::{AttachMode, XdpDataplane, XdpError, XdpProgram},
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
}

/// The data plane that runs.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per daemon, never moved in a hot path"
)]
pub enum ActiveDataplane {
    Xdp(XdpDataplane),
    Ipvs(IpvsDataplane),
}

impl ActiveDataplane {
    pub const fn name(&self) -> &'static str {
        match self {
            ActiveDataplane::Xdp(_) => "XDP",
            ActiveDataplane::Ipvs(_) => "IPVS",
        }
    }

    /// The XDP data plane, for its packet counters.
    pub fn xdp(&self) -> Option<&XdpDataplane> {
        match self {
            ActiveDataplane::Xdp(x) => Some(x),
            ActiveDataplane::Ipvs(_) => None,
        }
    }

    /// Stops forwarding: detaches XDP, or removes lbd's IPVS services.
    pub fn shutdown(&mut self) {
        match self {
            ActiveDataplane::Xdp(x) => x.program_mut().detach_all(),
            ActiveDataplane::Ipvs(i) => {
                if let Err(e) = i.remove_all() {
                    warn!(error = %error_chain(&e), "removing lbd's IPVS services failed");
                }
            }
        }
    }
}

impl Dataplane for ActiveDataplane {
    fn apply(&mut self, desired: &DesiredState) -> Result<(), DataplaneError> {
        match self {
            ActiveDataplane::Xdp(x) => x.apply(desired),
            ActiveDataplane::Ipvs(i) => i.apply(desired),
        }
    }

    fn status(&self) -> Result<Vec<ServiceStatus>, DataplaneError> {
        match self {
            ActiveDataplane::Xdp(x) => x.status(),
            ActiveDataplane::Ipvs(i) => i.status(),
        }
    }

    fn traffic(&self) -> Result<Vec<ServiceTraffic>, DataplaneError> {
        match self {
            ActiveDataplane::Xdp(x) => x.traffic(),
            ActiveDataplane::Ipvs(i) => i.traffic(),
        }
    }

    fn flow_lister(&self) -> Result<Box<dyn FlowLister>, DataplaneError> {
        match self {
            ActiveDataplane::Xdp(x) => x.flow_lister(),
            ActiveDataplane::Ipvs(i) => i.flow_lister(),
        }
    }
}

/// Opens the data plane `config.dataplane` asks for, logging which one runs
/// and why.
pub fn open(
    config: &Config,
    desired: &DesiredState,
    ipvs: &IpvsOptions,
) -> Result<ActiveDataplane, SelectError> {
    let ipvs_only = desired.services.iter().find(|s| !s.scheduler.xdp_capable());
    let chosen = match config.dataplane {
        DataplaneKind::Xdp => {
            if let Some(s) = ipvs_only {
                return Err(SelectError::XdpScheduler {
                    service: s.label(),
                    scheduler: s.scheduler.name(),
                });
            }
            if config.interfaces.is_empty() {
                return Err(SelectError::NoInterfaces);
            }
            let xdp = attach_xdp(config).map_err(SelectError::Xdp)?;
            info!(
                dataplane = "XDP",
                reason = "`dataplane: xdp`",
                "data plane chosen"
            );
            ActiveDataplane::Xdp(xdp)
        }
        DataplaneKind::Ipvs => {
            let dp = IpvsDataplane::open(ipvs).map_err(SelectError::Ipvs)?;
            info!(
                dataplane = "IPVS",
                reason = "`dataplane: ipvs`",
                "data plane chosen"
            );
            ActiveDataplane::Ipvs(dp)
        }
        DataplaneKind::Auto => auto(
            config,
            ipvs_only.map(|s| (s.label(), s.scheduler.name())),
            ipvs,
        )?,
    };
    Ok(chosen)
}

fn auto(
    config: &Config,
    ipvs_only: Option<(String, &'static str)>,
    ipvs: &IpvsOptions,
) -> Result<ActiveDataplane, SelectError> {
    let why_not_xdp = if let Some((service, scheduler)) = ipvs_only {
        format!("virtual server {service} uses scheduler {scheduler}, which only IPVS implements")
    } else if config.interfaces.is_empty() {
        "no interfaces are listed for XDP".to_owned()
    } else {
        match attach_xdp(config) {
            Ok(xdp) => {
                info!(
                    dataplane = "XDP",
                    reason = "`dataplane: auto` and the XDP program attached",
                    "data plane chosen"
                );
                return Ok(ActiveDataplane::Xdp(xdp));
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
            Ok(ActiveDataplane::Ipvs(dp))
        }
        Err(e) => Err(SelectError::Neither {
            xdp: why_not_xdp,
            ipvs: error_chain(&e),
        }),
    }
}

/// Loads the XDP program and attaches it to every configured interface.
pub fn attach_xdp(config: &Config) -> Result<XdpDataplane, XdpError> {
    let mut program = XdpProgram::load()?;
    for interface in &config.interfaces {
        let mode = match interface.xdp_mode {
            XdpMode::Auto => AttachMode::Auto,
            XdpMode::Native => AttachMode::Native,
            XdpMode::Generic => AttachMode::Generic,
        };
        program.attach(&interface.name, mode)?;
    }
    Ok(XdpDataplane::new(program))
}
