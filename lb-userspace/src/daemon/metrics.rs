//! The status report as Prometheus metrics (OpenMetrics text, encoded by
//! `prometheus-client`). Built fresh from one report per scrape, so a
//! removed service's series disappear with it.
//!
//! Names (counters get `_total` appended by the encoder):
//! Labels never use a name Prometheus itself attaches (`instance`, `job`):
//! a scraped `instance` would be renamed `exported_instance`. Unix times are
//! `*_timestamp_seconds`, as Prometheus's naming guide has it.
//!
//! - `lbd_build_info{version, dataplane}`, `lbd_reloads_total{result}`,
//!   `lbd_config_last_reload_successful` (0 after a refused reload, as
//!   Prometheus's own `prometheus_config_last_reload_successful`),
//!   `lbd_config_last_reload_success_timestamp_seconds` (the start, or the
//!   last reload that was applied)
//! - `lbd_service_{connections,packets,bytes}_total{protocol, service[, direction]}`
//! - `lbd_real_server_{weight, active_connections, inactive_connections, draining}`,
//!   `lbd_real_server_up` and `lbd_real_server_in_pool` (only for checked
//!   servers: a down one stays listed when its check took it out),
//!   `lbd_real_server_last_failure_timestamp_seconds{..., reason}` (Unix time of its
//!   last failed check, kept after it recovers),
//!   `lbd_real_server_{connections,packets,bytes}_total`
//!   (`{protocol, service, real_server[, direction]}`)
//! - `lbd_vrrp_state{vrrp_instance, state}` (1 for the current state, 0 for the
//!   others), `lbd_vrrp_priority`, `lbd_vrrp_maintenance`,
//!   `lbd_vrrp_handed_over`,
//!   `lbd_vrrp_last_transition_timestamp_seconds` (Unix time),
//!   `lbd_vrrp_{became_master, released_master, adverts_sent,
//!   adverts_received, priority_zero_sent, priority_zero_received,
//!   split_brain_replies, split_brain_replies_limited}_total`,
//!   `lbd_vrrp_adverts_dropped_total{vrrp_instance, reason}`,
//!   `lbd_vrrp_unmatched_packets_total`
//! - `lbd_xdp_events_total{event}`: the XDP program's counters (the flow
//!   sync's lost events are `event="flow_events_lost"`).
//! - `lbd_flow_sync_total{event}` (sent/received entries and datagrams,
//!   installed, skipped, refused datagrams, ...) and the gauge
//!   `lbd_flow_sync_held`: only when `flow_sync` runs.
//! - `process_{resident_memory_bytes, virtual_memory_bytes, open_fds,
//!   max_fds, start_time_seconds}`, `process_cpu_seconds_total`: the
//!   client libraries' standard process metrics, for lbd itself.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{
    process_stats::ProcessStats,
    status::{StatsView, StatusReport},
};

/// The label naming a VRRP instance (not `instance`: see above).
const VRRP_INSTANCE: &str = "vrrp_instance";

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Families registered under their names as the report is walked.
struct Builder {
    registry: Registry,
}

impl Builder {
    fn counter(&mut self, name: &str, help: &str) -> Family<Labels, Counter> {
        let family = Family::<Labels, Counter>::default();
        self.registry.register(name, help, family.clone());
        family
    }

    fn gauge(&mut self, name: &str, help: &str) -> Family<Labels, Gauge> {
        let family = Family::<Labels, Gauge>::default();
        self.registry.register(name, help, family.clone());
        family
    }
}

fn set(family: &Family<Labels, Gauge>, labels: &Labels, value: u64) {
    family
        .get_or_create(labels)
        .set(i64::try_from(value).unwrap_or(i64::MAX));
}

fn count(family: &Family<Labels, Counter>, labels: &Labels, value: u64) {
    family.get_or_create(labels).inc_by(value);
}

/// Connections, packets and bytes (in and out) under `prefix`.
struct TrafficFamilies {
    connections: Family<Labels, Counter>,
    packets: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
}

impl TrafficFamilies {
    fn new(b: &mut Builder, prefix: &str, what: &str) -> Self {
        Self {
            connections: b.counter(
                &format!("{prefix}_connections"),
                &format!("Connections (flows) scheduled to the {what}."),
            ),
            packets: b.counter(
                &format!("{prefix}_packets"),
                &format!("Packets of the {what} by direction (in: from clients)."),
            ),
            bytes: b.counter(
                &format!("{prefix}_bytes"),
                &format!("Bytes of the {what} by direction (in: from clients)."),
            ),
        }
    }

    fn record(&self, base: &Labels, stats: &StatsView) {
        count(&self.connections, base, stats.connections);
        for (direction, packets, bytes) in [
            ("in", stats.packets_in, stats.bytes_in),
            ("out", stats.packets_out, stats.bytes_out),
        ] {
            let mut l = base.clone();
            l.push(("direction".into(), direction.into()));
            count(&self.packets, &l, packets);
            count(&self.bytes, &l, bytes);
        }
    }
}

/// The report, and `process` when sampled, in the OpenMetrics text format.
pub fn encode_report(report: &StatusReport, process: Option<&ProcessStats>) -> String {
    let mut b = Builder {
        registry: Registry::default(),
    };
    let info = b.gauge("lbd_build_info", "lbd's version and data plane; always 1.");
    set(
        &info,
        &labels(&[
            ("version", &report.version),
            ("dataplane", report.dataplane.as_deref().unwrap_or("none")),
        ]),
        1,
    );
    let reloads = b.counter("lbd_reloads", "Configuration reloads by result.");
    count(&reloads, &labels(&[("result", "ok")]), report.reloads_ok);
    count(
        &reloads,
        &labels(&[("result", "failed")]),
        report.reloads_failed,
    );
    b.registry.register(
        "lbd_config_last_reload_successful",
        "1 unless the last reload was refused (the running configuration is then older than the file)",
        plain_gauge(u64::from(!report.last_reload_failed)),
    );
    b.registry.register(
        "lbd_config_last_reload_success_timestamp_seconds",
        "Unix time the running configuration was loaded (start or last applied reload)",
        plain_gauge(report.reloaded_at.unwrap_or(report.started_at)),
    );

    let services = TrafficFamilies::new(&mut b, "lbd_service", "virtual service");
    let reals = TrafficFamilies::new(&mut b, "lbd_real_server", "real server");
    let weight = b.gauge(
        "lbd_real_server_weight",
        "Scheduling weight (0: no new flows).",
    );
    let active = b.gauge(
        "lbd_real_server_active_connections",
        "Established flows (ipvsadm ActiveConn).",
    );
    let inactive = b.gauge(
        "lbd_real_server_inactive_connections",
        "Other tracked flows (ipvsadm InActConn).",
    );
    let draining = b.gauge(
        "lbd_real_server_draining",
        "1 while a real server removed by a reload drains its flows.",
    );
    let up = b.gauge(
        "lbd_real_server_up",
        "Health-check result: 1 up, 0 down (only checked real servers).",
    );
    let in_pool = b.gauge(
        "lbd_real_server_in_pool",
        "1 while the real server is in the data plane's pool, 0 once its check took it out (only checked real servers).",
    );
    let last_failure = b.gauge(
        "lbd_real_server_last_failure_timestamp_seconds",
        "Unix time of the real server's last failed check, with its reason.",
    );
    for s in &report.services {
        let base = labels(&[("protocol", &s.protocol), ("service", &s.address)]);
        services.record(&base, &s.stats);
        for r in &s.real_servers {
            let mut l = base.clone();
            l.push(("real_server".into(), r.address.clone()));
            reals.record(&l, &r.stats);
            set(&weight, &l, u64::from(r.weight));
            set(&active, &l, r.active_connections);
            set(&inactive, &l, r.inactive_connections);
            set(&draining, &l, u64::from(r.draining));
            if let Some(h) = &r.health {
                set(&up, &l, u64::from(h.up));
                set(&in_pool, &l, u64::from(r.in_pool));
                if let (Some(at), Some(reason)) = (h.last_failure_at, &h.last_failure) {
                    let mut lr = l.clone();
                    lr.push(("reason".into(), reason.clone()));
                    set(&last_failure, &lr, at);
                }
            }
        }
    }

    let state = b.gauge(
        "lbd_vrrp_state",
        "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT), 0 for the others.",
    );
    let priority = b.gauge("lbd_vrrp_priority", "Effective priority.");
    let maintenance = b.gauge(
        "lbd_vrrp_maintenance",
        "1 while held BACKUP by maintenance.",
    );
    let handed_over = b.gauge(
        "lbd_vrrp_handed_over",
        "1 while BACKUP after a manual failover, until elected again.",
    );
    let since = b.gauge(
        "lbd_vrrp_last_transition_timestamp_seconds",
        "Unix time the current state began.",
    );
    let became = b.counter("lbd_vrrp_became_master", "Transitions to MASTER.");
    let released = b.counter("lbd_vrrp_released_master", "Transitions from MASTER.");
    let sent = b.counter("lbd_vrrp_adverts_sent", "Adverts sent.");
    let received = b.counter(
        "lbd_vrrp_adverts_received",
        "Adverts that passed the checks.",
    );
    let zero_sent = b.counter("lbd_vrrp_priority_zero_sent", "Priority-0 adverts sent.");
    let zero_received = b.counter(
        "lbd_vrrp_priority_zero_received",
        "Priority-0 adverts received.",
    );
    let replies = b.counter(
        "lbd_vrrp_split_brain_replies",
        "Adverts a MASTER sent to answer another master (split brain).",
    );
    let replies_limited = b.counter(
        "lbd_vrrp_split_brain_replies_limited",
        "Another master's adverts left unanswered: its sender was answered less than an advert interval ago (a flood).",
    );
    let dropped = b.counter("lbd_vrrp_adverts_dropped", "Adverts dropped, by reason.");
    for i in &report.vrrp_instances {
        let l = labels(&[(VRRP_INSTANCE, &i.name)]);
        for name in ["INIT", "BACKUP", "MASTER", "FAULT"] {
            let ls = labels(&[(VRRP_INSTANCE, &i.name), ("state", name)]);
            set(&state, &ls, u64::from(i.state == name));
        }
        set(&priority, &l, u64::from(i.priority));
        set(&maintenance, &l, u64::from(i.maintenance));
        set(&handed_over, &l, u64::from(i.handed_over));
        set(&since, &l, i.last_transition);
        let c = &i.counters;
        count(&became, &l, c.became_master);
        count(&released, &l, c.released_master);
        count(&sent, &l, c.adverts_sent);
        count(&received, &l, c.adverts_received);
        count(&zero_sent, &l, c.priority_zero_sent);
        count(&zero_received, &l, c.priority_zero_received);
        count(&replies, &l, c.split_brain_replies);
        count(&replies_limited, &l, c.split_brain_replies_limited);
        for (reason, n) in &c.dropped {
            count(
                &dropped,
                &labels(&[(VRRP_INSTANCE, &i.name), ("reason", reason)]),
                *n,
            );
        }
    }
    let unmatched = b.counter(
        "lbd_vrrp_unmatched_packets",
        "VRRP packets no instance took (bad header, unknown VRID).",
    );
    count(&unmatched, &Labels::new(), report.vrrp_unmatched);

    let xdp = b.counter("lbd_xdp_events", "The XDP program's counters, by event.");
    for (event, n) in &report.xdp_counters {
        count(&xdp, &labels(&[("event", event)]), *n);
    }

    if let Some(sync) = &report.flow_sync {
        let events = b.counter("lbd_flow_sync", "What the flow sync did, by event.");
        for (event, n) in sync.counters() {
            count(&events, &labels(&[("event", event)]), n);
        }
        let held = b.gauge(
            "lbd_flow_sync_held",
            "The peer's flows held for services not forwarding here yet.",
        );
        set(&held, &Labels::new(), sync.held);
    }

    if let Some(p) = process {
        register_process(&mut b.registry, p);
    }

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &b.registry);
    out
}

/// An unlabelled gauge holding `value`.
fn plain_gauge(value: u64) -> Gauge {
    let g = Gauge::<i64>::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

/// The standard process metrics, unlabelled as client libraries write them.
fn register_process(registry: &mut Registry, p: &ProcessStats) {
    for (name, help, value) in [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            p.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            p.virtual_memory_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors",
            p.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors",
            p.max_fds,
        ),
    ] {
        registry.register(name, help, plain_gauge(value));
    }
    let cpu = Counter::<f64, AtomicU64>::default();
    cpu.inc_by(p.cpu_seconds);
    registry.register(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds",
        cpu,
    );
    let start = Gauge::<f64, AtomicU64>::default();
    start.set(p.start_time_seconds);
    registry.register(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds",
        start,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::rates::RateView;
    use crate::daemon::{
        health::HealthView,
        status::{InstanceView, RealServerView, ServiceView, VrrpCountersView},
    };

    #[test]
    fn names_every_series_with_its_labels() {
        let stats = StatsView {
            connections: 7,
            packets_in: 70,
            packets_out: 60,
            bytes_in: 7000,
            bytes_out: 9000,
        };
        let mut counters = VrrpCountersView {
            adverts_sent: 12,
            ..VrrpCountersView::default()
        };
        counters.dropped.insert("ttl".into(), 3);
        let report = StatusReport {
            version: "0.1.0".into(),
            dataplane: Some("XDP".into()),
            reloads_ok: 2,
            services: vec![ServiceView {
                protocol: "TCP".into(),
                vip: "10.0.0.1".parse().unwrap(),
                port: 80,
                address: "10.0.0.1:80".into(),
                scheduler: "rr".into(),
                stats,
                rates: RateView::default(),
                real_servers: vec![
                    RealServerView {
                        ip: "10.0.1.2".parse().unwrap(),
                        port: 8080,
                        address: "10.0.1.2:8080".into(),
                        weight: 3,
                        active_connections: 4,
                        inactive_connections: 1,
                        stats,
                        rates: RateView::default(),
                        draining: false,
                        in_pool: true,
                        health: Some(HealthView {
                            up: true,
                            last_result: None,
                            last_failure: None,
                            last_failure_at: None,
                        }),
                    },
                    // Down and out of the pool (quiescent=no): still a series.
                    RealServerView::out_of_pool(
                        "10.0.1.3".parse().unwrap(),
                        8080,
                        HealthView {
                            up: false,
                            last_result: Some("connect: refused".into()),
                            last_failure: Some("connect: refused".into()),
                            last_failure_at: Some(1_795_333_470),
                        },
                    ),
                ],
            }],
            vrrp_instances: vec![InstanceView {
                name: "VI_1".into(),
                state: "MASTER".into(),
                priority: 150,
                master: None,
                master_priority: None,
                vips: Vec::new(),
                last_transition: 1_795_333_469,
                maintenance: false,
                handed_over: true,
                counters,
            }],
            xdp_counters: [("udp".to_owned(), 5)].into_iter().collect(),
            flow_sync: Some(crate::flowsync::FlowSyncView {
                installed: 7,
                held: 2,
                ..Default::default()
            }),
            ..StatusReport::default()
        };
        let process = ProcessStats {
            resident_memory_bytes: 4096,
            virtual_memory_bytes: 8192,
            cpu_seconds: 1.5,
            open_fds: 9,
            max_fds: 1024,
            start_time_seconds: 1_795_333_000.0,
        };
        let report = StatusReport {
            started_at: 1_795_333_000,
            reloaded_at: Some(1_795_333_400),
            last_reload_failed: true,
            ..report
        };
        let text = encode_report(&report, Some(&process));
        for line in [
            "lbd_build_info{version=\"0.1.0\",dataplane=\"XDP\"} 1",
            "lbd_reloads_total{result=\"ok\"} 2",
            "lbd_service_connections_total{protocol=\"TCP\",service=\"10.0.0.1:80\"} 7",
            "lbd_service_bytes_total{protocol=\"TCP\",service=\"10.0.0.1:80\",direction=\"out\"} 9000",
            "lbd_real_server_weight{protocol=\"TCP\",service=\"10.0.0.1:80\",real_server=\"10.0.1.2:8080\"} 3",
            "lbd_real_server_active_connections{protocol=\"TCP\",service=\"10.0.0.1:80\",real_server=\"10.0.1.2:8080\"} 4",
            "lbd_real_server_up{protocol=\"TCP\",service=\"10.0.0.1:80\",real_server=\"10.0.1.2:8080\"} 1",
            "lbd_real_server_up{protocol=\"TCP\",service=\"10.0.0.1:80\",real_server=\"10.0.1.3:8080\"} 0",
            "lbd_real_server_in_pool{protocol=\"TCP\",service=\"10.0.0.1:80\",real_server=\"10.0.1.3:8080\"} 0",
            "lbd_config_last_reload_successful 0",
            "lbd_config_last_reload_success_timestamp_seconds 1795333400",
            "lbd_real_server_last_failure_timestamp_seconds{protocol=\"TCP\",service=\"10.0.0.1:80\",real_server=\"10.0.1.3:8080\",reason=\"connect: refused\"} 1795333470",
            "lbd_vrrp_state{vrrp_instance=\"VI_1\",state=\"MASTER\"} 1",
            "lbd_vrrp_state{vrrp_instance=\"VI_1\",state=\"BACKUP\"} 0",
            "lbd_vrrp_priority{vrrp_instance=\"VI_1\"} 150",
            "lbd_vrrp_handed_over{vrrp_instance=\"VI_1\"} 1",
            "lbd_vrrp_last_transition_timestamp_seconds{vrrp_instance=\"VI_1\"} 1795333469",
            "lbd_vrrp_adverts_sent_total{vrrp_instance=\"VI_1\"} 12",
            "lbd_vrrp_adverts_dropped_total{vrrp_instance=\"VI_1\",reason=\"ttl\"} 3",
            "process_resident_memory_bytes 4096",
            "process_open_fds 9",
            "process_max_fds 1024",
            "process_cpu_seconds_total 1.5",
            "process_start_time_seconds 1795333000.0",
            "lbd_xdp_events_total{event=\"udp\"} 5",
            "lbd_flow_sync_total{event=\"installed\"} 7",
            "lbd_flow_sync_total{event=\"bad_datagrams\"} 0",
            "lbd_flow_sync_held{} 2",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        // Prometheus would rename a scraped `instance` label.
        assert!(
            !text.contains("{instance=") && !text.contains(",instance="),
            "a series carries the label `instance`:\n{text}"
        );
    }
}
