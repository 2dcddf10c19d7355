//! What the daemon does when the data plane refuses a change. One refusal
//! can be transient (an IPVS netlink ENOBUFS under load, a map update that
//! lost a race); stopping the daemon for it would fail the VIPs over and
//! drop every flow, which is worse than the change coming a second late.
//! The data plane keeps its last good state on a refusal, so the daemon
//! goes on serving that, retries every second, and gives up (exits with the
//! reason, so systemd restarts it and the peer takes over) only when the
//! refusals persist.

use std::time::{Duration, Instant};

/// Refusals for this long in a row end the daemon.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// While refusals go on, at most one log line this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct ApplyRetry {
    /// The first refusal of the current run of them, and the last logged.
    failing: Option<(Instant, Instant)>,
}

/// What to do about a refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum OnRefusal {
    /// Keep the last good state and retry; `log`: say so now.
    Retry { log: bool, for_how_long: Duration },
    /// Refused for `GIVE_UP_AFTER`: stop the daemon.
    GiveUp,
}

impl ApplyRetry {
    /// Whether a retry is due (a change is still waiting to be applied).
    pub fn pending(&self) -> bool {
        self.failing.is_some()
    }

    pub fn refused(&mut self, now: Instant) -> OnRefusal {
        let (since, logged) = self.failing.get_or_insert((now, now));
        let for_how_long = now.duration_since(*since);
        if for_how_long >= GIVE_UP_AFTER {
            return OnRefusal::GiveUp;
        }
        let log = for_how_long.is_zero() || now.duration_since(*logged) >= LOG_EVERY;
        if log {
            *logged = now;
        }
        OnRefusal::Retry { log, for_how_long }
    }

    /// The change went through; how long it was refused, if it was.
    pub fn applied(&mut self, now: Instant) -> Option<Duration> {
        self.failing
            .take()
            .map(|(since, _)| now.duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_transient_refusal_is_retried_and_logged_once() {
        let t0 = Instant::now();
        let mut retry = ApplyRetry::default();
        assert_eq!(retry.applied(t0), None, "nothing was failing");
        assert_eq!(
            retry.refused(t0),
            OnRefusal::Retry {
                log: true,
                for_how_long: Duration::ZERO
            }
        );
        assert!(retry.pending());
        assert_eq!(
            retry.refused(t0 + SEC),
            OnRefusal::Retry {
                log: false,
                for_how_long: SEC
            }
        );
        assert_eq!(retry.applied(t0 + 2 * SEC), Some(2 * SEC));
        assert!(!retry.pending());
    }

    #[test]
    fn persistent_refusals_log_every_ten_seconds_then_give_up() {
        let t0 = Instant::now();
        let mut retry = ApplyRetry::default();
        let logged: Vec<u32> = (0..30)
            .filter(|s| {
                matches!(
                    retry.refused(t0 + SEC * *s),
                    OnRefusal::Retry { log: true, .. }
                )
            })
            .collect();
        assert_eq!(logged, [0, 10, 20]);
        assert_eq!(retry.refused(t0 + GIVE_UP_AFTER), OnRefusal::GiveUp);
    }
}
