//! The conntrack rules, in one place for the XDP program (which applies
//! them per packet) and the daemon (which counts ActiveConn / InActConn
//! from the same table): how a flow's state follows the TCP flags, how long
//! each state may stay idle, and which states count as active.
//!
//! The states are IPVS's, reduced to what a NAT load balancer needs (see
//! [`crate::maps`]'s `FLOW_*`); the timeouts come from [`Settings`].

use crate::maps::{FLOW_CLOSE, FLOW_ESTABLISHED, FLOW_FIN, FLOW_SYN, FLOW_UDP, Settings};

/// TCP header flag bits (RFC 9293 3.1).
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;

const NS_PER_SEC: u64 = 1_000_000_000;

/// How long a flow in `state` may stay idle, in nanoseconds. An unknown
/// state gets the SYN timeout, the shortest of a live TCP connection.
#[inline(always)]
pub fn timeout_ns(state: u32, s: &Settings) -> u64 {
    let secs = match state {
        FLOW_ESTABLISHED => s.tcp_established_s,
        FLOW_FIN => s.tcp_fin_s,
        FLOW_CLOSE => s.tcp_close_s,
        FLOW_UDP => s.udp_s,
        _ => s.tcp_syn_s,
    };
    u64::from(secs) * NS_PER_SEC
}

/// Whether a flow in `state` last seen at `last_seen_ns` has been idle past
/// its timeout at `now_ns` (the LRU may not have evicted it yet). A clock
/// reading before `last_seen_ns` (another CPU raced ahead) is not idle.
#[inline(always)]
pub fn expired(state: u32, last_seen_ns: u64, now_ns: u64, s: &Settings) -> bool {
    now_ns.saturating_sub(last_seen_ns) > timeout_ns(state, s)
}

/// Whether a packet with `tcp_flags` opens a new connection on the ports of
/// a closing or closed one: the old flow must not pin it to its backend.
#[inline(always)]
pub fn reuses_closed(state: u32, tcp_flags: u8) -> bool {
    tcp_flags & TCP_SYN != 0 && (state == FLOW_FIN || state == FLOW_CLOSE)
}

/// The state of a new flow whose first packet has `tcp_flags` (`None`: UDP).
#[inline(always)]
pub fn initial_state(tcp_flags: Option<u8>) -> u32 {
    match tcp_flags {
        None => FLOW_UDP,
        Some(f) if f & TCP_SYN != 0 => FLOW_SYN,
        // Picked up mid-flow (after a failover): it was established.
        Some(_) => FLOW_ESTABLISHED,
    }
}

/// The state after a packet with `tcp_flags` in either direction.
#[inline(always)]
pub fn next_state(state: u32, tcp_flags: u8) -> u32 {
    if state == FLOW_UDP {
        return FLOW_UDP;
    }
    if tcp_flags & TCP_RST != 0 {
        FLOW_CLOSE
    } else if tcp_flags & TCP_FIN != 0 {
        if state == FLOW_CLOSE {
            FLOW_CLOSE
        } else {
            FLOW_FIN
        }
    } else if state == FLOW_SYN && tcp_flags & TCP_SYN == 0 {
        FLOW_ESTABLISHED
    } else {
        state
    }
}

/// Whether a flow counts in ipvsadm's ActiveConn (else InActConn): an
/// established TCP connection, or a UDP flow.
#[inline(always)]
pub fn is_active(state: u32) -> bool {
    state == FLOW_ESTABLISHED || state == FLOW_UDP
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings::IPVS_DEFAULTS;
    const ACK: u8 = 0x10;
    const PSH: u8 = 0x08;
    const SEC: u64 = NS_PER_SEC;

    #[test]
    fn each_state_expires_after_its_own_timeout() {
        for (state, secs) in [
            (FLOW_SYN, 60),
            (FLOW_ESTABLISHED, 900),
            (FLOW_FIN, 120),
            (FLOW_CLOSE, 10),
            (FLOW_UDP, 300),
        ] {
            let seen = 5 * SEC;
            assert!(
                !expired(state, seen, seen + secs * SEC, &S),
                "state {state} at its timeout"
            );
            assert!(
                expired(state, seen, seen + secs * SEC + 1, &S),
                "state {state} past it"
            );
        }
    }

    #[test]
    fn configured_timeouts_replace_the_defaults() {
        let s = Settings {
            tcp_established_s: 30,
            tcp_fin_s: 7,
            udp_s: 3,
            ..S
        };
        assert_eq!(timeout_ns(FLOW_ESTABLISHED, &s), 30 * SEC);
        assert_eq!(timeout_ns(FLOW_FIN, &s), 7 * SEC);
        assert_eq!(timeout_ns(FLOW_UDP, &s), 3 * SEC);
        assert_eq!(timeout_ns(FLOW_SYN, &s), 60 * SEC);
    }

    #[test]
    fn an_unknown_state_gets_the_syn_timeout() {
        assert_eq!(timeout_ns(99, &S), 60 * SEC);
    }

    #[test]
    fn a_clock_behind_last_seen_is_not_idle() {
        assert!(!expired(FLOW_CLOSE, 100 * SEC, 50 * SEC, &S));
    }

    #[test]
    fn a_tcp_handshake_then_close_walks_the_states() {
        let mut state = initial_state(Some(TCP_SYN));
        assert_eq!(state, FLOW_SYN);
        // The SYN-ACK reply and a retransmitted SYN keep it opening.
        assert_eq!(next_state(state, TCP_SYN | ACK), FLOW_SYN);
        state = next_state(state, ACK);
        assert_eq!(state, FLOW_ESTABLISHED);
        state = next_state(state, PSH | ACK);
        assert_eq!(state, FLOW_ESTABLISHED);
        state = next_state(state, TCP_FIN | ACK);
        assert_eq!(state, FLOW_FIN);
        assert_eq!(
            next_state(state, ACK),
            FLOW_FIN,
            "the last ACK leaves it closing"
        );
    }

    #[test]
    fn a_reset_closes_from_any_tcp_state_and_stays_closed() {
        for state in [FLOW_SYN, FLOW_ESTABLISHED, FLOW_FIN, FLOW_CLOSE] {
            assert_eq!(next_state(state, TCP_RST), FLOW_CLOSE, "from {state}");
            assert_eq!(next_state(state, TCP_RST | ACK), FLOW_CLOSE, "from {state}");
        }
        assert_eq!(next_state(FLOW_CLOSE, TCP_FIN | ACK), FLOW_CLOSE);
        assert_eq!(next_state(FLOW_CLOSE, ACK), FLOW_CLOSE);
    }

    #[test]
    fn udp_flows_ignore_flag_bits() {
        assert_eq!(initial_state(None), FLOW_UDP);
        for flags in [0, TCP_SYN, TCP_FIN, TCP_RST, 0xff] {
            assert_eq!(next_state(FLOW_UDP, flags), FLOW_UDP);
        }
    }

    #[test]
    fn a_flow_picked_up_mid_connection_counts_as_established() {
        assert_eq!(initial_state(Some(ACK)), FLOW_ESTABLISHED);
        assert_eq!(initial_state(Some(PSH | ACK)), FLOW_ESTABLISHED);
    }

    #[test]
    fn only_a_syn_on_a_closing_flow_is_a_new_connection() {
        assert!(reuses_closed(FLOW_FIN, TCP_SYN));
        assert!(reuses_closed(FLOW_CLOSE, TCP_SYN));
        assert!(
            !reuses_closed(FLOW_ESTABLISHED, TCP_SYN),
            "a stray SYN on a live flow"
        );
        assert!(!reuses_closed(FLOW_SYN, TCP_SYN), "a retransmitted SYN");
        assert!(!reuses_closed(FLOW_FIN, ACK));
    }

    #[test]
    fn active_connections_are_established_tcp_and_udp() {
        assert!(is_active(FLOW_ESTABLISHED));
        assert!(is_active(FLOW_UDP));
        for state in [FLOW_SYN, FLOW_FIN, FLOW_CLOSE] {
            assert!(!is_active(state), "state {state} is InActConn");
        }
    }
}
