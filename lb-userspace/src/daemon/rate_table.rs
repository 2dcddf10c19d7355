//! `lbd status --stats` and `--rate`, with `ipvsadm -Ln --stats` and
//! `--rate`'s columns and meanings:
//!
//! - `--stats`: Conns (connections scheduled), InPkts, OutPkts, InBytes,
//!   OutBytes, since the service was installed;
//! - `--rate`: CPS (new connections per second), InPPS, OutPPS, InBPS,
//!   OutBPS (bytes per second), averaged by the daemon over the window the
//!   first line names.
//!
//! Numbers are shortened as ipvsadm does (`123456K`) unless `exact`.

use std::fmt::Write as _;

use super::{
    rates::RateView,
    status::{StatsView, StatusReport},
};

/// Which figures to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figures {
    Stats,
    Rate,
}

/// A number in a 9-column field as ipvsadm prints it: exact below 100
/// million, then in thousands (K), millions (M), billions (G), trillions (T).
pub fn large_number(n: u64, exact: bool) -> String {
    if exact {
        let text = n.to_string();
        let width = if text.len() <= 8 { 9 } else { text.len() + 1 };
        return format!("{text:>width$}");
    }
    match n {
        0..100_000_000 => format!("{n:>9}"),
        100_000_000..1_000_000_000 => format!("{:>8}K", n / 1_000),
        1_000_000_000..100_000_000_000 => format!("{:>8}M", n / 1_000_000),
        100_000_000_000..100_000_000_000_000 => format!("{:>8}G", n / 1_000_000_000),
        _ => format!("{:>8}T", n / 1_000_000_000_000),
    }
}

fn stats_columns(s: &StatsView) -> [u64; 5] {
    [
        s.connections,
        s.packets_in,
        s.packets_out,
        s.bytes_in,
        s.bytes_out,
    ]
}

fn rate_columns(r: &RateView) -> [u64; 5] {
    [r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps]
}

/// The report's services with the chosen figures.
pub fn render(report: &StatusReport, figures: Figures, exact: bool) -> String {
    let mut out = String::new();
    let dataplane = report.dataplane.as_deref().unwrap_or("no");
    let _ = match (figures, report.rate_window_ms) {
        (Figures::Stats, _) => writeln!(
            out,
            "lbd {} ({dataplane} data plane), totals since each service was installed",
            report.version
        ),
        (Figures::Rate, Some(ms)) => writeln!(
            out,
            "lbd {} ({dataplane} data plane), rates over the last {:.1} s",
            report.version,
            ms as f64 / 1000.0
        ),
        (Figures::Rate, None) => writeln!(
            out,
            "lbd {} ({dataplane} data plane), rates not measured yet (the daemon just started)",
            report.version
        ),
    };
    let heading = match figures {
        Figures::Stats => ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"],
        Figures::Rate => ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"],
    };
    let _ = write!(out, "{:<33}", "Prot LocalAddress:Port");
    for h in heading {
        let _ = write!(out, "{h:>9}");
    }
    let _ = writeln!(out, "\n  -> RemoteAddress:Port");
    let line = |out: &mut String, name: String, values: [u64; 5]| {
        let _ = write!(out, "{name:<33}");
        for v in values {
            out.push_str(&large_number(v, exact));
        }
        out.push('\n');
    };
    for s in &report.services {
        let values = match figures {
            Figures::Stats => stats_columns(&s.stats),
            Figures::Rate => rate_columns(&s.rates),
        };
        line(&mut out, format!("{:<4} {}", s.protocol, s.address), values);
        for r in &s.real_servers {
            let values = match figures {
                Figures::Stats => stats_columns(&r.stats),
                Figures::Rate => rate_columns(&r.rates),
            };
            line(&mut out, format!("  -> {}", r.address), values);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_numbers_shorten_as_ipvsadm_does_unless_exact() {
        assert_eq!(large_number(0, false), "        0");
        assert_eq!(large_number(99_999_999, false), " 99999999");
        assert_eq!(large_number(123_456_789, false), "  123456K");
        assert_eq!(large_number(12_345_678_901, false), "   12345M");
        assert_eq!(large_number(123_456_789_012, false), "     123G");
        assert_eq!(large_number(123_456_789_012_345, false), "     123T");
        assert_eq!(large_number(123_456_789, true), " 123456789");
        assert_eq!(large_number(42, true), "       42");
    }

    fn report() -> StatusReport {
        serde_json::from_str(
            r#"{"version":"0.1.0","dataplane":"XDP","config":"c","started_at":0,"reloaded_at":null,
            "reloads_ok":0,"reloads_failed":0,"vrrp_instances":[],"vrrp_unmatched":0,"xdp_counters":{},
            "rate_window_ms":2003,
            "services":[{"protocol":"TCP","vip":"10.0.0.1","port":80,"address":"10.0.0.1:80","scheduler":"rr",
            "stats":{"connections":7,"packets_in":70,"packets_out":60,"bytes_in":7000,"bytes_out":1234567890},
            "rates":{"cps":3,"in_pps":30,"out_pps":20,"in_bps":3000,"out_bps":2000},
            "real_servers":[{"ip":"10.0.1.2","port":8080,"address":"10.0.1.2:8080","weight":1,
            "active_connections":0,"inactive_connections":0,"draining":false,"health":null,
            "rates":{"cps":3,"in_pps":30,"out_pps":20,"in_bps":3000,"out_bps":2000},
            "stats":{"connections":7,"packets_in":70,"packets_out":60,"bytes_in":7000,"bytes_out":1234567890}}]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn stats_and_rates_have_ipvsadms_columns() {
        let stats = render(&report(), Figures::Stats, false);
        let expected = "\
lbd 0.1.0 (XDP data plane), totals since each service was installed
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.1:80                         7       70       60     7000    1234M
  -> 10.0.1.2:8080                       7       70       60     7000    1234M
";
        pretty_assertions::assert_eq!(stats, expected);
        let exact = render(&report(), Figures::Stats, true);
        assert!(exact.contains("     7000 1234567890\n"), "{exact}");

        let rate = render(&report(), Figures::Rate, false);
        let expected = "\
lbd 0.1.0 (XDP data plane), rates over the last 2.0 s
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.1:80                         3       30       20     3000     2000
  -> 10.0.1.2:8080                       3       30       20     3000     2000
";
        pretty_assertions::assert_eq!(rate, expected);
    }
}
