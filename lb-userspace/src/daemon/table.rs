//! `lbd status` as text: the services laid out like `ipvsadm -Ln --stats`
//! joined with `-Ln` (weights and connection counts, then counters and
//! health), then the VRRP instances.

use std::fmt::Write as _;

use super::{
    status::{RealServerView, StatusReport, unix_seconds},
    wallclock,
};

/// The report as a table; `now` is Unix seconds, for the ages.
pub fn render(report: &StatusReport) -> String {
    render_at(report, unix_seconds(std::time::SystemTime::now()))
}

pub(crate) fn render_at(report: &StatusReport, now: u64) -> String {
    let mut out = String::new();
    let dataplane = report.dataplane.as_deref().unwrap_or("no");
    let _ = writeln!(
        out,
        "lbd {} ({dataplane} data plane), config {}",
        report.version, report.config
    );
    let _ = writeln!(
        out,
        "Prot LocalAddress:Port Scheduler        Conns     InPkts    OutPkts    InBytes   OutBytes"
    );
    let _ = writeln!(
        out,
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn      Conns     InPkts    OutPkts    InBytes   OutBytes Health"
    );
    for s in &report.services {
        let head = format!("{:<4} {} {}", s.protocol, s.address, s.scheduler);
        let st = &s.stats;
        let _ = writeln!(
            out,
            "{head:<39}{:>10} {:>10} {:>10} {:>10} {:>10}",
            st.connections, st.packets_in, st.packets_out, st.bytes_in, st.bytes_out
        );
        for r in &s.real_servers {
            let st = &r.stats;
            let health = health_cell(r, now);
            let weight = if r.in_pool {
                r.weight.to_string()
            } else {
                "-".to_owned()
            };
            let _ = writeln!(
                out,
                "  -> {:<28} Masq    {:<6} {:<10} {:<9} {:>10} {:>10} {:>10} {:>10} {:>10} {health}",
                r.address,
                weight,
                r.active_connections,
                r.inactive_connections,
                st.connections,
                st.packets_in,
                st.packets_out,
                st.bytes_in,
                st.bytes_out,
            );
        }
    }
    if !report.vrrp_instances.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "VRRP Instance      State     Prio Master                     Last transition"
        );
        for i in &report.vrrp_instances {
            let master = match (i.master, i.master_priority) {
                (Some(a), Some(p)) => format!("{a} ({p})"),
                _ => "-".to_owned(),
            };
            let state = if i.maintenance {
                format!("{} (maintenance)", i.state)
            } else if i.handed_over {
                format!("{} (handed over)", i.state)
            } else {
                i.state.clone()
            };
            let _ = writeln!(
                out,
                "{:<18} {:<9} {:<4} {:<26} {} ({} ago)",
                i.name,
                state,
                i.priority,
                master,
                wallclock::utc(i.last_transition),
                wallclock::age(now.saturating_sub(i.last_transition)),
            );
        }
    }
    out
}

/// "up (HTTP 200)", "down (connect: refused; failed 4s ago)", then
/// "draining" or "out of pool" (a check took it out of the data plane).
fn health_cell(r: &RealServerView, now: u64) -> String {
    let mut cell = match &r.health {
        None => "-".to_owned(),
        Some(h) => {
            let word = if h.up { "up" } else { "down" };
            let failed = h
                .last_failure_at
                .filter(|_| !h.up)
                .map(|at| format!("; failed {} ago", wallclock::age(now.saturating_sub(at))));
            match &h.last_result {
                Some(text) => format!("{word} ({text}{})", failed.unwrap_or_default()),
                None => word.to_owned(),
            }
        }
    };
    if r.draining {
        cell.push_str(" draining");
    }
    if !r.in_pool {
        cell.push_str(" out of pool");
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::rates::RateView;
    use crate::daemon::{
        health::HealthView,
        status::{InstanceView, RealServerView, ServiceView, StatsView, VrrpCountersView},
    };

    #[test]
    fn lays_out_services_like_ipvsadm_and_then_the_instances() {
        let stats = StatsView {
            connections: 7,
            packets_in: 70,
            packets_out: 60,
            bytes_in: 7000,
            bytes_out: 9000,
        };
        let report = StatusReport {
            version: "0.1.0".into(),
            dataplane: Some("XDP".into()),
            config: "/etc/lbd/lbd.yaml".into(),
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
                        weight: 1,
                        active_connections: 3,
                        inactive_connections: 1,
                        stats,
                        rates: RateView::default(),
                        draining: false,
                        in_pool: true,
                        health: Some(HealthView {
                            up: true,
                            last_result: Some("HTTP 200".into()),
                            last_failure: None,
                            last_failure_at: None,
                        }),
                    },
                    RealServerView {
                        ip: "10.0.1.3".parse().unwrap(),
                        port: 8080,
                        address: "10.0.1.3:8080".into(),
                        weight: 0,
                        active_connections: 0,
                        inactive_connections: 2,
                        stats: StatsView::default(),
                        rates: RateView::default(),
                        draining: true,
                        in_pool: true,
                        health: None,
                    },
                    // Taken out by its check (quiescent=no): still listed.
                    RealServerView::out_of_pool(
                        "10.0.1.4".parse().unwrap(),
                        8080,
                        HealthView {
                            up: false,
                            last_result: Some("connect: refused".into()),
                            last_failure: Some("connect: refused".into()),
                            last_failure_at: Some(1_795_333_469 + 61),
                        },
                    ),
                ],
            }],
            vrrp_instances: vec![
                InstanceView {
                    name: "VI_1".into(),
                    state: "MASTER".into(),
                    priority: 150,
                    master: Some("10.0.0.11".parse().unwrap()),
                    master_priority: Some(150),
                    vips: vec!["10.0.0.1".parse().unwrap()],
                    last_transition: 1_795_333_469,
                    maintenance: false,
                    handed_over: false,
                    counters: VrrpCountersView::default(),
                },
                // After `lbd failover VI_2`: BACKUP, and says why.
                InstanceView {
                    name: "VI_2".into(),
                    state: "BACKUP".into(),
                    priority: 201,
                    master: Some("10.0.0.12".parse().unwrap()),
                    master_priority: Some(101),
                    vips: vec!["10.0.0.2".parse().unwrap()],
                    last_transition: 1_795_333_469,
                    maintenance: false,
                    handed_over: true,
                    counters: VrrpCountersView::default(),
                },
            ],
            ..StatusReport::default()
        };
        let text = render_at(&report, 1_795_333_469 + 65);
        let expected = "\
lbd 0.1.0 (XDP data plane), config /etc/lbd/lbd.yaml
Prot LocalAddress:Port Scheduler        Conns     InPkts    OutPkts    InBytes   OutBytes
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn      Conns     InPkts    OutPkts    InBytes   OutBytes Health
TCP  10.0.0.1:80 rr                             7         70         60       7000       9000
  -> 10.0.1.2:8080                Masq    1      3          1                  7         70         60       7000       9000 up (HTTP 200)
  -> 10.0.1.3:8080                Masq    0      0          2                  0          0          0          0          0 - draining
  -> 10.0.1.4:8080                Masq    -      0          0                  0          0          0          0          0 down (connect: refused; failed 4s ago) out of pool

VRRP Instance      State     Prio Master                     Last transition
VI_1               MASTER    150  10.0.0.11 (150)            2026-11-22 07:44:29 UTC (1m05s ago)
VI_2               BACKUP (handed over) 201  10.0.0.12 (101)            2026-11-22 07:44:29 UTC (1m05s ago)
";
        pretty_assertions::assert_eq!(text, expected);
    }
}
