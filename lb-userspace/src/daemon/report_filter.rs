//! What `lbd status -t/-u VIP:PORT` and `--sort` do to a report before it
//! is shown, as ipvsadm's options of the same names: one service, and
//! services sorted by (protocol, address, port) with their real servers by
//! (address, port).

use crate::dataplane::flows::AddressFilter;

use super::status::StatusReport;

/// Keeps the services of `protocol` ("TCP"/"UDP") at `service`.
pub fn only_service(report: &mut StatusReport, protocol: &str, service: &AddressFilter) {
    report.services.retain(|s| {
        s.protocol.eq_ignore_ascii_case(protocol)
            && service.matches(std::net::SocketAddr::new(s.vip, s.port))
    });
}

/// Sorts as `ipvsadm --sort`.
pub fn sort(report: &mut StatusReport) {
    report
        .services
        .sort_by(|a, b| (&a.protocol, a.vip, a.port).cmp(&(&b.protocol, b.vip, b.port)));
    for s in &mut report.services {
        s.real_servers.sort_by_key(|r| (r.ip, r.port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> StatusReport {
        let service = |protocol: &str, vip: &str, port: u16, reals: &[&str]| {
            let reals: Vec<String> = reals
                .iter()
                .map(|ip| {
                    format!(
                        r#"{{"ip":"{ip}","port":80,"address":"{ip}:80","weight":1,
                        "active_connections":0,"inactive_connections":0,"draining":false,"health":null,
                        "stats":{{"connections":0,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0}}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"protocol":"{protocol}","vip":"{vip}","port":{port},"address":"{vip}:{port}","scheduler":"rr",
                "stats":{{"connections":0,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0}},
                "real_servers":[{}]}}"#,
                reals.join(",")
            )
        };
        let services = [
            service("UDP", "10.0.0.1", 53, &["10.0.1.3"]),
            service("TCP", "10.0.0.2", 80, &["10.0.1.9", "10.0.1.2"]),
            service("TCP", "10.0.0.1", 443, &["10.0.1.2"]),
            service("TCP", "10.0.0.1", 80, &["10.0.1.2"]),
        ];
        serde_json::from_str(&format!(
            r#"{{"version":"0","dataplane":"XDP","config":"c","started_at":0,"reloaded_at":null,
            "reloads_ok":0,"reloads_failed":0,"vrrp_instances":[],"vrrp_unmatched":0,"xdp_counters":{{}},
            "services":[{}]}}"#,
            services.join(",")
        ))
        .unwrap()
    }

    fn names(report: &StatusReport) -> Vec<String> {
        report
            .services
            .iter()
            .map(|s| format!("{} {}", s.protocol, s.address))
            .collect()
    }

    #[test]
    fn one_service_by_protocol_and_address() {
        let mut r = report();
        only_service(&mut r, "TCP", &"10.0.0.1:80".parse().unwrap());
        assert_eq!(names(&r), ["TCP 10.0.0.1:80"]);
        let mut r = report();
        only_service(&mut r, "UDP", &"10.0.0.1:80".parse().unwrap());
        assert!(r.services.is_empty(), "-u does not show a TCP service");
    }

    #[test]
    fn sorts_services_then_real_servers_ascending() {
        let mut r = report();
        sort(&mut r);
        assert_eq!(
            names(&r),
            [
                "TCP 10.0.0.1:80",
                "TCP 10.0.0.1:443",
                "TCP 10.0.0.2:80",
                "UDP 10.0.0.1:53"
            ]
        );
        let reals: Vec<&str> = r.services[2]
            .real_servers
            .iter()
            .map(|x| x.address.as_str())
            .collect();
        assert_eq!(reals, ["10.0.1.2:80", "10.0.1.9:80"]);
    }
}
