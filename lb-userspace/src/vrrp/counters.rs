//! What an instance sent, received and dropped, and a rate limit for the log
//! lines drops produce (a flood of bad packets must not flood the log).

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::receive::DropReason;

const REASONS: usize = DropReason::ALL.len();

/// Per-instance counters; plain numbers for status output and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts that passed the receive checks.
    pub adverts_received: u64,
    /// Adverts put on the wire (one per destination).
    pub adverts_sent: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// Owner adverts accepted despite a different address list.
    pub owner_address_mismatch: u64,
    /// Answers to another master's adverts (split brain) sent while MASTER.
    pub split_brain_replies: u64,
    /// Adverts from another master left unanswered: that sender was
    /// answered less than an advert interval ago.
    pub split_brain_replies_limited: u64,
    /// Adverts that could not be encoded (a bug: parameters are checked).
    pub encode_errors: u64,
    drops: [u64; REASONS],
}

impl Counters {
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Adverts dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Every reason with its count, including zeros.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.dropped(*r)))
    }

    pub fn total_dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
}

/// Logs the first drop of each reason, then at most one line per reason per
/// interval, saying how many were left unlogged in between.
#[derive(Clone, Debug)]
pub struct DropLog {
    interval: Duration,
    last: [Option<Instant>; REASONS],
    suppressed: [u64; REASONS],
}

impl Default for DropLog {
    fn default() -> Self {
        Self::new(Self::DEFAULT_INTERVAL)
    }
}

impl DropLog {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: [None; REASONS],
            suppressed: [0; REASONS],
        }
    }

    /// Records one drop; `Some(n)` when it should be logged now, `n` being
    /// how many drops of this reason went unlogged since the last line.
    pub fn record(&mut self, reason: DropReason, now: Instant) -> Option<u64> {
        let i = reason.index();
        let due = self.last[i].is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
        if due {
            self.last[i] = Some(now);
            Some(std::mem::take(&mut self.suppressed[i]))
        } else {
            self.suppressed[i] += 1;
            None
        }
    }

    /// Records a drop and, when due, writes the warning.
    pub fn log(&mut self, instance: &str, reason: DropReason, src: IpAddr, now: Instant) {
        if let Some(suppressed) = self.record(reason, now) {
            tracing::warn!(
                vrrp_instance = instance,
                %src,
                reason = reason.name(),
                suppressed,
                "dropped VRRP advert: {reason}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_reason() {
        let mut c = Counters::default();
        c.count_drop(DropReason::Ttl);
        c.count_drop(DropReason::Ttl);
        c.count_drop(DropReason::Checksum);
        assert_eq!(c.dropped(DropReason::Ttl), 2);
        assert_eq!(c.dropped(DropReason::Checksum), 1);
        assert_eq!(c.dropped(DropReason::Vrid), 0);
        assert_eq!(c.total_dropped(), 3);
        assert_eq!(c.drops().count(), DropReason::ALL.len());
    }

    #[test]
    fn logs_first_then_once_per_interval_with_the_suppressed_count() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut log = DropLog::default();
        assert_eq!(log.record(DropReason::Ttl, t0), Some(0));
        assert_eq!(log.record(DropReason::Ttl, t0 + s), None);
        assert_eq!(log.record(DropReason::Ttl, t0 + 2 * s), None);
        // Another reason has its own budget.
        assert_eq!(log.record(DropReason::Vrid, t0 + 2 * s), Some(0));
        assert_eq!(log.record(DropReason::Ttl, t0 + 10 * s), Some(2));
        assert_eq!(log.record(DropReason::Ttl, t0 + 11 * s), None);
        assert_eq!(log.record(DropReason::Ttl, t0 + 20 * s), Some(1));
    }
}
