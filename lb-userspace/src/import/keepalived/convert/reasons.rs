//! Why a keepalived directive has no lbd equivalent, in words a user can act
//! on. Anything not listed gets the generic reason.

pub(super) fn why(name: &str) -> &'static str {
    // keepalived's preprocessor syntax, which the importer does not evaluate.
    if name.starts_with('@') {
        return "keepalived's per-host `@ID` lines are not evaluated; keep it by hand if it is for this host";
    }
    if name.starts_with('$') || name.starts_with('~') {
        return "keepalived parameters and sequences (`$NAME`, `~SEQ`) are not expanded";
    }
    match name {
        "notification_email"
        | "notification_email_from"
        | "smtp_server"
        | "smtp_helo_name"
        | "smtp_connect_timeout"
        | "smtp_alert"
        | "smtp_alert_vrrp"
        | "smtp_alert_checker"
        | "email_faults" => "lbd sends no mail; use notify scripts",
        "lvs_sync_daemon_interface" => {
            "obsolete in keepalived; write `lvs_sync_daemon INTERFACE VRRP_INSTANCE`, which becomes `flow_sync`"
        }
        "lvs_flush" | "lvs_flush_onstop" => {
            "lbd changes only the IPVS services it created and removes them when it stops"
        }
        "static_ipaddress" | "static_routes" | "static_rules" | "virtual_routes"
        | "virtual_rules" => "lbd manages no routes or static addresses; configure them in the OS",
        "use_vmac" | "vmac_xmit_base" => "lbd does not create VRRP MAC interfaces",
        "vrrp_mcast_group4" | "vrrp_mcast_group6" => "lbd uses the standard VRRP multicast group",
        "dont_track_primary" | "track_file" | "track_process" | "track_bfd" | "vrrp_track_file"
        | "vrrp_track_process" => {
            "lbd tracks only scripts and interfaces; wrap this in a track script"
        }
        "virtual_server_group" => "lbd has no virtual server groups; list each virtual server",
        "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
            "lbd has no such checker; use a MISC_CHECK script"
        }
        "persistence_granularity" | "persistence_engine" => "lbd persists per client address only",
        "warmup" => "lbd starts checks without a random delay",
        "net_namespace" | "net_namespace_ipvs" | "namespace_with_ipsets" | "instance" => {
            "lbd runs one instance in its own network namespace"
        }
        "lvs_id" => "obsolete in keepalived; lbd names nodes with router_id",
        _ => "no lbd equivalent",
    }
}
