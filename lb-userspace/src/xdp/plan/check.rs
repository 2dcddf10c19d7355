//! What makes a desired state impossible to install, found before any write.

use std::net::IpAddr;

use lb_common::maps::{MAX_BACKENDS, MAX_SERVICES};
use thiserror::Error;

use crate::dataplane::{DataplaneError, DesiredState, socket_label};

/// A desired state the XDP data plane cannot install; nothing was written.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum PlanError {
    #[error("too many {what}: the XDP data plane holds at most {max}")]
    Capacity { what: &'static str, max: u32 },
    #[error("{service}: backend {backend} is {backend_family} but the service is {service_family}")]
    FamilyMismatch {
        service: String,
        backend: String,
        service_family: &'static str,
        backend_family: &'static str,
    },
    #[error(
        "virtual server {service}: scheduler {scheduler} is not implemented by the XDP data plane"
    )]
    Scheduler {
        service: String,
        scheduler: &'static str,
    },
}

impl PlanError {
    pub(crate) const SERVICES: Self = Self::Capacity {
        what: "services",
        max: MAX_SERVICES,
    };
    pub(crate) const BACKENDS: Self = Self::Capacity {
        what: "backends",
        max: MAX_BACKENDS,
    };
}

impl From<PlanError> for DataplaneError {
    fn from(e: PlanError) -> Self {
        DataplaneError::new(e)
    }
}

fn family_name(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Checks what a plan would need before planning, so a state that cannot be
/// installed is refused as a whole, with the reason.
pub(super) fn check(desired: &DesiredState) -> Result<(), PlanError> {
    // Parking drops every installed service not desired, and parked ones
    // are evicted when ids run out: any desired state of at most
    // MAX_SERVICES services gets its ids.
    if desired.services.len() > MAX_SERVICES as usize {
        return Err(PlanError::SERVICES);
    }
    let backends: usize = desired
        .services
        .iter()
        .map(|s| s.backends.len() + usize::from(s.sorry.is_some()))
        .sum();
    if backends > MAX_BACKENDS as usize {
        return Err(PlanError::BACKENDS);
    }
    if let Some(s) = desired.services.iter().find(|s| !s.scheduler.xdp_capable()) {
        return Err(PlanError::Scheduler {
            service: s.label(),
            scheduler: s.scheduler.name(),
        });
    }
    for s in &desired.services {
        for b in s.backends.iter().chain(s.sorry.iter()) {
            if b.addr.is_ipv4() != s.vip.is_ipv4() {
                return Err(PlanError::FamilyMismatch {
                    service: s.label(),
                    backend: socket_label(b.addr, b.port),
                    service_family: family_name(s.vip),
                    backend_family: family_name(b.addr),
                });
            }
        }
    }
    Ok(())
}
