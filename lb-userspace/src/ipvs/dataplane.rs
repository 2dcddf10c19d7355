//! The IPVS data plane: the desired state as IPVS virtual services with
//! masquerading (NAT) real servers, as keepalived would program them.
//!
//! lbd only ever changes services in its ownership record (`owned.rs`); a
//! configured service that already exists and is not recorded is refused
//! before anything changes, and every other service is left alone.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashSet},
    path::PathBuf,
};

use tracing::{info, warn};

use crate::error_text::error_chain;

use super::{
    IpvsError,
    conn_table::{CONN_TABLE, IpvsFlowLister},
    message::{Attr, IpvsMessage, attr, cmd},
    nodest::{self, Leaving},
    owned::OwnedRecord,
    service::{Destination, KernelDest, KernelService},
    socket::{IpvsSocket, is_not_found},
};
use crate::dataplane::{
    BackendStatus, Capabilities, Dataplane, DataplaneError, DesiredState, FlowLister,
    SchedulerKind, ServiceId, ServiceSpec, ServiceStatus, Timeouts, socket_label,
};

/// Where the IPVS data plane keeps its ownership record.
#[derive(Clone, Debug)]
pub struct IpvsOptions {
    pub run_dir: PathBuf,
}

impl Default for IpvsOptions {
    fn default() -> Self {
        Self {
            run_dir: PathBuf::from(crate::defaults::STATE_DIR),
        }
    }
}

/// The IPVS data plane over one generic netlink socket.
pub struct IpvsDataplane {
    /// In a cell because `status` (`&self`) needs the socket's sequence
    /// counter too.
    socket: RefCell<IpvsSocket>,
    owned: OwnedRecord,
    /// What was last written with `IPVS_CMD_SET_CONFIG`.
    timeouts: Option<Timeouts>,
    /// Services in the order the desired state lists them, for status.
    order: Vec<ServiceId>,
    /// `net.ipv4.vs.expire_nodest_conn` of the socket's namespace.
    expire_nodest_conn: nodest::ExpireNodestConn,
}

fn family_name(addr: std::net::IpAddr) -> &'static str {
    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// The real servers a service should have: every backend (weight 0 stays
/// as a quiescent destination: no new flows, established ones continue),
/// plus the sorry server while no backend takes new flows, as keepalived
/// does it (once added, it stays at weight 0 for its connections: see
/// `nodest`).
fn destinations(spec: &ServiceSpec) -> Vec<Destination> {
    let mut out: Vec<Destination> = spec
        .backends
        .iter()
        .map(|b| Destination {
            addr: b.addr,
            port: b.port,
            weight: b.weight,
        })
        .collect();
    if let Some(sorry) = &spec.sorry
        && spec.backends.iter().all(|b| b.weight == 0)
    {
        out.push(Destination {
            addr: sorry.addr,
            port: sorry.port,
            weight: sorry.weight.max(1),
        });
    }
    out
}

/// Every service in the kernel's table (this network namespace).
fn list_services(socket: &mut IpvsSocket) -> Result<Vec<KernelService>, IpvsError> {
    let replies = socket.dump(IpvsMessage {
        cmd: cmd::GET_SERVICE,
        attrs: Vec::new(),
    })?;
    Ok(replies
        .iter()
        .filter_map(|m| m.attrs.iter().find(|a| a.kind == attr::SERVICE))
        .filter_map(|a| a.children().ok())
        .map(|attrs| KernelService::parse(&attrs))
        .collect())
}

fn list_dests(socket: &mut IpvsSocket, key: &ServiceId) -> Result<Vec<KernelDest>, IpvsError> {
    let replies = socket.dump(IpvsMessage {
        cmd: cmd::GET_DEST,
        attrs: vec![key.attr()],
    })?;
    Ok(replies
        .iter()
        .filter_map(|m| m.attrs.iter().find(|a| a.kind == attr::DEST))
        .filter_map(|a| a.children().ok())
        .filter_map(|attrs| KernelDest::parse(&attrs, key.vip))
        .collect())
}

impl IpvsDataplane {
    /// Connects to IPVS (loading `ip_vs` if needed) and removes the
    /// services an earlier lbd in this network namespace recorded and left
    /// behind (a crash); nothing else is touched.
    pub fn open(options: &IpvsOptions) -> Result<Self, IpvsError> {
        let socket = IpvsSocket::open()?;
        let owned = OwnedRecord::open(&options.run_dir)?;
        // After the socket: opening it loaded ip_vs, which adds the sysctl.
        let expire_nodest_conn = nodest::ExpireNodestConn::open()?;
        let mut this = Self {
            socket: RefCell::new(socket),
            owned,
            timeouts: None,
            order: Vec::new(),
            expire_nodest_conn,
        };
        let leftovers = this.owned.keys();
        if !leftovers.is_empty() {
            let present: HashSet<ServiceId> =
                this.services()?.into_iter().filter_map(|s| s.key).collect();
            for key in leftovers {
                if present.contains(&key) {
                    this.delete_service(&key)?;
                    warn!(service = %key, "removed an IPVS service an earlier lbd left behind");
                } else {
                    this.owned.remove(&key)?;
                }
            }
        }
        Ok(this)
    }

    fn services(&mut self) -> Result<Vec<KernelService>, IpvsError> {
        list_services(self.socket.get_mut())
    }

    fn dests(&mut self, key: &ServiceId) -> Result<Vec<KernelDest>, IpvsError> {
        list_dests(self.socket.get_mut(), key)
    }

    fn send(&mut self, cmd: u8, attrs: Vec<Attr>) -> Result<(), IpvsError> {
        self.socket
            .get_mut()
            .request(IpvsMessage { cmd, attrs })
            .map(drop)
    }

    fn delete_service(&mut self, key: &ServiceId) -> Result<(), IpvsError> {
        match self.send(cmd::DEL_SERVICE, vec![key.attr()]) {
            Err(IpvsError::Kernel { source, .. }) if is_not_found(&source) => {}
            other => other?,
        }
        self.owned.remove(key)
    }

    /// Makes one service's real servers match `spec`: additions first, then
    /// weight changes, then removals, so the set is never empty in between.
    fn sync_dests(&mut self, key: &ServiceId, spec: &ServiceSpec) -> Result<(), IpvsError> {
        let wanted = destinations(spec);
        let current = self.dests(key)?;
        let find = |d: &Destination| {
            current
                .iter()
                .find(|c| c.dest.addr == d.addr && c.dest.port == d.port)
        };
        for d in &wanted {
            if find(d).is_none() {
                self.send(cmd::NEW_DEST, vec![key.attr(), d.attr(true)])?;
            }
        }
        for d in &wanted {
            if find(d).is_some_and(|c| c.dest.weight != d.weight) {
                self.send(cmd::SET_DEST, vec![key.attr(), d.attr(true)])?;
            }
        }
        for c in &current {
            if wanted
                .iter()
                .any(|d| d.addr == c.dest.addr && d.port == c.dest.port)
            {
                continue;
            }
            match nodest::leaving(spec, c.dest.addr, c.dest.port) {
                Leaving::Delete => {
                    self.send(cmd::DEL_DEST, vec![key.attr(), c.dest.attr(false)])?;
                }
                Leaving::Quiesce if c.dest.weight != 0 => {
                    let quiet = Destination {
                        weight: 0,
                        ..c.dest
                    };
                    self.send(cmd::SET_DEST, vec![key.attr(), quiet.attr(true)])?;
                }
                Leaving::Quiesce => {}
            }
        }
        Ok(())
    }

    fn set_timeouts(&mut self, t: Timeouts) -> Result<(), IpvsError> {
        if self.timeouts == Some(t) {
            return Ok(());
        }
        let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        self.send(
            cmd::SET_CONFIG,
            vec![
                Attr::u32(attr::TIMEOUT_TCP, secs(t.tcp)),
                Attr::u32(attr::TIMEOUT_TCP_FIN, secs(t.tcp_fin)),
                Attr::u32(attr::TIMEOUT_UDP, secs(t.udp)),
            ],
        )?;
        self.timeouts = Some(t);
        Ok(())
    }

    /// Checks everything that could refuse the desired state before the
    /// first change, so a refused state changes nothing.
    fn check(
        &self,
        desired: &DesiredState,
        present: &BTreeMap<ServiceId, KernelService>,
    ) -> Result<(), IpvsError> {
        for spec in &desired.services {
            let key = ServiceSpec::id(spec);
            if present.contains_key(&key) && !self.owned.contains(&key) {
                return Err(IpvsError::Foreign {
                    service: key.to_string(),
                });
            }
            for b in spec.backends.iter().chain(spec.sorry.iter()) {
                if b.addr.is_ipv4() != spec.vip.is_ipv4() {
                    return Err(IpvsError::FamilyMismatch {
                        service: spec.label(),
                        backend: socket_label(b.addr, b.port),
                        service_family: family_name(spec.vip),
                        backend_family: family_name(b.addr),
                    });
                }
            }
        }
        Ok(())
    }

    fn apply_ipvs(&mut self, desired: &DesiredState) -> Result<(), IpvsError> {
        let present: BTreeMap<ServiceId, KernelService> = self
            .services()?
            .into_iter()
            .filter_map(|s| Some((s.key?, s)))
            .collect();
        self.check(desired, &present)?;
        if let Some(expire) = nodest::wanted(desired)? {
            self.expire_nodest_conn.set(expire)?;
        }
        self.set_timeouts(desired.timeouts)?;
        let wanted: Vec<ServiceId> = desired.services.iter().map(ServiceSpec::id).collect();
        for key in self.owned.keys() {
            if !wanted.contains(&key) {
                self.delete_service(&key)?;
                info!(service = %key, "IPVS service removed");
            }
        }
        for spec in &desired.services {
            let key = ServiceSpec::id(spec);
            let scheduler = spec.scheduler.name();
            match present.get(&key) {
                None => {
                    // Recorded first: a crash right after the kernel
                    // creates it must not leave a service lbd forgot.
                    self.owned.insert(key)?;
                    self.send(cmd::NEW_SERVICE, vec![key.full_attr(scheduler)])?;
                }
                Some(s) if s.scheduler != scheduler => {
                    self.send(cmd::SET_SERVICE, vec![key.full_attr(scheduler)])?;
                }
                Some(_) => {}
            }
            self.sync_dests(&key, spec)?;
        }
        self.order = wanted;
        Ok(())
    }

    /// Removes every service lbd created; done on drop too.
    pub fn remove_all(&mut self) -> Result<(), IpvsError> {
        for key in self.owned.keys() {
            self.delete_service(&key)?;
            info!(service = %key, "IPVS service removed");
        }
        self.order.clear();
        Ok(())
    }
}

impl Dataplane for IpvsDataplane {
    fn name(&self) -> &'static str {
        "IPVS"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            schedulers: &SchedulerKind::ALL,
        }
    }

    /// IPVS keeps no per-reason counters of its own.
    fn counters(&self) -> Result<BTreeMap<String, u64>, DataplaneError> {
        Ok(BTreeMap::new())
    }

    fn flow_lister(&self) -> Result<Box<dyn FlowLister>, DataplaneError> {
        Ok(Box::new(IpvsFlowLister::new(CONN_TABLE)))
    }

    fn shutdown(&mut self) {
        if let Err(e) = self.remove_all() {
            warn!(error = %error_chain(&e), "removing lbd's IPVS services failed");
        }
    }

    fn apply(&mut self, desired: &DesiredState) -> Result<(), DataplaneError> {
        Ok(self.apply_ipvs(desired)?)
    }

    fn status(&self) -> Result<Vec<ServiceStatus>, DataplaneError> {
        let socket = &mut *self.socket.borrow_mut();
        let present: BTreeMap<ServiceId, KernelService> = list_services(socket)?
            .into_iter()
            .filter_map(|s| Some((s.key?, s)))
            .collect();
        let mut out = Vec::new();
        for key in &self.order {
            let Some(service) = present.get(key) else {
                continue;
            };
            let Some(scheduler) = SchedulerKind::from_name(&service.scheduler) else {
                continue;
            };
            let mut dests = list_dests(socket, key)?;
            // IPVS lists the newest first; report them in configured order.
            dests.reverse();
            let backends = dests
                .into_iter()
                .map(|d| BackendStatus {
                    addr: d.dest.addr,
                    port: d.dest.port,
                    weight: d.dest.weight,
                    active_connections: d.active,
                    inactive_connections: d.inactive,
                    stats: d.stats,
                })
                .collect();
            out.push(ServiceStatus {
                vip: key.vip,
                port: key.port,
                protocol: key.protocol,
                scheduler,
                backends,
                stats: service.stats,
            });
        }
        Ok(out)
    }
}

impl Drop for IpvsDataplane {
    fn drop(&mut self) {
        if let Err(e) = self.remove_all() {
            warn!(error = %e, "removing lbd's IPVS services failed");
        }
    }
}
