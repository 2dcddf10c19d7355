//! Skew_Time and Master_Down_Interval. The two RFCs differ: v2 skews by a
//! fraction of one second whatever the interval, v3 by a fraction of the
//! master's advertisement interval.

use std::time::Duration;

use super::packet::Version;

/// Skew_Time for a router of `priority` whose master advertises every
/// `master_interval`.
pub fn skew_time(version: Version, priority: u8, master_interval: Duration) -> Duration {
    let weight = 256 - u32::from(priority);
    match version {
        // RFC 3768 6.1: Skew_Time = (256 - Priority) / 256 seconds.
        Version::V2 => Duration::from_secs(1) * weight / 256,
        // RFC 5798 6.1: Skew_Time = ((256 - priority) * Master_Adver_Interval) / 256.
        Version::V3 => master_interval * weight / 256,
    }
}

/// The shortest skew of any priority (that of 255): how long keepalived lets
/// a `state MASTER` instance listen before it takes over at start-up.
pub fn min_skew_time(version: Version, master_interval: Duration) -> Duration {
    skew_time(version, 255, master_interval)
}

/// Master_Down_Interval: how long a backup waits without adverts before it
/// takes over.
pub fn master_down_interval(version: Version, priority: u8, master_interval: Duration) -> Duration {
    // RFC 3768 6.1: 3 * Advertisement_Interval + Skew_Time.
    // RFC 5798 6.1: (3 * Master_Adver_Interval) + Skew_Time.
    master_interval * 3 + skew_time(version, priority, master_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn v2_skew_is_a_fraction_of_a_second() {
        assert_eq!(
            skew_time(Version::V2, 100, SEC),
            Duration::from_micros(609_375)
        );
        // The interval does not matter in v2.
        assert_eq!(
            skew_time(Version::V2, 100, 5 * SEC),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            skew_time(Version::V2, 255, SEC),
            Duration::from_nanos(3_906_250)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, SEC),
            Duration::from_micros(3_609_375)
        );
    }

    #[test]
    fn v3_skew_scales_with_the_master_interval() {
        let cs10 = Duration::from_millis(100);
        // 156 * 10 cs / 256 = 6.09375 cs; keepalived's 10 cs capture shows
        // the backup taking over 62 ms after the priority-0 advert.
        assert_eq!(
            skew_time(Version::V3, 100, cs10),
            Duration::from_nanos(60_937_500)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, cs10),
            Duration::from_nanos(360_937_500)
        );
        assert_eq!(
            skew_time(Version::V3, 100, SEC),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            min_skew_time(Version::V3, SEC),
            Duration::from_nanos(3_906_250)
        );
    }

    #[test]
    fn higher_priority_waits_less() {
        for version in [Version::V2, Version::V3] {
            let high = master_down_interval(version, 200, SEC);
            let low = master_down_interval(version, 100, SEC);
            assert!(high < low, "{version:?}");
        }
    }
}
