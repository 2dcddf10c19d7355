//! What one instance's state machine needs, built from the configuration
//! model, with keepalived's adjustments applied and what this implementation
//! cannot do refused with a clear error.

use std::{net::IpAddr, time::Duration};

use super::packet::{Auth, Family, Version};
use crate::config::{AuthType, InitialState, TrackScript, VirtualAddress, VrrpInstance};

/// The static parameters of one VRRP instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceParams {
    pub name: String,
    pub interface: String,
    pub version: Version,
    pub family: Family,
    pub vrid: u8,
    /// Configured priority, 1-255; 255 is the address owner.
    pub priority: u8,
    /// Advertisement_Interval, exact in the version's wire units.
    pub advert_interval: Duration,
    /// `Auth::NONE` or a password (v2 only).
    pub auth: Auth,
    /// Addresses carried in adverts (`virtual_ipaddresses`), in order.
    pub addresses: Vec<IpAddr>,
    /// Everything added when master: the advertised addresses, then the
    /// excluded ones, with their attributes.
    pub vips: Vec<VirtualAddress>,
    /// Source of adverts and tie-breaker (RFC 5798 6.4.3 "primary IPvX
    /// address"). `None`: the I/O layer supplies the interface's primary
    /// address with `Instance::set_source_address`.
    pub source_address: Option<IpAddr>,
    /// Unicast destinations; empty: multicast to the VRRP group.
    pub unicast_peers: Vec<IpAddr>,
    /// Lowest TTL / hop limit accepted from a unicast peer (255: connected
    /// peers only).
    pub unicast_min_ttl: u8,
    /// keepalived's `state`: the initial wish, not a forced state.
    pub initial_state: InitialState,
    /// RFC 5798 6.1 Preempt_Mode.
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// RFC 5798 6.1 Accept_Mode.
    pub accept: bool,
    pub garp: GarpParams,
    pub track_scripts: Vec<TrackedScript>,
    pub track_interfaces: Vec<TrackedInterface>,
}

/// Gratuitous ARP / unsolicited NA schedule after becoming master
/// (keepalived's `garp_master_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpParams {
    /// Second burst this long after becoming master; zero: none.
    pub master_delay: Duration,
    /// Messages per address in each burst.
    pub master_repeat: u32,
    /// Repeat this often while master.
    pub master_refresh: Option<Duration>,
    /// Messages per address in each refresh.
    pub master_refresh_repeat: u32,
}

/// A tracked script and its resolved weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedScript {
    pub name: String,
    /// Positive: added while succeeding; negative: added (so subtracted)
    /// while failing; zero: failing faults the instance.
    pub weight: i32,
}

/// A tracked interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedInterface {
    pub name: String,
    /// Positive: added while up; negative: added (so subtracted) while
    /// down; `None` or zero: down faults the instance.
    pub weight: Option<i32>,
}

/// Why a configured instance cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("vrrp instance {instance}: {}", crate::config::AH_REFUSED)]
    AhUnsupported { instance: String },
    #[error(
        "vrrp instance {instance}: auth_pass is empty; set a password or remove authentication"
    )]
    EmptyPassword { instance: String },
    #[error("vrrp instance {instance}: VRRP version {version} is not 2 or 3")]
    Version { instance: String, version: u8 },
    #[error("vrrp instance {instance}: priority 0 is reserved for a master that stops (use 1-255)")]
    Priority { instance: String },
    #[error(
        "vrrp instance {instance}: advert_int {interval:?} is not valid for VRRP version \
         {version} (v2: whole seconds 1-255; v3: 0.01-40.95 s in steps of 0.01)"
    )]
    Interval {
        instance: String,
        version: u8,
        interval: Duration,
    },
    #[error(
        "vrrp instance {instance}: VRRP version 2 carries IPv4 only, but {address} is IPv6; \
         set version: 3 or move it to virtual_ipaddresses_excluded"
    )]
    V2Ipv6 { instance: String, address: IpAddr },
    #[error(
        "vrrp instance {instance}: virtual_ipaddresses mixes IPv4 ({first}) and IPv6 ({other}); \
         one advert carries one family: move the other to virtual_ipaddresses_excluded or \
         another instance"
    )]
    MixedFamilies {
        instance: String,
        first: IpAddr,
        other: IpAddr,
    },
    #[error(
        "vrrp instance {instance}: {count} virtual addresses do not fit one advert (at most 255)"
    )]
    TooManyAddresses { instance: String, count: usize },
    #[error(
        "vrrp instance {instance}: {what} {address} is not of the instance's family ({family:?})"
    )]
    AddressFamily {
        instance: String,
        what: &'static str,
        address: IpAddr,
        family: Family,
    },
    #[error("vrrp instance {instance}: track script `{script}` is not defined in track_scripts")]
    UnknownScript { instance: String, script: String },
}

impl InstanceParams {
    /// Builds an instance's parameters from its configuration and the
    /// top-level `track_scripts` its `track_scripts` refer to.
    pub fn from_config(
        config: &VrrpInstance,
        scripts: &[TrackScript],
    ) -> Result<Self, ParamsError> {
        let instance = config.name.clone();
        let version = match config.version {
            2 => Version::V2,
            3 => Version::V3,
            version => return Err(ParamsError::Version { instance, version }),
        };
        if config.priority == 0 {
            return Err(ParamsError::Priority { instance });
        }
        if version.interval_to_wire(config.advert_int).is_none() {
            return Err(ParamsError::Interval {
                instance,
                version: version.number(),
                interval: config.advert_int,
            });
        }
        let addresses: Vec<IpAddr> = config
            .virtual_ipaddresses
            .iter()
            .map(|v| v.address.addr())
            .collect();
        let family = family(config, &addresses)?;
        if version == Version::V2 {
            let ipv6 = addresses
                .iter()
                .chain(&config.unicast_src_ip)
                .chain(&config.unicast_peers)
                .find(|a| a.is_ipv6());
            if let Some(address) = ipv6 {
                return Err(ParamsError::V2Ipv6 {
                    instance,
                    address: *address,
                });
            }
        }
        if addresses.len() > usize::from(u8::MAX) {
            return Err(ParamsError::TooManyAddresses {
                instance,
                count: addresses.len(),
            });
        }
        let mismatch = config
            .unicast_src_ip
            .iter()
            .map(|a| ("unicast_src_ip", *a))
            .chain(config.unicast_peers.iter().map(|a| ("unicast peer", *a)))
            .find(|(_, a)| Family::of(*a) != family);
        if let Some((what, address)) = mismatch {
            return Err(ParamsError::AddressFamily {
                instance,
                what,
                address,
                family,
            });
        }
        let auth = auth(config, version)?;
        let track_scripts = config
            .track_scripts
            .iter()
            .map(|r| {
                let script = scripts.iter().find(|s| s.name == r.name).ok_or_else(|| {
                    ParamsError::UnknownScript {
                        instance: instance.clone(),
                        script: r.name.clone(),
                    }
                })?;
                Ok(TrackedScript {
                    name: r.name.clone(),
                    weight: r.weight.unwrap_or(script.weight),
                })
            })
            .collect::<Result<Vec<_>, ParamsError>>()?;
        // keepalived tracks the instance's own interface unless told not to
        // (`dont_track_primary`): its link going down faults the instance.
        let mut track_interfaces: Vec<TrackedInterface> = config
            .track_interfaces
            .iter()
            .map(|t| TrackedInterface {
                name: t.name.clone(),
                weight: t.weight,
            })
            .collect();
        if !track_interfaces.iter().any(|t| t.name == config.interface) {
            track_interfaces.insert(
                0,
                TrackedInterface {
                    name: config.interface.clone(),
                    weight: None,
                },
            );
        }

        // keepalived (vrrp.c, vrrp_complete_instance): the address owner
        // always preempts; `state MASTER` clears `nopreempt` and
        // `preempt_delay`, and `nopreempt` clears `preempt_delay`. The config
        // checker warns about each; here they take the same effect.
        let owner = config.priority == u8::MAX;
        let wants_master = config.state == InitialState::Master;
        let preempt = config.preempt || owner || wants_master;
        let preempt_delay = if preempt && !wants_master {
            config.preempt_delay
        } else {
            Duration::ZERO
        };

        Ok(Self {
            name: instance,
            interface: config.interface.clone(),
            version,
            family,
            vrid: config.virtual_router_id,
            priority: config.priority,
            advert_interval: config.advert_int,
            auth,
            addresses,
            vips: config
                .virtual_ipaddresses
                .iter()
                .chain(&config.virtual_ipaddresses_excluded)
                .cloned()
                .collect(),
            source_address: config.unicast_src_ip,
            unicast_peers: config.unicast_peers.clone(),
            unicast_min_ttl: config.unicast_min_ttl,
            initial_state: config.state,
            preempt,
            preempt_delay,
            accept: config.accept,
            garp: GarpParams {
                master_delay: config.garp_master_delay,
                master_repeat: config.garp_master_repeat,
                master_refresh: config.garp_master_refresh.filter(|d| !d.is_zero()),
                master_refresh_repeat: config.garp_master_refresh_repeat,
            },
            track_scripts,
            track_interfaces,
        })
    }

    /// The advertisement interval in wire units (checked at construction).
    pub fn advert_interval_wire(&self) -> u16 {
        self.version
            .interval_to_wire(self.advert_interval)
            .unwrap_or(1)
    }

    /// True for the address owner (RFC 5798 5.2.4: priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == u8::MAX
    }
}

/// The family adverts carry: that of the virtual addresses, else of the
/// unicast addresses, else IPv4.
fn family(config: &VrrpInstance, addresses: &[IpAddr]) -> Result<Family, ParamsError> {
    if let Some(first) = addresses.first() {
        if let Some(other) = addresses.iter().find(|a| a.is_ipv6() != first.is_ipv6()) {
            return Err(ParamsError::MixedFamilies {
                instance: config.name.clone(),
                first: *first,
                other: *other,
            });
        }
        return Ok(Family::of(*first));
    }
    Ok(config
        .unicast_src_ip
        .or(config.unicast_peers.first().copied())
        .map_or(Family::Ipv4, Family::of))
}

fn auth(config: &VrrpInstance, version: Version) -> Result<Auth, ParamsError> {
    let Some(authentication) = &config.authentication else {
        return Ok(Auth::NONE);
    };
    // keepalived ignores authentication with v3 (RFC 5798 has none); the
    // config checker warns about it.
    if version == Version::V3 {
        return Ok(Auth::NONE);
    }
    match authentication.auth_type {
        // keepalived's AH is HMAC-MD5-96 over a mutable-field-zeroed IP
        // header with replay counters, on IP protocol 51 instead of 112;
        // rather than an approximation that would not interoperate, refuse.
        AuthType::Ah => Err(ParamsError::AhUnsupported {
            instance: config.name.clone(),
        }),
        AuthType::Pass if authentication.auth_pass.is_empty() => Err(ParamsError::EmptyPassword {
            instance: config.name.clone(),
        }),
        // keepalived copies the password's first 8 bytes, zero-padded.
        AuthType::Pass => Ok(Auth::pass(authentication.auth_pass.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn load(yaml: &str) -> config::Config {
        match config::load_str(yaml, "test.yaml") {
            Ok(loaded) => loaded.config,
            Err(err) => panic!("test config does not load: {err}"),
        }
    }

    fn params(yaml: &str) -> Result<InstanceParams, ParamsError> {
        let config = load(yaml);
        InstanceParams::from_config(&config.vrrp_instances[0], &config.track_scripts)
    }

    const BASIC: &str = "
vrrp_instances:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    priority: 150
    virtual_ipaddresses: [10.200.0.100/24]
    virtual_ipaddresses_excluded: [10.200.1.100]
    authentication: { auth_type: pass, auth_pass: secret1 }
";

    #[test]
    fn keepalived_defaults_carry_over() {
        let p = params(BASIC).unwrap();
        assert_eq!(p.version, Version::V2);
        assert_eq!(p.family, Family::Ipv4);
        assert_eq!(p.vrid, 51);
        assert_eq!(p.priority, 150);
        assert_eq!(p.advert_interval, Duration::from_secs(1));
        assert_eq!(p.advert_interval_wire(), 1);
        assert_eq!(p.auth, Auth::pass(b"secret1"));
        assert_eq!(p.addresses, vec!["10.200.0.100".parse::<IpAddr>().unwrap()]);
        assert_eq!(p.vips.len(), 2);
        assert!(p.preempt);
        assert!(p.accept);
        assert_eq!(p.garp.master_delay, Duration::from_secs(5));
        assert_eq!(p.garp.master_repeat, 5);
        assert_eq!(p.garp.master_refresh, None);
        assert_eq!(
            p.track_interfaces,
            vec![TrackedInterface {
                name: "eth0".into(),
                weight: None
            }]
        );
    }

    #[test]
    fn ah_is_refused_with_a_clear_error() {
        // Loading refuses AH already (config::validate); the parameters
        // refuse it too, with the same words, for configs built in code.
        let yaml = BASIC.replace("auth_type: pass", "auth_type: ah");
        let err = config::load_str(&yaml, "test.yaml").expect_err("loading refuses ah");
        assert!(err.to_string().contains(config::AH_REFUSED), "{err}");
        let mut config = load(BASIC);
        config.vrrp_instances[0]
            .authentication
            .as_mut()
            .expect("BASIC has authentication")
            .auth_type = AuthType::Ah;
        let err = InstanceParams::from_config(&config.vrrp_instances[0], &config.track_scripts)
            .unwrap_err();
        assert_eq!(
            err,
            ParamsError::AhUnsupported {
                instance: "VI_1".into()
            }
        );
        assert!(err.to_string().ends_with(config::AH_REFUSED), "{err}");
    }

    #[test]
    fn passwords_longer_than_eight_bytes_are_cut_as_keepalived_does() {
        let yaml = BASIC.replace("secret1", "0123456789");
        assert_eq!(params(&yaml).unwrap().auth, Auth::pass(b"01234567"));
    }

    #[test]
    fn v3_ignores_authentication() {
        let yaml = BASIC.replace("priority: 150", "priority: 150\n    version: 3");
        assert_eq!(params(&yaml).unwrap().auth, Auth::NONE);
    }

    #[test]
    fn state_master_clears_nopreempt_and_preempt_delay() {
        let yaml = BASIC.replace(
            "priority: 150",
            "priority: 150\n    state: master\n    preempt: false\n    preempt_delay: 30",
        );
        let p = params(&yaml).unwrap();
        assert!(p.preempt);
        assert_eq!(p.preempt_delay, Duration::ZERO);
        let yaml = BASIC.replace(
            "priority: 150",
            "priority: 150\n    preempt: false\n    preempt_delay: 30",
        );
        let p = params(&yaml).unwrap();
        assert!(!p.preempt);
        assert_eq!(
            p.preempt_delay,
            Duration::ZERO,
            "nopreempt clears the delay"
        );
        let yaml = BASIC.replace("priority: 150", "priority: 150\n    preempt_delay: 30");
        assert_eq!(
            params(&yaml).unwrap().preempt_delay,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn the_address_owner_always_preempts() {
        let yaml = BASIC.replace("priority: 150", "priority: 255\n    preempt: false");
        let p = params(&yaml).unwrap();
        assert!(p.preempt);
        assert!(p.is_owner());
    }

    #[test]
    fn track_script_weights_resolve_with_the_instance_override() {
        let yaml = format!(
            "{BASIC}    track_scripts: [chk_a, {{ name: chk_b, weight: -20 }}]
    track_interfaces: [{{ name: eth1, weight: 10 }}]
track_scripts:
  - {{ name: chk_a, script: /bin/true, weight: 5 }}
  - {{ name: chk_b, script: /bin/true, weight: 7 }}
"
        );
        let p = params(&yaml).unwrap();
        assert_eq!(
            p.track_scripts,
            vec![
                TrackedScript {
                    name: "chk_a".into(),
                    weight: 5
                },
                TrackedScript {
                    name: "chk_b".into(),
                    weight: -20
                },
            ]
        );
        assert_eq!(p.track_interfaces.len(), 2);
        assert_eq!(p.track_interfaces[0].name, "eth0");
        assert_eq!(p.track_interfaces[1].weight, Some(10));
    }

    #[test]
    fn unknown_script_is_an_error() {
        let mut config = load(BASIC);
        config.vrrp_instances[0].track_scripts = vec!["nope".parse().unwrap()];
        assert!(matches!(
            InstanceParams::from_config(&config.vrrp_instances[0], &[]),
            Err(ParamsError::UnknownScript { .. })
        ));
    }

    #[test]
    fn families_are_checked() {
        let mut config = load(BASIC);
        let v6: config::IpPrefix = "fe80::100".parse().unwrap();
        config.vrrp_instances[0]
            .virtual_ipaddresses
            .push(config::VirtualAddress::new(v6));
        assert!(matches!(
            InstanceParams::from_config(&config.vrrp_instances[0], &[]),
            Err(ParamsError::MixedFamilies { .. })
        ));
        config.vrrp_instances[0].virtual_ipaddresses.remove(0);
        assert!(matches!(
            InstanceParams::from_config(&config.vrrp_instances[0], &[]),
            Err(ParamsError::V2Ipv6 { .. })
        ));
        config.vrrp_instances[0].version = 3;
        let p = InstanceParams::from_config(&config.vrrp_instances[0], &[]).unwrap();
        assert_eq!(p.family, Family::Ipv6);
        config.vrrp_instances[0].unicast_peers = vec!["10.0.0.2".parse().unwrap()];
        assert!(matches!(
            InstanceParams::from_config(&config.vrrp_instances[0], &[]),
            Err(ParamsError::AddressFamily { .. })
        ));
    }

    #[test]
    fn intervals_must_fit_the_version() {
        let mut config = load(BASIC);
        config.vrrp_instances[0].advert_int = Duration::from_millis(1500);
        assert!(matches!(
            InstanceParams::from_config(&config.vrrp_instances[0], &[]),
            Err(ParamsError::Interval { .. })
        ));
        config.vrrp_instances[0].version = 3;
        let p = InstanceParams::from_config(&config.vrrp_instances[0], &[]).unwrap();
        assert_eq!(p.advert_interval_wire(), 150);
    }
}
