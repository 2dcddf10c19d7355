//! The key reference, `docs/config-reference.md`, rendered from a table
//! kept here next to the model. Two tests keep it honest: every key the
//! model can write is in the table (and nothing else), and the file is
//! what the table renders (`LBD_BLESS=1` rewrites it).

/// One key of the reference.
pub(super) struct Key {
    /// Path with `[]` for list items, e.g. `vrrp_instances[].priority`.
    pub(super) path: &'static str,
    pub(super) ty: &'static str,
    /// `required`, `-` (unset), or the value.
    pub(super) default: &'static str,
    /// The keepalived / ldirectord directive, or `-`.
    pub(super) equivalent: &'static str,
    pub(super) meaning: &'static str,
}

/// Sections of the reference: a heading, a note, and the keys under it.
/// One key per line reads as a table; rustfmt would spread each over seven.
#[rustfmt::skip]
pub(super) const SECTIONS: &[(&str, &str, &[Key])] = &[
    (
        "Top level",
        "Every section may be left out.",
        &[
            Key { path: "include", ty: "pattern or list of patterns", default: "-", equivalent: "`include`", meaning: "Files merged into this one: glob patterns relative to this file's folder, e.g. `conf.d/*.yaml`, read in the order written, each pattern's matches in name order. An included file holds only the lists `interfaces`, `vrrp_instances`, `sync_groups`, `track_scripts` and `virtual_servers`; their items follow the main file's. Diagnostics name the file they are in. `global.autoreload` watches the main file only: after changing an included file, `lbd reload`." },
            Key { path: "global", ty: "mapping", default: "-", equivalent: "`global_defs`", meaning: "Daemon-wide settings." },
            Key { path: "dataplane", ty: "`auto` \\| `xdp` \\| `ipvs`", default: "`auto`", equivalent: "- (keepalived always uses IPVS)", meaning: "Which data plane forwards packets. `auto`: XDP, falling back to IPVS (and logging why) when XDP cannot load or attach, when no `interfaces` are listed, or when a virtual server uses `sh`, `lc` or `wlc`. `xdp` or `ipvs`: that one, or `lbd run` fails saying why. lbd changes only the IPVS services it created (recorded in `--state-dir`), removes them when it stops, and at start removes those a crash of its own left behind." },
            Key { path: "interfaces", ty: "list", default: "`[]`", equivalent: "-", meaning: "Interfaces the XDP program attaches to." },
            Key { path: "vrrp_instances", ty: "list", default: "`[]`", equivalent: "`vrrp_instance NAME { }`", meaning: "VRRP virtual routers." },
            Key { path: "sync_groups", ty: "list", default: "`[]`", equivalent: "`vrrp_sync_group NAME { }`", meaning: "Instances that change state together." },
            Key { path: "track_scripts", ty: "list", default: "`[]`", equivalent: "`vrrp_script NAME { }`", meaning: "Scripts whose result adjusts instances' priority." },
            Key { path: "virtual_servers", ty: "list", default: "`[]`", equivalent: "`virtual_server IP PORT { }`; ldirectord `virtual=`", meaning: "Load-balanced services." },
            Key { path: "flow_sync", ty: "mapping", default: "- (off)", equivalent: "`lvs_sync_daemon`", meaning: "Flow sync with the peer balancer: each node sends the flows its XDP program starts, sees established and sees closing to the peer over UDP, in batches, and installs the peer's in its own conntrack table, so a takeover keeps flows the new MASTER's scheduler would send elsewhere (`rr`, `wrr`; replies of real servers several services share). A BACKUP forwards nothing and sends nothing: in effect the MASTER streams. The peer's flows for a service not forwarding here (a BACKUP's VIPs) are held and installed the moment it starts to. Flows for a service or real server this node does not have are skipped and counted. XDP only: with `dataplane: ipvs` it is ignored with a warning (IPVS has its own sync daemon, `ipvsadm --start-daemon`). Changing it needs a restart." },
        ],
    ),
    (
        "`flow_sync`",
        "Counters: `lbd status --json` (`flow_sync`) and the metrics `lbd_flow_sync_total{event}`, `lbd_flow_sync_held`; events the program could not queue are the XDP counter `flow_events_lost`.",
        &[
            Key { path: "flow_sync.interface", ty: "string", default: "required", equivalent: "`lvs_sync_daemon INTERFACE`", meaning: "Interface facing the peer: sync datagrams are sent and received only on it." },
            Key { path: "flow_sync.peers", ty: "list of addresses", default: "`[]`", equivalent: "-", meaning: "The peer balancers' addresses: datagrams go to them (unicast) unless `group` is set, and when listed, datagrams from other addresses are refused and counted (with `group` too). `peers` or `group` is required." },
            Key { path: "flow_sync.group", ty: "address", default: "-", equivalent: "`group` (IPVS: 224.0.0.81)", meaning: "A multicast group to send to and listen on (joined on `interface`; this node's own datagrams are not looped back)." },
            Key { path: "flow_sync.port", ty: "1-65535", default: "8848", equivalent: "`port`", meaning: "UDP port, the same on both nodes." },
            Key { path: "flow_sync.id", ty: "0-255", default: "0", equivalent: "`id`", meaning: "Sync id: datagrams of another id are refused and counted, so several pairs can share a network." },
            Key { path: "flow_sync.maxlen", ty: "68-65507", default: "1472", equivalent: "`maxlen`", meaning: "Largest datagram in bytes; 1472 carries 24 flows and fits a 1500-byte MTU." },
            Key { path: "flow_sync.ttl", ty: "1-255", default: "1", equivalent: "`ttl`", meaning: "TTL (hop limit) of multicast datagrams." },
            Key { path: "flow_sync.interval", ty: "seconds, above 0", default: "0.01", equivalent: "-", meaning: "Longest a flow waits for others to fill its datagram." },
        ],
    ),
    (
        "`global`",
        "",
        &[
            Key { path: "global.router_id", ty: "string", default: "host name", equivalent: "`router_id`", meaning: "This node's name in logs and notifications." },
            Key { path: "global.script_user", ty: "string", default: "-", equivalent: "`script_user`", meaning: "`user` or `user group` that runs scripts which name none." },
            Key { path: "global.enable_script_security", ty: "bool", default: "`false`", equivalent: "`enable_script_security`", meaning: "Refuse scripts that a non-root user could modify." },
            Key { path: "global.conntrack", ty: "mapping", default: "-", equivalent: "ipvsadm `--set`", meaning: "Idle timeouts of tracked flows; unset: the data plane's default." },
            Key { path: "global.conntrack.tcp", ty: "seconds", default: "900 (IPVS)", equivalent: "ipvsadm `--set TCP`", meaning: "Established TCP flows." },
            Key { path: "global.conntrack.tcp_fin", ty: "seconds", default: "120 (IPVS)", equivalent: "ipvsadm `--set TCPFIN`", meaning: "TCP flows after a FIN." },
            Key { path: "global.conntrack.udp", ty: "seconds", default: "300 (IPVS)", equivalent: "ipvsadm `--set UDP`", meaning: "UDP flows." },
            Key { path: "global.control_group", ty: "group name", default: "- (root only)", equivalent: "-", meaning: "Members of this group may use the control socket (`lbd status`, `reload`, `failover`, `maintenance`): the socket is made mode 0660 and owned by the group. Unset: mode 0600, root only. Read at start; changing it needs a restart." },
            Key { path: "global.metrics_listen", ty: "address:port", default: "- (off)", equivalent: "-", meaning: "Serve Prometheus metrics at `http://ADDRESS:PORT/metrics` (`lbd run --metrics` overrides it). Read at start; changing it needs a restart." },
            Key { path: "global.drain_timeout", ty: "seconds", default: "30", equivalent: "-", meaning: "A real server a reload removes keeps its flows at weight 0 until they end or this long has passed, then it is removed." },
            Key { path: "global.autoreload", ty: "bool", default: "`false`", equivalent: "ldirectord `autoreload`", meaning: "Reload when the configuration file changes (checked every second; a change is loaded once the file has stayed the same for a second, so a file still being written is not read half). A file that does not load is logged and changes nothing." },
            Key { path: "global.vip_device", ty: "`owned` \\| `interface`", default: "`owned`", equivalent: "- (keepalived: always `interface`)", meaning: "Where a MASTER puts its IPv4 virtual addresses. `owned`: as a /32 on `lbd-IFACE`, a device lbd creates per VRRP interface and the kernel deletes when the process ends, however it ends, so a killed or crashed lbd leaves nothing answering ARP for the VIPs or resetting their flows; the kernel answers ARP for them on IFACE and lbd sends its gratuitous ARPs there. VIPs with their own `dev` or `label`, IPv6 VIPs (the kernel answers neighbour solicitations only for addresses on the receiving interface) and interfaces with `arp_ignore` 1 or more keep keepalived's placement. `interface`: on the instance's interface with their prefix, as keepalived puts them (a crashed lbd's are removed at the next start or by `lbd cleanup`)." },
        ],
    ),
    (
        "`interfaces[]`",
        "",
        &[
            Key { path: "interfaces[].name", ty: "string", default: "required", equivalent: "-", meaning: "Interface name, e.g. `eth0`." },
            Key { path: "interfaces[].xdp_mode", ty: "`auto` \\| `native` \\| `generic`", default: "`auto`", equivalent: "ip-link `xdp` / `xdpdrv` / `xdpgeneric`", meaning: "How XDP attaches: native (in the driver) when possible, else generic; `auto` uses generic on a veth, where native mode loses frames behind peers with default offloads." },
        ],
    ),
    (
        "`vrrp_instances[]`",
        "One VRRP virtual router.",
        &[
            Key { path: "vrrp_instances[].name", ty: "string", default: "required", equivalent: "`vrrp_instance NAME`", meaning: "Used by sync groups and in logs." },
            Key { path: "vrrp_instances[].state", ty: "`master` \\| `backup`", default: "`backup`", equivalent: "`state MASTER\\|BACKUP`", meaning: "State at start-up; the election decides after that." },
            Key { path: "vrrp_instances[].interface", ty: "string", default: "required", equivalent: "`interface`", meaning: "Interface that sends and receives adverts." },
            Key { path: "vrrp_instances[].virtual_router_id", ty: "1-255", default: "required", equivalent: "`virtual_router_id`", meaning: "VRID; unique per interface (and address family)." },
            Key { path: "vrrp_instances[].priority", ty: "1-255", default: "100", equivalent: "`priority`", meaning: "Election priority; 255 means this node owns the addresses." },
            Key { path: "vrrp_instances[].advert_int", ty: "seconds", default: "1", equivalent: "`advert_int`", meaning: "Advert interval. Version 2: whole seconds 1-255; version 3: 0.01-40.95 in steps of 0.01." },
            Key { path: "vrrp_instances[].version", ty: "2 \\| 3", default: "2", equivalent: "`version` / `vrrp_version`", meaning: "VRRP version: 2 (RFC 3768, IPv4 only) or 3 (RFC 5798)." },
            Key { path: "vrrp_instances[].authentication", ty: "mapping", default: "-", equivalent: "`authentication { }`", meaning: "VRRPv2 authentication (ignored by version 3)." },
            Key { path: "vrrp_instances[].authentication.auth_type", ty: "`pass` \\| `ah`", default: "required", equivalent: "`auth_type PASS\\|AH`", meaning: "Password or IPsec AH." },
            Key { path: "vrrp_instances[].authentication.auth_pass", ty: "string", default: "required", equivalent: "`auth_pass`", meaning: "Password; only the first 8 characters are used (a warning says so)." },
            Key { path: "vrrp_instances[].virtual_ipaddresses", ty: "list", default: "`[]`", equivalent: "`virtual_ipaddress { }`", meaning: "Addresses owned while master. Each item is `ADDR[/LEN]` or a mapping with the keys below." },
            Key { path: "vrrp_instances[].virtual_ipaddresses[].address", ty: "`ADDR[/LEN]`", default: "required", equivalent: "the address", meaning: "Address and prefix length; without `/LEN` a host address." },
            Key { path: "vrrp_instances[].virtual_ipaddresses[].brd", ty: "address", default: "-", equivalent: "`brd`", meaning: "Broadcast address." },
            Key { path: "vrrp_instances[].virtual_ipaddresses[].dev", ty: "string", default: "the instance's `interface`", equivalent: "`dev`", meaning: "Interface to add the address to." },
            Key { path: "vrrp_instances[].virtual_ipaddresses[].label", ty: "string", default: "-", equivalent: "`label`", meaning: "Address label, e.g. `eth0:vip`." },
            Key { path: "vrrp_instances[].virtual_ipaddresses_excluded", ty: "list", default: "`[]`", equivalent: "`virtual_ipaddress_excluded { }`", meaning: "Like `virtual_ipaddresses`, but not carried in adverts (e.g. IPv6 in a version 2 instance)." },
            Key { path: "vrrp_instances[].virtual_ipaddresses_excluded[].address", ty: "`ADDR[/LEN]`", default: "required", equivalent: "the address", meaning: "As in `virtual_ipaddresses`." },
            Key { path: "vrrp_instances[].virtual_ipaddresses_excluded[].brd", ty: "address", default: "-", equivalent: "`brd`", meaning: "As in `virtual_ipaddresses`." },
            Key { path: "vrrp_instances[].virtual_ipaddresses_excluded[].dev", ty: "string", default: "the instance's `interface`", equivalent: "`dev`", meaning: "As in `virtual_ipaddresses`." },
            Key { path: "vrrp_instances[].virtual_ipaddresses_excluded[].label", ty: "string", default: "-", equivalent: "`label`", meaning: "As in `virtual_ipaddresses`." },
            Key { path: "vrrp_instances[].unicast_src_ip", ty: "address", default: "the interface's address", equivalent: "`unicast_src_ip`", meaning: "Source address of adverts, unicast and multicast (keepalived's `mcast_src_ip` imports here too); also the tie-breaker between equal priorities." },
            Key { path: "vrrp_instances[].unicast_peers", ty: "list of addresses", default: "`[]` (multicast)", equivalent: "`unicast_peer { }`", meaning: "Advertise to these peers by unicast instead of multicast (clouds often block multicast)." },
            Key { path: "vrrp_instances[].unicast_min_ttl", ty: "1-255", default: "255", equivalent: "`unicast_peer { ADDR min_ttl N }`", meaning: "Lowest TTL / hop limit accepted on adverts from `unicast_peers`. 255 accepts only peers on a connected subnet (RFC 5798 7.1: a spoofed advert from further away arrives with less); set it to 255 minus the router hops for routed peers." },
            Key { path: "vrrp_instances[].preempt", ty: "bool", default: "`true`", equivalent: "`nopreempt` is `preempt: false`", meaning: "A higher-priority backup takes over from a lower-priority master. With `state: master` it is dropped (the node preempts), as keepalived does; keep `state: backup` with it." },
            Key { path: "vrrp_instances[].preempt_delay", ty: "seconds, 0-1000", default: "0", equivalent: "`preempt_delay`", meaning: "Wait this long after start-up before preempting." },
            Key { path: "vrrp_instances[].accept", ty: "bool", default: "`true`", equivalent: "`accept` / `no_accept`", meaning: "Accept packets to the virtual addresses when not their owner (priority < 255)." },
            Key { path: "vrrp_instances[].garp_master_delay", ty: "seconds", default: "5", equivalent: "`garp_master_delay`", meaning: "Delay before the second burst of gratuitous ARPs after becoming master." },
            Key { path: "vrrp_instances[].garp_master_repeat", ty: "1-255", default: "5", equivalent: "`garp_master_repeat`", meaning: "Gratuitous ARPs per burst." },
            Key { path: "vrrp_instances[].garp_master_refresh", ty: "seconds", default: "- (off)", equivalent: "`garp_master_refresh`", meaning: "Repeat gratuitous ARPs this often while master; heals switches that forgot." },
            Key { path: "vrrp_instances[].garp_master_refresh_repeat", ty: "1-255", default: "1", equivalent: "`garp_master_refresh_repeat`", meaning: "Gratuitous ARPs per refresh." },
            Key { path: "vrrp_instances[].track_scripts", ty: "list", default: "`[]`", equivalent: "`track_script { }`", meaning: "Scripts (top-level `track_scripts`) that adjust priority. Each item is a name or a mapping with the keys below." },
            Key { path: "vrrp_instances[].track_scripts[].name", ty: "string", default: "required", equivalent: "the script's name", meaning: "Name of an entry of the top-level `track_scripts`." },
            Key { path: "vrrp_instances[].track_scripts[].weight", ty: "-253 to 253", default: "the script's `weight`", equivalent: "`weight` after the name", meaning: "Overrides the script's weight for this instance." },
            Key { path: "vrrp_instances[].track_interfaces", ty: "list", default: "`[]`", equivalent: "`track_interface { }`", meaning: "Interfaces whose link state adjusts priority. Each item is a name or a mapping with the keys below." },
            Key { path: "vrrp_instances[].track_interfaces[].name", ty: "string", default: "required", equivalent: "the interface", meaning: "Interface name." },
            Key { path: "vrrp_instances[].track_interfaces[].weight", ty: "-253 to 253", default: "- (down faults the instance)", equivalent: "`weight` after the name", meaning: "Positive: added while up; negative: subtracted while down." },
            Key { path: "vrrp_instances[].notify_master", ty: "command", default: "-", equivalent: "`notify_master`", meaning: "Run on becoming master." },
            Key { path: "vrrp_instances[].notify_backup", ty: "command", default: "-", equivalent: "`notify_backup`", meaning: "Run on becoming backup." },
            Key { path: "vrrp_instances[].notify_fault", ty: "command", default: "-", equivalent: "`notify_fault`", meaning: "Run on entering fault." },
            Key { path: "vrrp_instances[].notify_stop", ty: "command", default: "-", equivalent: "`notify_stop`", meaning: "Run when the instance stops." },
            Key { path: "vrrp_instances[].notify", ty: "command", default: "-", equivalent: "`notify`", meaning: "Run on every change with arguments `INSTANCE NAME STATE PRIORITY`." },
        ],
    ),
    (
        "`sync_groups[]`",
        "",
        &[
            Key { path: "sync_groups[].name", ty: "string", default: "required", equivalent: "`vrrp_sync_group NAME`", meaning: "Group name." },
            Key { path: "sync_groups[].group", ty: "list of instance names", default: "required", equivalent: "`group { }`", meaning: "Member instances; each in one group at most." },
            Key { path: "sync_groups[].notify_master", ty: "command", default: "-", equivalent: "`notify_master`", meaning: "Run when the group becomes master." },
            Key { path: "sync_groups[].notify_backup", ty: "command", default: "-", equivalent: "`notify_backup`", meaning: "Run when the group becomes backup." },
            Key { path: "sync_groups[].notify_fault", ty: "command", default: "-", equivalent: "`notify_fault`", meaning: "Run when the group enters fault." },
            Key { path: "sync_groups[].notify", ty: "command", default: "-", equivalent: "`notify`", meaning: "Run on every change." },
        ],
    ),
    (
        "`track_scripts[]`",
        "",
        &[
            Key { path: "track_scripts[].name", ty: "string", default: "required", equivalent: "`vrrp_script NAME`", meaning: "Name instances refer to." },
            Key { path: "track_scripts[].script", ty: "command", default: "required", equivalent: "`script`", meaning: "Exit 0 is success." },
            Key { path: "track_scripts[].interval", ty: "seconds, above 0", default: "1", equivalent: "`interval`", meaning: "Run every this long." },
            Key { path: "track_scripts[].timeout", ty: "seconds, above 0", default: "`interval`", equivalent: "`timeout`", meaning: "A run taking longer fails." },
            Key { path: "track_scripts[].weight", ty: "-253 to 253", default: "0", equivalent: "`weight`", meaning: "Positive: added while succeeding; negative: subtracted while failing; 0: failing faults the instance." },
            Key { path: "track_scripts[].rise", ty: "1-1000", default: "1", equivalent: "`rise`", meaning: "Successes in a row before the script counts as up." },
            Key { path: "track_scripts[].fall", ty: "1-1000", default: "1", equivalent: "`fall`", meaning: "Failures in a row before the script counts as down." },
            Key { path: "track_scripts[].user", ty: "string", default: "`global.script_user`", equivalent: "`user`", meaning: "`user` or `user group` to run as." },
        ],
    ),
    (
        "`virtual_servers[]`",
        "One service: address, port and protocol.",
        &[
            Key { path: "virtual_servers[].name", ty: "string", default: "-", equivalent: "ldirectord `servicename`", meaning: "A name for logs and status." },
            Key { path: "virtual_servers[].address", ty: "address", default: "required", equivalent: "`virtual_server IP`; ldirectord `virtual=IP:`", meaning: "The virtual address, normally one a VRRP instance owns (else a warning)." },
            Key { path: "virtual_servers[].port", ty: "0-65535", default: "required", equivalent: "`virtual_server IP PORT`", meaning: "Service port; 0 is every port and needs `persistence_timeout`." },
            Key { path: "virtual_servers[].protocol", ty: "`tcp` \\| `udp` \\| `sctp`", default: "`tcp`", equivalent: "`protocol`", meaning: "Transport protocol." },
            Key { path: "virtual_servers[].scheduler", ty: "scheduler name", default: "`wrr`", equivalent: "`lvs_sched` (keepalived's default: `wlc`); ldirectord `scheduler`", meaning: "How new flows pick a real server: `rr`, `wrr`, `mh` (or `maglev`: consistent hashing, survives failover) with either data plane; `lc`, `wlc`, `sh` with IPVS only; `dh`, `sed`, `nq`, `lblc`, `lblcr`, `fo`, `ovf`, `twos` are not supported yet." },
            Key { path: "virtual_servers[].method", ty: "`nat` \\| `dr` \\| `tun`", default: "`nat`", equivalent: "`lvs_method NAT\\|DR\\|TUN`; ldirectord `masq`/`gate`/`ipip`", meaning: "How packets reach the real servers." },
            Key { path: "virtual_servers[].persistence_timeout", ty: "seconds", default: "- (off)", equivalent: "`persistence_timeout`; ldirectord `persistent`", meaning: "Keep a client on one real server this long after its last connection." },
            Key { path: "virtual_servers[].delay_loop", ty: "seconds, above 0", default: "60", equivalent: "`delay_loop`; ldirectord `checkinterval`", meaning: "Interval between health checks." },
            Key { path: "virtual_servers[].alpha", ty: "bool", default: "`false`", equivalent: "`alpha`", meaning: "Real servers with checks start down and take no connection until every one of their checks has passed, at start and when a reload adds them (a real server the reload keeps keeps its health). Without it they start up, as keepalived does without `alpha`." },
            Key { path: "virtual_servers[].sorry_server", ty: "mapping", default: "-", equivalent: "`sorry_server IP PORT`; ldirectord `fallback`", meaning: "Used when fewer than `quorum` real servers are up." },
            Key { path: "virtual_servers[].sorry_server.address", ty: "address", default: "required", equivalent: "`sorry_server IP`", meaning: "Its address." },
            Key { path: "virtual_servers[].sorry_server.port", ty: "1-65535", default: "the service's port", equivalent: "`sorry_server IP PORT`", meaning: "Its port." },
            Key { path: "virtual_servers[].sorry_server_inhibit", ty: "bool", default: "`false`", equivalent: "`sorry_server_inhibit`", meaning: "Keep the sorry server at weight 0 instead of removing it when not needed." },
            Key { path: "virtual_servers[].quorum", ty: "1-65535", default: "1", equivalent: "`quorum`", meaning: "Total weight of healthy real servers needed for the service to be up." },
            Key { path: "virtual_servers[].hysteresis", ty: "0-65535", default: "0", equivalent: "`hysteresis`", meaning: "Margin around `quorum` before its state changes." },
            Key { path: "virtual_servers[].quorum_up", ty: "command", default: "-", equivalent: "`quorum_up`", meaning: "Run when quorum is gained." },
            Key { path: "virtual_servers[].quorum_down", ty: "command", default: "-", equivalent: "`quorum_down`", meaning: "Run when quorum is lost." },
            Key { path: "virtual_servers[].virtualhost", ty: "string", default: "-", equivalent: "`virtualhost`; ldirectord `virtualhost`", meaning: "HTTP `Host:` for this service's HTTP and SSL checks." },
            Key { path: "virtual_servers[].removed_server_flows", ty: "`drop` \\| `reset` \\| `keep`", default: "`drop`", equivalent: "IPVS `net.ipv4.vs.expire_nodest_conn` (0: `drop`, 1: `reset`); `keep` is weight 0", meaning: "What becomes of a real server's established flows once it leaves the pool (a failed check without `inhibit_on_failure`, or a reload once its drain ends): `drop` their packets until it returns or they time out; `reset`: schedule them anew, so the new real server resets them and clients reconnect at once; `keep` forwarding them to it while it answers. With IPVS every service must agree on `drop` or `reset` (one sysctl per namespace)." },
            Key { path: "virtual_servers[].real_servers", ty: "list", default: "`[]`", equivalent: "`real_server IP PORT { }`; ldirectord `real=`", meaning: "The backends." },
        ],
    ),
    (
        "`virtual_servers[].real_servers[]`",
        "",
        &[
            Key { path: "virtual_servers[].real_servers[].address", ty: "address", default: "required", equivalent: "`real_server IP`", meaning: "Backend address." },
            Key { path: "virtual_servers[].real_servers[].port", ty: "1-65535", default: "the service's port", equivalent: "`real_server IP PORT`", meaning: "Backend port (`dr` and `tun` cannot change it)." },
            Key { path: "virtual_servers[].real_servers[].weight", ty: "0-65535", default: "1", equivalent: "`weight`", meaning: "Share of new flows; 0 takes none, existing flows continue." },
            Key { path: "virtual_servers[].real_servers[].inhibit_on_failure", ty: "bool", default: "`false`", equivalent: "`inhibit_on_failure`; ldirectord `quiescent=yes`", meaning: "On a failed check set weight 0 instead of removing the server, so its flows continue." },
            Key { path: "virtual_servers[].real_servers[].notify_up", ty: "command", default: "-", equivalent: "`notify_up`", meaning: "Run when the server comes up." },
            Key { path: "virtual_servers[].real_servers[].notify_down", ty: "command", default: "-", equivalent: "`notify_down`", meaning: "Run when the server goes down." },
            Key { path: "virtual_servers[].real_servers[].checks", ty: "list", default: "`[]` (always up)", equivalent: "`TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `MISC_CHECK`; ldirectord `checktype`", meaning: "Health checks; all must pass. Each item is a one-key mapping naming the check (`- http_get: {...}`), or just `- tcp_check`." },
        ],
    ),
    (
        "`checks[]`",
        "Under `virtual_servers[].real_servers[].checks[]`. The connection keys \
         (`connect_ip`, `connect_port`, `bindto`, `connect_timeout`, `retry`, \
         `delay_before_retry`, `delay_loop`) mean the same in every check that has them.",
        &[
            Key { path: "checks[].tcp_check", ty: "mapping", default: "-", equivalent: "`TCP_CHECK { }`; ldirectord `checktype=connect`", meaning: "Up when a connection succeeds." },
            Key { path: "checks[].tcp_check.connect_ip", ty: "address", default: "the real server's", equivalent: "`connect_ip`", meaning: "Address to connect to." },
            Key { path: "checks[].tcp_check.connect_port", ty: "1-65535", default: "the real server's", equivalent: "`connect_port`; ldirectord `checkport`", meaning: "Port to connect to." },
            Key { path: "checks[].tcp_check.bindto", ty: "address", default: "-", equivalent: "`bindto`", meaning: "Source address of the check." },
            Key { path: "checks[].tcp_check.connect_timeout", ty: "seconds, above 0", default: "5", equivalent: "`connect_timeout`; ldirectord `checktimeout`", meaning: "Give up on a connection after this long." },
            Key { path: "checks[].tcp_check.retry", ty: "0-1000", default: "1", equivalent: "`retry` / `nb_get_retry`; ldirectord `failurecount` minus 1", meaning: "Retries before the server counts as down." },
            Key { path: "checks[].tcp_check.delay_before_retry", ty: "seconds", default: "1", equivalent: "`delay_before_retry`", meaning: "Wait between retries." },
            Key { path: "checks[].tcp_check.delay_loop", ty: "seconds, above 0", default: "the service's `delay_loop`", equivalent: "`delay_loop` in the checker", meaning: "Interval of this check." },
            Key { path: "checks[].http_get", ty: "mapping", default: "-", equivalent: "`HTTP_GET { }`", meaning: "Up when every URL answers as expected. `ssl_get` takes the same keys, over TLS (`SSL_GET`)." },
            Key { path: "checks[].http_get.urls", ty: "list", default: "required, not empty", equivalent: "`url { }`", meaning: "URLs to fetch." },
            Key { path: "checks[].http_get.urls[].path", ty: "string", default: "required", equivalent: "`path`", meaning: "Path to GET." },
            Key { path: "checks[].http_get.urls[].status_code", ty: "100-599", default: "any 2xx", equivalent: "`status_code`", meaning: "Expected status." },
            Key { path: "checks[].http_get.urls[].digest", ty: "hex string", default: "-", equivalent: "`digest`", meaning: "MD5 of the expected body." },
            Key { path: "checks[].http_get.virtualhost", ty: "string", default: "the service's `virtualhost`", equivalent: "`virtualhost`", meaning: "HTTP `Host:` header." },
            Key { path: "checks[].http_get.connect_ip", ty: "address", default: "the real server's", equivalent: "`connect_ip`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].http_get.connect_port", ty: "1-65535", default: "the real server's", equivalent: "`connect_port`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].http_get.bindto", ty: "address", default: "-", equivalent: "`bindto`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].http_get.tls_ca_file", ty: "path", default: "- (no verification)", equivalent: "- (keepalived's SSL_GET never verifies)", meaning: "`ssl_get` only: verify the server's certificate and name (`virtualhost`, else its address) against the CA certificates in this PEM file." },
            Key { path: "checks[].http_get.connect_timeout", ty: "seconds, above 0", default: "5", equivalent: "`connect_timeout`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].http_get.retry", ty: "0-1000", default: "1", equivalent: "`retry` / `nb_get_retry`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].http_get.delay_before_retry", ty: "seconds", default: "1", equivalent: "`delay_before_retry`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].http_get.delay_loop", ty: "seconds, above 0", default: "the service's `delay_loop`", equivalent: "`delay_loop` in the checker", meaning: "As in `tcp_check`." },
            Key { path: "checks[].ssl_get", ty: "mapping", default: "-", equivalent: "`SSL_GET { }`", meaning: "`http_get` over TLS; the same keys. As keepalived, the certificate is not verified (the handshake is)." },
            Key { path: "checks[].negotiate", ty: "mapping", default: "-", equivalent: "ldirectord `checktype=negotiate`", meaning: "Send `request` in the service's protocol; up when the reply matches `receive`." },
            Key { path: "checks[].negotiate.service", ty: "`http` \\| `https` \\| `ftp` \\| `smtp` \\| `pop` \\| `pops` \\| `imap` \\| `imaps` \\| `ldap` \\| `nntp` \\| `dns` \\| `mysql` \\| `pgsql` \\| `sip` \\| `radius` \\| `simpletcp`", default: "required", equivalent: "ldirectord `service`", meaning: "Protocol spoken. `lbd run` speaks `http`, `https` and `simpletcp`; it refuses the others as not supported yet." },
            Key { path: "checks[].negotiate.request", ty: "string", default: "-", equivalent: "ldirectord `request`", meaning: "What to ask for (for HTTP, the path)." },
            Key { path: "checks[].negotiate.receive", ty: "regular expression", default: "-", equivalent: "ldirectord `receive`", meaning: "What the reply must match." },
            Key { path: "checks[].negotiate.virtualhost", ty: "string", default: "-", equivalent: "ldirectord `virtualhost`", meaning: "HTTP `Host:` header." },
            Key { path: "checks[].negotiate.connect_ip", ty: "address", default: "the real server's", equivalent: "-", meaning: "As in `tcp_check`." },
            Key { path: "checks[].negotiate.connect_port", ty: "1-65535", default: "the real server's", equivalent: "ldirectord `checkport`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].negotiate.bindto", ty: "address", default: "-", equivalent: "-", meaning: "As in `tcp_check`." },
            Key { path: "checks[].negotiate.connect_timeout", ty: "seconds, above 0", default: "5", equivalent: "ldirectord `negotiatetimeout` / `checktimeout`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].negotiate.retry", ty: "0-1000", default: "1", equivalent: "ldirectord `failurecount` minus 1", meaning: "As in `tcp_check`." },
            Key { path: "checks[].negotiate.delay_before_retry", ty: "seconds", default: "1", equivalent: "-", meaning: "As in `tcp_check`." },
            Key { path: "checks[].negotiate.delay_loop", ty: "seconds, above 0", default: "the service's `delay_loop`", equivalent: "ldirectord `checkinterval`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].misc_check", ty: "mapping", default: "-", equivalent: "`MISC_CHECK { }`; ldirectord `checktype=external`", meaning: "Run a command; exit 0 is up." },
            Key { path: "checks[].misc_check.misc_path", ty: "command", default: "required", equivalent: "`misc_path`", meaning: "The command line." },
            Key { path: "checks[].misc_check.misc_timeout", ty: "seconds, above 0", default: "the check interval", equivalent: "`misc_timeout`", meaning: "A run taking longer fails." },
            Key { path: "checks[].misc_check.misc_dynamic", ty: "bool", default: "`false`", equivalent: "`misc_dynamic`", meaning: "Exit codes 2-255 set the weight to code - 2." },
            Key { path: "checks[].misc_check.user", ty: "string", default: "`global.script_user`", equivalent: "`user`", meaning: "`user` or `user group` to run as." },
            Key { path: "checks[].misc_check.retry", ty: "0-1000", default: "1", equivalent: "`retry`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].misc_check.delay_before_retry", ty: "seconds", default: "1", equivalent: "`delay_before_retry`", meaning: "As in `tcp_check`." },
            Key { path: "checks[].misc_check.delay_loop", ty: "seconds, above 0", default: "the service's `delay_loop`", equivalent: "`delay_loop` in the checker", meaning: "As in `tcp_check`." },
        ],
    ),
];

/// The Markdown page's head; the man page has its own.
#[cfg(test)]
const INTRO: &str = "\
# lbd configuration reference

<!-- Generated from lb-userspace/src/config/reference.rs; do not edit by hand.
     After changing the table there, run
     `LBD_BLESS=1 cargo test -p lb-userspace --lib config::reference`. -->

Every key of `lbd.yaml`, with its type, default, meaning and the keepalived
(or ldirectord) directive it corresponds to. An annotated example is in
[`examples/lbd.yaml`](../examples/lbd.yaml); a short one in
[`examples/minimal.yaml`](../examples/minimal.yaml). `lbd check -c FILE`
validates a file and lists every problem with its line and column.

Editors: [`lbd.schema.json`](lbd.schema.json) (installed by the package as
`/usr/share/lbd/lbd.schema.json`) is a JSON Schema of this file, rendered
from the same table as this page. With yaml-language-server (VS Code's YAML
extension, Neovim, Helix, ...) this first line in `lbd.yaml` turns on key
completion, these descriptions on hover, and type and range checks while
typing; `lbd check` remains the authority:

    # yaml-language-server: $schema=/usr/share/lbd/lbd.schema.json
";

/// Rules that hold for every key, in both renderings (Markdown line breaks
/// and indentation become single spaces in the man page).
pub(super) const RULES: &[&str] = &[
    "Unknown keys are errors (a typo is never silently ignored).",
    "Durations are seconds, whole or fractional (`5`, `0.5`).",
    "Lists keep their order; items that have a `name` are referred to by it.",
    "A key left out takes its default; `lbd import-keepalived` writes only\n  \
     keys that differ from the defaults.",
    "`lbd run` refuses keys it does not implement yet with\n  \
     `not supported yet: KEY` rather than ignoring them.",
];

/// The whole reference as Markdown (the test that keeps the file in step
/// renders it).
#[cfg(test)]
pub(crate) fn render() -> String {
    use std::fmt::Write as _;

    let mut out = String::from(INTRO);
    out.push_str("\nGeneral rules:\n\n");
    for rule in RULES {
        let _ = writeln!(out, "- {rule}");
    }
    for (heading, note, keys) in SECTIONS {
        // Writing to a String cannot fail.
        let _ = write!(out, "\n## {heading}\n\n");
        if !note.is_empty() {
            let _ = write!(out, "{note}\n\n");
        }
        out.push_str("| Key | Type | Default | keepalived / ldirectord | Meaning |\n");
        out.push_str("|---|---|---|---|---|\n");
        for key in *keys {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                key.path, key.ty, key.default, key.equivalent, key.meaning
            );
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use std::{
        collections::BTreeSet,
        net::{IpAddr, Ipv4Addr},
        path::PathBuf,
        time::Duration,
    };

    use super::*;
    use crate::config::{
        AuthType, Authentication, Check, Config, DataplaneKind, FlowSync, ForwardingMethod,
        HttpCheck, InitialState, InterfaceConfig, IpPrefix, MiscCheck, NegotiateCheck,
        NegotiateService, Protocol, RealServer, RemovedServerFlows, Scheduler, SorryServer,
        SyncGroup, TcpCheck, TrackInterface, TrackScript, TrackScriptRef, UrlCheck, VirtualAddress,
        VirtualServer, VrrpInstance, XdpMode,
        model::ConntrackTimeouts,
        spans::{Kind, Node},
        to_yaml,
    };

    fn reference_file() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/config-reference.md")
    }

    #[test]
    fn reference_file_is_up_to_date() {
        let rendered = render();
        let path = reference_file();
        if std::env::var_os("LBD_BLESS").is_some() {
            std::fs::write(&path, &rendered).expect("write docs/config-reference.md");
            return;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == rendered,
            "docs/config-reference.md is stale: run `LBD_BLESS=1 cargo test -p lb-userspace \
             --lib config::reference` and commit the result"
        );
    }

    #[test]
    fn every_key_of_the_model_is_documented_and_nothing_else() {
        let yaml = to_yaml(&everything());
        let tree = Node::parse(&yaml).expect("to_yaml output parses");
        let mut written = BTreeSet::new();
        collect_keys(&tree, "", &mut written);
        // A check is documented under `checks[]`, not its full path.
        let written: BTreeSet<String> = written
            .into_iter()
            .map(|k| k.replace("virtual_servers[].real_servers[].checks[]", "checks[]"))
            // ssl_get has http_get's keys and is documented as such.
            .filter(|k| !k.starts_with("checks[].ssl_get."))
            .collect();
        let documented: BTreeSet<String> = SECTIONS
            .iter()
            .flat_map(|(_, _, keys)| keys.iter().map(|k| k.path.to_owned()))
            .collect();
        let missing: Vec<_> = written.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&written).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "reference.rs is out of step with the model:\n  undocumented keys: {missing:?}\n  \
             documented keys the model does not have: {extra:?}"
        );
    }

    #[test]
    fn a_config_with_every_key_set_round_trips() {
        let config = everything();
        let yaml = to_yaml(&config);
        let loaded = crate::config::load_str(&yaml, "everything.yaml")
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(loaded.config, config, "{yaml}");
    }

    fn collect_keys(node: &Node, prefix: &str, out: &mut BTreeSet<String>) {
        match &node.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => {
                for item in items {
                    collect_keys(item, &format!("{prefix}[]"), out);
                }
            }
            Kind::Map(entries) => {
                for entry in entries {
                    let path = if prefix.is_empty() {
                        entry.key.clone()
                    } else {
                        format!("{prefix}.{}", entry.key)
                    };
                    out.insert(path.clone());
                    collect_keys(&entry.value, &path, out);
                }
            }
        }
    }

    /// A config that sets every key to a non-default value, so `to_yaml`
    /// writes them all.
    pub(crate) fn everything() -> Config {
        let ip = |last: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, last));
        let secs = Duration::from_secs;
        let vip = |last| VirtualAddress {
            address: IpPrefix::new(ip(last), 24).expect("valid prefix"),
            brd: Some(ip(255)),
            dev: Some("eth0".into()),
            label: Some("eth0:vip".into()),
        };
        let tcp = TcpCheck {
            connect_ip: Some(ip(9)),
            connect_port: Some(8080),
            bindto: Some(ip(1)),
            connect_timeout: secs(3),
            retry: 3,
            delay_before_retry: secs(2),
            delay_loop: Some(secs(10)),
        };
        let http = HttpCheck {
            urls: vec![UrlCheck {
                path: "/".into(),
                status_code: Some(200),
                digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
            }],
            virtualhost: Some("www.example.com".into()),
            connect_ip: tcp.connect_ip,
            connect_port: tcp.connect_port,
            bindto: tcp.bindto,
            tls_ca_file: Some("/etc/lbd/backend-ca.pem".into()),
            connect_timeout: tcp.connect_timeout,
            retry: tcp.retry,
            delay_before_retry: tcp.delay_before_retry,
            delay_loop: tcp.delay_loop,
        };
        Config {
            include: vec!["conf.d/*.yaml".into()],
            global: crate::config::Global {
                router_id: Some("lb1".into()),
                script_user: Some("lbd".into()),
                enable_script_security: true,
                conntrack: ConntrackTimeouts {
                    tcp: Some(secs(900)),
                    tcp_fin: Some(secs(120)),
                    udp: Some(secs(300)),
                },
                control_group: Some("lbd".into()),
                metrics_listen: Some("127.0.0.1:9100".parse().expect("a socket address")),
                drain_timeout: Some(secs(60)),
                autoreload: true,
                vip_device: crate::config::VipDevice::Interface,
            },
            dataplane: DataplaneKind::Xdp,
            interfaces: vec![InterfaceConfig {
                name: "eth0".into(),
                xdp_mode: XdpMode::Native,
            }],
            vrrp_instances: vec![VrrpInstance {
                name: "VI_1".into(),
                state: InitialState::Master,
                interface: "eth0".into(),
                virtual_router_id: 51,
                priority: 150,
                advert_int: Duration::from_millis(500),
                version: 3,
                authentication: Some(Authentication {
                    auth_type: AuthType::Pass,
                    auth_pass: "secret".into(),
                }),
                virtual_ipaddresses: vec![vip(100)],
                virtual_ipaddresses_excluded: vec![vip(101)],
                unicast_src_ip: Some(ip(1)),
                unicast_peers: vec![ip(2)],
                unicast_min_ttl: 250,
                preempt: false,
                preempt_delay: secs(30),
                accept: false,
                garp_master_delay: secs(10),
                garp_master_repeat: 3,
                garp_master_refresh: Some(secs(60)),
                garp_master_refresh_repeat: 2,
                track_scripts: vec![TrackScriptRef {
                    name: "chk".into(),
                    weight: Some(-20),
                }],
                track_interfaces: vec![TrackInterface {
                    name: "eth1".into(),
                    weight: Some(10),
                }],
                notify_master: Some("/bin/m".into()),
                notify_backup: Some("/bin/b".into()),
                notify_fault: Some("/bin/f".into()),
                notify_stop: Some("/bin/s".into()),
                notify: Some("/bin/n".into()),
            }],
            sync_groups: vec![SyncGroup {
                name: "VG1".into(),
                group: vec!["VI_1".into()],
                notify_master: Some("/bin/m".into()),
                notify_backup: Some("/bin/b".into()),
                notify_fault: Some("/bin/f".into()),
                notify: Some("/bin/n".into()),
            }],
            track_scripts: vec![TrackScript {
                name: "chk".into(),
                script: "/bin/true".into(),
                interval: secs(2),
                timeout: Some(secs(1)),
                weight: -20,
                rise: 2,
                fall: 3,
                user: Some("nobody".into()),
            }],
            virtual_servers: vec![VirtualServer {
                name: Some("web".into()),
                address: ip(100),
                port: 80,
                protocol: Protocol::Udp,
                scheduler: Scheduler::Mh,
                method: ForwardingMethod::Dr,
                persistence_timeout: Some(secs(300)),
                delay_loop: secs(5),
                alpha: true,
                sorry_server: Some(SorryServer {
                    address: ip(50),
                    port: Some(8080),
                }),
                sorry_server_inhibit: true,
                quorum: 2,
                hysteresis: 1,
                quorum_up: Some("/bin/up".into()),
                quorum_down: Some("/bin/down".into()),
                virtualhost: Some("www.example.com".into()),
                removed_server_flows: RemovedServerFlows::Keep,
                real_servers: vec![RealServer {
                    address: ip(10),
                    port: Some(8080),
                    weight: 5,
                    inhibit_on_failure: true,
                    notify_up: Some("/bin/up".into()),
                    notify_down: Some("/bin/down".into()),
                    checks: vec![
                        Check::TcpCheck(tcp.clone()),
                        Check::HttpGet(http.clone()),
                        Check::SslGet(http),
                        Check::Negotiate(NegotiateCheck {
                            service: NegotiateService::Http,
                            request: Some("index.html".into()),
                            receive: Some("ok".into()),
                            virtualhost: Some("www.example.com".into()),
                            connect_ip: tcp.connect_ip,
                            connect_port: tcp.connect_port,
                            bindto: tcp.bindto,
                            connect_timeout: tcp.connect_timeout,
                            retry: tcp.retry,
                            delay_before_retry: tcp.delay_before_retry,
                            delay_loop: tcp.delay_loop,
                        }),
                        Check::MiscCheck(MiscCheck {
                            misc_path: "/bin/check".into(),
                            misc_timeout: Some(secs(3)),
                            misc_dynamic: true,
                            user: Some("nobody".into()),
                            retry: 2,
                            delay_before_retry: secs(2),
                            delay_loop: Some(secs(10)),
                        }),
                    ],
                }],
            }],
            flow_sync: Some(FlowSync {
                interface: "eth1".into(),
                peers: vec![ip(2)],
                group: Some(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81))),
                port: Some(8849),
                id: Some(3),
                maxlen: Some(1400),
                ttl: Some(2),
                interval: Some(Duration::from_millis(20)),
            }),
        }
    }
}
