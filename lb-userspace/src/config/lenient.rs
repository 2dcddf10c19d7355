//! Deserializers that record a bad value instead of failing.
//!
//! serde stops at the first error, but `lbd check` must list every problem.
//! Range errors ("virtual_router_id 300 is out of range 1-255") are the most
//! common mistakes, and they are *valid YAML of the right type*, so the fields
//! that have ranges deserialize through these functions: a bad value is
//! recorded here with its location, a harmless placeholder is stored in the
//! model, and deserialization goes on. `load_str` collects the records and
//! turns them into diagnostics; a config with any record is never returned.
//!
//! The records go to a thread-local collector because serde gives a field's
//! deserializer no way to reach the caller. Outside a collector (someone calls
//! `serde_saphyr::from_str::<Config>` directly) the same functions fail the
//! ordinary way, so a placeholder can never escape unnoticed.

use std::{cell::RefCell, fmt, time::Duration};

use serde::{Deserialize, Deserializer, de};
use serde_saphyr::Spanned;

use super::spans::Pos;

/// One recorded bad value: where it is and what is wrong with it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Deferred {
    pub(crate) pos: Pos,
    pub(crate) problem: Problem,
}

/// What is wrong with a value. Displayed without the key; `load_str` puts
/// the key (found from the position) in front.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Problem {
    OutOfRange {
        value: String,
        min: i64,
        max: i64,
    },
    BadDuration {
        value: String,
    },
    /// 0 where only a positive duration works (an interval, a timeout).
    ZeroDuration,
    UnknownName {
        what: &'static str,
        value: String,
        valid: String,
    },
}

impl Problem {
    /// The message with the key that holds the value, e.g.
    /// "virtual_router_id 300 is out of range 1-255".
    pub(crate) fn message(&self, key: Option<&str>) -> String {
        let key = key.map(|k| format!("{k} ")).unwrap_or_default();
        match self {
            Problem::OutOfRange { value, min, max } if *min < 0 => {
                format!("{key}{value} is out of range {min} to {max}")
            }
            Problem::OutOfRange { value, min, max } => {
                format!("{key}{value} is out of range {min}-{max}")
            }
            Problem::BadDuration { value } => {
                format!("{key}{value} is not a duration: write a number of seconds, 0 or more")
            }
            Problem::ZeroDuration => format!(
                "{key}0 cannot work (an interval of 0 would run without pause, a \
                 timeout of 0 would fail every run): write a number of seconds above 0"
            ),
            Problem::UnknownName { what, value, valid } => {
                format!("unknown {what} `{value}`; valid {what}s: {valid}")
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(None))
    }
}

thread_local! {
    static COLLECTOR: RefCell<Option<Vec<Deferred>>> = const { RefCell::new(None) };
}

/// Runs `f` with a collector installed and returns what it recorded.
pub(crate) fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<Deferred>) {
    // Restores the previous collector even if `f` panics, so a nested or
    // unwinding call cannot leave a stale collector behind on this thread.
    struct Restore(Option<Vec<Deferred>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            COLLECTOR.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = COLLECTOR.with(|c| c.borrow_mut().replace(Vec::new()));
    let restore = Restore(previous);
    let value = f();
    let recorded = COLLECTOR
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    drop(restore);
    (value, recorded)
}

/// Records `problem` if a collector is running, else fails with it.
pub(crate) fn report<E: de::Error>(at: serde_saphyr::Location, problem: Problem) -> Result<(), E> {
    let pos = Pos::from(at);
    COLLECTOR.with(|c| match c.borrow_mut().as_mut() {
        Some(records) => {
            records.push(Deferred { pos, problem });
            Ok(())
        }
        None => Err(E::custom(problem)),
    })
}

/// An integer that must be within `MIN..=MAX`. Out of range: recorded, and
/// the nearest bound stored so later checks see a plausible value.
pub(crate) fn int<'de, D, T, const MIN: i64, const MAX: i64>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let spanned = Spanned::<i64>::deserialize(deserializer)?;
    let value = spanned.value;
    if !(MIN..=MAX).contains(&value) {
        report::<D::Error>(
            spanned.referenced,
            Problem::OutOfRange {
                value: value.to_string(),
                min: MIN,
                max: MAX,
            },
        )?;
    }
    T::try_from(value.clamp(MIN, MAX)).map_err(|_| {
        de::Error::custom(format!(
            "internal: range {MIN}-{MAX} does not fit the field type"
        ))
    })
}

/// `int` for an optional field (`#[serde(default)]` supplies `None`).
pub(crate) fn opt_int<'de, D, T, const MIN: i64, const MAX: i64>(
    deserializer: D,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    int::<D, T, MIN, MAX>(deserializer).map(Some)
}

/// A duration written as seconds (`5`, `0.5`). keepalived takes seconds
/// everywhere, fractions where it can use them (advert_int in VRRPv3).
pub(crate) fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let spanned = Spanned::<f64>::deserialize(deserializer)?;
    if let Some(d) = duration_from_secs(spanned.value) {
        return Ok(d);
    }
    report::<D::Error>(
        spanned.referenced,
        Problem::BadDuration {
            value: spanned.value.to_string(),
        },
    )?;
    Ok(Duration::ZERO)
}

/// `seconds` for an interval or a timeout, where 0 cannot work.
pub(crate) fn positive_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let spanned = Spanned::<f64>::deserialize(deserializer)?;
    match duration_from_secs(spanned.value) {
        Some(d) if d.is_zero() => report::<D::Error>(spanned.referenced, Problem::ZeroDuration)?,
        Some(d) => return Ok(d),
        None => report::<D::Error>(
            spanned.referenced,
            Problem::BadDuration {
                value: spanned.value.to_string(),
            },
        )?,
    }
    Ok(Duration::from_secs(1))
}

/// `positive_seconds` for an optional field.
pub(crate) fn opt_positive_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    positive_seconds(deserializer).map(Some)
}

/// `seconds` for an optional field.
pub(crate) fn opt_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    seconds(deserializer).map(Some)
}

/// Seconds to a duration at microsecond resolution: rounding here keeps
/// `0.01` exactly 10 ms, so granularity checks (VRRPv3 centiseconds) are exact.
fn duration_from_secs(secs: f64) -> Option<Duration> {
    // A year is far beyond any timer here and keeps the cast below exact.
    const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;
    if !secs.is_finite() || !(0.0..=MAX_SECS).contains(&secs) {
        return None;
    }
    Some(Duration::from_micros((secs * 1e6).round() as u64))
}

/// A value parsed with `FromStr` from a string. Unknown: recorded with the
/// list of valid names, and `T::default()` stored.
pub(crate) fn named<'de, D, T>(
    deserializer: D,
    what: &'static str,
    valid: &[&str],
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Default,
{
    let spanned = Spanned::<String>::deserialize(deserializer)?;
    if let Ok(value) = spanned.value.parse() {
        return Ok(value);
    }
    report::<D::Error>(
        spanned.referenced,
        Problem::UnknownName {
            what,
            value: spanned.value,
            valid: valid.join(", "),
        },
    )?;
    Ok(T::default())
}

/// Serializes a duration as whole seconds when it is whole, else fractional.
pub(crate) mod ser {
    use std::time::Duration;

    use serde::Serializer;

    pub(crate) fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_u64(d.as_secs())
        } else {
            s.serialize_f64(d.as_secs_f64())
        }
    }

    #[expect(
        clippy::ref_option,
        reason = "serde's serialize_with passes &Option<T>"
    )]
    pub(crate) fn opt_seconds<S: Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => seconds(d, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(deserialize_with = "int::<_, u8, 1, 255>")]
        id: u8,
        #[serde(deserialize_with = "seconds")]
        wait: Duration,
    }

    #[test]
    fn records_every_bad_value_inside_a_collector() {
        let (doc, recorded) = collect(|| serde_saphyr::from_str::<Doc>("id: 300\nwait: -1\n"));
        let doc = doc.expect("placeholders keep deserialization going");
        assert_eq!(doc.id, 255);
        assert_eq!(doc.wait, Duration::ZERO);
        let messages: Vec<_> = recorded
            .iter()
            .map(|d| (d.pos, d.problem.message(Some("k"))))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    Pos {
                        file: 0,
                        line: 1,
                        column: 5
                    },
                    "k 300 is out of range 1-255".to_owned()
                ),
                (
                    Pos {
                        file: 0,
                        line: 2,
                        column: 7
                    },
                    "k -1 is not a duration: write a number of seconds, 0 or more".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn fails_outside_a_collector() {
        let err = serde_saphyr::from_str::<Doc>("id: 0\nwait: 1\n").expect_err("no collector");
        assert!(err.to_string().contains("0 is out of range 1-255"), "{err}");
    }

    #[test]
    fn fractions_of_seconds_are_exact_to_the_microsecond() {
        assert_eq!(duration_from_secs(0.01), Some(Duration::from_millis(10)));
        assert_eq!(
            duration_from_secs(40.95),
            Some(Duration::from_millis(40_950))
        );
        assert_eq!(duration_from_secs(f64::NAN), None);
    }
}
