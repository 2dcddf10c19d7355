//! How often a MASTER answers another master's adverts (split brain).
//! keepalived answers each one; a flood of lower-priority adverts then
//! makes the MASTER send as fast as it receives, and a spoofed flood turns
//! it into an amplifier. One answer per sender per advert interval heals a
//! real split brain as fast (the other side sends no faster than that).

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

/// Senders remembered at most; past this, new senders get no answer until
/// the old entries expire (a flood from many spoofed sources must not grow
/// memory or the answer rate).
const MAX_SENDERS: usize = 64;

/// When each sender was last answered.
#[derive(Debug, Default)]
pub(super) struct ReplyLimit {
    last: HashMap<IpAddr, Instant>,
}

impl ReplyLimit {
    /// Whether `sender` may be answered now, at most once per `interval`;
    /// records the answer when it may.
    pub(super) fn allow(&mut self, sender: IpAddr, now: Instant, interval: Duration) -> bool {
        let fresh = |t: &Instant| now < *t + interval;
        if self.last.get(&sender).is_some_and(fresh) {
            return false;
        }
        if self.last.len() >= MAX_SENDERS && !self.last.contains_key(&sender) {
            self.last.retain(|_, t| fresh(t));
            if self.last.len() >= MAX_SENDERS {
                return false;
            }
        }
        self.last.insert(sender, now);
        true
    }

    /// Forgets every sender (leaving MASTER).
    pub(super) fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn one_answer_per_sender_per_interval() {
        let t0 = Instant::now();
        let mut limit = ReplyLimit::default();
        assert!(limit.allow(ip(1), t0, SEC));
        assert!(!limit.allow(ip(1), t0 + SEC / 2, SEC));
        assert!(
            limit.allow(ip(2), t0 + SEC / 2, SEC),
            "another sender is answered"
        );
        assert!(limit.allow(ip(1), t0 + SEC, SEC));
    }

    #[test]
    fn many_spoofed_senders_are_capped() {
        let t0 = Instant::now();
        let mut limit = ReplyLimit::default();
        let answered = (0..10_000).filter(|n| limit.allow(ip(*n), t0, SEC)).count();
        assert_eq!(answered, MAX_SENDERS);
        assert!(limit.last.len() <= MAX_SENDERS);
        // After an interval the old entries make room again.
        assert!(limit.allow(ip(20_000), t0 + SEC, SEC));
    }
}
