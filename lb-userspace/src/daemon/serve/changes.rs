//! How the daemon changes what the data plane holds: following health
//! verdicts and VRRP transitions through the one effective-state function,
//! reloads (prepared by `reload::prepare`), drains and `autoreload`.

use std::time::{Instant, SystemTime};

use anyhow::Result;
use sd_notify::NotifyState;
use tracing::{error, info, warn};

use super::{Daemon, file_watch, notify};
use crate::{
    daemon::{
        apply_retry::{self, OnRefusal},
        drain::Drains,
        effective::effective,
        reload,
    },
    dataplane::{DesiredState, ServiceSpec, socket_label},
    error_text::error_chain,
};

impl Daemon<'_> {
    /// Installs and removes the services whose VIPs changed hands, and
    /// applies drains and reloads: the data plane gets `desired` plus the
    /// draining real servers, restricted to the VIPs this node serves.
    pub(super) fn follow(&mut self) -> Result<()> {
        let wanted = effective(&self.desired, &self.verdict, &self.drains, &self.states());
        self.install(wanted, Cause::Vrrp)
    }

    /// `follow`, keeping the last good state when the data plane refuses
    /// the change (retried every tick); an error only when the refusals
    /// have lasted `apply_retry::GIVE_UP_AFTER`.
    pub(super) fn follow_or_retry(&mut self, what: &str) -> Result<()> {
        let now = Instant::now();
        match self.follow() {
            Ok(()) => {
                if let Some(refused) = self.apply_retry.applied(now) {
                    info!(
                        refused_ms = refused.as_millis(),
                        "the data plane took the change it had refused"
                    );
                }
                Ok(())
            }
            Err(err) => match self.apply_retry.refused(now) {
                OnRefusal::Retry { log, for_how_long } => {
                    if log {
                        warn!(
                            refused_for_s = for_how_long.as_secs(),
                            "the data plane refused a change ({what}): {err:#}; it keeps \
                             its last good state, retrying every second"
                        );
                    }
                    Ok(())
                }
                OnRefusal::GiveUp => Err(err.context(format!(
                    "the data plane refused every change for {} s (last: {what}); stopping",
                    apply_retry::GIVE_UP_AFTER.as_secs()
                ))),
            },
        }
    }

    /// Applies `wanted`, logging the services that come and go and why.
    fn install(&mut self, wanted: DesiredState, cause: Cause) -> Result<()> {
        if wanted == self.installed {
            return Ok(());
        }
        let Some(dataplane) = self.dataplane.as_deref_mut() else {
            self.installed = wanted;
            return Ok(());
        };
        dataplane.apply(&wanted)?;
        for service in &wanted.services {
            if !self
                .installed
                .services
                .iter()
                .any(|s| same_service(s, service))
            {
                match cause {
                    Cause::Vrrp => {
                        info!(service = %service.label(), "virtual service installed (its VRRP instance left FAULT)");
                    }
                    Cause::Reload => {
                        info!(service = %service.label(), backends = service.backends.len(), "virtual service installed (reload)");
                    }
                }
            }
        }
        for service in &self.installed.services {
            if !wanted.services.iter().any(|s| same_service(s, service)) {
                match cause {
                    Cause::Vrrp => {
                        info!(service = %service.label(), "virtual service removed (its VRRP instances are in FAULT)");
                    }
                    Cause::Reload => {
                        info!(service = %service.label(), "virtual service removed (reload)");
                    }
                }
            }
        }
        self.installed = wanted;
        Ok(())
    }

    /// Re-reads the configuration and applies what changed; on any error
    /// nothing changes. Returns what happened, or the error text.
    pub(super) fn reload(&mut self) -> Result<String, String> {
        notify(&[NotifyState::Reloading]);
        self.config_file
            .loaded(file_watch::stamp(&self.options.config_path));
        let result = self.try_reload();
        match &result {
            Ok(message) => {
                self.reloads_ok += 1;
                self.last_reload_failed = false;
                self.reloaded_at = Some(SystemTime::now());
                info!("{message}");
            }
            Err(message) => {
                self.reloads_failed += 1;
                self.last_reload_failed = true;
                error!("reload refused, nothing changed: {message}");
            }
        }
        notify(&[NotifyState::Ready]);
        result
    }

    fn try_reload(&mut self) -> Result<String, String> {
        let path = self.options.config_path.clone();
        let snapshot = self.checks.snapshot.borrow().clone();
        let running = reload::Running {
            config: &self.config,
            dataplane: self
                .dataplane
                .as_deref()
                .map(|d| (d.name(), d.capabilities())),
            health: &snapshot,
        };
        let reload::Prepared {
            config: new,
            desired,
            checks,
            warnings,
        } = reload::prepare(&path, running).map_err(|e| error_chain(&e))?;
        for warning in &warnings {
            warn!("{warning}");
        }
        let verdict = match &checks {
            Some(prepared) => prepared.initial_verdict(),
            None => self.verdict.clone(),
        };

        let mut drains = self.drains.clone();
        let until = Instant::now() + new.global.drain_timeout();
        drains.reload(&self.drains.overlay(&self.desired), &desired, until);
        let wanted = effective(&desired, &verdict, &drains, &self.states());
        let summary = summarize(&self.desired, &desired, &drains);
        let before = self.installed.clone();
        if let Err(err) = self.install(wanted, Cause::Reload) {
            // Put back what was there; apply is per service, so a failure
            // half-way may have changed some.
            if let Some(dataplane) = self.dataplane.as_deref_mut()
                && let Err(undo) = dataplane.apply(&before)
            {
                error!("restoring the services after a failed reload failed: {undo}");
            }
            return Err(format!("the data plane refused the new services: {err:#}"));
        }
        // Health of unchanged real servers is kept; removed ones are forgotten
        // (a draining one keeps its last state until it is gone).
        let keep = drains.overlay(&desired);
        self.health
            .retain(|id| keep.services.iter().any(|s| s.reals().any(|r| r == *id)));
        if let Some(prepared) = checks {
            self.checks = prepared.start();
            self.checks.verdict.borrow_and_update();
        }
        self.verdict = verdict;
        self.config = new;
        if let Some(sync) = &self.flow_sync {
            sync.configure(&desired);
        }
        self.desired = desired;
        self.drains = drains;
        Ok(format!("reloaded {}: {summary}", path.display()))
    }

    /// Rate samples, drains and autoreload, every second.
    pub(super) fn tick(&mut self) -> Result<()> {
        if self.apply_retry.pending() {
            self.follow_or_retry("a retry")?;
        }
        if let Some(dataplane) = self.dataplane.as_deref() {
            match dataplane.traffic() {
                Ok(traffic) => self.rates.record(Instant::now(), &traffic),
                Err(err) => warn!("cannot sample the counters for rates: {err:#}"),
            }
        }
        if !self.drains.is_empty() {
            let status = match self.dataplane.as_deref() {
                Some(dp) => dp.status()?,
                None => Vec::new(),
            };
            let finished = self.drains.expire(&status, Instant::now());
            if !finished.is_empty() {
                for id in &finished {
                    info!(
                        service = %id.service,
                        real_server = %socket_label(id.addr, id.port),
                        "drained real server removed"
                    );
                }
                self.follow_or_retry("removing drained real servers")?;
            }
        }
        if self.config.global.autoreload {
            let now = file_watch::stamp(&self.options.config_path);
            if self.config_file.settled_change(now) {
                info!(config = %self.options.config_path.display(), "configuration file changed, reloading (autoreload)");
                let _ = self.reload();
            }
        }
        Ok(())
    }
}

/// Why the installed services change, for the log.
#[derive(Clone, Copy)]
enum Cause {
    /// A VRRP state change (or a drain ending).
    Vrrp,
    Reload,
}

fn same_service(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    a.id() == b.id()
}

/// "services added: 1, removed: 0, changed: 2; real servers draining: 1".
fn summarize(old: &DesiredState, new: &DesiredState, drains: &Drains) -> String {
    let added = new
        .services
        .iter()
        .filter(|n| !old.services.iter().any(|o| same_service(o, n)))
        .count();
    let removed = old
        .services
        .iter()
        .filter(|o| !new.services.iter().any(|n| same_service(o, n)))
        .count();
    let changed = new
        .services
        .iter()
        .filter(|n| old.services.iter().any(|o| same_service(o, n) && o != *n))
        .count();
    format!(
        "services added: {added}, removed: {removed}, changed: {changed}; real servers draining: {}",
        drains.len()
    )
}
