//! What the daemon answers: control-socket requests (status, reload,
//! failover, maintenance) and the periodic counter log.

use std::collections::BTreeMap;

use anyhow::Result;
use tracing::info;

use super::Daemon;
use crate::{
    daemon::{
        connections,
        control::Reply,
        health::HealthView,
        protocol::{Request, Response},
        status::{self, StatusReport, unix_seconds},
    },
    dataplane::{FlowQuery, socket_label},
    error_text::error_chain,
    flowsync::FlowSyncHandle,
};

impl Daemon<'_> {
    pub(super) async fn handle(&mut self, request: Request) -> Reply {
        let response = match request {
            Request::Connections(query) => return self.connections(query),
            Request::Status => match self.report().await {
                Ok(report) => Response::Status(Box::new(report)),
                Err(err) => Response::Error {
                    message: format!("{err:#}"),
                },
            },
            Request::Reload => match self.reload() {
                Ok(message) => Response::Done { message },
                Err(message) => Response::Error { message },
            },
            Request::Failover { instance } => self.failover(&instance).await,
            Request::Maintenance { instance, on } => {
                let Some(handle) = &self.vrrp else {
                    return no_vrrp().into();
                };
                match handle.maintenance(instance.as_deref(), on).await {
                    Ok(names) => Response::Done {
                        message: format!(
                            "maintenance {} for {}",
                            if on { "on" } else { "off" },
                            names.join(", ")
                        ),
                    },
                    Err(err) => Response::Error {
                        message: err.to_string(),
                    },
                }
            }
        };
        Reply::Once(response)
    }

    /// Starts a walk of the flow table; its lines stream to the client.
    fn connections(&self, query: FlowQuery) -> Reply {
        let Some(dataplane) = self.dataplane.as_deref() else {
            return Reply::Once(Response::Error {
                message: "this lbd runs no data plane: it tracks no flows".into(),
            });
        };
        match dataplane.flow_lister() {
            Ok(lister) => Reply::Stream(connections::stream(lister, query)),
            Err(err) => Reply::Once(Response::Error {
                message: format!("listing the flows: {}", error_chain(&err)),
            }),
        }
    }

    async fn failover(&self, instance: &str) -> Response {
        let Some(handle) = &self.vrrp else {
            return no_vrrp();
        };
        let state = handle
            .states
            .borrow()
            .iter()
            .find(|s| s.name == instance)
            .map(|s| s.state);
        match state {
            None => Response::Error {
                message: format!("no VRRP instance is named {instance}"),
            },
            Some(state) => {
                if handle.failover(instance).await {
                    info!(%instance, "manual failover: handed over");
                    Response::Done {
                        message: format!(
                            "{instance} handed over; it stays BACKUP until elected again"
                        ),
                    }
                } else {
                    Response::Error {
                        message: format!(
                            "{instance} is {}, not MASTER: nothing to hand over",
                            status::state_name(state)
                        ),
                    }
                }
            }
        }
    }

    pub(super) async fn report(&mut self) -> Result<StatusReport> {
        self.refresh_health_board();
        let mut services = match self.dataplane.as_deref() {
            Some(dp) => status::services(&dp.status()?, &self.drains, &self.health),
            None => Vec::new(),
        };
        let rates = self.rates.rates();
        rates.annotate(&mut services);
        let xdp_counters = match self.dataplane.as_deref() {
            Some(dp) => dp.counters()?,
            None => std::collections::BTreeMap::new(),
        };
        let (vrrp_instances, vrrp_unmatched) = match &self.vrrp {
            Some(handle) => {
                let counters = handle.counters().await;
                (
                    status::instances(&self.states(), &counters),
                    counters.unmatched,
                )
            }
            None => (Vec::new(), 0),
        };
        Ok(StatusReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            dataplane: self.dataplane.as_deref().map(|d| d.name().to_owned()),
            config: self.options.config_path.display().to_string(),
            started_at: unix_seconds(self.started_at),
            reloaded_at: self.reloaded_at.map(unix_seconds),
            reloads_ok: self.reloads_ok,
            reloads_failed: self.reloads_failed,
            last_reload_failed: self.last_reload_failed,
            services,
            vrrp_instances,
            vrrp_unmatched,
            xdp_counters,
            rate_window_ms: rates.window.map(|w| w.as_millis() as u64),
            flow_sync: self.flow_sync.as_ref().map(FlowSyncHandle::view),
        })
    }

    /// Copies the checks' latest results into the board status and
    /// metrics read, by real server id. A server that is neither checked
    /// any more nor draining leaves the board, so status never shows a
    /// row for a real server that is gone.
    fn refresh_health_board(&mut self) {
        let snapshot = self.checks.snapshot.borrow().clone();
        let checked: Vec<_> = snapshot
            .services
            .iter()
            .flat_map(|s| &s.servers)
            .filter(|server| server.checks > 0)
            .filter_map(|server| Some((server.id?, server)))
            .collect();
        let drains = &self.drains;
        self.health
            .retain(|id| drains.contains(id) || checked.iter().any(|(c, _)| c == id));
        for (id, server) in checked {
            let last_result = if server.runs == 0 {
                Some("not checked yet".to_owned())
            } else if let (false, Some(error)) = (server.up, &server.last_error) {
                Some(error.clone())
            } else {
                Some("ok".to_owned())
            };
            self.health.set(
                id,
                HealthView {
                    up: server.up,
                    last_result,
                    last_failure: server.last_failure_at.and(server.last_error.clone()),
                    last_failure_at: server.last_failure_at.map(unix_seconds),
                },
            );
        }
    }

    /// One log line per service and real server (and the XDP counters
    /// when they changed), ipvsadm-like.
    pub(super) fn log_stats(&self, last: &mut BTreeMap<String, u64>) -> Result<()> {
        let Some(dataplane) = self.dataplane.as_deref() else {
            return Ok(());
        };
        let now = dataplane.counters()?;
        if !now.is_empty() {
            if now == *last {
                return Ok(());
            }
            info!("{} counters: {}", dataplane.name(), format_counters(&now));
            *last = now;
        }
        for service in dataplane.status()? {
            let s = service.stats;
            info!(
                "service {} {}: conns={} pkts_in={} pkts_out={}",
                service.protocol,
                socket_label(service.vip, service.port),
                s.connections,
                s.packets_in,
                s.packets_out
            );
            for b in &service.backends {
                info!(
                    "  -> {} weight={} active={} inactive={} conns={}",
                    socket_label(b.addr, b.port),
                    b.weight,
                    b.active_connections,
                    b.inactive_connections,
                    b.stats.connections
                );
            }
        }
        Ok(())
    }
}

fn no_vrrp() -> Response {
    Response::Error {
        message: "this lbd runs no VRRP instances".into(),
    }
}

/// `name=value` for every counter that is not zero.
fn format_counters(counters: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counters
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(c, v)| format!("{c}={v}"))
        .collect();
    parts.join(" ")
}
