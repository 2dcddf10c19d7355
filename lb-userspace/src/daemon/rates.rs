//! Rates as `ipvsadm -Ln --rate` shows them (CPS, InPPS, OutPPS, InBPS,
//! OutBPS), computed by the daemon from its own counter samples: the
//! loop records the data plane's counters every second, and a rate is the
//! difference between the newest sample and the one about [`RATE_WINDOW`]
//! older, divided by the time between them. Clients never see two samples,
//! so every client shows the same figure over the same named window.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use super::status::ServiceView;
use crate::dataplane::{ServiceTraffic, TrafficStats};

/// The window rates are averaged over (IPVS's estimator uses 2 s too).
pub const RATE_WINDOW: Duration = Duration::from_secs(2);

/// Per second, rounded, as IPVS reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateView {
    /// New connections per second.
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    /// Bytes per second.
    pub in_bps: u64,
    pub out_bps: u64,
}

/// A service (protocol name, VIP, port) or one of its real servers.
type Key = (String, IpAddr, u16, Option<(IpAddr, u16)>);

struct Sample {
    at: Instant,
    counters: HashMap<Key, TrafficStats>,
}

/// The last few counter samples.
#[derive(Default)]
pub struct RateSampler {
    samples: VecDeque<Sample>,
}

/// The rates between two samples.
#[derive(Clone, Debug, Default)]
pub struct Rates {
    /// The time between the samples; `None` before there are two.
    pub window: Option<Duration>,
    by_key: HashMap<Key, RateView>,
}

fn per_second(delta: u64, seconds: f64) -> u64 {
    (delta as f64 / seconds).round() as u64
}

fn rate(new: &TrafficStats, old: &TrafficStats, seconds: f64) -> RateView {
    // A service re-created by a reload starts its counters again: its
    // first window shows 0, never a wrapped figure.
    let d = |n: u64, o: u64| per_second(n.saturating_sub(o), seconds);
    RateView {
        cps: d(new.connections, old.connections),
        in_pps: d(new.packets_in, old.packets_in),
        out_pps: d(new.packets_out, old.packets_out),
        in_bps: d(new.bytes_in, old.bytes_in),
        out_bps: d(new.bytes_out, old.bytes_out),
    }
}

impl RateSampler {
    /// Records the counters read at `at`, keeping only what the window needs.
    pub fn record(&mut self, at: Instant, traffic: &[ServiceTraffic]) {
        let mut counters = HashMap::new();
        for s in traffic {
            let protocol = s.protocol.to_string();
            counters.insert((protocol.clone(), s.vip, s.port, None), s.stats);
            for (addr, port, stats) in &s.backends {
                counters.insert(
                    (protocol.clone(), s.vip, s.port, Some((*addr, *port))),
                    *stats,
                );
            }
        }
        self.samples.push_back(Sample { at, counters });
        while self.samples.len() > 2
            && at.saturating_duration_since(self.samples[1].at) >= RATE_WINDOW
        {
            self.samples.pop_front();
        }
    }

    /// The rates between the oldest sample kept and the newest.
    pub fn rates(&self) -> Rates {
        let (Some(old), Some(new)) = (self.samples.front(), self.samples.back()) else {
            return Rates::default();
        };
        let window = new.at.saturating_duration_since(old.at);
        if window.is_zero() {
            return Rates::default();
        }
        let seconds = window.as_secs_f64();
        let by_key = new
            .counters
            .iter()
            .map(|(key, now)| {
                let before = old.counters.get(key).copied().unwrap_or(*now);
                (key.clone(), rate(now, &before, seconds))
            })
            .collect();
        Rates {
            window: Some(window),
            by_key,
        }
    }
}

impl Rates {
    /// Fills in the rates of `services` and their real servers.
    pub fn annotate(&self, services: &mut [ServiceView]) {
        for s in services {
            let key = |real| (s.protocol.clone(), s.vip, s.port, real);
            s.rates = self.by_key.get(&key(None)).copied().unwrap_or_default();
            let found: Vec<RateView> = s
                .real_servers
                .iter()
                .map(|r| {
                    self.by_key
                        .get(&key(Some((r.ip, r.port))))
                        .copied()
                        .unwrap_or_default()
                })
                .collect();
            for (r, rates) in s.real_servers.iter_mut().zip(found) {
                r.rates = rates;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::L4Protocol;

    fn traffic(connections: u64, packets: u64) -> Vec<ServiceTraffic> {
        let stats = TrafficStats {
            connections,
            packets_in: packets,
            packets_out: packets / 2,
            bytes_in: packets * 100,
            bytes_out: packets * 50,
        };
        vec![ServiceTraffic {
            vip: "10.0.0.1".parse().unwrap(),
            port: 80,
            protocol: L4Protocol::Tcp,
            stats,
            backends: vec![("10.0.1.2".parse().unwrap(), 8080, stats)],
        }]
    }

    fn service() -> ServiceView {
        let report: super::super::status::StatusReport = serde_json::from_str(
            r#"{"version":"0","dataplane":"XDP","config":"c","started_at":0,"reloaded_at":null,
            "reloads_ok":0,"reloads_failed":0,"vrrp_instances":[],"vrrp_unmatched":0,"xdp_counters":{},
            "services":[{"protocol":"TCP","vip":"10.0.0.1","port":80,"address":"10.0.0.1:80","scheduler":"rr",
            "stats":{"connections":0,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0},
            "real_servers":[{"ip":"10.0.1.2","port":8080,"address":"10.0.1.2:8080","weight":1,
            "active_connections":0,"inactive_connections":0,"draining":false,"health":null,
            "stats":{"connections":0,"packets_in":0,"packets_out":0,"bytes_in":0,"bytes_out":0}}]}]}"#,
        )
        .unwrap();
        report.services[0].clone()
    }

    #[test]
    fn rates_are_the_difference_over_the_window_and_fall_to_zero_when_idle() {
        let t0 = Instant::now();
        let mut sampler = RateSampler::default();
        assert_eq!(sampler.rates().window, None, "no rate from one sample");
        sampler.record(t0, &traffic(0, 0));
        sampler.record(t0 + Duration::from_secs(1), &traffic(10, 1000));
        sampler.record(t0 + Duration::from_secs(2), &traffic(20, 2000));
        let rates = sampler.rates();
        assert_eq!(rates.window, Some(Duration::from_secs(2)));
        let mut s = vec![service()];
        rates.annotate(&mut s);
        let expected = RateView {
            cps: 10,
            in_pps: 1000,
            out_pps: 500,
            in_bps: 100_000,
            out_bps: 50_000,
        };
        assert_eq!(
            (s[0].rates, s[0].real_servers[0].rates),
            (expected, expected)
        );

        // Older samples are dropped; with no new traffic the rate is 0.
        sampler.record(t0 + Duration::from_secs(3), &traffic(20, 2000));
        sampler.record(t0 + Duration::from_secs(4), &traffic(20, 2000));
        let rates = sampler.rates();
        assert_eq!(rates.window, Some(Duration::from_secs(2)));
        rates.annotate(&mut s);
        assert_eq!(s[0].rates, RateView::default());

        // Counters that start again (a re-created service) give 0, not a wrap.
        sampler.record(t0 + Duration::from_secs(5), &traffic(1, 10));
        sampler.rates().annotate(&mut s);
        assert_eq!(s[0].rates.cps, 0);
    }
}
