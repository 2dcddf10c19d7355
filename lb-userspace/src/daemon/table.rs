//! `lbd status` as text: the services laid out like `ipvsadm -Ln --stats`
//! joined with `-Ln` (weights and connection counts, then counters and
//! health), then the VRRP instances.

use std::fmt::Write as _;

use super::{
    status::{StatusReport, unix_seconds},
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
            let health = match &r.health {
                None => "-".to_owned(),
                Some(h) => {
                    let word = if h.up { "up" } else { "down" };
                    match &h.last_result {
                        Some(text) => format!("{word} ({text})"),
                        None => word.to_owned(),
                    }
                }
            };
            let health = if r.draining {
                format!("{health} draining")
            } else {
                health
            };
            let _ = writeln!(
                out,
                "  -> {:<28} Masq    {:<6} {:<10} {:<9} {:>10} {:>10} {:>10} {:>10} {:>10} {health}",
                r.address,
                r.weight,
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
                        health: Some(HealthView {
                            up: true,
                            last_result: Some("HTTP 200".into()),
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
                        health: None,
                    },
                ],
            }],
            vrrp_instances: vec![InstanceView {
                name: "VI_1".into(),
                state: "MASTER".into(),
                priority: 150,
                master: Some("10.0.0.11".parse().unwrap()),
                master_priority: Some(150),
                vips: vec!["10.0.0.1".parse().unwrap()],
                last_transition: 1_795_333_469,
                maintenance: false,
                counters: VrrpCountersView::default(),
            }],
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

VRRP Instance      State     Prio Master                     Last transition
VI_1               MASTER    150  10.0.0.11 (150)            2026-11-22 07:44:29 UTC (1m05s ago)
";
        pretty_assertions::assert_eq!(text, expected);
    }
}
