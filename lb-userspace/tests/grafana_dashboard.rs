//! The Grafana dashboard in `dist/grafana/` queries only what lbd serves:
//! every metric name in its queries is a series `encode_report` writes for
//! a report with a service, a checked real server, a VRRP instance and XDP
//! counters, and every label it groups by is one those series carry (or
//! one Prometheus adds at scrape time).

use std::collections::{BTreeMap, BTreeSet};

use lb_userspace::daemon::{metrics::encode_report, status::StatusReport};
use regex::Regex;

const DASHBOARD: &str = include_str!("../../dist/grafana/lbd-dashboard.json");

/// A report where every family has at least one series.
fn full_report() -> StatusReport {
    serde_json::from_str(
        r#"{"version":"0.1.0","dataplane":"XDP","config":"c","started_at":0,"reloaded_at":null,
        "reloads_ok":1,"reloads_failed":1,"vrrp_unmatched":1,"xdp_counters":{"forwarded":5},
        "vrrp_instances":[{"name":"VI_1","state":"MASTER","priority":150,"master":"10.0.0.11",
        "master_priority":150,"vips":["10.0.0.1"],"last_transition":1,"maintenance":false,
        "counters":{"adverts_sent":1,"adverts_received":1,"priority_zero_sent":1,
        "priority_zero_received":1,"became_master":1,"released_master":1,"dropped":{"ttl":1}}}],
        "services":[{"protocol":"TCP","vip":"10.0.0.1","port":80,"address":"10.0.0.1:80",
        "scheduler":"rr","stats":{"connections":1,"packets_in":1,"packets_out":1,"bytes_in":1,"bytes_out":1},
        "real_servers":[{"ip":"10.0.1.2","port":8080,"address":"10.0.1.2:8080","weight":1,
        "active_connections":1,"inactive_connections":1,"draining":false,
        "health":{"up":true,"last_result":"ok"},
        "stats":{"connections":1,"packets_in":1,"packets_out":1,"bytes_in":1,"bytes_out":1}}]}]}"#,
    )
    .unwrap()
}

/// Series name -> label names, from the exposition text.
fn served() -> BTreeMap<String, BTreeSet<String>> {
    let text = encode_report(&full_report(), None);
    let sample = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ").unwrap();
    let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)=""#).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(c) = sample.captures(line) else {
            continue;
        };
        let labels = out.entry(c[1].to_owned()).or_default();
        if let Some(l) = c.get(2) {
            labels.extend(label.captures_iter(l.as_str()).map(|m| m[1].to_owned()));
        }
    }
    out
}

/// Every `expr` and templating query in the dashboard.
fn queries() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("valid JSON");
    let mut out = Vec::new();
    let mut stack = vec![&dashboard];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone());
                        }
                        _ => stack.push(v),
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

#[test]
fn every_metric_and_label_the_dashboard_queries_is_served() {
    let served = served();
    let queries = queries();
    assert!(
        queries.len() > 20,
        "the dashboard has its queries: {queries:?}"
    );
    let name = Regex::new(r"\blbd_[a-z_]+\b").unwrap();
    let grouped = Regex::new(r"\b(?:by|label_values)\s*\(([^)]*)\)").unwrap();
    // Prometheus adds `instance` and `job` to every series it scrapes; lbd
    // serves neither (a scraped one would become `exported_instance`).
    let added = ["instance", "job"];
    for (n, served_labels) in &served {
        for clash in added {
            assert!(
                !served_labels.contains(clash),
                "{n} carries the label `{clash}`, which Prometheus renames exported_{clash} on scrape"
            );
        }
    }
    let mut used = BTreeSet::new();
    for q in &queries {
        let names: Vec<&str> = name.find_iter(q).map(|m| m.as_str()).collect();
        assert!(!names.is_empty(), "a query without an lbd metric: {q}");
        for n in &names {
            assert!(
                served.contains_key(*n),
                "the dashboard queries {n}, which lbd does not serve (query: {q}); served: {:?}",
                served.keys().collect::<Vec<_>>()
            );
            used.insert((*n).to_owned());
        }
        for c in grouped.captures_iter(q) {
            for label in c[1].split(',').map(str::trim).filter(|l| !l.is_empty()) {
                let label = label.rsplit(' ').next().unwrap_or(label);
                if label.starts_with("lbd_") || added.contains(&label) {
                    continue;
                }
                assert!(
                    names.iter().any(|n| served[*n].contains(label)),
                    "the dashboard groups by `{label}`, which {names:?} do not carry (query: {q})"
                );
            }
        }
    }
    // And the dashboard covers the families an operator needs.
    for needed in [
        "lbd_service_connections_total",
        "lbd_real_server_up",
        "lbd_real_server_weight",
        "lbd_vrrp_state",
        "lbd_vrrp_became_master_total",
        "lbd_xdp_events_total",
    ] {
        assert!(used.contains(needed), "the dashboard shows no {needed}");
    }
}
