//! When a check runs next, and when its failures make it "down":
//! keepalived's checker loop. A failed run is retried `retry` times,
//! `delay_before_retry` apart, before the checker counts as failed; one
//! success brings it back. Checkers start up (keepalived without `alpha`).

use std::time::Duration;

/// One check's timing and confirmed state.
#[derive(Clone, Debug)]
pub struct RetrySchedule {
    interval: Duration,
    retry: u32,
    delay_before_retry: Duration,
    retries_used: u32,
    up: bool,
}

/// What one run's result means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The checker's confirmed state after this run.
    pub up: bool,
    /// Whether this run changed it.
    pub changed: bool,
    /// Wait this long before the next run.
    pub next: Duration,
}

impl RetrySchedule {
    pub fn new(interval: Duration, retry: u32, delay_before_retry: Duration) -> Self {
        Self {
            interval,
            retry,
            delay_before_retry,
            retries_used: 0,
            up: true,
        }
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// Records one run.
    pub fn record(&mut self, ok: bool) -> Step {
        let was = self.up;
        let next = if ok {
            self.retries_used = 0;
            self.up = true;
            self.interval
        } else if self.up && self.retries_used < self.retry {
            // keepalived: retry_it < retry, so try again soon.
            self.retries_used += 1;
            self.delay_before_retry
        } else {
            self.retries_used = 0;
            self.up = false;
            self.interval
        };
        Step {
            up: self.up,
            changed: was != self.up,
            next,
        }
    }
}

/// The first run of check `index` of `count`, spread evenly over its
/// interval so that a thousand checks do not fire in the same millisecond.
pub fn first_run_offset(index: usize, count: usize, interval: Duration) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    let nanos = interval.as_nanos() * (index % count) as u128 / count as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn retry_failures_in_a_row_then_down_and_one_success_restores() {
        let mut s = RetrySchedule::new(6 * S, 2, S);
        let step = s.record(false);
        assert_eq!((step.up, step.changed, step.next), (true, false, S));
        let step = s.record(false);
        assert_eq!((step.up, step.changed, step.next), (true, false, S));
        let step = s.record(false);
        assert_eq!((step.up, step.changed, step.next), (false, true, 6 * S));
        let step = s.record(false);
        assert_eq!((step.up, step.changed, step.next), (false, false, 6 * S));
        let step = s.record(true);
        assert_eq!((step.up, step.changed, step.next), (true, true, 6 * S));
    }

    #[test]
    fn a_success_between_failures_resets_the_retries() {
        let mut s = RetrySchedule::new(6 * S, 1, S);
        assert!(s.record(false).up);
        assert!(s.record(true).up);
        assert!(s.record(false).up, "the count started over");
        assert!(!s.record(false).up);
    }

    #[test]
    fn retry_zero_fails_on_the_first_failure() {
        let mut s = RetrySchedule::new(S, 0, S);
        assert!(s.record(false).changed);
    }

    #[test]
    fn first_runs_spread_over_the_interval() {
        let offsets: Vec<Duration> = (0..1000).map(|i| first_run_offset(i, 1000, S)).collect();
        assert_eq!(offsets[0], Duration::ZERO);
        assert_eq!(offsets[500], Duration::from_millis(500));
        assert!(
            offsets
                .windows(2)
                .all(|w| w[1].checked_sub(w[0]) == Some(Duration::from_millis(1)))
        );
        assert!(offsets.iter().all(|o| *o < S));
    }
}
