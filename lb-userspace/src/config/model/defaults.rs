//! Default values, one place: serde fills them in when a key is absent and
//! leaves them out when writing YAML, so a small config stays small and an
//! imported one shows only what differs from the defaults.

use std::time::Duration;

/// `name() -> value` for `#[serde(default = ...)]` and `is_name(&v)` for
/// `skip_serializing_if`.
macro_rules! defaults {
    ($($name:ident, $is:ident: $ty:ty = $value:expr;)*) => {$(
        pub(crate) fn $name() -> $ty {
            $value
        }

        #[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
        pub(crate) fn $is(v: &$ty) -> bool {
            *v == $value
        }
    )*};
}

defaults! {
    // keepalived: priority 100 (vrrp_data.c), advert_int 1 s, version 2.
    priority, is_priority: u8 = 100;
    advert_int, is_advert_int: Duration = Duration::from_secs(1);
    vrrp_version, is_vrrp_version: u8 = 2;
    yes, is_yes: bool = true;
    // keepalived: garp_master_delay 5 s, garp_master_repeat 5.
    garp_master_delay, is_garp_master_delay: Duration = Duration::from_secs(5);
    garp_master_repeat, is_garp_master_repeat: u32 = 5;
    // keepalived vrrp_script: interval 1 s, rise 1, fall 1.
    script_interval, is_script_interval: Duration = Duration::from_secs(1);
    one, is_one: u32 = 1;
    // RFC 5798 5.1.1.3: adverts leave with TTL 255; a connected peer's
    // arrive with 255.
    unicast_min_ttl, is_unicast_min_ttl: u8 = 255;
    // keepalived virtual_server: delay_loop 60 s, quorum 1; real_server weight 1.
    delay_loop, is_delay_loop: Duration = Duration::from_mins(1);
    // keepalived checkers: connect_timeout 5 s, retry 1, delay_before_retry 1 s.
    connect_timeout, is_connect_timeout: Duration = Duration::from_secs(5);
    delay_before_retry, is_delay_before_retry: Duration = Duration::from_secs(1);
}

/// For fields whose default is the type's own (`false`, `0`, empty, `None`).
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
