//! Value formats both importers share.

use std::time::Duration;

/// Seconds (`5`, `0.5`) to a duration at microsecond resolution, as the lbd
/// model keeps them; anything negative, not finite or beyond a year is
/// refused.
pub(crate) fn parse_seconds(text: &str) -> Option<Duration> {
    const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;
    let secs: f64 = text.trim().parse().ok()?;
    if !secs.is_finite() || !(0.0..=MAX_SECS).contains(&secs) {
        return None;
    }
    Some(Duration::from_micros((secs * 1e6).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_fractional_seconds() {
        assert_eq!(parse_seconds("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.01"), Some(Duration::from_millis(10)));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("soon"), None);
        assert_eq!(parse_seconds("inf"), None);
    }
}
